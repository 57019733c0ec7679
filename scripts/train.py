from mnistbench import setup_logging
from mnistbench.grid import Run
from mnistbench.train import run_and_record, start_training_process

run = Run(**snakemake.params.run)
start_training_process(run.backend, snakemake.threads, snakemake.params.options["pin_cpus"])
setup_logging(snakemake.log.train, framework_log=snakemake.log.framework)
run_and_record(
    run,
    snakemake.wildcards.run,
    snakemake.input.data,
    dict(snakemake.output.items()),
    snakemake.threads,
    snakemake.params.options,
    snakemake.params.repeat,
)
