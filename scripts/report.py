from mnistbench import setup_logging
from mnistbench.report.build import build

setup_logging(snakemake.log[0])
build(
    snakemake.input.notebook,
    snakemake.output.notebook,
    snakemake.output.html,
    snakemake.params.notebook_parameters,
    snakemake.params.show_code,
)
