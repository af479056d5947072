"""What the items of one invocation share: options, sizes, the work folder, the token cache
folder, results passed between items, and the log that in-process runs print to."""
import contextlib
import logging
import warnings
from pathlib import Path


class Context:
    def __init__(self, args, sizes: dict, items: list[int], work: Path):
        self.args, self.sizes, self.items, self.work = args, sizes, items, work
        self.cache = work / "token-cache"
        self.store: dict = {}  # results shared between items (item 2's runs feed items 5 and 6)
        self.log = open(work / "in-process.log", "a")

    @contextlib.contextmanager
    def quiet(self):
        """In-process runs print their progress to the work folder's log, not to the terminal."""
        self.log.flush()
        with contextlib.redirect_stdout(self.log), contextlib.redirect_stderr(self.log):
            yield
        self.log.flush()


def silence_libraries() -> None:
    """No warnings nor progress bars from the libraries (in the benchmark and its participants)."""
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
