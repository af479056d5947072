"""The four GLUE tasks of study A: where their columns are and how they are scored.

Metric names and result keys are defined here once; configs and the report refer to them.
"""
from dataclasses import dataclass

METRICS = ("accuracy", "f1", "spearman", "mcc")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    folder: str            # sub-folder of data.dir holding train.tsv / dev.tsv
    hub_name: str          # config name in the `nyu-mll/glue` hub data set
    header: bool           # CoLA's files have no header row
    n_columns: int         # columns every row must have
    text_a: int            # column indices (0-based)
    text_b: int | None
    label: int
    labels: tuple          # label strings in class-index order; () for regression
    metric: str            # the reported metric
    select_metric: str     # chooses the best validation state (paper: accuracy where it exists)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)


TASKS = {
    "rte": TaskSpec("rte", "RTE", "rte", True, 4, 1, 2, 3, ("entailment", "not_entailment"), "accuracy", "accuracy"),
    "mrpc": TaskSpec("mrpc", "MRPC", "mrpc", True, 5, 3, 4, 0, ("0", "1"), "f1", "accuracy"),
    "stsb": TaskSpec("stsb", "STS-B", "stsb", True, 10, 7, 8, 9, (), "spearman", "spearman"),
    "cola": TaskSpec("cola", "CoLA", "cola", False, 4, 3, None, 1, ("0", "1"), "mcc", "mcc"),
}


def check(cfg) -> list[str]:
    """Problems of the task and data config of a composed `cfg`, each naming its key."""
    problems = []
    if cfg.task.name not in TASKS:
        problems.append(f"task.name: unknown task {cfg.task.name!r}; choose one of {sorted(TASKS)}")
    size = cfg.data.train_size
    if size != "full" and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        problems.append(f"data.train_size: {size!r} is neither a positive integer nor 'full'")
    return problems
