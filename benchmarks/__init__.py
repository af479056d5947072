"""Performance benchmarks of `stabilize` against a bare PyTorch loop (run by hand).

    python -m benchmarks.run            # everything -> benchmarks/results/<date>.md (summary: RESULTS.md)
    python -m benchmarks.run --quick    # same code paths, small sizes -> benchmarks/RESULTS-quick.md

`benchmarks/run.py` lists the items and runs them; each item is a module of `benchmarks/items/`;
`benchmarks/bare.py` is the baseline loop and `benchmarks/session.py` the step-by-step turns.
"""
