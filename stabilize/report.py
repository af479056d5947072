"""`stabilize-report SWEEP_DIR`: lists the runs found under a sweep folder (full report: issue 6)."""
import argparse
import sys
from pathlib import Path

from stabilize import results


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="stabilize-report", description=__doc__)
    p.add_argument("sweep_dir", type=Path)
    args = p.parse_args(argv)
    paths = sorted(args.sweep_dir.rglob(results.RESULTS))
    if not paths:
        sys.exit(f"stabilize-report: no {results.RESULTS} under {args.sweep_dir}")
    for path in paths:
        r = results.read(path)
        print(f"{r['status']:6s} {r['task']:5s} {r['method']:16s} seed={r['seed']} size={r['train_size']} "
              f"test={r['test']} {path.parent}")
