"""Multi-process training under ``torchrun``: one process per GPU (NCCL) or per CPU share (gloo).

``torchrun --nproc_per_node N -m sekd.bin.train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` joins the process group and picks the device. Without
them everything here is the single-process identity, so the trainer has one code path.

The trainer keeps the meaning of ``data.batch_size`` (the global batch): every rank takes
every ``world``-th item of each batch, the trainer's ``Distiller`` (model, KD terms and their
adapters, the speaker head) is wrapped in ``DistributedDataParallel`` (every trained parameter's
gradient averaged), validation utterances are split over the ranks and their scores summed.
Only rank 0 writes logs, TensorBoard events and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> Context:
    """Join the process group when launched by torchrun; choose ``cuda:<local rank>`` or CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but no GPU is visible")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Context(rank, world, dev)


def shard(batch: list[int], ctx: Context) -> list[int]:
    """This rank's items of a global batch."""
    return batch[ctx.rank :: ctx.world]


def all_sum(values: list[float], ctx: Context) -> list[float]:
    if not ctx.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def teardown(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
