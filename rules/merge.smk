rule merge:
    input:
        tables=merge_tables,
        code=repo_files(
            "mnistbench/report/merge.py",
            "mnistbench/results/result_sets.py",
            "mnistbench/results/ratios.py",
        ),
    output:
        runs=report(
            "results/summary/merged/runs.csv",
            category="Many machines",
            labels={"table": "merged runs"},
        ),
        settings=report(
            "results/summary/merged/settings.csv",
            category="Many machines",
            labels={"table": "merged settings"},
        ),
        machines=report(
            "results/summary/merged/machines.csv",
            category="Many machines",
            labels={"table": "machines"},
        ),
    log:
        "results/logs/merge.log",
    localrule: True
    conda:
        "../envs/mnistbench.yaml"
    params:
        sets=config["merge"]["sets"],
        reference=config["merge"]["reference"],
        threshold=config["compare"]["threshold"],
        confidence=config["compare"]["confidence"],
    script:
        "../scripts/merge.py"


rule merged_report:
    input:
        settings="results/summary/merged/settings.csv",
        machines="results/summary/merged/machines.csv",
        notebook=repo_file("notebooks/merged.ipynb"),
        plotting_code=repo_files("mnistbench/report/plots/machines.py"),
    output:
        notebook="results/merged.ipynb",
        html=report(
            "results/merged.html",
            category="Many machines",
            labels={"page": "many machines, merged"},
        ),
    log:
        "results/logs/merged_report.log",
    localrule: True
    conda:
        "../envs/mnistbench.yaml"
    params:
        notebook_parameters=merged_report_parameters,
        show_code=config["report"]["show_code"],
    script:
        "../scripts/report.py"
