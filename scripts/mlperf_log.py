from mnistbench import setup_logging
from mnistbench.results.mlperf import write_run_log

setup_logging(snakemake.log[0])
write_run_log(snakemake.input.metrics, snakemake.output[0], snakemake.params.org)
