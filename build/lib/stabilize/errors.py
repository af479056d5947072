"""Errors that stop a run before training, each naming the config key or the file and line."""


class ConfigError(ValueError):
    """Config values that cannot work; each problem starts with its key, e.g. `data.train_size: ...`.

    Several problems travel together (`problems`), so one command line shows all of them.
    """

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__(problems[0] if len(problems) == 1 else "invalid config:\n  " + "\n  ".join(problems))


def is_int(x) -> bool:
    """An integer config value: a bool is not one (YAML's `true` would pass `isinstance(x, int)`)."""
    return isinstance(x, int) and not isinstance(x, bool)


class DataError(ValueError):
    """A data file that cannot be read as its task says; the message starts with `file:line`."""
