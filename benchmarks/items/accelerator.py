"""Item 7: the accelerator path (`trainer=gpu`, bf16) when a GPU is there, skipped cleanly otherwise."""
from benchmarks.items import whole_run
from benchmarks.stats import fmt
from benchmarks.steps import ratio, step_session

TITLE = "accelerator"


def run(ctx, report) -> None:
    import torch

    if not torch.cuda.is_available():
        report.add("7. Accelerator path (trainer=gpu, bf16)", [
            f"Skipped: no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda})."])
        return
    session = step_session(ctx, ["standard"], include_bare=True, gpu=True)
    r = ratio(session, "standard", "bare")
    speed = whole_run.measure(ctx, report, gpu=True)
    report.add("7. Accelerator path (trainer=gpu, bf16)", [
        f"Device: {torch.cuda.get_device_name(0)}. Per-step ratio stabilize/bare (bf16-mixed vs bf16 autocast, "
        f"synchronized at step boundaries): {fmt(r)}. Whole run speed-up over bare: {fmt(speed)} "
        "(section '2. ... (GPU)' above)."])
