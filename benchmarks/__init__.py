"""Performance benchmarks of `stabilize` against a bare PyTorch loop (run by hand).

    python -m benchmarks.run            # everything -> benchmarks/results/<date>.md (summary: RESULTS.md)
    python -m benchmarks.run --quick    # same code paths, small sizes -> benchmarks/RESULTS-quick.md

See `benchmarks/run.py` for the items and `benchmarks/bare.py` for the baseline loop.
"""
