import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Every process of this call imports the mnistbench package of this folder, whatever else is
# installed (an editable install of another checkout, say): this process, and through
# PYTHONPATH its jobs and their training processes. Its code_version is then this folder's.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [workflow.basedir, *filter(None, [os.getenv("PYTHONPATH")])]
    )
)


# A config file given on the command line replaces config.yaml instead of being merged into
# it: cluster jobs are started without --replace-workflow-config, and every job must see the
# same grid as the main call.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/ceiling.smk"
include: "rules/report.smk"
include: "rules/merge.smk"


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
