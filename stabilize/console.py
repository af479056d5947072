"""What `stabilize-train` prints: its own lines and a progress bar, nothing else by default.

Transformers' load report and loading bar, Lightning's info lines and tips, and library warnings are hidden
for the duration of a run unless `verbose=true`; the logging levels and warning filters are
put back afterwards, so a test or notebook that calls `train()` keeps its own.
"""
import contextlib
import logging
import warnings

from transformers.utils import logging as hf_logging

LIBRARY_LOGGERS = ("pytorch_lightning", "lightning", "lightning_fabric", "transformers")


@contextlib.contextmanager
def quiet(verbose: bool):
    if verbose:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    bars = hf_logging.is_progress_bar_enabled()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in LIBRARY_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            hf_logging.disable_progress_bar()
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()
