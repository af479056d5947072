"""How big each item is: the full sizes, and `--quick`'s, which keep every code path and shrink
steps, repeats, batches and sequence length."""
import copy

FULL = {
    # group: item 4's variants per session, each session with its own `standard` (memory: a
    # participant at these sizes holds 2.5 to 4 GiB)
    "steps": {"train_size": 1000, "batch_size": 32, "max_length": 128, "warmup": 3, "measured": 20, "group": 3},
    "whole": {"train_size": 1000, "batch_size": 32, "max_length": 128, "max_epochs": 3, "max_steps": None,
              "eval_times": 10, "repeats": 3},
    "padding": {"train_size": 1000, "batch_size": 32, "max_length": 128, "epochs": 20, "rounds": 5,
                "step_batch_size": 32, "eval_tasks": ("rte", "mrpc")},
    "memory": {"short_steps": 3, "repeats": 1, "multirun": 4, "multirun_steps": 24},
    "turns": 2,  # item 2 in turns: seeds
    "threads": None,  # torch's choice (one per core)
}
QUICK = {
    "steps": {"train_size": 64, "batch_size": 8, "max_length": 32, "warmup": 1, "measured": 2, "group": 8},
    "whole": {"train_size": 32, "batch_size": 8, "max_length": 16, "max_epochs": 3, "max_steps": 2,
              "eval_times": 2, "repeats": 1},
    "padding": {"train_size": 1000, "batch_size": 32, "max_length": 128, "epochs": 5, "rounds": 1,
                "step_batch_size": 4, "eval_tasks": ("rte",)},
    # no extra short runs: item 6 reads item 2's runs; a multirun of 3 runs of 2 steps
    "memory": {"short_steps": None, "repeats": 0, "multirun": 3, "multirun_steps": 2},
    "turns": 1,
    "threads": 1,  # one torch thread everywhere: steady timings on a shared machine
}


def sizes_for(quick: bool, threads: int | None = None, repeats: int | None = None, turns: int | None = None,
              steps: int | None = None) -> dict:
    """The sizes of a full or quick invocation with the command line's overrides."""
    sizes = copy.deepcopy(QUICK if quick else FULL)
    if steps is not None:
        sizes["steps"]["measured"] = steps
    if threads is not None:
        sizes["threads"] = threads
    if repeats is not None:
        sizes["whole"]["repeats"] = repeats
    if turns is not None:
        sizes["turns"] = turns
    return sizes
