"""The benchmark's items, one module each, numbered as in the issue (see `benchmarks/run.py`).

Every module has `TITLE` and `run(ctx, report)`, which measures and adds its section."""
