"""The figures of a report: median (min, max, n) of a sample, paired ratios, target verdicts."""
import statistics


def summary(xs) -> dict:
    xs = [float(x) for x in xs]
    if not xs:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s: dict, digits: int = 3) -> str:
    if not s["n"]:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])} (min {f.format(s['min'])}, max {f.format(s['max'])}, n {s['n']})"


def paired_ratios(num, den) -> list[float]:
    return [a / b for a, b in zip(num, den) if b > 0]


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    if value != value:  # nan
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "misses"
