"""One fine-tuning run: config -> data -> model + strategies -> Lightning fit -> results.json.

`train(cfg)` is a plain function (tests call it on a composed config); `main` is the
`stabilize-train` command around it. Any exception is recorded in `results.json` as
status "error" with its traceback in `error.txt`, so one bad run never stops a sweep.
"""
import json
import math
import os
import random
import sys
import time
import traceback
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stabilize import config as _config  # registers the resolvers used by conf/
from stabilize import analysis, models, results
from stabilize.data import GlueDataModule
from stabilize.module import Diverged, FineTuner
from stabilize.strategies.base import build_method, method_name
from stabilize.strategies.intermediate import MODEL_FILE
from stabilize.tasks import TASKS

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def train(cfg: DictConfig) -> dict:
    run_dir = Path(cfg.paths.output_dir)
    resolved = json.loads(json.dumps(OmegaConf.to_container(cfg, resolve=True), default=str))
    earlier = results.finished_run(run_dir, resolved)
    if earlier is not None:
        print(f"[stabilize] skip {run_dir}: finished earlier with status {earlier['status']}")
        return earlier

    record = {"status": "error", "error": None, "task": cfg.task.name, "model": cfg.model.name,
              "method": method_name(cfg.method), "seed": cfg.seed, "train_size": cfg.data.train_size,
              "metric": TASKS[cfg.task.name].metric if cfg.task.name in TASKS else None,
              "val": None, "test": None, "test_last": None, "majority": None, "history": [],
              "steps": 0, "epochs": 0, "seconds": None, "config": resolved, "versions": results.versions()}
    start = time.time()
    module = None
    try:
        # -------------------------------------------------------- config, seed
        _config.validate(cfg)
        seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
        record["seed"] = seed
        spec = TASKS[cfg.task.name]
        strategies = build_method(cfg.method)
        pl.seed_everything(seed, workers=True, verbose=False)
        if cfg.get("threads"):
            torch.set_num_threads(cfg.threads)

        # -------------------------------------------------------- model and data
        model, tokenizer = models.load(cfg.model, spec.num_labels)
        d = cfg.data
        datamodule = GlueDataModule(spec.name, tokenizer, dir=d.dir, source=d.source, train_size=d.train_size,
                                    seed=d.seed, split_seed=d.split_seed, max_length=d.max_length,
                                    batch_size=cfg.optim.batch_size, eval_batch_size=d.eval_batch_size,
                                    group_by_length=d.group_by_length, cache_dir=d.cache_dir)
        datamodule.setup()
        n_train = len(datamodule.splits["train"])
        accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
        steps_per_epoch = math.ceil(math.ceil(n_train / cfg.optim.batch_size) / accumulate)
        module = FineTuner(model, spec, strategies, cfg.optim, cfg.eval.times)  # strategies' setup
        total_steps = module.plan(steps_per_epoch, cfg.optim.max_steps or steps_per_epoch * cfg.optim.max_epochs)
        tokens = int(datamodule.splits["train"].lengths.sum())
        print(f"[stabilize] {spec.name}: {n_train} train / {len(datamodule.splits['val'])} val / "
              f"{len(datamodule.splits['test'])} test rows, {tokens} train tokens per epoch; "
              f"{total_steps} steps ({total_steps / steps_per_epoch:.2f} epochs)")

        # -------------------------------------------------------- fit
        start_weights = analysis.snapshot(model) if cfg.analysis.weight_change else None
        loggers = [instantiate(node) for node in (cfg.get("logger") or {}).values() if node is not None]
        callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
        trainer = pl.Trainer(**OmegaConf.to_container(cfg.trainer, resolve=True), max_steps=total_steps,
                             max_epochs=-1, logger=loggers or False, callbacks=callbacks, enable_checkpointing=False,
                             num_sanity_val_steps=0, default_root_dir=str(run_dir))
        trainer.fit(module, datamodule=datamodule)

        # -------------------------------------------------------- scores
        if start_weights is not None:
            results.write_json_atomic(run_dir / results.WEIGHT_CHANGE, analysis.weight_change(model, start_weights))
        scores = module.final_scores()
        if cfg.save_model:  # opt-in: the best state, for intermediate-task chains
            torch.save(module.model.state_dict(), run_dir / MODEL_FILE)
        degenerate = scores.pop("degenerate")
        record.update(scores)
        record["status"] = "failed" if degenerate else "ok"
        if degenerate:
            record["reason"] = "no better than the majority-class predictor on the test half"
        threshold = cfg.task.get("fail_threshold")
        record["failed_b"] = None if threshold is None else bool(scores["test"] <= threshold)
        for s in strategies:
            record.update(s.results(module))
    except Diverged as e:
        record.update(status="failed", reason=f"diverged: {e}")
    except Exception as e:  # recorded, never raised: the next run of a sweep goes on
        record["error"] = f"{type(e).__name__}: {e}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
    except BaseException as e:  # Ctrl-C or SIGTERM: recorded, then the sweep stops
        record["error"] = f"interrupted: {type(e).__name__}"
        raise
    finally:
        if module is not None and module._trainer is not None:
            record["steps"] = module.global_step
            record["epochs"] = module.global_step / steps_per_epoch
            if record["status"] == "failed" and module.history:
                record["history"] = module.history
        record["seconds"] = round(time.time() - start, 2)
        results.write_json_atomic(run_dir / results.RESULTS, record)
    _print_summary(record, run_dir)
    return record


def _print_summary(r: dict, run_dir: Path) -> None:
    score = "-" if r["test"] is None else f"{r['test']:.4f}"
    val = "-" if r["val"] is None else f"{r['val']:.4f}"
    print(f"[stabilize] {r['status']:6s} task={r['task']} method={r['method']} seed={r['seed']} "
          f"size={r['train_size']} val {r['metric']}={val} test {r['metric']}={score} "
          f"({r['seconds']:.0f}s) -> {run_dir}")
    if r["status"] == "error":
        print(f"[stabilize] error: {r['error']}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    record = train(cfg)
    if record["status"] == "error" and HydraConfig.get().mode.name == "RUN":
        sys.exit(1)
    return record["val"]  # what a sweeper (Optuna) maximizes: never the test score


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _hydra_main()


if __name__ == "__main__":
    main()
