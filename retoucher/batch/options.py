"""What a batch is asked to do and what it reports: :class:`BatchOptions` (folders, hole,
found damage, weights, device, texture, format, quality), :class:`MaskSpec` (where each photo's given
hole comes from), :class:`BatchReport` (what happened to each photo), :class:`BatchError`, and the
parsers of the ``--rect`` and ``--center-hole`` values. Checked on construction, so a bad option
is a usage error before anything is read. Imports no torch: of the engine, only its torch-free
``engine.geometry`` (through :mod:`retoucher.mask_ops`, for the radius check) and
``engine.texture_strength`` (the texture check) come in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.formats import other_photo_format
from engine.mirror_pass import MIRROR
from engine.texture_strength import check_texture

from ..damage import DEFAULT_DILATE, check_threshold
from ..mask_ops import check_radius

__all__ = [
    "OUTPUT_FORMATS",
    "BatchError",
    "BatchOptions",
    "BatchReport",
    "MaskSpec",
    "XYWH",
    "Size",
    "check_device",
    "parse_rect",
    "parse_size",
]

OUTPUT_FORMATS = ("same", "png", "jpg", "tif", "webp")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

XYWH = tuple[int, int, int, int]
"""A rectangle ``(x, y, w, h)`` in pixels."""

Size = tuple[int, int]
"""A hole size ``(w, h)`` in pixels."""


def check_device(device: str) -> str:
    """``device`` if it names one (auto, cpu, cuda, cuda:N); ValueError otherwise."""
    if not _DEVICE_RE.match(str(device)):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return str(device)


class BatchError(ValueError):
    """A problem with the batch as a whole (bad folders, mask file, weights, device): nothing
    was processed."""


def parse_rect(text: str) -> XYWH:
    """``"X,Y,W,H"`` -> (x, y, w, h) with x, y >= 0 and w, h > 0."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"rectangle must be X,Y,W,H (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"rectangle {text!r}: X and Y must be >= 0, W and H > 0")
    return x, y, w, h


def parse_size(text: str | int) -> Size:
    """``"64"`` -> (64, 64); ``"96x64"`` (width x height) -> (96, 64)."""
    if isinstance(text, int):
        w = h = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
        if not m:
            raise ValueError(f"hole size must be SIZE or WxH in pixels, got {text!r}")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    if w <= 0 or h <= 0:
        raise ValueError(f"hole size must be positive, got {text!r}")
    return int(w), int(h)


@dataclass(frozen=True)
class MaskSpec:
    """Where the hole of each photo comes from.

    ``dir``: a folder of PNG masks named like the photos (``<stem>.png`` or ``<stem>_mask.png``
    in the same sub-folder as the photo; ``<stem>_mask.png`` at the folder's top), white = hole;
    when the mask folder is the input folder (masks next to the photos), only ``_mask`` names;
    ``file``: one mask for every photo; ``rect``: ``(x, y, w, h)`` in pixels; ``center``: a
    centred hole of ``size`` pixels (an int, or ``(w, h)``). Masks of another size than the photo
    are scaled (nearest neighbour) and thresholded at 127.

    ``value`` may be given as text (a path, ``"X,Y,W,H"``, ``"SIZE"`` or ``"WxH"``), an int
    (``center``) or a sequence of ints; once made it is a :class:`~pathlib.Path` (``dir``,
    ``file``), a :data:`XYWH` (``rect``) or a :data:`Size` (``center``).
    """

    kind: Literal["dir", "file", "rect", "center"]
    value: Path | XYWH | Size

    def __post_init__(self) -> None:
        if self.kind in ("dir", "file"):  # "~" too: the shell leaves it in --mask=~/m.png
            object.__setattr__(self, "value", Path(self.value).expanduser())
        elif self.kind == "rect":
            v = (
                parse_rect(self.value)
                if isinstance(self.value, str)
                else parse_rect(",".join(str(int(c)) for c in self.value))
            )
            object.__setattr__(self, "value", v)
        elif self.kind == "center":
            v = (
                parse_size(self.value)
                if isinstance(self.value, (str, int))
                else parse_size("x".join(str(int(c)) for c in self.value))
            )
            object.__setattr__(self, "value", v)
        else:
            raise ValueError(f"unknown mask kind {self.kind!r}; use dir, file, rect or center")

    def describe(self) -> str:
        if self.kind == "dir":
            return f"masks from {self.value}"
        if self.kind == "file":
            return f"mask {self.value}"
        if self.kind == "rect":
            return "rectangle x={} y={} w={} h={}".format(*self.value)
        return "centred hole {}x{}".format(*self.value)


@dataclass
class BatchOptions:
    """A batch: the hole of each photo is the given one (``masks``), the damage found in it
    (``find_damage``, at ``threshold``, grown by ``dilate`` pixels, with the detector
    ``damage_weights``), or both together; at least one of the two. With ``find_damage``, a photo
    that has no mask of its own in a mask folder (``masks`` of kind ``dir``) gets only the damage
    found in it (see :attr:`BatchReport.no_mask`); without it, that photo fails."""

    input_dir: Path
    output_dir: Path
    masks: MaskSpec | None = None
    weights: Path | None = None
    device: str = "auto"
    format: str = "same"  # same | png | jpg | tif | webp
    overwrite: bool = False
    recursive: bool = False
    quality: int | None = None  # None: a JPEG input's own quantisation for JPEG output, else 95
    find_damage: bool = False
    threshold: float | None = None  # None: the detector's calibrated threshold
    dilate: int = DEFAULT_DILATE
    damage_weights: Path | None = None  # None: the bundled detector
    # the photo's texture added to the fill (engine.texture_strength); None: the model's own
    texture: float | None = None
    mirror: bool = MIRROR  # each crop and its mirror image through the network, averaged (False: one pass)

    def __post_init__(self) -> None:
        self.input_dir = Path(self.input_dir)
        self.output_dir = Path(self.output_dir)
        if self.weights is not None:
            self.weights = Path(self.weights)
        fmt = str(self.format).lower().lstrip(".")
        if fmt not in OUTPUT_FORMATS and fmt not in ("jpeg", "tiff"):
            raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.format!r}")
        self.format = fmt
        check_device(self.device)
        if self.quality is not None and (not isinstance(self.quality, int) or not 1 <= self.quality <= 100):
            raise ValueError(f"quality must be an integer from 1 to 100, got {self.quality!r}")
        if self.masks is None and not self.find_damage:
            raise ValueError("no hole given: use --masks, --mask, --rect, --center-hole and/or --find-damage")
        if self.threshold is not None:
            self.threshold = check_threshold(self.threshold)
        self.dilate = check_radius(self.dilate)
        if self.damage_weights is not None:
            self.damage_weights = Path(self.damage_weights)
        if self.texture is not None:
            self.texture = check_texture(self.texture)


def left_out_line(paths: Sequence[Path]) -> str:
    """What a summary says of the photos left out for their format: how many of each format,
    the commonest first, and what to do about them."""
    kinds = Counter(other_photo_format(p) or p.suffix for p in paths)
    told = ", ".join(f"{name} {count}" for name, count in kinds.most_common())
    return (
        f"left out {len(paths)} photo(s) in formats Retoucher does not retouch ({told}): "
        "convert them to JPEG, PNG or TIFF to retouch them"
    )


@dataclass
class BatchReport:
    """What happened to each input photo (paths are the inputs)."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output already there
    failed: list[tuple[Path, str]] = field(default_factory=list)
    total: int = 0  # files assigned to this rank
    cancelled: bool = False
    outputs: dict[Path, Path] = field(default_factory=dict)  # input -> output written
    removed_temporaries: list[Path] = field(default_factory=list)  # left by a killed run
    rank: int = 0
    world_size: int = 1
    model: str | None = None  # "NAME on DEVICE[, texture S]" of the model that filled, if one did
    detector: str | None = None  # "NAME on DEVICE" of the damage detector; None if none ran
    no_damage: list[Path] = field(default_factory=list)  # --find-damage found nothing in them
    no_mask: list[Path] = field(default_factory=list)  # --masks DIR had none for them (--find-damage)
    unchanged: list[Path] = field(default_factory=list)  # done, written as they were: empty hole
    # photos in formats that are not retouched (HEIC, camera RAW, GIF), left out of the plan: the
    # whole run's (every rank finds the same; only rank 0's summary names them)
    left_out: list[Path] = field(default_factory=list)
    # the warnings logged while it ran (a 16-bit photo written with 8 bits, a damaged JPEG, a JPEG
    # re-encoded whole), for a caller that says them afterwards (the app's Batch dialog; the
    # command line printed them as they came, and summary() leaves them out)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    @property
    def not_processed(self) -> int:
        return self.total - len(self.done) - len(self.skipped) - len(self.failed)

    @property
    def prefix(self) -> str:
        return f"[rank {self.rank}/{self.world_size}] " if self.world_size > 1 else ""

    def counts(self) -> list[int]:
        """What the ranks of a torchrun add up: done, skipped, failed, total."""
        return [len(self.done), len(self.skipped), len(self.failed), self.total]

    def headline(self, counts: list[int] | None = None) -> str:
        """The first line of :meth:`summary`, of this report or of ``counts`` (ranks added)."""
        done, skipped, failed, total = (counts or self.counts())[:4]
        parts = [f"done {done}", f"skipped {skipped}", f"failed {failed}"]
        if counts is None and self.cancelled:
            parts.append(f"cancelled with {self.not_processed} not processed")
        return ", ".join(parts) + f" (of {total})"

    def summary(self) -> str:
        prefix = self.prefix
        lines = [prefix + self.headline()]
        if self.model is not None:
            lines.append(f"{prefix}model: {self.model}")
        if self.detector is not None:
            lines.append(f"{prefix}damage detector: {self.detector}")
        if self.no_mask:
            lines.append(
                f"{prefix}no mask of their own for {len(self.no_mask)} photo(s): "
                "only the damage found in them was filled"
            )
        if self.no_damage:
            lines.append(f"{prefix}no damage found in {len(self.no_damage)} photo(s)")
        if self.unchanged:
            lines.append(f"{prefix}{len(self.unchanged)} photo(s) had nothing to fill: written unchanged")
        if self.left_out and self.rank == 0:
            lines.append(prefix + left_out_line(self.left_out))
        lines += [f"{prefix}  FAILED {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)
