"""Logger factories named by `stabilize/conf/logger/*.yaml` where Lightning's class needs a nudge."""
import os

from pytorch_lightning import loggers


def mlflow(**kwargs):
    """Lightning's MLFlowLogger. A local `file:` tracking store is allowed: MLflow 3 refuses the
    (still working) file store unless MLFLOW_ALLOW_FILE_STORE is set, and a file store per sweep,
    one folder per run, is safe for parallel runs where one SQLite file is not."""
    uri = str(kwargs.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "")
    if uri.startswith("file:") or (uri and "://" not in uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return loggers.MLFlowLogger(**kwargs)


class WandbLogger(loggers.WandbLogger):
    """Lightning's WandbLogger that finishes its W&B run when training ends. Lightning leaves it
    open, and the next run of a sweep in the same process (basic launcher, reused joblib worker)
    would log into it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous")  # Lightning always passes it; recent wandb warns it has no effect

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
