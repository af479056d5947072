"""Logger factories named by `conf/logger/*.yaml` where Lightning's class needs a nudge."""
import os


def mlflow(**kwargs):
    """Lightning's MLFlowLogger. A local `file:` tracking store is allowed: MLflow 3 refuses the
    (still working) file store unless MLFLOW_ALLOW_FILE_STORE is set, and a file store per sweep,
    one folder per run, is safe for parallel runs where one SQLite file is not."""
    uri = str(kwargs.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "")
    if uri.startswith("file:") or (uri and "://" not in uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from pytorch_lightning.loggers import MLFlowLogger

    return MLFlowLogger(**kwargs)
