"""stabilize's Optuna sweeper (`conf/hpo/*.yaml`): hydra-optuna-sweeper's, ending like any
stabilize sweep when no trial completed.

After its last trial the plugin asks Optuna for the best trial; when every trial errored (an
errored run returns no validation score, which Optuna counts as a failed trial) Optuna raises
"No trials are completed yet". That exception leaves `Sweeper.sweep`, so Hydra never calls the
end-of-sweep callbacks (`on_multirun_end` is called only after `sweep` returns), and
`@hydra.main` prints its traceback and exits before `stabilize.train.main` could see it: the
sweep ended in Optuna's traceback with no stabilize summary. The sweeper is the one level where
it can be caught, and Hydra takes sweepers only from the `hydra_plugins` namespace, hence this
package. Here that one exception ends the study with one line; `stabilize.sweep.SweepSummary`
then prints the summary and exits with status 1 when the runs errored. Every other exception,
the plugin's own "too many failures" included, passes unchanged.

Without hydra-optuna-sweeper (`pip install -e .[hpo]`) this module defines nothing.
"""
from typing import Any

try:
    import hydra_plugins.hydra_optuna_sweeper.optuna_sweeper as _optuna_plugin
except ImportError:  # the optional plugin is not installed: no `+hpo=...` either
    _optuna_plugin = None

NO_COMPLETED_TRIAL = "No trials are completed yet"  # Optuna's ValueError from `Study.best_trial`

if _optuna_plugin is not None:
    class OptunaSweeper(_optuna_plugin.OptunaSweeper):
        """hydra-optuna-sweeper's OptunaSweeper (the same config keys); a study without one
        completed trial ends with a line, not a traceback, and the sweep's summary follows."""

        def sweep(self, arguments: list[str]) -> Any:
            try:
                return super().sweep(arguments)
            except ValueError as e:
                if NO_COMPLETED_TRIAL not in str(e):
                    raise
            print("[stabilize] optuna: no trial completed (each errored or returned no validation score), "
                  "so no best value and no optimization_results.yaml", flush=True)
            return None
