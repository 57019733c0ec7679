from mnistbench import setup_logging
from mnistbench.training.ceiling import run_probe

setup_logging(snakemake.log.probe, framework_log=snakemake.log.framework)
run_probe(
    snakemake.wildcards.device,
    snakemake.wildcards.backend,
    snakemake.wildcards.precision,
    int(snakemake.wildcards.threads),
    snakemake.output[0],
    snakemake.threads,
    snakemake.params.pin_cpus,
)
