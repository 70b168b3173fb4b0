"""Training data: prepared images in memory, per-sample masks, and a resumable data order.

The order is a pure function of ``(seed, step)``: sample position ``p`` of the run (global over
all ranks: ``p = (step * world_size + rank) * batch_size + j``) is image
``permutation(seed, p // n)[p % n]`` and its augmentation and mask come from a generator seeded
with ``(seed, p)``; with native crops (:mod:`trainer.native`) whether ``p`` is one is a function
of ``p`` too. Resuming at step ``s`` therefore replays exactly the batches an
uninterrupted run would have seen, whatever the number of loader workers, and the ranks of a
``torchrun`` job read disjoint shards of every global batch (like ``DistributedSampler``).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from .manifest import ManifestRow, read_manifest
from .masks import MaskGenerator

if TYPE_CHECKING:  # pragma: no cover
    from .native import NativeCrops

__all__ = [
    "worker_init",
    "PreparedImages",
    "InpaintingDataset",
    "StepBatchSampler",
    "UnreadableImage",
    "load_rgb",
    "collate",
]

log = logging.getLogger(__name__)


class UnreadableImage(ValueError):
    """A prepared image that cannot be decoded (truncated or damaged)."""


def load_rgb(path: str | Path) -> np.ndarray:
    """A prepared image; an :class:`UnreadableImage` naming it when it cannot be decoded (a
    truncated or damaged file: ``prepare`` again writes it anew)."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"{path} cannot be read ({exc}); run retoucher-train prepare again") from exc


class PreparedImages:
    """The uint8 ``HxWx3`` images of one split of a prepared folder, sorted by image id.

    ``preload``: True decodes them all into one array now (fast training, ~200 KB per 256px
    image); False reads each on demand; None decides by size (``max_preload_bytes``).
    ``limit``: keep this many rows, evenly spaced over the split (covers every species).

    A copy sent to another process (pickled: data-loader workers) reads on demand: sending the
    decoded split would copy it into every worker, and reading gives the same pixels."""

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        *,
        preload: bool | None = None,
        limit: int | None = None,
        max_preload_bytes: float = 3e9,
        threads: int = 4,
    ) -> None:
        self.data_dir = Path(data_dir)
        rows: list[ManifestRow] = read_manifest(self.data_dir, split)
        if not rows:
            raise ValueError(f"the {split} split of {self.data_dir} is empty")
        if limit is not None and 0 < limit < len(rows):
            picks = np.linspace(0, len(rows) - 1, limit).round().astype(int)
            rows = [rows[i] for i in picks]
        self.rows = rows
        self.split = split
        first = load_rgb(self.path(0))
        self.shape = first.shape
        if preload is None:
            preload = len(rows) * first.nbytes <= max_preload_bytes
        self.array: np.ndarray | None = None
        if preload:
            array = np.empty((len(rows), *self.shape), dtype=np.uint8)

            def fill(i: int) -> None:
                img = load_rgb(self.path(i))
                if img.shape != self.shape:
                    raise ValueError(
                        f"{self.path(i)} is {img.shape[1]}x{img.shape[0]}, the others "
                        f"{self.shape[1]}x{self.shape[0]}: re-run prepare"
                    )
                array[i] = img

            with ThreadPoolExecutor(max(1, threads)) as pool:
                list(pool.map(fill, range(len(rows))))
            self.array = array

    def path(self, i: int) -> Path:
        return self.data_dir / self.rows[i].file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "array": None}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.array is not None:
            return self.array[i]
        img = load_rgb(self.path(i))
        if img.shape != self.shape:
            raise ValueError(f"{self.path(i)} has size {img.shape[:2]}, expected {self.shape[:2]}")
        return img

    @property
    def species(self) -> list[str]:
        return sorted({r.species for r in self.rows})


def sample_rng(seed: int, position: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x5EED, position])


class InpaintingDataset(Dataset):
    """``dataset[(index, position)] -> (image uint8 (3, S, S), hole bool (1, S, S))``.

    The sample's random crop (to ``crop`` pixels, None = full size), horizontal flip and mask
    all come from :func:`sample_rng` ``(seed, position)``. With ``native`` (its ``share`` of the
    positions) the crop comes from image ``index``'s source photo instead (:mod:`trainer.native`;
    its crop size must be ``crop``)."""

    def __init__(
        self,
        images: PreparedImages,
        masks: MaskGenerator,
        *,
        seed: int = 0,
        crop: int | None = None,
        hflip: bool = True,
        native: NativeCrops | None = None,
    ) -> None:
        self.images = images
        self.masks = masks
        self.seed = seed
        h, w = images.shape[:2]
        self.crop = crop or min(h, w)
        if self.crop > min(h, w):
            raise ValueError(f"crop {self.crop} is larger than the prepared images ({w}x{h})")
        self.hflip = hflip
        if native is not None and (native.crop != self.crop or len(native.paths) != len(images)):
            raise ValueError(
                f"the native crops ({native.crop} px, {len(native.paths)} photos) do not match the "
                f"dataset ({self.crop} px, {len(images)} images)"
            )
        self.native = native

    def __len__(self) -> int:
        return len(self.images)

    def _square(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """A random ``crop``-pixel window of prepared image ``index``."""
        img = self.images[index]
        h, w = img.shape[:2]
        s = self.crop
        top = int(rng.integers(0, h - s + 1))
        left = int(rng.integers(0, w - s + 1))
        return img[top : top + s, left : left + s]

    def is_native(self, key: tuple[int, int]) -> bool:
        """Whether sample ``key`` = ``(index, position)`` is a native crop (else a square)."""
        return self.native is not None and self.native.takes(key[1])

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, position = key
        rng = sample_rng(self.seed, position)
        if self.is_native(key):
            img = self.native(rng, index)
        else:
            img = self._square(rng, index)
        s = self.crop
        if self.hflip and rng.random() < 0.5:
            img = img[:, ::-1]
        hole = self.masks(rng, s, s)
        # writable too: a whole decoded image (read on demand) is a read-only view of Pillow's data
        image_t = torch.from_numpy(np.require(img, requirements="CW")).permute(2, 0, 1).contiguous()
        hole_t = torch.from_numpy(np.ascontiguousarray(hole))[None]
        return image_t, hole_t


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, holes = zip(*batch)
    return torch.stack(images), torch.stack(holes)


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's batch of ``(index, position)`` keys for steps ``start .. stop - 1``."""

    def __init__(
        self,
        num_images: int,
        batch_size: int,
        *,
        seed: int = 0,
        start_step: int = 0,
        stop_step: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_images < 1 or batch_size < 1:
            raise ValueError("need at least one image and a positive batch size")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.n = num_images
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.stop_step = stop_step
        self.rank = rank
        self.world_size = world_size
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perms = {epoch: perm, **{k: v for k, v in self._perms.items() if k == epoch - 1}}
        return perm

    def keys(self, step: int) -> list[tuple[int, int]]:
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for p in range(first, first + self.batch_size):
            out.append((int(self.permutation(p // self.n)[p % self.n]), p))
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.world_size * self.batch_size / self.n

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.stop_step):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step)


def worker_init(_worker_id: int) -> None:
    """Data-loader workers draw masks with OpenCV: one thread each, so they do not compete
    with the training threads (torch already limits itself to one thread in workers). They
    ignore SIGINT and SIGTERM: a signal to the process group (Ctrl-C, a job's or a device
    call's SIGTERM) is the main process's to handle, which stops after the step with a
    checkpoint; a worker killed by it made the DataLoader raise in that step instead (2 of 8
    group SIGTERMs with --workers 2 ended with no checkpoint). A worker still ends with its
    parent (the DataLoader's shutdown, or its watchdog when the parent dies)."""
    import cv2

    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
