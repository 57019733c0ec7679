rule report:
    input:
        runs_csv="results/summary/runs.csv",
        timings_csv="results/summary/timings.csv",
        history_csv="results/summary/history.csv",
        machine_csv="results/summary/machine.csv",
        datasets_csv="results/summary/datasets.csv",
        confusion=run_paths("confusion.csv"),
        notebook=repo_file("notebooks/report.ipynb"),
        plotting_code=repo_file("mnistbench/plots.py"),
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
