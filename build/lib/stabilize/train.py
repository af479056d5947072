"""One fine-tuning run, in three steps read in order: set up, fit, score.

`train(cfg)` wraps them: it skips a run that finished earlier with the same config, records
every outcome in `results.json` (an exception is status "error" with its traceback in
`error.txt`; a loss that turns NaN is a failed, diverged run), and raises only on Ctrl-C or a
stop signal (after a checkpoint: stabilize.preempt), so one bad run never stops a sweep. Objects
that exist only at run time (extra Lightning callbacks, the module class) are arguments: no
caller patches this module. `main` is the `stabilize-train` command around it. A run on several
devices (stabilize.distributed) is this process, rank 0, and the processes it starts.
"""
import gc
import math
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import DDPStrategy

from stabilize import analysis, config, console, distributed, gpus, models, preempt, results, resume, tasks
from stabilize.data import TaskDataModule
from stabilize.module import Diverged, FineTuner
from stabilize.strategies.base import Strategy, method_name

CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # shipped inside the package


@dataclass
class Run:
    """What `set_up` builds and `fit` and `score` use."""
    cfg: DictConfig
    strategies: list[Strategy]
    datamodule: TaskDataModule
    module: FineTuner
    trainer: pl.Trainer
    steps_per_epoch: int
    start_weights: dict | None
    checkpoint: Path | None  # where an interrupted run resumes (stabilize.resume), else None


# ------------------------------------------------------------------ 1. set up
def set_up(cfg: DictConfig, strategies: list[Strategy], seed: int, callbacks=(), module_class=FineTuner,
           devices=None) -> Run:
    """Seed, model, data, the module with its strategies, and the Trainer (on `devices`, default
    `trainer.devices`)."""
    pl.seed_everything(seed, workers=True, verbose=False)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    spec = tasks.from_config(cfg.task)
    model, tokenizer = models.load(cfg.model, spec.num_labels)
    datamodule = TaskDataModule.from_config(cfg, spec, tokenizer, seed=seed)
    datamodule.setup()
    train_rows = datamodule.splits["train"]
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    steps_per_epoch = math.ceil(math.ceil(len(train_rows) / cfg.optim.batch_size) / accumulate)
    module = module_class(model, spec, strategies, cfg.optim, cfg.eval.times, cfg.eval.per_epoch,
                          cfg.eval.patience)  # runs the strategies' setup
    total_steps = module.plan(steps_per_epoch, cfg.optim.max_steps or steps_per_epoch * cfg.optim.max_epochs)
    processes = distributed.processes(cfg.trainer)
    print(f"[stabilize] {spec.name}: {len(train_rows)} train / {len(datamodule.splits['val'])} val / "
          f"{len(datamodule.splits['test'])} test rows, {int(train_rows.lengths.sum())} train tokens per epoch; "
          f"{total_steps} steps ({total_steps / steps_per_epoch:.2f} epochs)"
          + (f"; {processes} processes of {cfg.optim.batch_size // processes} rows a batch" if processes > 1 else ""))

    loggers = [instantiate(node) for node in (cfg.get("logger") or {}).values() if node is not None]
    own = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
    run_dir, resolved = Path(cfg.paths.output_dir), results.resolved_config(cfg)
    if cfg.get("checkpoint_minutes") is not None:
        own.append(resume.Checkpointer(run_dir, resolved, cfg.checkpoint_minutes))
    trainer_args = OmegaConf.to_container(cfg.trainer, resolve=True)
    if devices is not None:
        trainer_args["devices"] = devices
    if processes > 1:  # the encoders' buffers are constants (Mixout's: its pre-trained weights): none broadcast
        trainer_args["strategy"] = DDPStrategy(broadcast_buffers=False)
    trainer = pl.Trainer(**trainer_args, max_steps=total_steps,
                         max_epochs=math.ceil(total_steps / steps_per_epoch),  # what the progress bar shows
                         logger=loggers or False, callbacks=[*own, *callbacks], enable_checkpointing=False,
                         num_sanity_val_steps=0, default_root_dir=cfg.paths.output_dir,
                         use_distributed_sampler=False)  # stabilize.data shards the batches itself
    start_weights = analysis.snapshot(model) if cfg.analysis.weight_change and distributed.is_main() else None
    checkpoint = resume.checkpoint(run_dir, resolved)
    if checkpoint is not None:
        print(f"[stabilize] resume from {checkpoint}")
    return Run(cfg, strategies, datamodule, module, trainer, steps_per_epoch, start_weights, checkpoint)


# ------------------------------------------------------------------ 2. fit
def fit(run: Run) -> None:
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=run.checkpoint, weights_only=True)


# ------------------------------------------------------------------ 3. score
def score(run: Run) -> dict:
    """Test scores of the kept state, the weight change, the strategies' own entries."""
    run_dir, main = Path(run.cfg.paths.output_dir), distributed.is_main()
    if run.start_weights is not None and main:
        results.write_json_atomic(run_dir / results.WEIGHT_CHANGE,
                                  analysis.weight_change(run.module.model, run.start_weights))
    scores = run.module.final_scores()  # loads the best state
    if run.cfg.save_model and main:  # opt-in: the best state, for intermediate-task chains
        torch.save(run.module.model.state_dict(), run_dir / results.MODEL)
    for s in run.strategies:
        scores.update(s.results(run.module))
    return scores


# ------------------------------------------------------------------ the wrapper
def train(cfg: DictConfig, callbacks=(), module_class=FineTuner) -> dict:
    """One run recorded in `results.json`; returns the record. `callbacks` are extra Lightning
    callbacks, `module_class` a FineTuner subclass (tests, benchmarks)."""
    run_dir, resolved = Path(cfg.paths.output_dir), results.resolved_config(cfg)
    earlier = results.finished_run(run_dir, resolved)
    if earlier is not None:
        print(f"[stabilize] skip {run_dir}: finished earlier with status {earlier['status']}")
        return earlier

    record = results.new_record(task=cfg.task.name, model=cfg.model.name, method=method_name(cfg.method),
                                seed=cfg.seed, train_size=cfg.data.train_size, config=resolved,
                                metric=cfg.task.get("metric"))
    start, run, stop = time.time(), None, preempt.Stop()
    # An earlier run of this process (a multirun) left its Trainer, module and callbacks in
    # reference cycles, which only the collector's rare full passes free: without this, each run
    # held the earlier runs' weights, optimizer states and best states (MiniLM: +623 MiB of peak
    # memory a run, benchmarks/RESULTS.md, item 6).
    gc.collect()
    try:
        with console.quiet(cfg.get("verbose", False)):
            strategies = config.validate(cfg)
            several = distributed.processes(cfg.trainer) > 1
            if module_class is not FineTuner and several:
                raise ValueError("module_class: the other processes of a run on several devices train FineTuner")
            if not several:  # a stop signal checkpoints one process; several end as Lightning ends them
                stop.listen(cfg.get("preempt_signals"))
            record["seed"] = seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
            with distributed.launch(cfg, resolved, seed), gpus.claim(cfg) as devices:  # claim: joblib on
                # several GPUs, a slot held to the end
                own = [] if several else [preempt.Preemption(stop, run_dir, resolved)]
                run = set_up(cfg, strategies, seed, [*callbacks, *own], module_class, devices)
                fit(run)
                record.update(score(run))
        record.update(results.verdict(record, cfg.task.get("fail_threshold")))
    except preempt.Preempted as e:  # checkpointed: a relaunch resumes it
        record.update(status=results.INTERRUPTED, reason=f"stopped by {e}")
    except Diverged as e:
        record.update(diverged=True, reason=f"diverged: {e}")
        record.update(results.verdict(record, cfg.task.get("fail_threshold")))
    except Exception as e:  # recorded, never raised: the next run of a sweep goes on
        record["error"] = f"{type(e).__name__}: {e}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / results.ERROR).write_text(traceback.format_exc())
    except BaseException as e:  # Ctrl-C or SIGTERM: recorded, then the sweep stops
        record["error"] = f"interrupted: {type(e).__name__}"
        raise
    finally:
        if run is not None:
            record.update(steps=run.trainer.global_step, epochs=run.trainer.global_step / run.steps_per_epoch,
                          history=run.module.history, stopped_early_at=run.module.stopped_early_at,
                          resumed_at=run.module.resumed_at or None)
        record["seconds"] = round(time.time() - start + (run.module.seconds_before if run else 0), 2)
        results.write_json_atomic(run_dir / results.RESULTS, record)
        if record["status"] in results.FINISHED:
            resume.clear(run_dir)
        stop.restore()
    print(summary_line(record, run_dir), flush=True)
    if record["status"] == results.ERRORED:
        print(f"[stabilize] error: {record['error']}", file=sys.stderr)
    if stop.signum is not None and record["status"] != results.INTERRUPTED:
        print(f"[stabilize] stopped by {preempt.Preempted(stop.signum)} after this run ended; for the rest, "
              f"{preempt.relaunch_command()}", flush=True)
    stop.pass_on()
    return record


def summary_line(r: dict, run_dir: Path) -> str:
    """The run's last line: its verdict, scores, and for a failed run what it was compared with."""
    fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    if r["status"] == results.INTERRUPTED:
        return (f"[stabilize] interrupted: {r['reason']}, checkpointed in {run_dir / results.CHECKPOINT}; "
                f"to resume, {preempt.relaunch_command()}")
    line = (f"[stabilize] {r['status']:6s} task={r['task']} method={r['method']} seed={r['seed']} "
            f"size={r['train_size']} val {r['metric']}={fmt(r['val'])} test {r['metric']}={fmt(r['test'])} "
            f"({r['seconds']:.0f}s) -> {run_dir}")
    return f"{line}\n[stabilize] failed: {r['reason']}" if r["status"] == results.FAILED else line


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    record = train(cfg)
    if record["status"] == results.ERRORED and HydraConfig.get().mode.name == "RUN":
        sys.exit(1)
    return record["val"]  # what a sweeper (Optuna) maximizes: never the test score


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config.register_resolvers()
    _hydra_main()


if __name__ == "__main__":
    main()
