"""``retoucher-train evaluate``: the model against OpenCV's Telea and Navier-Stokes inpainting on
the test split, same images and same masks for every method.

Tasks:

* ``center`` - the seed's regular hole: a centred square of a quarter of the side.
* ``irregular`` - masks from ``--mask-dir`` (e.g. NVIDIA's irregular masks), resized to the
  images, grouped by hole ratio in bands of 10 % (0-10 %, ..., 50-60 %; a mask with a ratio
  of exactly 10 % is in the first band, as in NVIDIA's set). Every test image is paired with
  one mask per band, drawn with a fixed seed. By default only the masks held out of training
  (``--mask-holdout``, same rule and default as ``train``) are used.

* ``photos`` - the split's source photos at native resolution with holes drawn like the app's
  brush (strokes, scratches, one object blob), against Telea, Navier-Stokes and PatchMatch,
  with hole PSNR, texture and a VGG-feature distance: see :mod:`trainer.photo_eval`.
  ``--photos-limit`` keeps it short. ``both`` = center + irregular; ``all`` adds photos.

``--split val`` runs the same comparison on the validation split, to choose between runs and
recipes without looking at the test split that the README reports. ``--compare W [W ...]`` adds
other models (weight files or checkpoints) to the same run: the same images and holes, the
baselines computed once, each model a method of its own (``cmp1``, ``cmp2``... in the JSON).

Metrics on the composite (only hole pixels replaced), uint8 results: hole L1 (mean absolute
error over hole pixels, 0-1 scale), PSNR and SSIM of the whole image (trainer.metrics). Writes a
Markdown table, the same numbers as JSON, and a grid of examples (input with hole, Telea,
Navier-Stokes, ours, original).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from engine.atomic import check_writable, write_text_atomic
from engine.mirror_pass import MIRROR

from .checkpoint import is_weight_file, load_checkpoint, model_from_checkpoint
from .data import PreparedImages
from .export import weights_fingerprint
from .grid import draw_grid
from .inference import composite, score
from .masks import CentreHole, MaskFolder, held_out_subset, hole_ratio, trained_holdout

if TYPE_CHECKING:  # pragma: no cover
    from engine.inpainter import Inpainter

__all__ = ["EvalConfig", "EvalRow", "EvalReport", "evaluate", "ratio_band", "opencv_inpaint", "METHODS"]

METHODS = ("telea", "ns", "ours")
METHOD_LABELS = {"telea": "OpenCV Telea", "ns": "OpenCV Navier-Stokes", "ours": "Retoucher U-Net"}
BANDS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 1.0)]


@dataclass
class EvalConfig:
    data: str
    weights: str  # a weight file (.safetensors) or a training checkpoint (.pt / RUN_DIR)
    task: str = "both"  # center | irregular | both | photos | all
    mask_dir: str | None = None
    mask_holdout: float = 0.2  # use the held-out masks only (0 = all masks)
    limit: int | None = None  # images of the split (evenly spaced); None = all
    split: str = "test"  # test (what gets reported) | val (for choosing between runs)
    seed: int = 0
    device: str = "auto"
    batch_size: int = 16
    radius: int = 3  # OpenCV inpaintRadius
    out: str = "evaluation.md"
    grid: str | None = None  # default: next to --out, .jpg
    grid_rows: int = 6
    progress: bool = True
    photos_limit: int | None = 100  # photos task: source photos (evenly spaced); None/0 = all
    compare: tuple[str, ...] = ()  # more models, each a method of its own (cmp1, cmp2, ...)
    # texture strength (engine.texture): none = the Inpainter's default for every model, one =
    # every model's, or one per model (the model, then each --compare) to compare settings
    texture: tuple[float, ...] = ()
    mirror: bool = MIRROR  # every model's fills averaged with its fills of the mirror image

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(
                f"--limit must be at least 1 (leave it out for the whole split), got {self.limit}"
            )
        if self.photos_limit is not None and self.photos_limit < 0:
            raise ValueError(f"--photos-limit must be at least 0 (0 = every photo), got {self.photos_limit}")


@dataclass
class EvalRow:
    task: str
    band: str
    method: str
    images: int
    hole_l1: float
    psnr: float
    ssim: float


@dataclass
class EvalReport:
    rows: list[EvalRow] = field(default_factory=list)
    markdown: str = ""
    model: str = ""
    split: str = "test"
    images: int = 0
    comparisons: dict[str, dict[str, float]] = field(default_factory=dict)
    compared: dict[str, str] = field(default_factory=dict)  # cmp1 -> model name (--compare)
    out: Path | None = None
    grid: Path | None = None
    photos: dict[str, Any] | None = None  # the photos task's section of the JSON
    photo_grids: list[Path] = field(default_factory=list)
    texture: float = 0.0  # ours' texture strength (engine.texture)
    mirror: bool = MIRROR  # ours averaged its fill with its fill of the mirror image (engine.Inpainter)
    textures: dict[str, float] = field(default_factory=dict)  # every model's strength, with --compare
    weights: str = ""  # ours' trainer.export.weights_fingerprint: export checks a table is its model's

    def to_json(self) -> dict[str, Any]:
        return (
            {"model": self.model, "split": self.split}
            | ({"weights": self.weights} if self.weights else {})
            | ({f"{self.split}_images": self.images} if self.rows else {})  # the squares' count
            | {
                "texture_strength": self.texture,
                "mirror": self.mirror,
                "rows": [asdict(r) for r in self.rows],
                "vs_navier_stokes": self.comparisons,
            }
            | ({"photos": self.photos} if self.photos is not None else {})
            | ({"compared": self.compared, "textures": self.textures} if self.compared else {})
        )


def ratio_band(ratio: float) -> int | None:
    """Index into BANDS: (0, 0.1] -> 0, (0.1, 0.2] -> 1, ..., above 0.6 -> 6; empty -> None."""
    if ratio <= 0.0:
        return None
    return min(len(BANDS) - 1, max(0, math.ceil(round(ratio * 10, 9)) - 1))


def band_label(i: int) -> str:
    lo, hi = BANDS[i]
    return f"{lo * 100:.0f}-{hi * 100:.0f}%"


def opencv_inpaint(image: np.ndarray, hole: np.ndarray, method: str, radius: int = 3) -> np.ndarray:
    """OpenCV's Telea or Navier-Stokes fill of ``hole``, every other pixel as ``image``.

    The hole is blanked first, to the mean colour of the known pixels: ``cv2.inpaint`` takes the
    image's outermost 1-2 px frame for known even where the mask says hole, so a hole touching
    the border read the truth there (up to 50 grey levels of difference 30 px in); the other
    methods never see it (the app's photo holds the damage or the object there, not the truth).
    """
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    hole = np.asarray(hole, dtype=bool)
    known = image[~hole]
    blank = known.mean(axis=0).round().astype(np.uint8) if known.size else np.zeros(3, np.uint8)
    given = np.where(hole[..., None], blank, image).astype(np.uint8)
    filled = cv2.inpaint(given, hole.astype(np.uint8) * 255, radius, flag)
    return composite(image, filled, hole)


def _textures(given: tuple[float, ...], models: int) -> tuple[float | None, ...]:
    """Each model's texture strength from ``--texture``: none given = each Inpainter's default
    (None), one = every model's, else exactly one per model."""
    if not given:
        return (None,) * models
    if len(given) == 1:
        return tuple(given) * models
    if len(given) != models:
        raise ValueError(
            f"--texture: give one strength for every model or one per model ({models}: the model, "
            f"then each --compare), got {len(given)}"
        )
    return tuple(given)


def _load_inpainter(
    weights: str, device: str, batch_size: int = 16, texture: float | None = None, mirror: bool = MIRROR
) -> tuple[Inpainter, str, dict[str, Any]]:
    """An engine Inpainter for a weight file or a training checkpoint; its name; provenance.
    Always full precision, so that the figures do not depend on the CPU's bf16 support.
    ``texture``: the Inpainter's texture strength (None: its default, as the app uses it);
    ``mirror``: the mirrored second pass (the Inpainter's default, as the app fills)."""
    from engine.inpainter import Inpainter

    options: dict[str, Any] = {"batch_size": batch_size, "precision": "fp32", "mirror": mirror}
    if texture is not None:  # else the Inpainter's own default
        options["texture"] = texture
    path = Path(weights)
    if is_weight_file(path):
        inp = Inpainter(path, device=device, **options)
        return inp, inp.name, dict(inp.info.provenance) if inp.info else {}
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt)
    name = f"{Path(ckpt['path']).parent.name}/{Path(ckpt['path']).name} (step {ckpt['step']})"
    inp = Inpainter.from_model(model, device=device, name=name, **options)
    return inp, name, {"recipe": list(ckpt.get("lineage") or [])}


def _check_holdout(fraction: float, recipes: list[tuple[str, object]]) -> None:
    """ValueError when a model (``recipes``: each model's name and recipe) trained on a mask
    folder held out less of it than ``fraction``: the irregular task would score it on masks it
    trained on."""
    for name, recipe in recipes:
        trained = trained_holdout(recipe)
        if trained is not None and fraction > trained:
            raise ValueError(
                f"--mask-holdout {fraction:g}: {name} was trained with --mask-holdout {trained:g} (of "
                f"its mask folder, per its recipe), so part of the masks held out here would be training "
                f"masks if the folders are one; evaluate with --mask-holdout {trained:g} or less"
            )


def name_with_texture(inp: Inpainter) -> None:
    """Name ``inp`` with its texture strength (``NAME, texture S``): one model at several
    strengths, told apart in tables and grids."""
    inp.info = replace(inp.info, name=f"{inp.name}, texture {inp.texture:g}")


Models = dict[str, "Inpainter"]  # method key ("ours", "cmp1", ...) -> the model


def model_label(key: str, models: Models, labels: dict[str, str] = METHOD_LABELS) -> str:
    """The table's name of a method: its label in ``labels`` (the baselines', ours), else a
    compared model's own name (the report's heading names ours)."""
    return labels[key] if key in labels else models[key].name


def _run_methods(
    models: Models,
    images: np.ndarray,
    holes: np.ndarray,
    cfg: EvalConfig,
    desc: str,
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    n = len(images)
    bar = tqdm(total=(2 + len(models)) * n, desc=desc, unit="fill", disable=not cfg.progress)
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:  # cv2 releases the GIL
        for method in ("telea", "ns"):
            results = []
            for res in pool.map(
                lambda k, m=method: opencv_inpaint(images[k], holes[k], m, cfg.radius), range(n)
            ):
                results.append(res)
                bar.update()
            out[method] = np.stack(results)
    for key, inpainter in models.items():
        filled = []
        for start in range(0, n, cfg.batch_size):
            sl = slice(start, start + cfg.batch_size)
            chunk = inpainter.inpaint_batch(list(images[sl]), list(holes[sl]))
            filled += chunk
            bar.update(len(chunk))
        out[key] = np.stack(filled)
    bar.close()
    return out


def _rows(
    task: str,
    band: str,
    results: dict[str, np.ndarray],
    images: np.ndarray,
    holes: np.ndarray,
    store: dict[str, dict[str, list[np.ndarray]]],
) -> list[EvalRow]:
    rows = []
    for method in results:
        s = score(results[method], images, holes)
        for k, v in s.items():
            store.setdefault(method, {}).setdefault(k, []).append(v)
        rows.append(
            EvalRow(
                task,
                band,
                method,
                len(images),
                float(np.nanmean(s["hole_l1"])),
                float(np.mean(s["psnr"])),
                float(np.mean(s["ssim"])),
            )
        )
    return rows


def _total_rows(task: str, store: dict[str, dict[str, list[np.ndarray]]]) -> list[EvalRow]:
    rows = []
    for method in store:
        s = {k: np.concatenate(v) for k, v in store[method].items()}
        rows.append(
            EvalRow(
                task,
                "all",
                method,
                len(s["psnr"]),
                float(np.nanmean(s["hole_l1"])),
                float(np.mean(s["psnr"])),
                float(np.mean(s["ssim"])),
            )
        )
    return rows


def _compare(rows: list[EvalRow], method: str = "ours") -> dict[str, float]:
    by = {r.method: r for r in rows}
    ours, ns = by[method], by["ns"]
    return {
        "psnr_gain_db": ours.psnr - ns.psnr,
        "hole_l1_change_pct": 100.0 * (ours.hole_l1 - ns.hole_l1) / ns.hole_l1 if ns.hole_l1 else 0.0,
        "ssim_gain": ours.ssim - ns.ssim,
    }


def _table(
    rows: list[EvalRow], with_band: bool, label: Callable[[str], str] = METHOD_LABELS.__getitem__
) -> list[str]:
    head = ("| Hole ratio " if with_band else "") + "| Method | Images | Hole L1 ↓ | PSNR (dB) ↑ | SSIM ↑ |"
    sep = ("|---" if with_band else "") + "|---|---:|---:|---:|---:|"
    lines = [head, sep]
    for r in rows:
        band = f"| {r.band} " if with_band else ""
        lines.append(
            f"{band}| {label(r.method)} | {r.images} | {r.hole_l1:.4f} | {r.psnr:.2f} | {r.ssim:.4f} |"
        )
    return lines


def _gain_line(c: dict[str, float], what: str, who: str = "Retoucher") -> str:
    return (
        f"{who} vs Navier-Stokes ({what}): PSNR {c['psnr_gain_db']:+.2f} dB, "
        f"hole L1 {c['hole_l1_change_pct']:+.1f} %, SSIM {c['ssim_gain']:+.4f}"
    )


def _grid(examples: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], str]], path: Path) -> Path:
    """Rows of: input with the hole in white, Telea, Navier-Stokes, ours, original."""
    rows = []
    for image, hole, results, _caption in examples:
        shown = image.copy()
        shown[hole] = 255
        rows.append([shown, results["telea"], results["ns"], results["ours"], image])
    return draw_grid(["Input", "Telea", "Navier-Stokes", "Ours", "Original"], rows, path)


TASKS = {
    "center": ("center",),
    "irregular": ("irregular",),
    "both": ("center", "irregular"),
    "photos": ("photos",),
    "all": ("center", "irregular", "photos"),
}

Examples = list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], str]]


def _gains(report: EvalReport, task: str, rows: list[EvalRow], what: str, models: Models) -> list[str]:
    """vs-Navier-Stokes figures of every model into ``report.comparisons`` (``task`` for ours,
    ``task/cmp1``... for the compared ones) and their Markdown lines."""
    lines = []
    for key in models:
        name = task if key == "ours" else f"{task}/{key}"
        report.comparisons[name] = _compare(rows, key)
        who = "Retoucher" if key == "ours" else model_label(key, models)
        lines.append(_gain_line(report.comparisons[name], what, who))
    return lines


def _center_task(
    models: Models,
    images: np.ndarray,
    cfg: EvalConfig,
    report: EvalReport,
    md: list[str],
    examples: Examples,
    per_task_examples: int,
) -> None:
    n, h, w = images.shape[:3]
    hole = CentreHole()(None, h, w)
    holes = np.broadcast_to(hole, (n, h, w)).copy()
    results = _run_methods(models, images, holes, cfg, "centre hole")
    store: dict[str, dict[str, list[np.ndarray]]] = {}
    rows = _rows("center", "centre", results, images, holes, store)
    report.rows += rows
    hh, hw = int(hole.any(1).sum()), int(hole.any(0).sum())
    md += [f"### Centre hole ({hw}x{hh} on {w}x{h})", ""]
    md += _table(rows, False, lambda m: model_label(m, models))
    md += ["", *_gains(report, "center", rows, "centre hole", models), ""]
    for k in np.linspace(0, n - 1, min(n, per_task_examples)).round().astype(int):
        examples.append((images[k], holes[k], {m: results[m][k] for m in METHODS}, "centre"))


def _irregular_task(
    models: Models,
    images: np.ndarray,
    cfg: EvalConfig,
    report: EvalReport,
    md: list[str],
    examples: Examples,
    per_task_examples: int,
    log: Callable[[str], None],
) -> None:
    n, h, w = images.shape[:3]
    subset, warning = held_out_subset(Path(cfg.mask_dir), cfg.mask_holdout)  # type: ignore[arg-type]
    if warning:
        log(f"warning: {warning}")
    folder = MaskFolder(Path(cfg.mask_dir), subset=subset, holdout=cfg.mask_holdout, augment=False)  # type: ignore[arg-type]
    by_band: dict[int, list[np.ndarray]] = {}
    for idx in range(len(folder)):
        m = folder.load(idx, h, w)
        b = ratio_band(hole_ratio(m))
        if b is not None:
            by_band.setdefault(b, []).append(m)
    if not by_band:
        raise ValueError(f"no usable (non-empty) masks in {cfg.mask_dir}")
    store: dict[str, dict[str, list[np.ndarray]]] = {}
    band_rows: list[EvalRow] = []
    band_examples = []
    for b in sorted(by_band):
        masks = by_band[b]
        picks = [int(np.random.default_rng([cfg.seed, b, i]).integers(len(masks))) for i in range(n)]
        holes = np.stack([masks[p] for p in picks])
        results = _run_methods(models, images, holes, cfg, f"irregular {band_label(b)}")
        band_rows += _rows("irregular", band_label(b), results, images, holes, store)
        k = (b * 7) % n
        band_examples.append((images[k], holes[k], {m: results[m][k] for m in METHODS}, band_label(b)))
    total = _total_rows("irregular", store)
    report.rows += band_rows + total
    mask_counts = ", ".join(f"{band_label(b)}: {len(v)}" for b, v in sorted(by_band.items()))
    md += [
        "### Irregular masks by hole ratio",
        "",
        f"Masks: `{cfg.mask_dir}`"
        + (f", the {cfg.mask_holdout:.0%} held out of training" if subset == "holdout" else ", all files")
        + f" ({sum(len(v) for v in by_band.values())} masks; per band {mask_counts}). "
        f"Each {cfg.split} image is paired with one mask per band."
        + (f" Warning: {warning}." if warning else ""),
        "",
    ]
    md += _table(band_rows + total, True, lambda m: model_label(m, models))
    md += ["", *_gains(report, "irregular", total, "irregular, all bands", models), ""]
    step = max(1, len(band_examples) // per_task_examples)
    examples += band_examples[::step][:per_task_examples]


def _photos_grid_path(cfg: EvalConfig, kind: str) -> Path:
    base = Path(cfg.grid) if cfg.grid else Path(cfg.out).with_suffix(".jpg")
    return base.with_name(f"{base.stem}-photos-{kind}{base.suffix}")


def check_report_file(target: Path, option: str, example: str = "eval.md") -> None:
    """ValueError, before any work, when a report cannot be written at ``target`` (given as
    ``option``; ``example``: a file name the error suggests): a folder, a read-only file, a folder
    that cannot be made or written in ran the whole evaluation (up to an hour here) and lost its
    figures in a traceback at the end."""
    if target.is_dir():
        raise ValueError(f"{option}: {target} is a folder; name the report's file ({target / example})")
    try:
        check_writable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent, prefix=".retoucher-write-check."):
            pass
    except OSError as exc:
        raise ValueError(f"{option}: cannot write {target}: {exc.strerror or exc}") from None


def _check_report_path(out: Path) -> None:
    """:func:`check_report_file` for the report and its ``.json``."""
    for target in (out, out.with_suffix(".json")):
        check_report_file(target, f"--out {out}")


def evaluate(cfg: EvalConfig, log: Callable[[str], None] = print) -> EvalReport:
    if cfg.task not in TASKS:
        raise ValueError(f"--task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    tasks = TASKS[cfg.task]
    if "irregular" in tasks and not cfg.mask_dir:
        raise ValueError("the irregular task needs --mask-dir")
    if cfg.split not in ("test", "val"):
        raise ValueError(f"--split must be test or val, got {cfg.split!r}")
    textures = _textures(cfg.texture, 1 + len(cfg.compare))  # a wrong count fails before any reading
    if Path(cfg.out).suffix.lower() == ".json":
        raise ValueError(
            f"--out {cfg.out}: the Markdown report's path (the JSON is written beside it as .json)"
        )
    _check_report_path(Path(cfg.out))
    square = [t for t in tasks if t != "photos"]
    vgg = None
    if "photos" in tasks:  # what the photos task needs, before the square tasks' hours
        from .photo_eval import photo_vgg

        vgg = photo_vgg()
    images = np.zeros((0, 0, 0, 3), np.uint8)
    if square:
        prepared = PreparedImages(cfg.data, cfg.split, preload=True, limit=cfg.limit)
        images = np.stack([prepared[i] for i in range(len(prepared))])
    inpainter, name, provenance = _load_inpainter(
        cfg.weights, cfg.device, cfg.batch_size, textures[0], cfg.mirror
    )
    models: Models = {"ours": inpainter}
    recipes = [(name, provenance.get("recipe"))]  # a list: two models may share a name
    for i, (path, strength) in enumerate(zip(cfg.compare, textures[1:]), 1):
        models[f"cmp{i}"], other, provenance = _load_inpainter(
            path, cfg.device, cfg.batch_size, strength, cfg.mirror
        )
        recipes.append((other, provenance.get("recipe")))
    if "irregular" in tasks:
        _check_holdout(cfg.mask_holdout, recipes)
    mixed = len({m.texture for m in models.values()}) > 1
    if mixed:  # a compared model named as another one: named with its strength
        for m in list(models.values())[1:]:
            if sum(o.name == m.name for o in models.values()) > 1:
                name_with_texture(m)
    for i, m in enumerate(list(models.values())[1:], 1):  # the name is inside the file: add its path
        if sum(o.name == m.name for o in models.values()) > 1:
            m.info = replace(m.info, name=f"{m.name} (--compare {i}: {Path(cfg.compare[i - 1]).name})")
    names = [m.name for m in models.values()]
    report = EvalReport(
        model=name,
        split=cfg.split,
        images=len(images),
        texture=inpainter.texture,
        mirror=inpainter.mirror,
        weights=weights_fingerprint(inpainter.model),
    )
    if mixed:
        texture = (
            "Texture synthesis (engine.texture) strength "
            + ", ".join(f"{m.texture:g} for {m.name}" for m in models.values())
            + "."
        )
    else:
        texture = f"Texture synthesis (engine.texture) strength {inpainter.texture:g} for every model."
    texture += (
        " Each fill of every model averages the network's fills of the crop and of its mirror image "
        "(the Inpainter's default)."
        if inpainter.mirror
        else " One network pass per fill."
    )
    report.compared = {k: m.name for k, m in models.items() if k != "ours"}
    report.textures = {k: m.texture for k, m in models.items()}
    md = [f"## Evaluation of {name}" + "".join(f", {n}" for n in names[1:]), ""]
    if square:
        n, h, w = images.shape[:3]
        md += [
            f"{cfg.split.capitalize()} split of `{cfg.data}`: {n} images of {w}x{h}. Same images and masks for every "
            f"method; metrics on the composite (only hole pixels replaced). Hole L1: mean absolute "
            f"error over the hole, 0-1 scale. OpenCV inpaintRadius {cfg.radius}. "
            f"Device: {inpainter.device_name}. {texture}",
            "",
        ]
    else:
        md += [f"OpenCV inpaintRadius {cfg.radius}. Device: {inpainter.device_name}. {texture}", ""]
    examples: Examples = []
    per_task_examples = max(1, cfg.grid_rows // max(1, len(square)))
    if "center" in tasks:
        _center_task(models, images, cfg, report, md, examples, per_task_examples)
    if "irregular" in tasks:
        _irregular_task(models, images, cfg, report, md, examples, per_task_examples, log)
    if "photos" in tasks:
        from .photo_eval import evaluate_photos

        lines, report.photos, report.photo_grids = evaluate_photos(
            cfg.data,
            cfg.split,
            models,
            limit=cfg.photos_limit or None,
            seed=cfg.seed,
            radius=cfg.radius,
            grid_rows=cfg.grid_rows,
            grid_path=lambda kind: _photos_grid_path(cfg, kind),
            progress=cfg.progress,
            log=log,
            vgg=vgg,
        )
        md += lines

    report.markdown = "\n".join(md) + "\n"
    out = Path(cfg.out)
    write_text_atomic(out, report.markdown)
    write_text_atomic(out.with_suffix(".json"), json.dumps(report.to_json(), indent=2) + "\n")
    report.out = out
    if examples and cfg.grid_rows > 0:
        grid_path = Path(cfg.grid) if cfg.grid else out.with_suffix(".jpg")
        report.grid = _grid(examples[: cfg.grid_rows], grid_path)
    return report
