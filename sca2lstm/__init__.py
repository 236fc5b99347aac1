"""sca2lstm: a dual-LSTM attention model for daily river-discharge forecasting.

``from sca2lstm import SCA2LSTM, load_config`` is the entry point of the user's guide.
"""

from .config import Config, load_config
from .errors import CheckpointError, ConfigError, DataError, Sca2lstmError, UsageError

__version__ = "0.1.0"


def __getattr__(name):
    # The model pulls in torch; import it lazily so `sca2lstm data ...` and config tools start fast.
    if name == "SCA2LSTM":
        from .models.sca2lstm import SCA2LSTM
        return SCA2LSTM
    raise AttributeError(f"module 'sca2lstm' has no attribute {name!r}")


__all__ = ["SCA2LSTM", "Config", "load_config", "Sca2lstmError", "UsageError", "ConfigError",
           "DataError", "CheckpointError", "__version__"]
