rule train:
    input:
        data=prepared_data,
        code=repo_files(
            "mnistbench/training/train.py",
            "mnistbench/training/runtime.py",
            "mnistbench/training/pipeline.py",
            "mnistbench/training/compile_ahead.py",
            "mnistbench/training/epochs.py",
            "mnistbench/training/run_outputs.py",
            "mnistbench/training/models.py",
            "mnistbench/training/supervise.py",
        ),
    output:
        model="results/runs/{run}/model.keras",
        history="results/runs/{run}/history.csv",
        timings="results/runs/{run}/timings.csv",
        predictions="results/runs/{run}/predictions.npz",
        metrics="results/runs/{run}/metrics.json",
    log:
        train="results/runs/{run}/train.log",
        framework="results/runs/{run}/framework.log",
    benchmark:
        "results/runs/{run}/benchmark.tsv"
    priority: train_priority
    conda:
        "../envs/mnistbench.yaml"
    threads: train_threads
    resources:
        **partition_resource(),
        **gpu_model_resource(train_gpus),
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=train_gpus,
        timed_training=1 if config["train"]["isolate"] else 0,
    params:
        run=run_settings,
        repeat=run_repeat,
        options=train_options,
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        predictions="results/runs/{run}/predictions.npz",
        code=repo_file("mnistbench/results/evaluate.py"),
    output:
        confusion="results/runs/{run}/confusion.csv",
        per_class="results/runs/{run}/per_class.csv",
    log:
        "results/runs/{run}/evaluate.log",
    conda:
        "../envs/mnistbench.yaml"
    script:
        "../scripts/evaluate.py"


rule mlperf_log:
    input:
        metrics="results/runs/{run}/metrics.json",
        code=repo_file("mnistbench/results/mlperf.py"),
    output:
        "results/runs/{run}/mlperf.log",
    log:
        "results/runs/{run}/mlperf_log.log",
    conda:
        "../envs/mnistbench.yaml"
    params:
        org=config["mlperf"]["org"],
    script:
        "../scripts/mlperf_log.py"


rule aggregate:
    input:
        metrics=run_paths("metrics.json"),
        timings=run_paths("timings.csv"),
        history=run_paths("history.csv"),
        benchmark=run_paths("benchmark.tsv"),
        per_class=run_paths("per_class.csv"),
        mlperf=run_paths("mlperf.log"),
        provenance=dataset_provenance(),
        code=repo_file("mnistbench/results/summary.py"),
    output:
        runs=report(
            "results/summary/runs.csv", category="Summary", labels={"table": "runs"}
        ),
        settings=report(
            "results/summary/settings.csv",
            category="Summary",
            labels={"table": "settings"},
        ),
        timings=report(
            "results/summary/timings.csv",
            category="Summary",
            labels={"table": "timings"},
        ),
        history=report(
            "results/summary/history.csv",
            category="Summary",
            labels={"table": "history"},
        ),
        machine=report(
            "results/summary/machine.csv",
            category="Summary",
            labels={"table": "machine"},
        ),
        datasets=report(
            "results/summary/datasets.csv",
            category="Summary",
            labels={"table": "datasets"},
        ),
    log:
        "results/logs/aggregate.log",
    conda:
        "../envs/mnistbench.yaml"
    params:
        experiments=EXPERIMENTS,
        targets=config["targets"],
    script:
        "../scripts/aggregate.py"
