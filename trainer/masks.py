"""Hole masks for training and evaluation: ``bool HxW``, True = hole.

Every generator is a callable ``gen(rng, height, width) -> mask`` that draws all its randomness
from the ``numpy.random.Generator`` it is given, so a mask is a deterministic function of the
seed that made ``rng`` (the data loader seeds one per sample; validation uses a fixed seed).

* :class:`CentreHole` - the seed's regular hole: a centred square of a quarter of the side
  (64x64 on 256x256).
* :class:`RandomRectangles` - one to a few axis-aligned rectangles.
* :class:`RandomStrokes` - free-form strokes in the spirit of PConv-Keras' generator: straight
  and bent lines, circles and ellipses of varying width.
* :class:`BrushStrokes`, :class:`Scratches`, :class:`ObjectBlobs` - holes drawn like the app's
  round brush (:mod:`trainer.app_masks`, the shapes of the ``photos`` evaluation) with training's
  ranges: brush strokes 2-60 px wide, thin scratches 2-6 px wide, one object blob of 4-30 % of
  the crop. Widths are pixels of the crop the network sees, whatever its size: the app's
  ``Inpainter`` feeds the network at full resolution, so a 40 px brush is 40 px to the network.
* :class:`MaskFolder` - mask images from a folder (white = hole, e.g. NVIDIA's irregular mask
  set) with random flips, rotations, crops and dilation.
* :class:`MaskMixture` - picks one of the above per sample with given weights; built from a
  spec such as ``center:0.4,strokes:0.3,folder:0.3`` by :func:`parse_mask_mixture`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from engine.imageio import load_mask

from . import app_masks

__all__ = [
    "MaskGenerator",
    "CentreHole",
    "RandomRectangles",
    "RandomStrokes",
    "BrushStrokes",
    "Scratches",
    "ObjectBlobs",
    "BRUSH_WIDTHS",
    "TRAIN_BLOB_AREA",
    "MaskFolder",
    "MaskMixture",
    "MASK_KINDS",
    "parse_mask_mixture",
    "hole_ratio",
    "is_held_out",
    "MASK_SUFFIXES",
]

MASK_SUFFIXES = (".png", ".bmp", ".gif", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")
BRUSH_WIDTHS = (2, 60)  # px: a fine retouch brush up to a broad one
TRAIN_BLOB_AREA = (0.04, 0.30)  # of the crop: the evaluation's 4-12 % of a photo, and closer crops
AUGMENT_TRIES = 8  # augmentations of a folder mask drawn before its plain resize is taken (no hole left)


class MaskGenerator(Protocol):
    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray: ...


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.count_nonzero(mask)) / mask.size


@dataclass(frozen=True)
class CentreHole:
    """A centred rectangle of ``fraction`` of each side (the seed's 64x64 hole on 256x256)."""

    fraction: float = 0.25

    def __call__(self, rng: np.random.Generator | None, height: int, width: int) -> np.ndarray:
        hh, hw = max(1, round(height * self.fraction)), max(1, round(width * self.fraction))
        top, left = (height - hh) // 2, (width - hw) // 2
        mask = np.zeros((height, width), dtype=bool)
        mask[top : top + hh, left : left + hw] = True
        return mask


@dataclass(frozen=True)
class RandomRectangles:
    """``1..max_count`` rectangles, each side a uniform fraction in ``[min_side, max_side]``."""

    max_count: int = 3
    min_side: float = 0.1
    max_side: float = 0.5

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), dtype=bool)
        for _ in range(int(rng.integers(1, self.max_count + 1))):
            rh = max(1, int(round(height * rng.uniform(self.min_side, self.max_side))))
            rw = max(1, int(round(width * rng.uniform(self.min_side, self.max_side))))
            top = int(rng.integers(0, height - rh + 1))
            left = int(rng.integers(0, width - rw + 1))
            mask[top : top + rh, left : left + rw] = True
        return mask


@dataclass(frozen=True)
class RandomStrokes:
    """Free-form strokes: lines (straight or bent, like a brush), circles and ellipses.

    Widths scale with the image (``width_scale`` of the mean side, at least 3 px), so the masks
    look alike at any resolution. Drawing uses OpenCV on a uint8 canvas."""

    max_lines: int = 10
    max_circles: int = 5
    max_ellipses: int = 5
    width_scale: float = 0.06

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        canvas = np.zeros((height, width), dtype=np.uint8)
        big = max(4, int(round((height + width) / 2 * self.width_scale)))

        def point() -> tuple[int, int]:
            return int(rng.integers(0, width)), int(rng.integers(0, height))

        for _ in range(int(rng.integers(1, self.max_lines + 1))):
            thickness = int(rng.integers(3, big + 1))
            x, y = point()
            for _ in range(int(rng.integers(1, 5))):  # 1 = straight line, more = a bent stroke
                angle = rng.uniform(0, 2 * np.pi)
                length = rng.uniform(0.1, 0.5) * (height + width) / 2
                nx = int(np.clip(x + length * np.cos(angle), 0, width - 1))
                ny = int(np.clip(y + length * np.sin(angle), 0, height - 1))
                cv2.line(canvas, (x, y), (nx, ny), 255, thickness, lineType=cv2.LINE_8)
                x, y = nx, ny
        for _ in range(int(rng.integers(0, self.max_circles + 1))):
            cv2.circle(canvas, point(), int(rng.integers(3, big + 1)), 255, -1)
        for _ in range(int(rng.integers(0, self.max_ellipses + 1))):
            axes = (int(rng.integers(3, 2 * big + 1)), int(rng.integers(3, 2 * big + 1)))
            angle = float(rng.uniform(0, 360))
            start = float(rng.uniform(0, 180))
            end = start + float(rng.uniform(90, 360))
            cv2.ellipse(canvas, point(), axes, angle, start, end, 255, int(rng.integers(3, big + 1)))
        return canvas > 0


@dataclass(frozen=True)
class BrushStrokes:
    """2-4 round-brush polylines (:func:`trainer.app_masks.brush_strokes`), each ``widths`` px."""

    widths: tuple[int, int] = BRUSH_WIDTHS

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return app_masks.brush_strokes(rng, height, width, self.widths)


@dataclass(frozen=True)
class Scratches:
    """1-3 long thin scratches (:func:`trainer.app_masks.scratches`), each ``widths`` px."""

    widths: tuple[int, int] = app_masks.SCRATCH_WIDTHS

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return app_masks.scratches(rng, height, width, self.widths)


@dataclass(frozen=True)
class ObjectBlobs:
    """One filled irregular shape (:func:`trainer.app_masks.object_blob`) of ``area`` of the crop."""

    area: tuple[float, float] = TRAIN_BLOB_AREA

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return app_masks.object_blob(rng, height, width, self.area)


def is_held_out(name: str, fraction: float) -> bool:
    """Deterministic by file name: the same masks are held out of training and used for
    evaluation, whatever the order or the other files in the folder."""
    return (zlib.crc32(name.encode("utf-8")) % 10_000) < fraction * 10_000


def held_out_subset(directory: str | Path, fraction: float) -> tuple[str, str | None]:
    """Which :class:`MaskFolder` subset to evaluate or validate on: ``"holdout"`` (the files
    kept out of training) when ``fraction`` > 0 and the folder has any, else ``"all"``. The second
    value is a warning when a holdout was asked for but the folder is too small to have one."""
    if fraction <= 0:
        return "all", None
    files = MaskFolder(Path(directory), subset="all").files
    if any(is_held_out(p.name, fraction) for p in files):
        return "holdout", None
    return "all", (
        f"none of the {len(files)} masks in {directory} is among the {fraction:.0%} held out of "
        "training; using all of them (so they are training masks too)"
    )


def _opens(path: Path) -> bool:
    """Whether ``path`` is an image that decodes (a truncated mask drawn hours into a run ended
    it). A PNG that Pillow's ``verify`` passes (its chunks and their checksums read to the end,
    nothing decoded: 1,200 NVIDIA masks in 0.05 s) is taken as it is; any other file, or a PNG
    that fails it (a wrong checksum over intact data still decodes), is decoded."""
    try:
        with Image.open(path) as im:
            if im.format == "PNG":
                im.verify()
                return True
    except Exception:  # noqa: BLE001 - decoded below, which says
        pass
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - OSError, SyntaxError, DecompressionBombError...: not usable
        return False


@dataclass
class MaskFolder:
    """Masks read from a folder (white/>127 = hole), chosen uniformly at random.

    ``subset``: ``"all"``, ``"train"`` (the files not held out) or ``"holdout"`` (the fraction
    ``holdout`` of files chosen by :func:`is_held_out`). With ``augment`` each mask is randomly
    rotated, flipped, cropped (``min_crop``..1 of its side), resized (nearest) and dilated
    (0..``max_dilation`` pixels); without, it is only resized to the requested size.
    """

    directory: Path
    subset: str = "all"
    holdout: float = 0.0
    augment: bool = True
    min_crop: float = 0.75
    max_dilation: int = 2
    files: list[Path] = field(init=False)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"mask folder not found: {self.directory}")
        if self.subset not in ("all", "train", "holdout"):
            raise ValueError(f"subset must be all, train or holdout, got {self.subset!r}")
        files = sorted(
            p
            for p in self.directory.rglob("*")
            if p.is_file() and p.suffix.lower() in MASK_SUFFIXES and not p.name.startswith(".")
        )
        if self.subset == "train":
            files = [p for p in files if not is_held_out(p.name, self.holdout)]
        elif self.subset == "holdout":
            files = [p for p in files if is_held_out(p.name, self.holdout)]
        if not files:
            raise ValueError(f"no mask images ({self.subset} subset) in {self.directory}")
        # Before any run starts (a file drawn only hours in would end it): every file must open as
        # an image and pass Pillow's verify (a truncated PNG does not).
        unreadable = [p for p in files if not _opens(p)]
        if unreadable:
            names = ", ".join(p.name for p in unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
            raise ValueError(
                f"{len(unreadable)} file(s) in the mask folder {self.directory} are not readable "
                f"images: {names}; remove or repair them"
            )
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, height: int, width: int) -> np.ndarray:
        """File ``index`` resized (nearest) to ``height x width``, without augmentation."""
        mask = load_mask(self.files[index])
        if mask.shape != (height, width):
            mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        return mask

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        index = int(rng.integers(0, len(self.files)))
        if not self.augment:
            return self.load(index, height, width)
        # a rotation and crop can leave no hole at all (strokes near a corner: about 1 draw in
        # 800 of the NVIDIA masks), which would teach the identity: drawn again, from the same rng
        for _ in range(AUGMENT_TRIES):
            m = self._augmented(rng, index, height, width)
            if m.any():
                return m
        return self.load(index, height, width)

    def _augmented(self, rng: np.random.Generator, index: int, height: int, width: int) -> np.ndarray:
        m = load_mask(self.files[index]).astype(np.uint8) * 255
        mh, mw = m.shape
        angle = float(rng.uniform(0, 360))
        rot = cv2.getRotationMatrix2D((mw / 2, mh / 2), angle, 1.0)
        m = cv2.warpAffine(m, rot, (mw, mh), flags=cv2.INTER_NEAREST, borderValue=0)
        if rng.random() < 0.5:
            m = m[:, ::-1]
        if rng.random() < 0.5:
            m = m[::-1, :]
        crop = rng.uniform(self.min_crop, 1.0)
        ch, cw = max(1, int(mh * crop)), max(1, int(mw * crop))
        top, left = int(rng.integers(0, mh - ch + 1)), int(rng.integers(0, mw - cw + 1))
        m = np.ascontiguousarray(m[top : top + ch, left : left + cw])
        m = cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST)
        dilation = int(rng.integers(0, self.max_dilation + 1))
        if dilation:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1,) * 2)
            m = cv2.dilate(m, kernel)
        return m > 127


@dataclass
class MaskMixture:
    """Chooses one generator per mask with probability proportional to its weight."""

    generators: list[MaskGenerator]
    weights: list[float]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.generators or len(self.generators) != len(self.weights):
            raise ValueError("a mask mixture needs one weight per generator")
        w = np.asarray(self.weights, dtype=np.float64)
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mask weights must be >= 0 with a positive sum, got {self.weights}")
        self.probabilities = w / w.sum()

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        k = int(rng.choice(len(self.generators), p=self.probabilities))
        return self.generators[k](rng, height, width)


MASK_KINDS: dict[str, str] = {
    "center": "the seed's centred square hole (a quarter of the side)",
    "rects": "1-3 random rectangles",
    "strokes": "free-form lines, circles and ellipses",
    "brush": "2-4 round-brush strokes 2-60 px wide, like the app's brush",
    "scratches": "1-3 long thin scratches 2-6 px wide",
    "blobs": "one object blob covering 4-30% of the crop",
    "folder": "masks from --mask-dir, augmented",
}
_ALIASES = {
    "centre": "center",
    "rectangles": "rects",
    "rect": "rects",
    "irregular": "folder",
    "scratch": "scratches",
    "blob": "blobs",
    "objects": "blobs",
}


def trained_holdout(recipe: object) -> float | None:
    """The smallest ``--mask-holdout`` among the stages of ``recipe`` (a weight file's or a
    checkpoint's list of training stages, a soup's ingredients' included) that drew from a mask
    folder; None when none did or
    the recipe does not say. Hold-outs are nested (:func:`is_held_out`), so evaluating on a larger
    fraction than this would score masks the model trained on."""
    fractions = []
    for stage in recipe if isinstance(recipe, list) else []:
        if not isinstance(stage, dict):
            continue
        for ingredient in stage.get("soup") or []:  # a soup's stage: each model's own recipe
            nested = trained_holdout(ingredient.get("recipe") if isinstance(ingredient, dict) else None)
            if nested is not None:
                fractions.append(nested)
        if not stage.get("mask_dir"):
            continue
        try:
            drawn = any(
                name == "folder" and w > 0 for name, w in mask_spec_items(str(stage.get("masks") or ""))
            )
        except ValueError:  # a recipe its trainer parsed: not met; counted as drawing, to refuse
            drawn = True
        if drawn:
            fractions.append(float(stage.get("mask_holdout") or 0.0))
    return min(fractions) if fractions else None


def mask_spec_items(spec: str) -> list[tuple[str, float]]:
    """``"center:0.4,strokes:0.3,folder"`` -> ``[("center", 0.4), ("strokes", 0.3), ("folder",
    1.0)]``: each kind's name (aliases resolved) and weight (1 when it has none); ValueError for
    a weight that is not a number."""
    items = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, weight_text = part.partition(":")
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            raise ValueError(f"bad weight in mask spec {part!r}: expected NAME:NUMBER") from None
        items.append((_ALIASES.get(name.strip().lower(), name.strip().lower()), weight))
    return items


def parse_mask_mixture(
    spec: str,
    mask_dir: str | Path | None = None,
    *,
    holdout: float = 0.0,
    folder_subset: str = "train",
    augment: bool = True,
) -> MaskMixture:
    """``"center:0.4,strokes:0.3,folder:0.3"`` -> :class:`MaskMixture`. A kind without a weight
    counts 1. ``folder`` needs ``mask_dir``; it uses the files not held out (``holdout``)."""
    generators: list[MaskGenerator] = []
    weights: list[float] = []
    names: list[str] = []
    makers: dict[str, Callable[[], MaskGenerator]] = {
        "center": CentreHole,
        "rects": RandomRectangles,
        "strokes": RandomStrokes,
        "brush": BrushStrokes,
        "scratches": Scratches,
        "blobs": ObjectBlobs,
    }
    for name, weight in mask_spec_items(spec):
        if name == "folder":
            if mask_dir is None:
                raise ValueError("the 'folder' mask kind needs --mask-dir")
            gen: MaskGenerator = MaskFolder(
                Path(mask_dir), subset=folder_subset, holdout=holdout, augment=augment
            )
        elif name in makers:
            gen = makers[name]()
        else:
            raise ValueError(f"unknown mask kind {name!r}; choose from {', '.join(MASK_KINDS)}")
        generators.append(gen)
        weights.append(weight)
        names.append(name)
    if not generators:
        raise ValueError(f"empty mask spec {spec!r}")
    return MaskMixture(generators, weights, names)
