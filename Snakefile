import os
import sys

from snakemake.logging import logger
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

# The console a person reads, however Snakemake was installed: Snakemake's plugin discovery
# misses an editable install and a Snakemake installed apart (the plugin's docstring says more).
try:
    from snakemake_logger_plugin_mnistbench import attach_console

    attach_console(workflow)
# A Snakemake without the plugin interface this console is made for: its own console, said once.
except Exception as error:
    logger.warning(
        f"mnistbench: its console could not be loaded ({type(error).__name__}: {error}); "
        "Snakemake's own console follows"
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
