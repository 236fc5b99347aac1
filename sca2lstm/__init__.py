"""sca2lstm: a dual-LSTM attention model for daily river-discharge forecasting.

``from sca2lstm import SCA2LSTM, load_config`` is the entry point of the user's guide.
"""

from .errors import CheckpointError, ConfigError, DataError, Sca2lstmError, UsageError

__version__ = "0.1.0"


def __getattr__(name):
    # The model pulls in torch and the config pydantic (half a second): both are imported when first
    # used, so `import sca2lstm.cli.main` is instant and a Ctrl-C while they load is caught by the CLI.
    if name == "SCA2LSTM":
        from .models.sca2lstm import SCA2LSTM
        return SCA2LSTM
    if name in ("Config", "load_config"):
        from . import config
        return getattr(config, name)
    raise AttributeError(f"module 'sca2lstm' has no attribute {name!r}")


__all__ = ["SCA2LSTM", "Config", "load_config", "Sca2lstmError", "UsageError", "ConfigError",
           "DataError", "CheckpointError", "__version__"]
