import os

from mnistbench import setup_logging
from mnistbench.cpus import claim_cpus
from mnistbench.train import configure_runtime, run_and_record, skip_unused_imports

# CPUs, backend and thread pools must be fixed before Keras is first imported.
if snakemake.params.options["pin_cpus"]:
    claim_cpus(snakemake.threads)
configure_runtime(snakemake.params.run["backend"], snakemake.threads)
skip_unused_imports(snakemake.params.run["backend"])
setup_logging(snakemake.log[0], capture_stderr=True)
run_and_record(
    snakemake.params.run,
    os.path.dirname(snakemake.input.data[0]),
    dict(snakemake.output.items()),
    snakemake.threads,
    snakemake.params.options,
)
