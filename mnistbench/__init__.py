"""mnistbench: the logic behind the Snakemake workflow (no Snakemake imports here)."""

import logging
import sys


def setup_logging(log_path=None) -> logging.Logger:
    """Log to the job's log file and to stderr, one line per event."""
    logger = logging.getLogger("mnistbench")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger
