"""Study A's intermediate-task chain: what the second run loads, and the two commands of
experiments/revisit_few_sample/README.md run as written (tiny model, generated data)."""
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig

from stabilize import results
from stabilize.errors import ConfigError
from stabilize.strategies import Intermediate
from tests.conftest import ROOT, TINY
from tests.helpers import run_cli
from tests.test_readers import hub_cache, mnli_like  # noqa: F401 (hub_cache: a fixture)

README = ROOT / "experiments" / "revisit_few_sample" / "README.md"


def _model(num_labels: int, seed: int, hidden: int = 32):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, num_labels=num_labels)
    return AutoModelForSequenceClassification.from_config(config)


def test_the_encoder_is_loaded_and_the_head_stays_new(tmp_path):
    first, second = _model(2, seed=0), _model(2, seed=1)  # the same classes: the head would fit
    torch.nn.init.ones_(first.classifier.bias)  # a trained head: unlike a new one in every tensor
    torch.save(first.state_dict(), tmp_path / results.MODEL)
    own_head = {k: v.clone() for k, v in second.state_dict().items() if not k.startswith("bert.")}
    strategy = Intermediate(str(tmp_path))
    strategy.setup(SimpleNamespace(model=second))
    saved, now = first.state_dict(), second.state_dict()
    encoder = [k for k in now if k.startswith("bert.")]
    assert encoder and all(torch.equal(now[k], saved[k]) for k in encoder)
    assert own_head and all(torch.equal(now[k], v) and not torch.equal(v, saved[k]) for k, v in own_head.items())
    assert strategy.results(None) == {"init_from": str(tmp_path), "init_tensors_loaded": len(encoder)}


def test_another_models_encoder_or_no_saved_model_is_refused(tmp_path):
    strategy = Intermediate(str(tmp_path))
    strategy.key = "intermediate"
    key = "^method.strategies.intermediate.init_from: "
    with pytest.raises(ConfigError, match=key + "no model.pt in .*save_model=true"):
        strategy.setup(SimpleNamespace(model=_model(2, seed=0)))
    torch.save(_model(3, seed=0, hidden=16).state_dict(), tmp_path / results.MODEL)
    with pytest.raises(ConfigError, match=key + ".* another model's encoder"):
        strategy.setup(SimpleNamespace(model=_model(2, seed=0)))


def readme_chain() -> list[list[str]]:
    """The arguments of each `stabilize-train` line of the README's block with method=intermediate."""
    block = next(b for b in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S) if "method=intermediate" in b)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("stabilize-train ")]


def _rte_like(root: Path) -> Path:
    """data.dir with RTE/train.tsv and RTE/dev.tsv of generated pairs."""
    (root / "RTE").mkdir(parents=True)
    for split, n in (("train", 20), ("dev", 6)):
        rows = [f"{i}\tA man sleeps {i}.\tSomeone {'sleeps' if c == 'entailment' else 'runs'}.\t{c}\n"
                for i in range(n) for c in ("entailment", "not_entailment")]
        (root / "RTE" / f"{split}.tsv").write_text("index\tsentence1\tsentence2\tlabel\n" + "".join(rows))
    return root


def test_the_readme_chain_runs_as_written(tmp_path, monkeypatch):
    first, second = readme_chain()
    assert "save_model=true" in first and "task=mnli" in first and "task=rte" in second
    stage_dir = next(a.split("=", 1)[1] for a in first if a.startswith("hydra.run.dir="))
    assert f"method.strategies.intermediate.init_from={stage_dir}" in second
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STABILIZE_CACHE", str(tmp_path / "cache"))

    # the first stage: MNLI's layout (3 classes, validation_matched) in a local folder instead of the hub
    assert run_cli(monkeypatch, *TINY, *first, f"task.hub.path={mnli_like(tmp_path / 'hub', 12)}") == 0
    r1 = json.loads((Path(stage_dir) / results.RESULTS).read_text())
    assert r1["status"] in ("ok", "failed") and r1["task"] == "mnli" and r1["train_size"] == "full"
    saved = torch.load(Path(stage_dir) / results.MODEL, weights_only=True)
    assert saved["classifier.weight"].shape[0] == 3

    assert run_cli(monkeypatch, *TINY, *second, f"data.dir={_rte_like(tmp_path / 'glue')}") == 0
    runs = [p.parent for p in Path("outputs").rglob(results.RESULTS) if p.parent != Path(stage_dir)]
    assert len(runs) == 1 and runs[0].parent == Path("outputs/default") and "init_from" not in runs[0].name
    r2 = json.loads((runs[0] / results.RESULTS).read_text())
    assert r2["status"] in ("ok", "failed"), r2["error"]
    assert r2["task"] == "rte" and r2["method"] == "intermediate" and r2["init_from"] == stage_dir
    assert r2["init_tensors_loaded"] == sum(k.startswith("bert.") for k in saved)
