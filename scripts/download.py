from mnistbench import setup_logging
from mnistbench.data.sources import fetch
from mnistbench.files import save_npz, write_json

setup_logging(snakemake.log[0])
arrays, provenance = fetch(snakemake.wildcards.dataset, snakemake.params.sources, snakemake.params.cache)
save_npz(snakemake.output.npz, arrays)
write_json(snakemake.output.provenance, provenance)
