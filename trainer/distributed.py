"""torchrun integration: where this rank stands (torchrun's variables, read by
:func:`engine.torchrun.torchrun_env`), its device, and the process group (NCCL on CUDA, gloo on
CPU). A plain ``python -m trainer`` run is a world of one."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.distributed import device_for_rank
from engine.torchrun import torchrun_env

from .config import TrainError

__all__ = ["DistInfo", "setup_distributed", "cleanup_distributed", "mean_over_ranks", "resolve_device"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The engine's device choice for this rank (``auto``/``cuda`` mean ``cuda:LOCAL_RANK``)."""
    return device_for_rank(name, local_rank)


def setup_distributed(device_name: str = "auto") -> DistInfo:
    env = torchrun_env()
    world_size, rank, local_world_size = env.world_size, env.rank, env.local_world_size
    # LOCAL_RANK as torchrun sets it; without it (one process, or ranks started by hand) the
    # first GPU, as before engine.torchrun existed (torchrun_env would take the rank there).
    local_rank = env.local_rank if os.environ.get("LOCAL_RANK", "") != "" else 0
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        if not env.launched:  # ranks started by hand: torch waits up to 30 min for the others
            print(
                f"rank {rank} of {world_size}: waiting for the other ranks at {where}",
                file=sys.stderr,
                flush=True,
            )
        try:
            dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        except (RuntimeError, ValueError) as exc:  # torch's DistNetworkError (a port in use), a timeout...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainError(
                f"rank {rank} of {world_size} could not meet the others at {where}: {reason}"
            ) from exc
    return DistInfo(rank, world_size, local_rank, local_world_size, device)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """``value`` detached and averaged, element by element, over the ranks of torchrun's process
    group; ``value`` detached in a world of one. A loss term that divides by a count (a mean
    over its rank's items) divides by this mean of the ranks' counts instead: DDP averages the
    ranks' gradients, which then are those of the mean over every rank's items together (a
    rank's own count would weigh the items of a rank with fewer of them more). A collective:
    every rank calls it, in the same order (the training step's loss terms do, every step)."""
    value = value.detach()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()
