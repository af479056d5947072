"""A task's data as study A uses it: read, split dev in half, down-sample, tokenize once, batch.

Protocol (Zhang et al. 2021, section 3 and their released code): the dev set is split per
class (per integer score bin for regression) with a fixed split seed, first half validation,
second half test; training data larger than `train_size` is down-sampled class-balanced with
`data.seed`, so the training `seed` varies only the training randomness. The config's values
are checked in `tasks.check`; here only what needs the rows (a class too small to split).
Tokenizing and its cache: tokens.py. On several processes (stabilize.distributed) each trains on
its share of the same global batches, and evaluates its share of the batches.
"""
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from stabilize import distributed, readers
from stabilize.errors import ConfigError, DataError
from stabilize.tasks import TaskSpec, data_dir
from stabilize.tokens import TOKEN_CACHE, Encoded, TokenCache


# ---------------------------------------------------------------- splitting

def strata(labels: np.ndarray, spec: TaskSpec) -> np.ndarray:
    """Classes, or integer score bins for regression (STS-B's 0-5)."""
    return np.rint(labels).astype(np.int64) if spec.is_regression else labels


def check_dev(labels: np.ndarray, spec: TaskSpec, where: str) -> None:
    """DataError unless every class has a dev row for the validation half and one for the test half."""
    if spec.is_regression:
        if len(labels) < 2:
            raise DataError(f"{where}: {len(labels)} dev row(s); the validation and the test half need one each")
        return
    counts = np.bincount(labels, minlength=spec.num_labels)
    short = [f"{spec.labels[c]!r} has {n}" for c, n in enumerate(counts) if n < 2]
    if short:
        raise DataError(f"{where}: too few dev rows to give every class a validation and a test row: "
                        f"{', '.join(short)}")


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


def subsample(labels: np.ndarray, spec: TaskSpec, size: int | str, seed: int) -> np.ndarray:
    """Indices of a training subset of `size` rows (or all, 'full'), class-balanced: `size // k`
    rows of each of the k classes, one more for the first `size % k`."""
    n = len(labels)
    if size == "full":
        return np.arange(n)
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


# ---------------------------------------------------------------- batching

class Split(torch.utils.data.Dataset):
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


def epoch_generator(seed: int | None, epoch: int) -> torch.Generator | None:
    """A generator seeded with (`seed`, `epoch`): the same draws in every process of a run on several
    devices; None, torch's global generator, when `seed` is None (one process)."""
    if seed is None:
        return None
    # mixed, not added: seed 1's first epoch is not seed 0's second
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


class SeededBatches(torch.utils.data.Sampler):
    """Shuffled batches drawn from `epoch_generator(seed, epoch)` (Lightning calls `set_epoch`): the
    same batches in every process of a run on several devices (stabilize.distributed)."""

    def __init__(self, n: int, batch_size: int, seed: int | None = None):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(self.n, generator=epoch_generator(self.seed, self.epoch)).tolist()
        return (perm[i:i + self.batch_size] for i in range(0, self.n, self.batch_size))


class EpochOrder(torch.utils.data.BatchSampler):
    """A BatchSampler whose batches are drawn whole as each epoch starts and kept in `order`: a run
    stopped mid-epoch (stabilize.preempt) resumes with the rest of that epoch. A BatchSampler's
    signature, so that Lightning can put a DistributedSampler in it."""

    def __init__(self, sampler, batch_size: int, drop_last: bool = False):
        super().__init__(sampler, batch_size, drop_last)
        self.order, self._rest = [], None

    def draw(self) -> list[list[int]]:
        """The batches of a new epoch."""
        return list(super().__iter__())

    def resume(self, order: list, start: int) -> None:
        """The next pass yields `order` from batch `start` on, with the random state as it is now: what the
        DataLoader draws when its iterator starts is taken back (the epoch's shuffle was drawn before)."""
        self._rest = (order, start, torch.get_rng_state())

    def __iter__(self):
        if self._rest is None:
            self.order, start = self.draw(), 0  # the shuffle drawn where a lazy pass draws it: as it starts
        else:
            (self.order, start, rng), self._rest = self._rest, None
            torch.set_rng_state(rng)
        yield from self.order[start:]


class GroupedByLengthSampler(EpochOrder):
    """Batches of similar length drawn in shuffled mega-batches (`mega` batches each).

    Every row appears once per epoch; the order of batches stays random.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, mega: int = 50, seed: int | None = None):
        super().__init__(range(len(lengths)), batch_size)  # the rows; `draw` orders them itself
        self.lengths, self.mega, self.seed, self.epoch = lengths, mega, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draw(self) -> list[list[int]]:
        generator = epoch_generator(self.seed, self.epoch)
        perm = torch.randperm(len(self.lengths), generator=generator)
        chunk = self.batch_size * self.mega
        batches = []
        for start in range(0, len(perm), chunk):
            part = perm[start:start + chunk]
            part = part[torch.argsort(self.lengths[part], descending=True, stable=True)]
            batches.extend(part[i:i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size))
        return [batches[b] for b in torch.randperm(len(batches), generator=generator).tolist()]


class Shard(torch.utils.data.Sampler):
    """Rows `rank`, `rank + world`, ... of every batch of `sampler`, which draws alike in every
    process (named `sampler`: Lightning calls its `set_epoch`). A batch with fewer rows than
    processes gives the ranks past its end its first row."""

    def __init__(self, sampler: SeededBatches, rank: int, world: int):
        self.sampler, self.rank, self.world = sampler, rank, world

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            yield batch[self.rank::self.world] or batch[:1]


class TaskDataModule(pl.LightningDataModule):
    """Train / validation / test splits of one task, tokenized with the model's tokenizer."""

    def __init__(self, spec: TaskSpec, tokenizer, dir: str | None = None, source: str = "files",
                 train_size: int | str = "full", seed: int = 0, split_seed: int = 42, max_length: int = 128,
                 batch_size: int = 32, eval_batch_size: int = 32, group_by_length: bool = False,
                 cache_dir: str | None = None, cache: TokenCache = TOKEN_CACHE, shuffle_seed: int = 0):
        super().__init__()
        self.spec, self.tokenizer, self.dir, self.source = spec, tokenizer, data_dir(dir), source
        self.train_size, self.seed, self.split_seed = train_size, seed, split_seed
        self.max_length, self.batch_size, self.eval_batch_size = max_length, batch_size, eval_batch_size
        self.group_by_length, self.shuffle_seed = group_by_length, shuffle_seed  # the latter: several processes
        self.cache, self.cache_dir = cache, Path(cache_dir).expanduser() if cache_dir else None
        self.splits: dict[str, Split] = {}
        self._resume: tuple[list, int] | None = None

    @classmethod
    def from_config(cls, cfg, spec: TaskSpec, tokenizer, cache: TokenCache = TOKEN_CACHE,
                    seed: int = 0) -> "TaskDataModule":
        """The data module of a composed config's `data` and `optim.batch_size`; `seed`, the run's."""
        d = cfg.data
        return cls(spec, tokenizer, dir=d.dir, source=d.source, train_size=d.train_size, seed=d.seed,
                   split_seed=d.split_seed, max_length=d.max_length, batch_size=cfg.optim.batch_size,
                   eval_batch_size=d.eval_batch_size, group_by_length=d.group_by_length,
                   cache_dir=d.cache_dir, cache=cache, shuffle_seed=seed)

    def _read(self, split: str) -> tuple[readers.Rows, str]:
        """The rows of `split` (train | dev) and where they come from, for messages."""
        if self.source == "hub":
            return readers.read_hub(self.spec, split), readers.hub_split_name(self.spec.hub, split)
        path = self.dir / self.spec.files[split]
        return readers.read_file(path, self.spec), str(path)

    def setup(self, stage: str | None = None):
        if self.splits:
            return
        (train, _), (dev, dev_where) = self._read("train"), self._read("dev")
        check_dev(dev.labels, self.spec, dev_where)
        train_enc, dev_enc = (self.cache.encode(self.tokenizer, rows.text_a, rows.text_b, self.max_length,
                                                self.cache_dir) for rows in (train, dev))
        val_idx, test_idx = split_dev(dev.labels, self.spec, self.split_seed)
        self.splits = {
            "train": Split(train_enc, train.labels, subsample(train.labels, self.spec, self.train_size, self.seed)),
            "val": Split(dev_enc, dev.labels, val_idx),
            "test": Split(dev_enc, dev.labels, test_idx),
        }

    def resume_epoch(self, order: list, start: int) -> None:
        """The next training loader starts with `order[start:]`, the rest of an interrupted epoch."""
        self._resume = (order, start)

    def train_dataloader(self):
        """Shuffled batches, DataLoader(shuffle=True)'s drawn the same way, that remember each epoch's
        order (stabilize.preempt); on several devices each process's share of batches drawn alike."""
        split, collate = self.splits["train"], Collate(self.tokenizer.pad_token_id)
        if distributed.world() > 1:
            batches = (GroupedByLengthSampler(split.lengths, self.batch_size, seed=self.shuffle_seed)
                       if self.group_by_length else SeededBatches(len(split), self.batch_size, self.shuffle_seed))
            shard = Shard(batches, distributed.rank(), distributed.world())
            return torch.utils.data.DataLoader(split, batch_sampler=shard, collate_fn=collate)
        sampler = GroupedByLengthSampler(split.lengths, self.batch_size) if self.group_by_length else \
            EpochOrder(torch.utils.data.RandomSampler(split), self.batch_size)
        if self._resume is not None:
            sampler.resume(*self._resume)
            self._resume = None
        return torch.utils.data.DataLoader(split, batch_sampler=sampler, collate_fn=collate)

    def eval_dataloader(self, name: str):
        """Validation or test rows in length-sorted batches: fewer padded tokens, same scores.
        On several processes, rank k's share: batches k, k + world, ..."""
        split = self.splits[name]
        order = torch.argsort(split.lengths, descending=True, stable=True).tolist()
        batches = [order[i:i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)]
        batches = batches[distributed.rank()::distributed.world()]
        # its own generator: evaluating must not draw from the global RNG, or the number of
        # evaluations would change the training randomness of a seed
        return torch.utils.data.DataLoader(split, batch_sampler=batches, generator=torch.Generator(),
                                           collate_fn=Collate(self.tokenizer.pad_token_id))

