from mnistbench import setup_logging
from mnistbench.data.prepare import prepare
from mnistbench.data.readers import load_checked

log = setup_logging(snakemake.log[0])
prepare(load_checked(snakemake.input.data), snakemake.wildcards.normalize, snakemake.output[0])
log.info("prepared %s with normalize=%s", snakemake.input.data, snakemake.wildcards.normalize)
