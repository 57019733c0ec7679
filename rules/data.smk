rule download:
    input:
        download_inputs,
    output:
        # Not in Snakemake's report: it embeds what it marks, and the arrays are 55 MB that no
        # reader opens there; the provenance says what they are.
        npz="resources/{dataset}.npz",
        provenance=report(
            "resources/{dataset}.json",
            category="Data",
            labels={"file": "{dataset} provenance"},
        ),
    log:
        "resources/logs/download_{dataset}.log",
    conda:
        "../envs/mnistbench.yaml"
    params:
        sources=download_sources,
        cache="resources/downloads/{dataset}",
    script:
        "../scripts/download.py"


rule prepare:
    input:
        data="resources/{dataset}.npz",
        code=repo_file("mnistbench/data/prepare.py"),
    output:
        "resources/prepared/{dataset}_{normalize}.npz",
    log:
        "resources/logs/prepare_{dataset}_{normalize}.log",
    conda:
        "../envs/mnistbench.yaml"
    script:
        "../scripts/prepare.py"
