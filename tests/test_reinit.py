"""ReInit (study A, section 5) re-draws exactly the chosen tensors, chosen one way of three:
the top `num_layers` blocks, a list of `blocks`, or a `pattern` on parameter names."""
import pytest
import torch
from omegaconf import OmegaConf

from stabilize import layers
from stabilize.errors import ConfigError
from stabilize.strategies import ReInit, build_method
from tests.test_families import L, expected_layer, family_model, fill, module_with


def redrawn(family: str, strategy: ReInit, **config) -> set[str]:
    model = family_model(family, **config)
    before = fill(model)
    module_with(strategy, model=model)
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


def in_layers(family: str, *wanted: str) -> set[str]:
    return {n for n, _ in family_model(family).named_parameters() if expected_layer(family, n) in wanted}


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_top_blocks_and_pooler(num_layers):
    assert redrawn("bert", ReInit(num_layers=num_layers)) == \
        in_layers("bert", "pooler", *[f"layer.{i}" for i in range(L - num_layers, L)])


@pytest.mark.parametrize("family", ["bert", "deberta-v2", "modernbert"])
def test_listed_blocks_and_pooler(family):
    assert redrawn(family, ReInit(blocks=[0, 2])) == in_layers(family, "layer.0", "layer.2", "pooler")
    assert redrawn(family, ReInit(blocks=[1], pooler=False)) == in_layers(family, "layer.1")


def test_pattern_on_parameter_names():
    query = {n for n in in_layers("bert", *[f"layer.{i}" for i in range(L)]) if ".query." in n}
    assert len(query) == 2 * L
    assert redrawn("bert", ReInit(pattern=r"attention\.self\.query", pooler=False)) == query
    assert redrawn("bert", ReInit(pattern=r"attention\.self\.query")) == query | in_layers("bert", "pooler")
    assert redrawn("bert", ReInit(pattern=r"layer\.1\.")) == in_layers("bert", "layer.1", "pooler")


def test_draws_from_the_paper_distribution():
    model = family_model("bert", hidden_size=128)
    fill(model)
    module_with(ReInit(num_layers=1), model=model)
    block = layers.blocks(model)[L - 1]
    weights = torch.cat([m.weight.flatten() for m in block.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002
    for m in block.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.all(m.bias == 0)
        if isinstance(m, torch.nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert torch.all(layers.blocks(model)[0].attention.self.query.weight == 0.5)  # below: untouched
    assert model.bert.pooler.dense.weight.std().item() == pytest.approx(0.02, rel=0.1)


def build(**fields):
    node = {"_target_": "stabilize.strategies.ReInit", "num_layers": None, "blocks": None, "pattern": None, **fields}
    return build_method(OmegaConf.create({"strategies": {"reinit": node}}))


@pytest.mark.parametrize("fields,message", [
    ({"num_layers": 2, "blocks": [4, 5]}, "num_layers and blocks are set together"),
    ({"blocks": [1], "pattern": "query"}, "blocks and pattern are set together"),
    ({"blocks": [1, "x"]}, "blocks must be a list of block indices"),
    ({"pattern": "query("}, "pattern: 'query\\(' is not a regular expression"),
    ({"num_layers": -1}, "num_layers must be a non-negative integer"),
])
def test_bad_or_conflicting_choices_name_the_key(fields, message):
    with pytest.raises(ConfigError, match=rf"^method\.strategies\.reinit: {message}") as e:
        build(**fields)
    assert "\n" not in str(e.value)


def test_one_way_from_the_config_files(cfg_factory):
    assert build()[0].num_layers == 1  # none chosen: the top block
    (strategy,) = build_method(cfg_factory("method=reinit", "method.strategies.reinit.num_layers=null",
                                           "method.strategies.reinit.blocks=[0,1]").method)
    assert strategy.blocks == [0, 1] and strategy.num_layers is None
    with pytest.raises(ConfigError, match=r"num_layers and pattern are set together"):
        build_method(cfg_factory("method=reinit", "method.strategies.reinit.pattern=query").method)


@pytest.mark.parametrize("strategy,key", [(ReInit(num_layers=L + 1), "num_layers"), (ReInit(blocks=[0, L]), "blocks"),
                                          (ReInit(pattern="no_such_tensor"), "pattern")])
def test_choices_the_model_does_not_have_name_the_key(strategy, key):
    model = family_model("roberta")
    before = fill(model)
    with pytest.raises(ConfigError, match=rf"^method\.strategies\.strategy\.{key}: "):
        module_with(strategy, model=model)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_a_tensor_without_a_law_is_refused_before_any_draw():
    model = family_model("bert")
    model.bert.encoder.layer[L - 1].gate = torch.nn.PReLU()  # a parameter the paper gives no law for
    before = fill(model)
    with pytest.raises(ConfigError, match=rf"^method\.strategies\.strategy\.num_layers: cannot re-draw "
                                          rf"\['bert\.encoder\.layer\.{L - 1}\.gate\.weight'\]"):
        module_with(ReInit(num_layers=1), model=model)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
