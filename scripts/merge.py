from mnistbench import setup_logging
from mnistbench.report.merge import run

setup_logging(snakemake.log[0])
run(
    snakemake.params.sets,
    snakemake.params.reference,
    snakemake.params.threshold,
    snakemake.params.confidence,
    dict(snakemake.output.items()),
)
