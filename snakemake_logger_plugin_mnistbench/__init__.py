"""Snakemake logger plugin `mnistbench`: the console a person can read (profiles/default turns
it on). It prints the workflow's own lines (the plan, one line per finished training run, the
closing summary), warnings and errors, and leaves out Snakemake's per-job blocks, input lists,
step counts and the lines that open and close every call. The full log stays in
.snakemake/log/ (Snakemake's own file handler).

Snakemake finds logger plugins only among the modules installed beside it, which an editable
install (pip's default mode) or a Snakemake installed apart (pipx, conda, a cluster module)
does not show it. So the Snakefile puts this console in place itself (attach_console), however
Snakemake was installed; `--logger mnistbench` also works where the plugin is installed.

`MNISTBENCH_CONSOLE=detail` (or `--logger mnistbench --logger-mnistbench-detail`) prints
everything Snakemake prints, as without the plugin. Dry runs always do. The formatting lives in
mnistbench/report/console.py.
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

# What stays off the console (the full log has it): each job's block, shell command, start and
# end, the step counts, and the lines that open every call. Everything else shows: warnings,
# errors, and what other commands say (--lint, --report, --unlock...).
LEFT_OUT_EVENTS = {
    LogEvent.JOB_INFO,
    LogEvent.GROUP_INFO,
    LogEvent.SHELLCMD,
    LogEvent.JOB_STARTED,
    LogEvent.JOB_FINISHED,
    LogEvent.PROGRESS,
    LogEvent.RESOURCES_INFO,
    LogEvent.RUN_INFO,
    LogEvent.WORKFLOW_STARTED,
}
LEFT_OUT_INFO = (
    "Building DAG of jobs",
    "Using shell:",
    "Assuming unrestricted shared filesystem",
    "host: ",
    "Provided ",
    "Rules claiming more threads",
    "Select jobs to execute",
    "Execute ",
    "Conda environments: ignored",
    "Elapsed time:",  # the closing summary says it
)


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    detail: bool = field(
        default=False,
        metadata={"help": "Print Snakemake's per-job blocks and progress too, as without the plugin."},
    )


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        from snakemake.logging import ColorizingTextHandler

        settings = self.common_settings
        self.stream = sys.stdout if settings.stdout else sys.stderr
        self.detail = bool(settings.dryrun or settings.verbose or (self.settings and self.settings.detail))
        # Snakemake's own stream handler writes what passes through, colours and all.
        self.snakemake_lines = ColorizingTextHandler(nocolor=settings.nocolor, stream=self.stream)
        self.training_jobs: dict[int, str] = {}  # Snakemake job id -> run
        self.progress = None

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return False  # Snakemake's filter: --quiet, --printshellcmds and the rest still apply

    @property
    def has_formatter(self) -> bool:
        return False

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record: logging.LogRecord) -> None:
        from mnistbench.report import console
        from mnistbench.results import summary

        event = getattr(record, "event", None)
        planned = getattr(record, "mnistbench_plan", None)
        if planned is not None:
            self.progress = console.Progress(planned)
        if event == LogEvent.JOB_INFO and record.rule_name == "train":
            self.training_jobs[record.jobid] = record.wildcards["run"]
        if self.detail or self.kept(record, event):
            self.snakemake_lines.setFormatter(self.formatter)
            shorten = event == LogEvent.JOB_ERROR and not self.detail
            self.snakemake_lines.emit(without_inputs(record) if shorten else record)
        finished = event == LogEvent.JOB_FINISHED and record.job_id in self.training_jobs
        failed = event == LogEvent.JOB_ERROR and record.jobid in self.training_jobs
        if self.progress is not None and (finished or failed):
            run = self.training_jobs[record.job_id if finished else record.jobid]
            metrics = summary.read_metrics(Path("results/runs") / run / "metrics.json") if finished else None
            self.write(self.progress.line(run, metrics, now=record.created))

    @staticmethod
    def kept(record: logging.LogRecord, event) -> bool:
        if getattr(record, "mnistbench_console", False) or record.levelno >= logging.WARNING:
            return True
        return event not in LEFT_OUT_EVENTS and not str(record.msg).startswith(LEFT_OUT_INFO)

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def without_inputs(record: logging.LogRecord) -> logging.LogRecord:
    """A failed job's block without its input list (the aggregate job's is thousands of
    characters); the full log has it."""
    shortened = logging.makeLogRecord(record.__dict__)
    shortened.input = []
    return shortened


# The environment variable that asks for Snakemake's per-job detail on the console.
DETAIL_VARIABLE = "MNISTBENCH_CONSOLE"


def attach_console(workflow) -> bool:
    """Put this console in place of Snakemake's own stream handler for the call that parses the
    Snakefile, unless it is a job's process (which prints only errors) or a console plugin was
    chosen on the command line (--logger). True when it was put in place."""
    manager = workflow.logger_manager
    settings = manager.settings
    if settings.skip_plugin_handlers or any(h.writes_to_stream for h in manager.plugin_handlers):
        return False
    handler = LogHandler(settings, LogHandlerSettings(detail=os.environ.get(DETAIL_VARIABLE) == "detail"))
    # As Snakemake's LoggerManager sets up a plugin chosen with --logger (_init_plugin_handler,
    # which looks the plugin up among installed ones and so cannot be used here).
    handler.addFilter(manager._default_filter())
    handler.setFormatter(manager._default_formatter())
    defaults = [h for h in manager.logger.handlers if h.name == "DefaultStreamHandler"]
    manager.logger.addHandler(handler)
    for default in defaults:
        manager.logger.removeHandler(default)
    return True
