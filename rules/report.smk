rule report:
    input:
        runs="results/summary/runs.csv",
        tables=expand(
            "results/summary/{table}.csv",
            table=("settings", "history", "machine", "datasets"),
        ),
        confusion=run_paths("confusion.csv"),
        ceiling=ceiling_paths(),
        notebook=repo_file("notebooks/report.ipynb"),
        # Every module of the plots package, so that a new one needs no edit here.
        plotting_code=sorted(
            os.path.join(repo_file("mnistbench/report/plots"), name)
            for name in os.listdir(repo_file("mnistbench/report/plots"))
            if name.endswith(".py")
        ),
    output:
        notebook="results/report.ipynb",
        html=report(
            "results/report.html",
            category="Report",
            labels={"page": "mnistbench report"},
        ),
    log:
        "results/logs/report.log",
    conda:
        "../envs/mnistbench.yaml"
    params:
        notebook_parameters=report_parameters,
        show_code=config["report"]["show_code"],
    script:
        "../scripts/report.py"


rule lesson:
    input:
        data=lesson_data,
        notebook=repo_file("notebooks/lesson.ipynb"),
    output:
        notebook="results/lesson/lesson.ipynb",
        html=report(
            "results/lesson/lesson.html",
            category="Lesson",
            labels={"page": "the lesson, executed"},
        ),
    log:
        "results/logs/lesson.log",
    conda:
        "../envs/mnistbench.yaml"
    threads: lesson_run().threads
    params:
        notebook_parameters=lesson_parameters,
        show_code=True,
    script:
        "../scripts/report.py"


rule compare:
    input:
        runs="results/summary/runs.csv",
        machine="results/summary/machine.csv",
        baseline=baseline_tables,
        code=repo_file("mnistbench/report/compare.py"),
    output:
        table=report(
            "results/summary/compare.csv",
            category="Comparison",
            labels={"table": "compare"},
        ),
        html=report(
            "results/compare.html",
            category="Comparison",
            labels={"page": "comparison with the baseline"},
        ),
    log:
        "results/logs/compare.log",
    localrule: True
    conda:
        "../envs/mnistbench.yaml"
    params:
        baseline=config["compare"]["baseline"],
        threshold=config["compare"]["threshold"],
        confidence=config["compare"]["confidence"],
    script:
        "../scripts/compare.py"
