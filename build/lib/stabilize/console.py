"""What `stabilize-train` prints: its own lines and a progress bar, nothing else by default.

Transformers' load report and loading bar, Lightning's info lines and tips, and library warnings are hidden
for the duration of a run unless `verbose=true`; the logging levels and warning filters are
put back afterwards, so a test or notebook that calls `train()` keeps its own.
"""
import contextlib
import logging
import warnings

from transformers.utils import logging as hf_logging

# logger -> the level shown while quiet; hydra.utils logs a failed import of a `_target_` over
# several lines, which the validation pass already reports in one, naming the key
LIBRARY_LOGGERS = {"pytorch_lightning": logging.ERROR, "lightning": logging.ERROR, "lightning_fabric": logging.ERROR,
                   "transformers": logging.ERROR, "hydra.utils": logging.CRITICAL}


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
            for name, level in LIBRARY_LOGGERS.items():
                logging.getLogger(name).setLevel(level)
            hf_logging.disable_progress_bar()
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()
