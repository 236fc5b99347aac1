"""Device choice and seeding, shared by every command (checkpoints: :mod:`sca2lstm.checkpoint`)."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import UsageError


def resolve_device(choice: str | None, no_cuda: bool = False) -> torch.device:
    """``auto`` is the CPU; a GPU is used when asked for (``cuda``, which without a GPU is a usage error).

    Why not the GPU when there is one: the recurrence is a few hundred small sequential steps (a batch of
    32 x 64 units), which a GPU spends launching kernels. On a machine with an NVIDIA H100, a training step
    of the default model took 0.10 s on one CPU core (the C++ recurrence) and 0.25 s on the GPU, a
    forecast batch 0.04 s against 0.16 s (``bench/bench_recurrence.py --cuda``; docs/experiments.md).
    """
    choice = choice or "auto"
    if no_cuda and choice == "cuda":
        raise UsageError("--device cuda contradicts --no_cuda; drop one of them")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but no CUDA device is available; use --device cpu")
    return torch.device("cpu" if choice == "auto" else choice)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
