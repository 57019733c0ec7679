from mnistbench import setup_logging
from mnistbench.results.evaluate import evaluate

setup_logging(snakemake.log[0])
evaluate(snakemake.input.predictions, snakemake.output.confusion, snakemake.output.per_class)
