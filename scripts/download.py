from mnistbench import setup_logging
from mnistbench.files import save_npz, write_json
from mnistbench.sources import fetch

setup_logging(snakemake.log[0])
arrays, provenance = fetch(snakemake.wildcards.dataset, snakemake.params.sources, snakemake.params.cache)
save_npz(snakemake.output.npz, arrays)
write_json(snakemake.output.provenance, provenance)
