"""Small helpers for programs that ``torchrun`` starts once per rank (one process per GPU).

* :func:`device_for_rank`: the device a rank works on (``cuda:LOCAL_RANK`` under torchrun), with a
  clear :class:`ValueError` when that GPU does not exist instead of a CUDA traceback later.
* :func:`sum_across_ranks` (and :func:`joined_ranks` for more than one step): every rank hands
  in its numbers and gets the sums back, over a gloo (CPU) process group made from torchrun's
  variables (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``). It lets all ranks finish with the same exit status: torchrun stops every rank
  as soon as one exits non-zero, so a rank that reports "some files failed" early would otherwise
  kill the ranks still working. A no-op with ``WORLD_SIZE`` unset or 1.

Waiting is bounded: a rank that cannot meet the others within ``timeout`` seconds (a peer that
died outside torchrun, a peer far slower than the timeout) gets a :class:`RankMeetingError`.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import overload

import torch

from .torchrun import env_int

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DeviceError",
    "RankGroup",
    "RankMeetingError",
    "device_for_rank",
    "joined_ranks",
    "sum_across_ranks",
    "world_size",
]

DEFAULT_TIMEOUT_S = 3600.0
"""How long :func:`sum_across_ranks` waits for the slowest rank by default (one hour)."""


class DeviceError(ValueError):
    """A device asked for that this machine cannot give (no CUDA GPU, an index beyond its GPUs).
    ``reason`` says why without the command line's advice (``--device``), which the message adds:
    the app says where its own choice is made instead."""

    def __init__(self, reason: str, advice: str = "") -> None:
        super().__init__(f"{reason}; {advice}" if advice else reason)
        self.reason = reason


class RankMeetingError(RuntimeError):
    """The ranks could not meet: missing torchrun variables, a timeout, a rank gone."""


def world_size(environ: Mapping[str, str] | None = None) -> int:
    """``WORLD_SIZE`` as torchrun sets it; 1 when unset."""
    return max(1, env_int(os.environ if environ is None else environ, "WORLD_SIZE", 1) or 1)


def device_for_rank(
    device: str = "auto", local_rank: int | None = None, *, environ: Mapping[str, str] | None = None
) -> torch.device:
    """The device this process should use.

    ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``. With a
    ``local_rank`` (torchrun's ``LOCAL_RANK``), ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK``, one
    GPU per rank. Raises :class:`ValueError` with a clear message for an unknown device, CUDA
    without a usable GPU, or a GPU index this machine does not have (for instance more torchrun
    ranks per node than GPUs).
    """
    env = os.environ if environ is None else environ
    text = str(device).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f"unsupported device {device!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {device!r} was requested but no CUDA GPU is usable here "
            "(torch.cuda.is_available() is False)",
            "use --device cpu or auto",
        )
    count = torch.cuda.device_count()
    index = dev.index if dev.index is not None else (local_rank or 0)
    if index >= count:
        have = f"this machine has {count} CUDA GPU{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})"
        if dev.index is None and local_rank is not None:
            per_node = env_int(env, "LOCAL_WORLD_SIZE", None)
            started = f"{per_node} ranks" if per_node else "more ranks than that"
            raise ValueError(
                f"rank with LOCAL_RANK={local_rank} needs cuda:{index}, but {have}: torchrun "
                f"started {started} on this node; use --nproc_per_node={count} or fewer"
            )
        raise DeviceError(f"device cuda:{index} does not exist: {have}")
    return torch.device("cuda", index)


class RankGroup:
    """The ranks met by :func:`joined_ranks`: element-wise sums and a barrier, over gloo."""

    def __init__(self, world: int, rank: int = 0, group: object | None = None) -> None:
        self.world_size = world
        self.rank = rank
        self._group = group

    @overload
    def sum(self, value: int) -> int: ...
    @overload
    def sum(self, value: Sequence[int]) -> list[int]: ...

    def sum(self, value: int | Sequence[int]) -> int | list[int]:
        """Sum an int, or a sequence of ints element-wise, over all ranks (all must call it)."""
        try:
            values, single = [operator.index(value)], True  # type: ignore[arg-type]
        except TypeError:
            values, single = [operator.index(v) for v in value], False  # type: ignore[union-attr]
        if self.world_size > 1:
            import torch.distributed as dist

            total = torch.tensor(values, dtype=torch.int64)
            try:
                dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self._group)
            except Exception as exc:
                raise RankMeetingError(f"the ranks could not add up their numbers: {exc}") from exc
            values = [int(v) for v in total.tolist()]
        return values[0] if single else values

    def barrier(self) -> None:
        """Wait until every rank gets here (for instance after rank 0 printed a summary)."""
        if self.world_size > 1:
            import torch.distributed as dist

            try:
                dist.barrier(group=self._group)
            except Exception as exc:
                raise RankMeetingError(f"the ranks could not meet at a barrier: {exc}") from exc


@contextlib.contextmanager
def joined_ranks(timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[RankGroup]:
    """Meet the other ranks: yields a :class:`RankGroup` once all of them have arrived.

    With ``WORLD_SIZE`` unset or 1 it yields a one-rank group without touching
    torch.distributed. Otherwise it uses the existing default process group when there is one
    (through a gloo sub-group if that one is not gloo), else it creates a gloo group from
    torchrun's environment variables and destroys it on leaving. Raises
    :class:`RankMeetingError` when the ranks cannot meet within ``timeout`` seconds (this
    includes waiting for the slowest rank to arrive).
    """
    world = world_size()
    if world <= 1:
        yield RankGroup(1)
        return

    import torch.distributed as dist

    if not dist.is_available():
        raise RankMeetingError("this build of torch has no torch.distributed; cannot meet the other ranks")
    wait = timedelta(seconds=float(timeout))
    created = False
    group = None
    try:
        if not dist.is_initialized():
            missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK") if not os.environ.get(k)]
            if missing:
                raise RankMeetingError(
                    f"WORLD_SIZE={world} but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                    "not set: start the ranks with torchrun (or set the torch.distributed variables)"
                )
            dist.init_process_group(backend="gloo", init_method="env://", timeout=wait)
            created = True
        elif dist.get_backend() != "gloo":
            group = dist.new_group(backend="gloo", timeout=wait)
    except RankMeetingError:
        raise
    except Exception as exc:  # timeouts and lost peers surface as various torch errors
        raise RankMeetingError(
            f"could not meet the other {world - 1} rank(s) within {float(timeout):g} s: {exc}"
        ) from exc
    try:
        yield RankGroup(dist.get_world_size(), dist.get_rank(), group)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
        elif group is not None:
            dist.destroy_process_group(group)


@overload
def sum_across_ranks(value: int, *, timeout: float = ...) -> int: ...
@overload
def sum_across_ranks(value: Sequence[int], *, timeout: float = ...) -> list[int]: ...


def sum_across_ranks(value: int | Sequence[int], *, timeout: float = DEFAULT_TIMEOUT_S) -> int | list[int]:
    """Sum ``value`` (an int, or a sequence of ints element-wise) over all ranks: every rank must
    call it, and gets the sums. A no-op with ``WORLD_SIZE`` unset or 1. See :func:`joined_ranks`
    for the process group and the ``timeout``; raises :class:`RankMeetingError`."""
    with joined_ranks(timeout) as group:
        return group.sum(value)
