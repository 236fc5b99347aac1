"""PyTorch distributed (DDP) support: ``torchrun --nproc_per_node N sca2lstm.py ...``.

torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; we then join a process group (gloo on CPU, nccl on GPU),
wrap the model in DistributedDataParallel and give each rank every WORLD_SIZE-th training window
(see the trainer). Only rank 0 logs, plots and writes checkpoints; the train loss is all-reduced.
"""

from __future__ import annotations

import os

import torch


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> bool:
    """Join the process group if launched by torchrun. Returns True when running distributed."""
    if world_size_from_env() <= 1 or not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def is_main_process() -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return True


def ddp_wrap(model: torch.nn.Module, device: torch.device):
    """The DDP wrapper when distributed, else the model itself."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.nn.parallel import DistributedDataParallel
        ids = [device.index or 0] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    return model


def cleanup() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
