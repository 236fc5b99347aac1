"""PyTorch distributed (DDP) support: ``torchrun --nproc_per_node N sca2lstm.py ...``.

torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; each rank takes its own GPU when training on GPUs
(:func:`rank_device`), and joins a process group (gloo on CPU, nccl on GPU); the model is wrapped in
DistributedDataParallel and each rank gets every WORLD_SIZE-th training window (see the trainer). Only
rank 0 logs, plots and writes checkpoints; the train loss is all-reduced.
"""

from __future__ import annotations

import os

import torch

from .errors import UsageError


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_device(device: torch.device) -> torch.device:
    """The device of this process under torchrun: ``cuda:LOCAL_RANK`` when training on GPUs, else ``device``.

    NCCL cannot run two ranks on one GPU, so a machine with fewer GPUs than the processes torchrun starts
    on it is a usage error that names both numbers (``--device cpu`` trains data-parallel on the CPU
    cores). Outside torchrun: ``device`` unchanged.
    """
    if world_size_from_env() <= 1 or device.type != "cuda":
        return device
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    gpus = torch.cuda.device_count()
    if local > gpus:
        raise UsageError(f"torchrun started {local} processes on this machine, but it has {gpus} GPU(s): use "
                         f"--nproc_per_node {gpus}, or --device cpu to train data-parallel on the CPU cores")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> bool:
    """Join the process group if launched by torchrun (``device``: :func:`rank_device`'s). Returns True when
    running distributed."""
    if world_size_from_env() <= 1 or not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)  # before NCCL starts, so that each rank's communicator uses its own GPU
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
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
