"""Item 3: padding. Tokens per epoch and examples/s for padding to 128, dynamic padding and
grouping by length (RTE, MRPC); evaluation passes; opt-in, MRPC scores with and without grouping."""
import copy
import time

from benchmarks import bare
from benchmarks.configs import compose, datamodule, load_minilm, prime_cache, tokenizer, whole_overrides
from benchmarks.report import table
from benchmarks.stats import fmt, paired_ratios, summary, verdict

TITLE = "padding"


class PadTo:
    """Collate padding every row to `width` (what a fixed max_length tokenization does)."""

    def __init__(self, pad_id: int, width: int):
        from stabilize.data import Collate

        self.collate, self.width = Collate(pad_id), width

    def __call__(self, rows):
        import torch

        b = self.collate(rows)
        extra = self.width - b["input_ids"].shape[1]
        if extra > 0:
            pad = lambda t, v: torch.nn.functional.pad(t, (0, extra), value=v)  # noqa: E731
            b = {"input_ids": pad(b["input_ids"], self.collate.pad_id), "token_type_ids": pad(b["token_type_ids"], 0),
                 "attention_mask": pad(b["attention_mask"], 0), "labels": b["labels"]}
        return b


def epoch_tokens(batches, lengths) -> int:
    return int(sum(len(b) * int(lengths[b].max()) for b in batches))


def run(ctx, report) -> None:
    import torch

    from stabilize import tasks
    from stabilize.data import GroupedByLengthSampler

    sz = ctx.sizes["padding"]
    tok = tokenizer()
    token_rows, speed_rows, eval_rows = [], [], []
    with ctx.quiet():
        model, _ = load_minilm()
    for task in ("rte", "mrpc"):
        dms = {}
        for grouped in (False, True):
            dm = datamodule(task, tok, train_size=sz["train_size"], batch_size=sz["batch_size"],
                            max_length=sz["max_length"], group_by_length=grouped, cache_dir=str(ctx.cache))
            with ctx.quiet():
                dm.setup()
            dms[grouped] = dm
        lengths = dms[False].splits["train"].lengths
        n, real = len(lengths), int(lengths.sum())
        pad = n * sz["max_length"]
        dyn, grp, covered = [], [], True
        for e in range(sz["epochs"]):
            torch.manual_seed(e)
            dyn.append(epoch_tokens(list(dms[False].train_dataloader().batch_sampler), lengths))
            torch.manual_seed(e)
            gb = list(dms[True].train_dataloader().batch_sampler)
            covered &= sorted(i for b in gb for i in b) == list(range(n))
            grp.append(epoch_tokens(gb, lengths))
        r_grp = summary([pad / g for g in grp])
        target = {"rte": 1.8, "mrpc": 2.0}[task]
        token_rows.append([task.upper(), n, real, pad, fmt(summary(dyn), 0), fmt(summary(grp), 0),
                           fmt(summary([pad / d for d in dyn]), 2), fmt(r_grp, 2), f"≥ {target}",
                           verdict(r_grp["median"], target, True), str(covered)])
        # examples/s: one training step per mode in turn, same model, rotated order
        bs = sz["step_batch_size"]
        split = dms[False].splits["train"]
        collate = dms[False].train_dataloader().collate_fn
        gen = torch.Generator().manual_seed(0)
        loaders = {
            "pad to 128": torch.utils.data.DataLoader(split, batch_size=bs, shuffle=True, generator=gen,
                                                      collate_fn=PadTo(tok.pad_token_id, sz["max_length"])),
            "dynamic": torch.utils.data.DataLoader(split, batch_size=bs, shuffle=True, generator=gen,
                                                   collate_fn=collate),
            "grouped": torch.utils.data.DataLoader(split, batch_sampler=GroupedByLengthSampler(split.lengths, bs),
                                                   collate_fn=collate),
        }
        its = {k: iter(v) for k, v in loaders.items()}
        step = bare.Stepper(copy.deepcopy(model), tasks.load(task), {"lr": 2e-5, "betas": [0.9, 0.999], "eps": 1e-8,
                                                                     "weight_decay": 0.0, "warmup_ratio": 0.1,
                                                                     "clip_norm": 1.0}, 10_000)
        step(next(its["dynamic"]))  # warm-up
        per = {k: [] for k in loaders}
        modes = list(loaders)
        for k in range(sz["rounds"]):
            for mode in modes[k % 3:] + modes[:k % 3]:
                batch = next(its[mode])
                t0 = time.perf_counter()
                step(batch)
                per[mode].append(len(batch["labels"]) / (time.perf_counter() - t0))
        for mode in modes:
            speed_rows.append([task.upper(), mode, fmt(summary(per[mode]), 1),
                               fmt(summary(paired_ratios(per[mode], per["pad to 128"])), 2)])
        if task in sz["eval_tasks"]:
            eval_rows += eval_padding(model, dms[False], sz["rounds"])
    lines = [
        f"{sz['train_size']} training rows, batch {sz['batch_size']}, max length {sz['max_length']}, MiniLM "
        f"tokenizer. Tokens per epoch = Σ over batches of rows × the batch's padded width, over {sz['epochs']} "
        "epochs (the real samplers: `DataLoader(shuffle=True)`, `GroupedByLengthSampler`).", "",
        *table(["task", "rows", "real tokens", "pad to 128", "dynamic", "grouped", "pad-128 / dynamic",
                "pad-128 / grouped", "target", "", "grouped covers every row once"], token_rows), "",
        f"Training throughput (examples/s) of the bare step on batches of {sz['step_batch_size']} from each mode, "
        f"one step per mode in turn, {sz['rounds']} round(s):", "",
        *table(["task", "padding", "examples/s", "speed-up over pad-128 (paired)"], speed_rows), "",
        "Whole-run speed-up with grouping on RTE: see item 2 (target ≥ 1.6× the bare loop).", "",
        "Evaluation: one pass over the validation half in each mode in turn (the model in eval mode, "
        f"{sz['rounds']} round(s)): the bare loop's random-order batches of {bare.EVAL_BATCH_SIZE} under no_grad, "
        "and stabilize's length-sorted batches under inference mode at `data.eval_batch_size` 128 (the default "
        "before this benchmark) and 32 (the default now). Tokens = Σ rows × padded width over the pass.", "",
        *table(["task", "rows", "evaluation", "tokens", "seconds", "speed-up over random 64 (paired)"], eval_rows)]
    if ctx.args.grouping_seeds:
        lines += ["", *grouping_seeds(ctx)]
    else:
        lines += ["", "MRPC score distribution with and without grouping: not run (opt in with `--grouping-seeds N`)."]
    report.add("3. Padding: tokens per epoch and throughput", lines)


def eval_padding(model, dm, rounds: int) -> list[list]:
    """Validation passes: the bare loop's random batches of 64 vs sorted batches of 128 and 32."""
    import torch

    from stabilize.data import Collate

    split = dm.splits["val"]
    collate = Collate(dm.tokenizer.pad_token_id)

    def sorted_batches(size):
        dm.eval_batch_size = size
        return list(dm.eval_dataloader("val")), torch.inference_mode

    def random_batches():
        gen = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(split, batch_size=bare.EVAL_BATCH_SIZE, shuffle=True, generator=gen,
                                             collate_fn=collate)
        return list(loader), torch.no_grad

    modes = {f"random {bare.EVAL_BATCH_SIZE} (bare)": random_batches, "sorted 128": lambda: sorted_batches(128),
             "sorted 32": lambda: sorted_batches(32)}

    def timed_pass(name) -> float:
        batches, grad_mode = modes[name]()
        tokens[name] = sum(b["input_ids"].numel() for b in batches)
        t0 = time.perf_counter()
        with grad_mode():
            for b in batches:
                model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"])
        return time.perf_counter() - t0

    model.eval()
    secs, tokens, names = {m: [] for m in modes}, {}, list(modes)
    timed_pass(names[-1])  # warm-up
    for k in range(rounds):
        for name in names[k % 3:] + names[:k % 3]:
            secs[name].append(timed_pass(name))
    model.train()
    base = secs[next(iter(modes))]
    return [[dm.spec.name.upper(), len(split), name, tokens[name], fmt(summary(secs[name]), 2),
             fmt(summary(paired_ratios(base, secs[name])), 2)] for name in modes]


def grouping_seeds(ctx) -> list[str]:
    """MRPC, N seeds, whole runs in this process with and without grouping: does the score move?"""
    from scipy import stats

    from stabilize.train import train

    n = ctx.args.grouping_seeds
    with ctx.quiet():
        prime_cache(ctx, "mrpc", ctx.sizes["whole"]["max_length"])
    out = {False: [], True: []}
    for seed in range(n):
        for grouped in ((False, True) if seed % 2 == 0 else (True, False)):
            ov = whole_overrides(ctx, seed, task="mrpc") + [f"data.group_by_length={str(grouped).lower()}",
                                                            "logger=none"]
            cfg = compose(ov, ctx.work / "grouping" / f"seed{seed}-{grouped}", ctx.cache)
            print(f"  item 3: MRPC seed {seed} grouped={grouped} ...", flush=True)
            with ctx.quiet():
                out[grouped].append(train(cfg))
    rows = []
    for grouped in (False, True):
        rs = [r for r in out[grouped] if r["test"] is not None]
        tests = [r["test"] for r in rs]
        rows.append(["on" if grouped else "off", len(rs), fmt(summary(tests)),
                     f"{sum(t for t in tests) / max(len(tests), 1):.4f}",
                     sum(r["status"] == "failed" for r in out[grouped]), fmt(summary([r["seconds"] for r in rs]), 1)])
    diffs = [y["test"] - x["test"] for x, y in zip(out[False], out[True]) if x["test"] is not None and y["test"] is not None]
    if len(diffs) < 2:
        test = "Wilcoxon signed-rank: needs at least 2 seeds"
    else:  # paired by seed: same training subset and initial state, only the batch composition differs
        p = stats.wilcoxon(diffs).pvalue
        lower = sum(d < 0 for d in diffs)
        test = (f"lower with grouping in {lower} of {len(diffs)} seeds; Wilcoxon signed-rank p = {p:.3g} "
                f"(the smallest possible with {len(diffs)} seeds is {2 / 2 ** len(diffs):.3g})")
    return [f"MRPC, {n} seeds × grouping off/on (whole runs, sizes of item 2), test F1:", "",
            *table(["grouping", "runs", "test F1", "mean", "failed", "seconds"], rows), "",
            f"Paired by seed (on − off): {fmt(summary(diffs))}; {test}."]
