"""The per-step session of items 1, 4 and 7: the bare loop and stabilize variants taking turns
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
]


def step_session(ctx, names: list[str], include_bare: bool, gpu: bool = False) -> dict:
    """Participants `bare` (optional) and stabilize variants `names` ('standard' or VARIANTS keys),
    taking turns step by step on the same batches. Per-participant step times."""
    sz = ctx.sizes["steps"]
    n_steps = sz["warmup"] + sz["measured"] + 1  # the last interval (evaluation, teardown) is not kept
    base = ["task=rte", "model=minilm", "seed=0", f"data.train_size={sz['train_size']}",
            f"optim.batch_size={sz['batch_size']}", f"data.max_length={sz['max_length']}",
            f"optim.max_steps={n_steps}", "eval.times=1", "trainer=gpu" if gpu else "trainer=cpu",
            *threads_override(ctx)]
    extra = {name: ov for name, ov, _ in VARIANTS}
    folder = ctx.work / f"steps-{'gpu' if gpu else 'cpu'}"
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
    print(f"[bench] per-step session: {', '.join(specs)}", flush=True)
    out = run_session(specs)
    res = {"steps": n_steps, "warmup": sz["warmup"], "participants": {}}
    for name, r in out.items():
        res["participants"][name] = {"times": r["intervals"][sz["warmup"]:], "digests": r["digests"], "error": r["error"]}
    ref = res["participants"]["bare" if include_bare else names[0]]["digests"]
    for name, p in res["participants"].items():  # None: batches on an accelerator are not hashed
        p["same_batches"] = None if None in p["digests"] + ref else (p["digests"] == ref and len(ref) == n_steps)
    return res


def shared_session(ctx) -> dict:
    """The one CPU session of items 1 and 4: bare, standard, and item 4's variants when it runs."""
    if "step_session" not in ctx.store:
        names = ["standard"] + ([n for n, _, _ in VARIANTS] if 4 in ctx.items else [])
        ctx.store["step_session"] = step_session(ctx, names, include_bare=True)
    return ctx.store["step_session"]


def ratio(session: dict, num: str, den: str) -> dict:
    """Step time of participant `num` over `den`'s, step by step."""
    a, b = session["participants"][num], session["participants"][den]
    return summary(paired_ratios(a["times"], b["times"]))
