rule download:
    input:
        download_inputs,
    output:
        npz=report(
            "resources/{dataset}.npz",
            category="Data",
            labels={"file": "{dataset} arrays"},
        ),
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
        code=repo_file("mnistbench/prepare.py"),
    output:
        "resources/prepared/{dataset}_{normalize}.npz",
    log:
        "resources/logs/prepare_{dataset}_{normalize}.log",
    conda:
        "../envs/mnistbench.yaml"
    script:
        "../scripts/prepare.py"
