"""Per-layer weight change (study A, section 6): L2 distance between each layer's weights at
the end of fine-tuning and at its start (the pre-trained weights, or the re-drawn ones for
re-initialized layers), written as `weight_change.json` next to `results.json`."""
import torch

from stabilize import layers


def snapshot(model) -> dict[str, torch.Tensor]:
    """The start weights, on the CPU; refuses a model without one block per layer (ALBERT)."""
    layers.check(model, "analysis.weight_change")
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()}


@torch.no_grad()
def weight_change(model, start: dict[str, torch.Tensor]) -> dict:
    """{"layers": [bottom .. top], "l2": [distance of each layer's concatenated tensors]}."""
    sq = dict.fromkeys(layers.ordered_layers(model), 0.0)
    for name, p in model.named_parameters():
        sq[layers.layer_of(model, name)] += float((p.detach().cpu().float() - start[name].float()).pow(2).sum())
    return {"layers": list(sq), "l2": [v ** 0.5 for v in sq.values()]}
