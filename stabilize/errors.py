"""Errors that stop a run before training, each naming the config key or the file and line."""


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key, e.g. `data.train_size: ...`."""


class DataError(ValueError):
    """A data file that cannot be read as its task says; the message starts with `file:line`."""
