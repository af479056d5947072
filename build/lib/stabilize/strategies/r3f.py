"""R3F (Aghajanyan et al., ICLR 2021, section 3; fairseq `examples/rxf`, criterion
`sentence_prediction_r3f`).

loss + λ · (KL(f(x + z) ‖ f(x)) + KL(f(x) ‖ f(x + z))), averaged over the batch, with z drawn
from U(−ε, ε) (`noise: uniform`, fairseq's default) or N(0, ε²) (`normal`) and added to the
token embeddings, detached as fairseq does (the noised pass sends no gradient to the
embedding table); ε = 1e-5, λ = 1 (0.7 in their RTE example). One extra forward and backward
per step. R4F's spectral norm on the head is not included. The KL is between class
distributions, so regression tasks (STS-B) are refused: fairseq's term is zero for them.
"""
import torch
import torch.nn.functional as F

from stabilize import models
from stabilize.strategies.base import Strategy

NOISES = ("uniform", "normal")


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    a, b = F.log_softmax(logits_a.float(), -1), F.log_softmax(logits_b.float(), -1)
    return (F.kl_div(a, b, reduction="batchmean", log_target=True)
            + F.kl_div(b, a, reduction="batchmean", log_target=True))


class R3F(Strategy):
    def __init__(self, eps: float = 1e-5, r3f_lambda: float = 1.0, noise: str = "uniform"):
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        if not eps > 0 or not r3f_lambda >= 0:
            raise ValueError(f"eps must be > 0 and r3f_lambda >= 0, got {eps!r} and {r3f_lambda!r}")
        self.eps, self.r3f_lambda, self.noise = eps, r3f_lambda, noise

    def setup(self, module):
        if module.spec.is_regression:
            raise self.error(None, f"R3F compares class distributions; {module.spec.name} is a regression task")

    def loss(self, module, batch, outputs):
        model = module.model
        tokens = model.get_input_embeddings()(batch["input_ids"]).detach()
        if self.noise == "uniform":
            noise = torch.empty_like(tokens).uniform_(-self.eps, self.eps)
        else:
            noise = torch.randn_like(tokens) * self.eps
        segments = {"token_type_ids": batch["token_type_ids"]} if models.takes_token_types(model) else {}
        noised = model(inputs_embeds=tokens + noise, attention_mask=batch["attention_mask"], **segments).logits
        return self.r3f_lambda * symmetric_kl(noised, outputs.logits)
