# What each backend can do on each device the grid trains on: a matrix-product and a copy
# probe, once per device, backend, precision and threads (mnistbench/training/ceiling.py). Only the
# report reads them, so a report change never measures again.
rule ceiling:
    input:
        code=repo_file("mnistbench/training/ceiling.py"),
    output:
        "results/ceiling/{device}_{backend}_{precision}_t{threads}.json",
    log:
        probe="results/logs/ceiling/{device}_{backend}_{precision}_t{threads}.log",
        # The frameworks' start-up lines (TensorFlow's C++ log), kept off the console.
        framework="results/logs/ceiling/{device}_{backend}_{precision}_t{threads}.framework.log",
    wildcard_constraints:
        device="cpu|gpu",
        backend="tensorflow|jax|torch",
        precision="float32|mixed_bfloat16|mixed_float16",
        threads=r"[0-9]+",
    conda:
        "../envs/mnistbench.yaml"
    threads: ceiling_threads
    resources:
        **gpu_model_resource(ceiling_gpus),
        gpu=ceiling_gpus,
        # Timed like a training job: never beside one.
        timed_training=1 if config["train"]["isolate"] else 0,
    params:
        pin_cpus=config["train"]["pin_cpus"],
    script:
        "../scripts/ceiling.py"
