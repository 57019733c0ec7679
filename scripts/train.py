from mnistbench.supervise import train_supervised

train_supervised(
    {
        "run": snakemake.params.run,
        "name": snakemake.wildcards.run,
        "repeat": snakemake.params.repeat,
        "data": snakemake.input.data,
        "outputs": dict(snakemake.output.items()),
        "threads": snakemake.threads,
        "options": snakemake.params.options,
        "log": snakemake.log.train,
        "framework_log": snakemake.log.framework,
    },
    runtime_s=snakemake.params.runtime_s,
)
