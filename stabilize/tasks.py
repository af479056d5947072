"""A task is one YAML file in a `task/` config folder: its data, columns, classes and metrics.

`from_config(cfg.task)` is the TaskSpec a run uses; `check(cfg)` lists every problem of the
task and data config at once, each starting with its key or its file and line. It reads no
more than the first lines of the data files: no tokenizer, no model, no network.
"""
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from stabilize import metrics, readers
from stabilize.errors import ConfigError, DataError, is_int

TASK_DIR = Path(__file__).resolve().parent / "conf" / "task"  # the task files shipped
VENDORED_DIR = Path(__file__).resolve().parent / "glue"              # data.dir: null
SOURCES = ("files", "hub")
SPLITS = ("train", "dev")
REQUIRED = ("name", "text", "label", "labels", "metric")
OPTIONAL = ("select_metric", "fail_threshold", "files", "format", "header", "hub")
HUB_KEYS = ("path", "name", "splits", "text", "label")


@dataclass(frozen=True)
class Columns:
    """Where the texts (one or two columns) and the label are: names, or 0-based indices."""
    text: tuple
    label: str | int


@dataclass(frozen=True)
class Hub:
    """A `datasets` data set: `load_dataset(path, name, split=splits[...])`."""
    path: str
    name: str | None
    splits: dict
    columns: Columns


@dataclass(frozen=True)
class TaskSpec:
    name: str
    columns: Columns        # of the files
    labels: tuple           # class names in index order; () for regression
    metric: str             # the reported metric
    select_metric: str      # picks the best validation state (study A: accuracy where it exists)
    fail_threshold: float | None  # study B's failed run: test score <= it
    files: dict | None      # {"train": path, "dev": path}, relative to data.dir
    format: str | None      # tsv | csv | jsonl
    header: bool
    hub: Hub | None

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)


def from_config(node) -> TaskSpec:
    """The TaskSpec of a `task` node (or a plain dict); ConfigError listing every problem."""
    t = _plain(node)
    problems = task_problems(t)
    if problems:
        raise ConfigError(*problems)
    hub = t.get("hub")
    return TaskSpec(
        name=t["name"], columns=Columns(tuple(t["text"]), t["label"]),
        labels=tuple(str(x) for x in t["labels"]), metric=t["metric"],
        select_metric=t.get("select_metric") or t["metric"], fail_threshold=t.get("fail_threshold"),
        files=t.get("files"), format=t.get("format"), header=t.get("header", True),
        hub=None if hub is None else Hub(hub["path"], hub.get("name"), hub["splits"],
                                         Columns(tuple(hub.get("text", t["text"])), hub.get("label", t["label"]))))


def load(name_or_path: str | Path) -> TaskSpec:
    """The TaskSpec of a shipped task (`rte`, `mnli`, ...) or of a task YAML file."""
    path = Path(name_or_path)
    if path.suffix != ".yaml":
        path = TASK_DIR / f"{name_or_path}.yaml"
    return from_config(OmegaConf.load(path))


def data_dir(d: str | None) -> Path:
    """`data.dir`, or the vendored GLUE copy when it is null."""
    return VENDORED_DIR if d is None else Path(d).expanduser()


def check(cfg: DictConfig) -> list[str]:
    """Every problem of `cfg.task` and `cfg.data` (keys, values, files, columns), each a line."""
    source = cfg.data.get("source")
    problems = _data_problems(cfg.data)
    t = _plain(cfg.task)
    own = task_problems(t, source if source in SOURCES else None)
    problems += own
    if not own and source == "files" and not any(p.startswith("data.dir") for p in problems):
        spec = from_config(t)
        for split in SPLITS:
            path = data_dir(cfg.data.dir) / spec.files[split]
            if not path.is_file():
                problems.append(f"{path}: no such file (task.files.{split}, in data.dir)")
                continue
            try:
                readers.peek(path, spec)
            except DataError as e:
                problems.append(str(e))
    return problems


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)


def _by_split(x) -> bool:
    """`x` is {train: str, dev: str}."""
    return isinstance(x, dict) and set(x) == set(SPLITS) and all(isinstance(v, str) for v in x.values())


def _data_problems(d: DictConfig) -> list[str]:
    problems = []
    if d.get("source") not in SOURCES:
        problems.append(f"data.source: {d.get('source')!r} is neither 'files' (data.dir) nor 'hub' (task.hub)")
    size = d.get("train_size")
    if size != "full" and not (is_int(size) and size > 0):
        problems.append(f"data.train_size: {size!r} is neither a positive integer nor 'full'")
    for key in ("seed", "split_seed"):
        if not (is_int(d.get(key)) and d.get(key) >= 0):
            problems.append(f"data.{key}: {d.get(key)!r} is not a non-negative integer")
    if d.get("source") == "files" and d.get("dir") is not None and not data_dir(d.dir).is_dir():
        problems.append(f"data.dir: {data_dir(d.dir)} is not a folder")
    return problems


def task_problems(t: dict, source: str | None = None) -> list[str]:
    """Problems of a task file's keys and values; with `source`, also what that source needs."""
    problems = [f"task.{k}: missing (a task file has {', '.join(REQUIRED)})" for k in REQUIRED if k not in t]
    problems += [f"task.{k}: unknown key (known: {', '.join(REQUIRED + OPTIONAL)})"
                 for k in t if k not in REQUIRED + OPTIONAL]
    if "name" in t and not (isinstance(t["name"], str) and t["name"]):
        problems.append(f"task.name: {t['name']!r} is not a name")
    problems += _label_problems(t)
    header = t.get("header", True)
    if not isinstance(header, bool):
        problems.append(f"task.header: {header!r} is neither true nor false")
    elif t.get("files") is not None and "text" in t and "label" in t:
        problems += _column_problems(("task.text", t["text"]), ("task.label", t["label"]), by_name=header)
    if t.get("fail_threshold") is not None and not isinstance(t["fail_threshold"], (int, float)):
        problems.append(f"task.fail_threshold: {t['fail_threshold']!r} is not a number (or null)")
    if t.get("files") is not None or source == "files":
        problems += _file_key_problems(t)
    if t.get("hub") is not None or source == "hub":
        problems += _hub_problems(t)
    return problems


def _label_problems(t: dict) -> list[str]:
    """task.labels is a list of distinct class names, and the metrics fit it."""
    problems, names = [], None
    if "labels" in t:
        labels = t["labels"]
        if not isinstance(labels, list) or any(isinstance(x, (list, dict)) or x is None for x in labels):
            problems.append(f"task.labels: {labels!r} is not a list of class names ([] for regression)")
        elif len(labels) == 1:
            problems.append(f"task.labels: one class {labels}; list two or more, or [] for regression")
        elif len({str(x) for x in labels}) < len(labels):
            problems.append(f"task.labels: {[str(x) for x in labels]} names a class twice")
        else:
            names = [str(x) for x in labels]
    kind = None if names is None else metrics.CLASSIFICATION if names else metrics.REGRESSION
    for key in ("metric", "select_metric"):
        m = t.get(key)
        if m is None:
            continue
        if m not in metrics.NAMES:
            problems.append(f"task.{key}: unknown metric {m!r}; choose one of {', '.join(metrics.NAMES)}")
        elif kind is not None and m not in kind:
            problems.append(f"task.{key}: {m} is not a {'classification' if names else 'regression'} "
                            f"metric ({', '.join(kind)})")
        elif m == "f1" and names and len(names) != 2:
            problems.append(f"task.{key}: f1 is binary, and the task has {len(names)} classes (use macro_f1)")
    return problems


def _column_problems(text: tuple, label: tuple, by_name: bool) -> list[str]:
    """`text` (key, value) is one or two columns and `label` one: names when `by_name`, else indices."""
    (text_key, text), (label_key, label) = text, label
    if not isinstance(text, list) or len(text) not in (1, 2):
        return [f"{text_key}: {text!r} is not a list of one or two columns"]
    problems = []
    for key, col in [*((text_key, c) for c in text), (label_key, label)]:
        if by_name and not (isinstance(col, str) and col):
            problems.append(f"{key}: {col!r} is not a column name (the file has a header)")
        elif not by_name and not (is_int(col) and col >= 0):
            problems.append(f"{key}: {col!r} is not a 0-based column index (task.header is false)")
    return problems


def _file_key_problems(t: dict) -> list[str]:
    files = t.get("files")
    if files is None:
        hint = "; it is a hub task: add data.source=hub" if t.get("hub") is not None else ""
        return [f"task.files: missing (data.source is files){hint}"]
    if not _by_split(files):
        return [f"task.files: {files!r} is not {{train: PATH, dev: PATH}} (paths relative to data.dir)"]
    if t.get("format") not in readers.FORMATS:
        return [f"task.format: {t.get('format')!r} is not one of {', '.join(readers.FORMATS)}"]
    return []


def _hub_problems(t: dict) -> list[str]:
    hub = t.get("hub")
    if hub is None:
        return ["task.hub: missing (data.source is hub): {path, name, splits: {train: ..., dev: ...}}"]
    if not isinstance(hub, dict):
        return [f"task.hub: {hub!r} is not {{path, name, splits}}"]
    problems = [f"task.hub.{k}: unknown key (known: {', '.join(HUB_KEYS)})" for k in hub if k not in HUB_KEYS]
    if not (isinstance(hub.get("path"), str) and hub["path"]):
        problems.append(f"task.hub.path: {hub.get('path')!r} is not a data set id or folder")
    if hub.get("name") is not None and not isinstance(hub["name"], str):
        problems.append(f"task.hub.name: {hub['name']!r} is not a config name (or null)")
    splits = hub.get("splits")
    if not _by_split(splits):
        problems.append(f"task.hub.splits: {splits!r} is not {{train: SPLIT, dev: SPLIT}}")
    if all(key in hub or key in t for key in ("text", "label")):  # the hub's own columns, else the task's
        text, label = ((f"task.hub.{k}", hub[k]) if k in hub else (f"task.{k}", t[k]) for k in ("text", "label"))
        problems += _column_problems(text, label, by_name=True)
    return problems

