"""mnistbench: the logic behind the Snakemake workflow (no Snakemake imports here)."""

import logging
import os
import sys


def setup_logging(log_path=None, framework_log=None) -> logging.Logger:
    """Log to the job's log file and to stderr, one line per event.

    framework_log sends the whole process's stderr (TensorFlow's C++ start-up lines included)
    to that file instead, so that the job's own log tells only the run's story and parallel
    jobs do not interleave framework noise in the terminal.
    """
    logger = logging.getLogger("mnistbench")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handlers = []
    if framework_log:
        sys.stderr.flush()
        with open(framework_log, "w") as noise:
            os.dup2(noise.fileno(), 2)
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


def append_to_log(text: str) -> None:
    """Write `text` as it is (no time stamp) to the log files that setup_logging opened."""
    for handler in logging.getLogger("mnistbench").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.stream.write(text)
            handler.flush()
