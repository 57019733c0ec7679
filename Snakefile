from snakemake.utils import min_version

min_version("9.0")


# A config file given on the command line replaces config.yaml instead of being merged into
# it: cluster jobs are started without --replace-workflow-config, and every job must see the
# same grid as the main call.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/report.smk"


onstart:
    start_call()


onsuccess:
    end_call(succeeded=True)


onerror:
    end_call(succeeded=False)


rule all:
    default_target: True
    input:
        final_targets(),
