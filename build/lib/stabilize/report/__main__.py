"""`python -m stabilize.report SWEEP_DIR [--out DIR]`, the same as `stabilize-report`."""
from stabilize.report.cli import main

main()
