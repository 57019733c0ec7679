import os

from mnistbench import setup_logging
from mnistbench.train import run_and_record, start_training_process

start_training_process(
    snakemake.params.run["backend"], snakemake.threads, snakemake.params.options["pin_cpus"]
)
setup_logging(snakemake.log[0], capture_stderr=True)
run_and_record(
    snakemake.params.run,
    os.path.dirname(snakemake.input.data[0]),
    dict(snakemake.output.items()),
    snakemake.threads,
    snakemake.params.options,
)
