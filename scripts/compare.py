from mnistbench import setup_logging
from mnistbench.report.compare import run

setup_logging(snakemake.log[0])
run(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.baseline,
    snakemake.params.threshold,
    snakemake.params.confidence,
)
