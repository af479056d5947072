"""Reading a task's rows: TSV, CSV and JSON Lines files, and `datasets` data sets (the hub).

A reader returns `Rows`: one or two lists of texts, and the labels as class indices (int64)
or scores (float32). A row that does not fit the task raises DataError starting with
`file:line` (for the hub, `path[config]:split:row`). GLUE's traps (its README): MRPC starts
with a byte-order mark (files are read as utf-8-sig), STS-B and MRPC sentences hold
unbalanced quotes (TSV is read with quoting off), CoLA has no header row.
"""
import csv
import json
import math
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from stabilize.errors import ConfigError, DataError

FORMATS = ("tsv", "csv", "jsonl")


class Rows(NamedTuple):
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray


def read_file(path: Path, spec) -> Rows:
    """Every row of a data file of the task `spec` (a tasks.TaskSpec)."""
    return _gather(_rows(Path(path), spec), spec)


def peek(path: Path, spec) -> None:
    """Read the header and the first data row only; DataError when they do not fit the task."""
    rows = _rows(Path(path), spec)
    try:
        next(rows)
    finally:
        rows.close()


def read_hub(spec, split: str) -> Rows:
    """Every row of `split` (train | dev) of the task's data set: `load_dataset(path, name)`."""
    import datasets

    hub = spec.hub
    where = hub_split_name(hub, split)
    try:
        ds = datasets.load_dataset(hub.path, hub.name, split=hub.splits[split])
    except (OSError, ValueError) as e:  # not found, no network, unknown config or split
        raise ConfigError(f"task.hub: cannot load {where}: {e}") from None
    columns = [*hub.columns.text, hub.columns.label]
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ConfigError(f"task.hub: {where} has no column {missing[0]!r}; it has {ds.column_names}")
    labels = list(ds[hub.columns.label])
    feature = ds.features[hub.columns.label]
    if isinstance(feature, datasets.ClassLabel):  # ints: class i of the data set is class i of the task
        _check_class_names(feature.names, spec, where)
        labels = [spec.labels[v] if 0 <= v < len(spec.labels) else v for v in labels]
    texts = zip(*(ds[c] for c in hub.columns.text))
    return _gather(((tuple(_text(x, f"{where}:{i}", c) for x, c in zip(t, hub.columns.text)),
                     parse_label(y, spec, f"{where}:{i}")) for i, (t, y) in enumerate(zip(texts, labels))), spec)


def hub_split_name(hub, split: str) -> str:
    """How messages name a split of a hub data set: `path[config]:split`."""
    return f"{hub.path}{f'[{hub.name}]' if hub.name else ''}:{hub.splits[split]}"


def parse_label(value, spec, where: str):
    """A class index (the value's text among `spec.labels`), or a finite score for regression."""
    if spec.is_regression:
        score = math.nan if isinstance(value, bool) else _float(value)
        if not math.isfinite(score):
            raise DataError(f"{where}: score {value!r} is not a finite number")
        return score
    name = None if value is None or isinstance(value, (dict, list)) else str(value)
    if name not in spec.labels:
        raise DataError(f"{where}: label {value!r} is not one of task.labels {list(spec.labels)}")
    return spec.labels.index(name)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value, where: str, column) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} holds {value!r}, not text")
    return value


def _check_class_names(names: list, spec, where: str) -> None:
    if len(names) != len(spec.labels):
        raise ConfigError(f"task.labels: {where} has {len(names)} classes {names}, the task {len(spec.labels)}")
    if set(names) == set(spec.labels) and list(names) != list(spec.labels):
        raise ConfigError(f"task.labels: {list(spec.labels)} is not in the data set's class order {names}")


def _gather(rows: Iterable[tuple], spec) -> Rows:
    texts, labels = [], []
    for t, y in rows:
        texts.append(t)
        labels.append(y)
    columns = list(zip(*texts))
    return Rows(list(columns[0]), list(columns[1]) if len(columns) == 2 else None,
                np.asarray(labels, dtype=np.float32 if spec.is_regression else np.int64))


def _records(f, path: Path, fmt: str):
    """(line number, record) of every non-blank record: a list of fields, or a JSON value."""
    if fmt == "jsonl":
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not a JSON line ({e.msg})") from None
        return
    tsv = fmt == "tsv"
    reader = csv.reader(f, delimiter="\t" if tsv else ",", quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    try:
        for row in reader:
            if row:
                yield reader.line_num, row
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: {e}") from None


def _rows(path: Path, spec):
    """(texts, label) of every data row of a file, checked against the task as it is read."""
    columns = [*spec.columns.text, spec.columns.label]
    keys = ["task.text"] * len(spec.columns.text) + ["task.label"]
    has_header = spec.header and spec.format != "jsonl"  # JSON objects name their own columns
    width, lineno, n = None, 0, 0
    if not path.is_file():
        raise DataError(f"{path}: no such file (task.files, in data.dir)")
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, record in _records(f, path, spec.format):
            if has_header and width is None:
                missing = [(c, k) for c, k in zip(columns, keys) if c not in record]
                if missing:
                    raise DataError(f"{path}:{lineno}: no column {missing[0][0]!r} ({missing[0][1]}); "
                                    f"the header has {record}")
                columns, width = [record.index(c) for c in columns], len(record)
                continue
            if isinstance(record, list):
                width = len(record) if width is None else width
                if len(record) != width:
                    raise DataError(f"{path}:{lineno}: expected {width} columns, found {len(record)}")
            values = [_field(record, c, k, f"{path}:{lineno}") for c, k in zip(columns, keys)]
            n += 1
            yield (tuple(_text(v, f"{path}:{lineno}", c) for v, c in zip(values[:-1], spec.columns.text)),
                   parse_label(values[-1], spec, f"{path}:{lineno}"))
    if n == 0:
        raise DataError(f"{path}:1: empty file" if lineno == 0 else
                        f"{path}:{lineno + 1}: no data rows after the header")


def _field(record, column, key: str, where: str):
    try:
        return record[column]
    except (KeyError, IndexError, TypeError):
        size = f"; the row has {len(record)} columns" if isinstance(record, list) else ""
        raise DataError(f"{where}: no column {column!r} ({key}){size}") from None
