"""Distributed data parallel helpers: detect ``torchrun``, pick the backend, barriers, reductions.

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1) everything degrades to no-ops, so
the trainer has one code path.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

# groups this process has created; every process of a job creates and destroys its groups in the
# same order (it is a collective), so the count agrees across processes without communication
_GENERATION = itertools.count()


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``owns_group``: we initialised the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0, local_world: int = 1) -> torch.device:
    """``auto`` -> CUDA when available; under DDP each of the node's ``local_world`` processes takes GPU
    ``local_rank``, so there must be a GPU for each (NCCL cannot share one between processes)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device = 'cuda' but CUDA is not available; use device = 'cpu' or 'auto'")
        count = torch.cuda.device_count()
        if local_world > count:
            raise ValueError(f"torchrun started {local_world} processes on this node but it has {count} CUDA "
                             f"device(s), and each process needs its own: use --nproc-per-node {count}, or "
                             "train.device=cpu for CPU processes")
        return torch.device("cuda", local_rank)
    if device == "cpu":
        return torch.device("cpu")
    raise ValueError(f"train.device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def init_distributed(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` job described by RANK / WORLD_SIZE / LOCAL_RANK, if any.

    Backend: gloo on CPU, nccl on CUDA. An already initialised process group is reused (and left
    for its owner to destroy). A group created here can be destroyed (:func:`cleanup`) and created
    again: each creation uses fresh keys in the job's rendezvous store.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistInfo(), resolve_device(device)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", str(local_rank + 1))))
    owns = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        store, rank, world = next(dist.rendezvous("env://"))
        # torch names every default group's store keys "default_pg/0/": a group re-created after
        # destroy_process_group would meet the keys of the old one and may connect to dead peers
        store = dist.PrefixStore(f"polydiff/{next(_GENERATION)}", store)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", store=store, rank=rank,
                                world_size=world)
        owns = True
    info = DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, owns_group=owns)
    return info, dev


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(t: Tensor, info: DistInfo) -> Tensor:
    """Sum of ``t`` over all processes (in place; returned for chaining)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def shard(global_batch: int, info: DistInfo) -> slice:
    """This rank's contiguous slice of a global batch; ``world_size`` must divide it."""
    if global_batch % info.world_size:
        raise ValueError(f"train.batch_size = {global_batch} (the GLOBAL batch) is not divisible by the "
                         f"{info.world_size} processes; choose a multiple of {info.world_size}")
    per = global_batch // info.world_size
    return slice(info.rank * per, (info.rank + 1) * per)


def cleanup(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DistInfo", "all_reduce_sum", "barrier", "cleanup", "init_distributed", "resolve_device", "shard"]
