"""mnistbench: the logic behind the Snakemake workflow (no Snakemake imports here)."""

import logging
import os
import sys


def setup_logging(log_path=None, capture_stderr=False) -> logging.Logger:
    """Log to the job's log file and to stderr, one line per event.

    capture_stderr sends the whole process's stderr (TensorFlow's C++ log included) to the log
    file instead, so that parallel jobs do not interleave framework noise in the terminal.
    """
    logger = logging.getLogger("mnistbench")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path and capture_stderr:
        sys.stderr.flush()
        with open(log_path, "w") as log_file:
            os.dup2(log_file.fileno(), 2)
    elif log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger
