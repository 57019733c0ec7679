from mnistbench.training.supervise import time_limit_s, train_supervised

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
        # The job's actual runtime, also when --set-resources or a profile changed it.
        "time_limit_s": time_limit_s(snakemake.resources.runtime),
    }
)
