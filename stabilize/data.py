"""GLUE data as study A uses it: read, split dev in half, down-sample, tokenize once, batch.

Protocol (Zhang et al. 2021, section 3 and their released code): the dev set is split per
class (per score bin for STS-B) with a fixed split seed, first half validation, second half
test; training data larger than `train_size` is down-sampled class-balanced with `data.seed`,
so the training `seed` varies only the training randomness.
"""
import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from stabilize.errors import ConfigError, DataError
from stabilize.tasks import TASKS, TaskSpec

VENDORED_DIR = Path(__file__).parent / "glue"
_CACHE_FORMAT = 1
_memory_cache: dict[str, dict] = {}  # tokenized files kept for the next run of a multirun


# ---------------------------------------------------------------- reading

def read_tsv(path: Path, spec: TaskSpec) -> tuple[list[str], list[str] | None, np.ndarray]:
    """Rows of one GLUE TSV file as (text_a, text_b, labels); quoting off, BOM stripped."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (set data.dir to the folder holding {spec.folder}/)")
    text_a, text_b, labels = [], [], []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if spec.header and lineno == 1:
                continue
            if len(row) != spec.n_columns:
                raise DataError(f"{path}:{lineno}: expected {spec.n_columns} tab-separated columns, "
                                f"found {len(row)}")
            text_a.append(row[spec.text_a])
            if spec.text_b is not None:
                text_b.append(row[spec.text_b])
            labels.append(_parse_label(row[spec.label], spec, path, lineno))
    dtype = np.float32 if spec.is_regression else np.int64
    return text_a, (text_b if spec.text_b is not None else None), np.asarray(labels, dtype=dtype)


def _parse_label(value: str, spec: TaskSpec, path: Path, lineno: int):
    if spec.is_regression:
        try:
            return float(value)
        except ValueError:
            raise DataError(f"{path}:{lineno}: score {value!r} is not a number") from None
    if value not in spec.labels:
        raise DataError(f"{path}:{lineno}: label {value!r} is not one of {list(spec.labels)}")
    return spec.labels.index(value)


def read_hub(spec: TaskSpec, split: str):
    """The same rows from the `nyu-mll/glue` hub data set (needs network)."""
    import datasets

    ds = datasets.load_dataset("nyu-mll/glue", spec.hub_name, split=split)
    cols = ("sentence", None) if spec.text_b is None else ("sentence1", "sentence2")
    dtype = np.float32 if spec.is_regression else np.int64
    return (list(ds[cols[0]]), list(ds[cols[1]]) if cols[1] else None,
            np.asarray(ds["label"], dtype=dtype))


# ---------------------------------------------------------------- splitting

def strata(labels: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Classes, or integer score bins for STS-B."""
    return np.rint(labels).astype(np.int64) if spec.is_regression else labels


def split_dev(labels: np.ndarray, spec: TaskSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test indices: each stratum shuffled with `seed`, first half validation."""
    rng = np.random.RandomState(seed)
    s = strata(labels, spec)
    val, test = [], []
    for c in np.unique(s):
        idx = np.flatnonzero(s == c)
        rng.shuffle(idx)
        half = (len(idx) + 1) // 2
        val.append(idx[:half])
        test.append(idx[half:])
    return np.sort(np.concatenate(val)), np.sort(np.concatenate(test))


def subsample(labels: np.ndarray, spec: TaskSpec, size, seed: int) -> np.ndarray:
    """Indices of a training subset of `size` rows, class-balanced (`size // n_labels` a class)."""
    n = len(labels)
    if size == "full":
        return np.arange(n)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError(f"data.train_size: {size!r} is neither a positive integer nor 'full'")
    if size > n:
        raise ConfigError(f"data.train_size: {size} is larger than the {n} training rows of "
                          f"{spec.name} (use 'full' to keep all)")
    rng = np.random.RandomState(seed)
    if spec.is_regression:
        return np.sort(rng.choice(n, size, replace=False))
    k = spec.num_labels
    picks = []
    for c in range(k):
        want = size // k + (1 if c < size % k else 0)
        idx = np.flatnonzero(labels == c)
        if want > len(idx):
            raise ConfigError(f"data.train_size: {size} needs {want} rows of class "
                              f"{spec.labels[c]!r} but {spec.name} has {len(idx)}")
        picks.append(rng.choice(idx, want, replace=False))
    return np.sort(np.concatenate(picks))


# ---------------------------------------------------------------- tokenizing

class Encoded:
    """Token ids of many rows as flat tensors and offsets (cheap to cache and to slice)."""

    def __init__(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, offsets: torch.Tensor):
        self.input_ids, self.token_type_ids, self.offsets = input_ids, token_type_ids, offsets

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def row(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.input_ids[a:b], self.token_type_ids[a:b]

    def state(self) -> dict:
        return {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids, "offsets": self.offsets}


def encode(tokenizer, text_a, text_b, max_length: int) -> Encoded:
    out = tokenizer(text_a, text_b, truncation=True, max_length=max_length,
                    return_token_type_ids=True, return_attention_mask=False)
    lengths = torch.tensor([len(x) for x in out["input_ids"]], dtype=torch.int64)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    flat = lambda key: torch.tensor([t for row in out[key] for t in row], dtype=torch.int32)  # noqa: E731
    return Encoded(flat("input_ids"), flat("token_type_ids"), offsets)


def tokenizer_fingerprint(tokenizer) -> str:
    """What makes two tokenizers produce the same ids: class, vocabulary and special tokens.

    A fast tokenizer keeps the truncation and padding settings of its last call in its
    backend; they are left out, else the key would change after the first file is tokenized
    and the next run of a multirun would miss the cache.
    """
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        truncation, padding = backend.truncation, backend.padding
        backend.no_truncation()
        backend.no_padding()
        try:
            h.update(backend.to_str().encode())
        finally:  # put back what the tokenizer's next call expects to find
            if truncation is not None:
                backend.enable_truncation(**truncation)
            if padding is not None:
                backend.enable_padding(**padding)
    else:
        h.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    return h.hexdigest()[:16]


def cached_encode(tokenizer, text_a, text_b, max_length: int, source_key: str, cache_dir: Path | None) -> Encoded:
    """Tokenize a whole file once per (file, tokenizer, max length); memory then disk cache."""
    key = hashlib.sha256(f"{_CACHE_FORMAT}|{source_key}|{tokenizer_fingerprint(tokenizer)}|{max_length}"
                         .encode()).hexdigest()[:24]
    if key in _memory_cache:
        return Encoded(**_memory_cache[key])
    path = cache_dir / f"{key}.pt" if cache_dir is not None else None
    if path is not None and path.is_file():
        state = torch.load(path, weights_only=True)
    else:
        state = encode(tokenizer, text_a, text_b, max_length).state()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{id(state)}")
            torch.save(state, tmp)
            tmp.replace(path)
    _memory_cache[key] = state
    return Encoded(**state)


# ---------------------------------------------------------------- batching

class GlueSplit(torch.utils.data.Dataset):
    """Rows `indices` of an encoded file, with their labels."""

    def __init__(self, encoded: Encoded, labels: np.ndarray, indices: np.ndarray):
        self.encoded, self.indices = encoded, np.asarray(indices)
        self.labels = torch.from_numpy(labels[self.indices])
        self.lengths = encoded.lengths[torch.from_numpy(self.indices)]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        ids, types = self.encoded.row(int(self.indices[i]))
        return ids, types, self.labels[i]


class Collate:
    """Pads each batch to its own longest row (dynamic padding)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows):
        width = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        token_type_ids = torch.zeros((len(rows), width), dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, types, _) in enumerate(rows):
            input_ids[r, :len(ids)] = ids
            token_type_ids[r, :len(ids)] = types
            attention_mask[r, :len(ids)] = 1
        labels = torch.stack([label for _, _, label in rows])
        return {"input_ids": input_ids, "token_type_ids": token_type_ids,
                "attention_mask": attention_mask, "labels": labels}


class GroupedByLengthSampler(torch.utils.data.Sampler):
    """Batches of similar length drawn in shuffled mega-batches (`mega` batches each).

    Every row appears once per epoch; the order of batches stays random.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, mega: int = 50):
        self.lengths, self.batch_size, self.mega = lengths, batch_size, mega

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.lengths))
        chunk = self.batch_size * self.mega
        batches = []
        for start in range(0, len(perm), chunk):
            part = perm[start:start + chunk]
            part = part[torch.argsort(self.lengths[part], descending=True, stable=True)]
            batches.extend(part[i:i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size))
        for b in torch.randperm(len(batches)).tolist():
            yield batches[b]


class GlueDataModule(pl.LightningDataModule):
    """Train / validation / test splits of one task, tokenized with the model's tokenizer."""

    def __init__(self, task: str, tokenizer, dir: str | None = None, source: str = "tsv",
                 train_size="full", seed: int = 0, split_seed: int = 42, max_length: int = 128,
                 batch_size: int = 32, eval_batch_size: int = 32, group_by_length: bool = False,
                 cache_dir: str | None = None):
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"task.name: unknown task {task!r}; choose one of {sorted(TASKS)}")
        if source not in ("tsv", "hub"):
            raise ConfigError(f"data.source: {source!r} is neither 'tsv' nor 'hub'")
        self.spec = TASKS[task]
        self.tokenizer = tokenizer
        self.dir = Path(dir) if dir else VENDORED_DIR
        self.source, self.train_size, self.seed, self.split_seed = source, train_size, seed, split_seed
        self.max_length, self.batch_size, self.eval_batch_size = max_length, batch_size, eval_batch_size
        self.group_by_length = group_by_length
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.splits: dict[str, GlueSplit] = {}

    def _load(self, split: str):
        if self.source == "hub":
            a, b, y = read_hub(self.spec, "train" if split == "train" else "validation")
            source_key = f"hub|{self.spec.hub_name}|{split}"
        else:
            path = self.dir / self.spec.folder / f"{split}.tsv"
            a, b, y = read_tsv(path, self.spec)
            source_key = hashlib.sha256(path.read_bytes()).hexdigest()
        return cached_encode(self.tokenizer, a, b, self.max_length, source_key, self.cache_dir), y

    def setup(self, stage: str | None = None):
        if self.splits:
            return
        train_enc, train_y = self._load("train")
        dev_enc, dev_y = self._load("dev")
        val_idx, test_idx = split_dev(dev_y, self.spec, self.split_seed)
        self.splits = {
            "train": GlueSplit(train_enc, train_y, subsample(train_y, self.spec, self.train_size, self.seed)),
            "val": GlueSplit(dev_enc, dev_y, val_idx),
            "test": GlueSplit(dev_enc, dev_y, test_idx),
        }

    def train_dataloader(self):
        split, collate = self.splits["train"], Collate(self.tokenizer.pad_token_id)
        if self.group_by_length:
            sampler = GroupedByLengthSampler(split.lengths, self.batch_size)
            return torch.utils.data.DataLoader(split, batch_sampler=sampler, collate_fn=collate)
        return torch.utils.data.DataLoader(split, batch_size=self.batch_size, shuffle=True, collate_fn=collate)

    def eval_dataloader(self, name: str):
        """Validation or test rows in length-sorted batches: fewer padded tokens, same scores."""
        split = self.splits[name]
        order = torch.argsort(split.lengths, descending=True, stable=True).tolist()
        batches = [order[i:i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)]
        # its own generator: evaluating must not draw from the global RNG, or the number of
        # evaluations would change the training randomness of a seed
        return torch.utils.data.DataLoader(split, batch_sampler=batches, generator=torch.Generator(),
                                           collate_fn=Collate(self.tokenizer.pad_token_id))
