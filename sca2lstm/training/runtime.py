"""Device choice and seeding, shared by every command (checkpoints: :mod:`sca2lstm.checkpoint`)."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import UsageError


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
