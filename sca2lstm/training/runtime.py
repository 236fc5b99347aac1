"""Device choice, seeding, and the model/checkpoint round trip shared by every command."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from ..config import Config
from ..data.scaling import Scalers
from ..errors import CheckpointError, ConfigError, UsageError
from .checkpoint import FORMAT, clean_state_dict, load_checkpoint, load_state_into

log = logging.getLogger("sca2lstm")


def resolve_device(choice: str | None, no_cuda: bool = False) -> torch.device:
    """``auto`` picks CUDA when available (unless ``no_cuda``); ``cuda`` without a GPU is a usage error."""
    choice = choice or "auto"
    if no_cuda and choice == "cuda":
        raise UsageError("--device cuda contradicts --no_cuda; drop one of them")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available; use --device cpu")
    if choice == "auto":
        choice = "cuda" if (torch.cuda.is_available() and not no_cuda) else "cpu"
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def build_checkpoint(model, cfg: Config, scalers: Scalers, basins, epoch: int, optimizer=None,
                     val_metrics=None, **extra) -> dict:
    """A checkpoint dict of tensors and plain Python types only (``weights_only=True`` loads it)."""
    ckpt = {
        "format": FORMAT,
        "model_state_dict": clean_state_dict(model.state_dict()),
        "model_args": cfg.to_dict()["model"],
        "config": cfg.to_dict(),
        "scalers": scalers.to_dict(),
        "basins": [str(b) for b in basins],
        "epoch": int(epoch),
        "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "val_metrics": val_metrics or {},
    }
    ckpt.update(extra)
    return ckpt


def load_model(path, device="cpu"):
    """Rebuild the model, config and scalers from a checkpoint.

    Returns
    -------
    model : SCA2LSTM (eval mode, on ``device``), cfg : Config, scalers : Scalers, ckpt : dict
    """
    from ..models.sca2lstm import SCA2LSTM

    ckpt = load_checkpoint(path)
    stored = ckpt["config"]
    if isinstance(stored, dict) and isinstance(stored.get("model"), dict) and "cell_readout" not in stored["model"]:
        # Checkpoints written before model.cell_readout existed have no cell head: build them without.
        stored = {**stored, "model": {**stored["model"], "cell_readout": False}}
    # Written before the quantile head and issue-time training: no quantiles, a hindcast-only model.
    if isinstance(stored, dict) and isinstance(stored.get("model"), dict) and "quantiles" not in stored["model"]:
        stored = {**stored, "model": {**stored["model"], "quantiles": []}}
    if isinstance(stored, dict) and "forecast_leads" not in (stored.get("training") or {}):
        stored = {**stored, "training": {**(stored.get("training") or {}), "forecast_leads": 0}}
    try:
        cfg = Config.from_dict(stored, source=f"config stored in {path}")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path} has a config this version cannot use: {e}") from None
    try:
        scalers = Scalers.from_dict(ckpt["scalers"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has malformed scalers ({e})") from None
    model = SCA2LSTM(cfg)
    load_state_into(model, ckpt["model_state_dict"], path)
    model.to(device).eval()
    ckpt["source_path"] = str(path)  # for outputs that name their model (operational forecasts)
    return model, cfg, scalers, ckpt
