"""torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) read in
one place for the batch command and the trainer; :mod:`engine.distributed` parses the variables it
needs with the same :func:`env_int`.

Deliberately free of torch, so that a command line can check its rank before loading it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TorchrunEnv", "env_int", "torchrun_env"]


@dataclass(frozen=True)
class TorchrunEnv:
    """Where this process stands among the ranks torchrun started; one rank of one when it
    did not start it. ``local_rank`` is None when ``LOCAL_RANK`` is unset in a single process
    (no GPU index was asked for)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None
    local_world_size: int = 1
    launched: bool = False  # started by torchrun (its agent sets TORCHELASTIC_RUN_ID), one rank or more

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """The integer in ``env[name]``; ``default`` when unset or empty; a ValueError naming the
    variable otherwise."""
    value = env.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer, got {value!r}") from None


def torchrun_env(environ: Mapping[str, str] | None = None) -> TorchrunEnv:
    """Read torchrun's variables (from ``os.environ`` by default).

    Raises ValueError for a value that is not an integer or a rank outside the world. Under
    torchrun with several ranks and no ``LOCAL_RANK``, the local rank is the rank (one node).
    """
    env = os.environ if environ is None else environ
    world = env_int(env, "WORLD_SIZE", 1)
    rank = env_int(env, "RANK", 0)
    local_rank = env_int(env, "LOCAL_RANK", None)
    assert world is not None and rank is not None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not within WORLD_SIZE={world}")
    if local_rank is None and world > 1:
        local_rank = rank
    local_world = env_int(env, "LOCAL_WORLD_SIZE", world)
    assert local_world is not None
    return TorchrunEnv(rank, world, local_rank, max(1, local_world), bool(env.get("TORCHELASTIC_RUN_ID")))
