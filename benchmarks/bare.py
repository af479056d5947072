"""The baseline: a hand-written PyTorch fine-tuning loop, what study A's released code does.

Same model loader, same data module (so the same training batches for the same seed: the
seeding and every draw from the global random generator happen in the same order as in
`stabilize.train.train`), same forward / loss / global-norm clipping / AdamW / linear warmup
schedule. What it does the way the authors' code does, and `stabilize` does not:

- evaluation in random-order batches of 64 with dynamic padding under `torch.no_grad()`
  (the order drawn from its own generator, so the training random stream is untouched);
- the best state kept as a deep copy of the state dict;
- the running loss read back with `.item()` after every step (one host sync per step);
- tokenization from scratch in every run (no token cache).

    python -m benchmarks.bare --settings settings.json --out RUN_DIR   # writes RUN_DIR/results.json
"""
import argparse
import contextlib
import copy
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import get_linear_schedule_with_warmup

from benchmarks.batches import combine, digest
from stabilize import metrics, models, results, tasks
from stabilize.data import Collate, TaskDataModule
from stabilize.layers import NO_DECAY
from stabilize.evaluation import eval_steps

EVAL_BATCH_SIZE = 64  # the authors' evaluation batch size


def settings(cfg) -> dict:
    """What the bare loop needs from a composed `train.yaml` config (plain JSON)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    accel = str(c["trainer"].get("accelerator", "cpu"))
    cuda = accel in ("gpu", "cuda") or (accel == "auto" and torch.cuda.is_available())
    return {"task": c["task"], "model": c["model"], "seed": c["seed"], "threads": c.get("threads"),
            "data": {k: c["data"][k] for k in ("dir", "source", "train_size", "seed", "split_seed", "max_length")},
            "optim": c["optim"], "eval_times": c["eval"]["times"], "device": "cuda" if cuda else "cpu",
            "bf16": "bf16" in str(c["trainer"].get("precision", ""))}


def seed_all(seed: int) -> None:
    """What `pl.seed_everything` does for these generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(s: dict, cache_dir=None):
    """Seed, model, data: the same calls in the same order as `stabilize.train.train`."""
    spec = tasks.from_config(s["task"])
    seed_all(s["seed"])
    if s.get("threads"):
        torch.set_num_threads(s["threads"])
    model, tokenizer = models.load(OmegaConf.create(s["model"]), spec.num_labels)
    d, o = s["data"], s["optim"]
    dm = TaskDataModule(spec, tokenizer, dir=d["dir"], source=d["source"], train_size=d["train_size"],
                        seed=d["seed"], split_seed=d["split_seed"], max_length=d["max_length"],
                        batch_size=o["batch_size"], cache_dir=cache_dir)
    dm.setup()
    return spec, model, tokenizer, dm


class Stepper:
    """One training step: forward, loss, backward, clip, AdamW, scheduler, zero_grad."""

    def __init__(self, model, spec, optim: dict, total_steps: int, device="cpu", bf16=False):
        self.model, self.spec, self.device = model, spec, torch.device(device)
        model.to(self.device).train()
        decay = [p for n, p in model.named_parameters() if not n.endswith(NO_DECAY)]
        no_decay = [p for n, p in model.named_parameters() if n.endswith(NO_DECAY)]
        groups = [g for g in ({"params": decay, "weight_decay": optim["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        self.params = [p for g in groups for p in g["params"]]  # the order Lightning clips in
        self.optimizer = torch.optim.AdamW(groups, lr=optim["lr"], betas=tuple(optim["betas"]), eps=optim["eps"],
                                           weight_decay=optim["weight_decay"])
        warmup = math.ceil(optim["warmup_ratio"] * total_steps)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, warmup, total_steps)
        self.clip = optim.get("clip_norm")
        self.bf16 = bf16

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loss(self, logits, labels):
        if self.spec.is_regression:
            return F.mse_loss(logits.squeeze(-1).float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def __call__(self, batch: dict) -> torch.Tensor:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                attention_mask=batch["attention_mask"]).logits
        loss = self.loss(logits, batch["labels"])
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    @torch.no_grad()
    def predict(self, split, pad_id: int, generator: torch.Generator):
        """The authors' evaluation: random-order batches of 64, dynamic padding, no_grad."""
        self.model.eval()
        loader = torch.utils.data.DataLoader(split, batch_size=EVAL_BATCH_SIZE, shuffle=True, generator=generator,
                                             collate_fn=Collate(pad_id))
        preds, labels = [], []
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self.autocast():
                logits = self.model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                    attention_mask=batch["attention_mask"]).logits.float()
            preds.append(logits.squeeze(-1) if self.spec.is_regression else logits.argmax(-1))
            labels.append(batch["labels"])
        self.model.train()
        return torch.cat(preds).cpu(), torch.cat(labels).cpu()


def train(s: dict, gate=None, evaluate: bool = True, sync_loss: bool = True, cache_dir=None) -> dict:
    """One run. `gate(batch)` is called before every step (the benchmark's turnstile)."""
    start = time.time()
    spec, model, tokenizer, dm = setup(s, cache_dir)
    o = s["optim"]
    steps_per_epoch = math.ceil(len(dm.splits["train"]) / o["batch_size"])
    total = o["max_steps"] or steps_per_epoch * o["max_epochs"]
    step_fn = Stepper(model, spec, o, total, s.get("device", "cpu"), s.get("bf16", False))
    eval_at = set(eval_steps(total, s["eval_times"])) if evaluate else set()
    eval_order = torch.Generator().manual_seed(s["seed"])
    # torch's DataLoader draws a base seed from the global generator each time it is iterated,
    # unless it has a generator of its own: stabilize's evaluation loader (no generator) thus
    # takes one draw per evaluation pass. Take the same draw, so training stays identical.
    mirror_draw = dm.eval_dataloader("val").generator is None
    pad_id = tokenizer.pad_token_id
    step, best, history, digests, first_step, running_loss = 0, None, [], [], None, 0.0
    loader = dm.train_dataloader()
    while step < total:
        for batch in loader:
            if gate is not None:
                gate(batch)
            if first_step is None:
                first_step = time.time()
            digests.append(digest(batch))
            loss = step_fn(batch)
            step += 1
            if sync_loss:
                running_loss += loss.item()
            if step in eval_at:
                if mirror_draw:
                    torch.empty((), dtype=torch.int64).random_()
                preds, labels = step_fn.predict(dm.splits["val"], pad_id, eval_order)
                select = metrics.score(spec.select_metric, preds, labels)
                val = metrics.score(spec.metric, preds, labels)
                history.append({"step": step, "val": val, spec.select_metric: select})
                if best is None or select > best["select"]:
                    best = {"step": step, "select": select, "val": val, "state": copy.deepcopy(model.state_dict())}
            if step >= total:
                break
    record = {"status": "ok", "task": spec.name, "seed": s["seed"], "metric": spec.metric, "steps": step,
              "history": history, "first_step": first_step, "batches": combine(digests),
              "mean_loss": running_loss / max(step, 1) if sync_loss else None}
    if evaluate:
        last_preds, last_labels = step_fn.predict(dm.splits["test"], pad_id, eval_order)
        record["test_last"] = metrics.score(spec.metric, last_preds, last_labels)
        if best is not None:
            model.load_state_dict(best["state"])
        preds, labels = step_fn.predict(dm.splits["test"], pad_id, eval_order)  # another order: its own labels
        record.update(test=metrics.score(spec.metric, preds, labels), val=best["val"] if best else None,
                      best_step=best["step"] if best else None)
    record["seconds"] = round(time.time() - start, 2)
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--settings", required=True, help="JSON file written by benchmarks.bare.settings")
    p.add_argument("--out", required=True, help="run folder; results.json is written there")
    args = p.parse_args()
    s = json.loads(Path(args.settings).read_text())
    record = train(s)
    results.write_json_atomic(Path(args.out) / results.RESULTS, record)
    print(f"[bare] val={record.get('val')} test={record.get('test')} test_last={record.get('test_last')} "
          f"({record['seconds']}s)")


if __name__ == "__main__":
    main()
