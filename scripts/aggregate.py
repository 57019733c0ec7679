from mnistbench import setup_logging
from mnistbench.results.summary import aggregate

setup_logging(snakemake.log[0])
aggregate(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.experiments,
    snakemake.params.targets,
)
