"""The per-step sessions of items 1, 4 and 7: the bare loop and stabilize variants taking turns
step by step on the same batches (`benchmarks.session`); evaluation is stubbed out."""
from benchmarks import bare
from benchmarks.configs import compose, prime_cache, threads_override
from benchmarks.session import run_session
from benchmarks.stats import paired_ratios, summary

# Item 4: variants measured against `standard`, with their target ratio (None: reported only).
VARIANTS = [
    ("component_clip", ["method=component_clip"], 1.03),
    ("mixout", ["method=mixout"], None),
    ("llrd", ["method=llrd"], None),
    ("prior_wd", ["method=prior_wd"], None),
    ("grad_monitor", ["callbacks=grad_monitor"], None),
    ("progress_bar", ["trainer.enable_progress_bar=true"], None),
    # the methods after the seeds (README); the session's batch size, length and evaluation apply
    ("mosbach", ["method=mosbach", "eval.per_epoch=null"], None),
    # mosbach with the papers' AdamW (eps before the bias correction, stabilize/optimizers.py)
    ("mosbach_papers_adam",
     ["method=mosbach", "eval.per_epoch=null", "optim.eps_placement=before_correction"], None),
    ("noisytune", ["method=noisytune"], None),
    ("childtuning_f", ["method=childtuning_f"], None),
    ("childtuning_d", ["method=childtuning_d"], None),
    ("r3f", ["method=r3f"], None),
    ("ema", ["method=ema"], None),
    ("swa", ["method=swa", "method.strategies.swa.start=0"], None),  # every step enters the average
    ("lora", ["method=lora"], None),
    ("bitfit", ["method=bitfit"], None),
    ("lpft", ["method=lpft", "method.strategies.lpft.probe=gradient"], None),  # as in results/; fit: not benchmarked
]
# Work done once, outside the steps, and the FineTuner hook it runs in (timed by StepOnlyFineTuner).
ONE_TIME = {
    "noisytune": ("setup", "noise added to every weight tensor"),
    "childtuning_d": ("on_train_start", "Fisher pass: forward and backward over the training data"),
    "lpft": ("on_train_start", "linear probe: the head alone trained for its epochs"),
}


def variant_names(chosen=None) -> list[str]:
    """Item 4's variants in VARIANTS order, all or those `chosen` (unknown names refused)."""
    names = [n for n, _, _ in VARIANTS]
    unknown = sorted(set(chosen or ()) - set(names))
    if unknown:
        raise SystemExit(f"--variants: no variant(s) {unknown}; variants are {names}")
    return [n for n in names if not chosen or n in chosen]


def step_session(ctx, names: list[str], include_bare: bool, gpu: bool = False, label: str = "") -> dict:
    """Participants `bare` (optional) and stabilize variants `names` ('standard' or VARIANTS keys),
    taking turns step by step on the same batches. Per-participant step times; `label` names the
    session's folder when one invocation has several."""
    sz = ctx.sizes["steps"]
    n_steps = sz["warmup"] + sz["measured"] + 1  # the last interval (evaluation, teardown) is not kept
    base = ["task=rte", "model=minilm", "seed=0", f"data.train_size={sz['train_size']}",
            f"optim.batch_size={sz['batch_size']}", f"data.max_length={sz['max_length']}",
            f"optim.max_steps={n_steps}", "eval.times=1", "trainer=gpu" if gpu else "trainer=cpu",
            *threads_override(ctx)]
    extra = {name: ov for name, ov, _ in VARIANTS}
    folder = ctx.work / f"steps-{'gpu' if gpu else 'cpu'}{label}"
    folder.mkdir(parents=True, exist_ok=True)
    specs = {}
    if include_bare:
        s = bare.settings(compose(base, folder / "bare", ctx.cache))
        specs["bare"] = {"kind": "bare", "settings": s, "cache": str(ctx.cache), "cuda": gpu,
                         "log": str(folder / "bare.log")}
    for name in names:
        ov = extra.get(name, [])
        if not any(o.startswith("trainer.enable_progress_bar") for o in ov):
            ov = [*ov, "trainer.enable_progress_bar=false"]
        specs[name] = {"kind": "stabilize", "cfg": compose(base + ov, folder / name, ctx.cache), "cuda": gpu,
                       "log": str(folder / f"{name}.log")}
    with ctx.quiet():
        prime_cache(ctx, "rte", sz["max_length"])
    print(f"[bench] per-step session{label}: {', '.join(specs)}", flush=True)
    out = run_session(specs)
    res = {"steps": n_steps, "warmup": sz["warmup"], "participants": {}}
    for name, r in out.items():
        res["participants"][name] = {"times": r["intervals"][sz["warmup"]:], "digests": r["digests"],
                                     "error": r["error"], "setup": r.get("setup"), "hooks": r.get("hooks"),
                                     "peak_rss_mib": r.get("peak_rss_mib")}
    ref = res["participants"]["bare" if include_bare else names[0]]["digests"]
    for name, p in res["participants"].items():  # None: batches on an accelerator are not hashed
        p["same_batches"] = None if None in p["digests"] + ref else (p["digests"] == ref and len(ref) == n_steps)
    return res


def cpu_sessions(ctx) -> list[dict]:
    """The CPU sessions of items 1 and 4, run once. Item 4's variants go in groups of
    `steps.group`, each group taking turns with a `standard` of its own (every participant holds
    a model, its optimizer and its activations: a session of all of them would not fit in memory);
    the first session also has `bare` when item 1 runs."""
    if "step_sessions" not in ctx.store:
        names = variant_names(getattr(ctx.args, "variants", None)) if 4 in ctx.items else []
        size = ctx.sizes["steps"]["group"]
        groups = [names[i:i + size] for i in range(0, len(names), size)] or [[]]
        ctx.store["step_sessions"] = [
            step_session(ctx, ["standard", *g], include_bare=(i == 0 and 1 in ctx.items),
                         label=f"-{i + 1}-of-{len(groups)}" if len(groups) > 1 else "")
            for i, g in enumerate(groups)]
    return ctx.store["step_sessions"]


def shared_session(ctx) -> dict:
    """Item 1's session: bare and standard (with item 4's first group when it runs)."""
    return cpu_sessions(ctx)[0]


def ratio(session: dict, num: str, den: str) -> dict:
    """Step time of participant `num` over `den`'s, step by step."""
    a, b = session["participants"][num], session["participants"][den]
    return summary(paired_ratios(a["times"], b["times"]))
