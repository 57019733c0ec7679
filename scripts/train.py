from mnistbench import setup_logging
from mnistbench.train import configure_runtime, run_and_record

# The backend and thread pools must be fixed before Keras is first imported.
configure_runtime(snakemake.params.run["backend"], snakemake.threads)
setup_logging(snakemake.log[0], capture_stderr=True)
run_and_record(
    snakemake.params.run,
    snakemake.input.data,
    dict(snakemake.output.items()),
    snakemake.threads,
    snakemake.params.options,
)
