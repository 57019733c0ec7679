from mnistbench import setup_logging
from mnistbench.dataset import load_checked
from mnistbench.prepare import prepare

log = setup_logging(snakemake.log[0])
prepare(load_checked(snakemake.input.data), snakemake.wildcards.normalize, snakemake.params.folder)
log.info("prepared %s with normalize=%s", snakemake.input.data, snakemake.wildcards.normalize)
