"""``retoucher --self-test``: prove that an installation (above all a PyInstaller bundle) works
without a screen: the default model loads, a hole in the sample photo gets filled, only hole
pixels change, the hole pixels do change, a trained model's network (its own fill, without the
edge matching that hides a broken one) fills the hole well clear of a flat fill, and a PNG can
be written and read back; the bundled
damage detector loads and runs on the sample photo with scratches and specks drawn on it, gives a
probability and a mask of the right kind, and, when its weight file was calibrated (a trained
detector), finds at least half of what was drawn while flagging at most 2% of the rest.

Prints each step with its timing and returns 0; on any failure prints ``self-test FAILED: ...``
with the reason to stderr and returns 1. Qt-free: it runs headless and never starts the GUI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from .damage import default_detector_factory, detector_device, grown
from .inpainting import DetectorFactory

if TYPE_CHECKING:  # pragma: no cover
    from .inpainting import DetectorLike, InpainterLike

__all__ = [
    "NETWORK_MARGIN_DB",
    "QUALITY_FLAGGED",
    "QUALITY_FOUND",
    "QUALITY_TOLERANCE",
    "SelfTestError",
    "detection_quality",
    "flat_fill",
    "is_calibrated",
    "is_trained",
    "main",
    "run_self_test",
    "self_test_damage",
    "self_test_hole",
]


FillFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fill(image, hole)`` -> the filled image; an :class:`~retoucher.inpainting.InpainterLike` is one."""

FillFactory = Callable[[Path, str], FillFn]
"""``factory(weights_path, device)`` -> a fill; tests inject broken ones to prove the checks bite."""


class SelfTestError(RuntimeError):
    """A step of the self-test failed; the message says which and why."""


def self_test_hole(shape: tuple[int, int]) -> np.ndarray:
    """The hole the self-test fills: a centred rectangle a quarter of each side, and a smaller
    square towards the top-left corner (two separate regions), as a ``bool HxW`` mask."""
    h, w = shape
    hole = np.zeros((h, w), dtype=bool)
    hh, hw = max(h // 4, 2), max(w // 4, 2)
    y0, x0 = (h - hh) // 2, (w - hw) // 2
    hole[y0 : y0 + hh, x0 : x0 + hw] = True
    s = max(min(h, w) // 10, 2)
    hole[h // 8 : h // 8 + s, w // 8 : w // 8 + s] = True
    return hole


# What the self-test draws for the detector, in fractions of the photo's height and width: lines
# from (y, x) to (y, x) with a width in pixels and one grey tone each (bright and dark, as on a
# print), and 3x3 specks.
_LINES = (
    ((0.10, 0.20), (0.90, 0.35), 1, 240),
    ((0.30, 0.05), (0.45, 0.95), 2, 20),
    ((0.80, 0.60), (0.20, 0.90), 3, 235),
    ((0.95, 0.05), (0.60, 0.45), 1, 25),
)
_SPECKS = (((0.15, 0.70), 20), ((0.60, 0.15), 240), ((0.70, 0.50), 25), ((0.90, 0.85), 235))

QUALITY_TOLERANCE = 2
"""Pixels: a drawn pixel counts as found when the detector flags one this close to it, and a
flagged pixel counts as a false find only farther than this from everything drawn."""
QUALITY_FOUND = 0.5
"""The least share of the drawn damage a calibrated detector must find."""
QUALITY_FLAGGED = 0.02
"""The most a calibrated detector may flag of the pixels where nothing was drawn."""


def self_test_damage(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw the self-test's damage on a copy of the ``uint8 HxWx3`` ``image``: four straight
    scratches across it (1 to 3 px wide, each in one tone, two bright and two dark) and four 3x3
    specks. Returns (the damaged copy, the ``bool HxW`` mask of what was drawn)."""
    h, w = image.shape[:2]
    damaged = image.copy()
    drawn = np.zeros((h, w), dtype=bool)
    n = 2 * max(h, w)  # samples along a line: every pixel it crosses is hit
    for (y0, x0), (y1, x1), width, tone in _LINES:
        line = np.zeros((h, w), dtype=bool)
        ys = np.rint(np.linspace(y0 * (h - 1), y1 * (h - 1), n)).astype(int)
        xs = np.rint(np.linspace(x0 * (w - 1), x1 * (w - 1), n)).astype(int)
        for dy in range(-((width - 1) // 2), width // 2 + 1):  # a width x width square brush
            for dx in range(-((width - 1) // 2), width // 2 + 1):
                line[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = True
        damaged[line] = tone
        drawn |= line
    for (fy, fx), tone in _SPECKS:
        y, x = int(fy * (h - 1)), int(fx * (w - 1))
        box = (slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2))
        damaged[box] = tone
        drawn[box] = True
    return damaged, drawn


def detection_quality(mask: np.ndarray, drawn: np.ndarray) -> tuple[float, float]:
    """(the share of the ``drawn`` pixels found, the share of the undamaged pixels flagged) for a
    detection ``mask``, with :data:`QUALITY_TOLERANCE` (see there)."""
    near_found = grown(mask, QUALITY_TOLERANCE)
    found = np.count_nonzero(drawn & near_found) / max(np.count_nonzero(drawn), 1)
    undamaged = ~grown(drawn, QUALITY_TOLERANCE)
    flagged = np.count_nonzero(mask & undamaged) / max(np.count_nonzero(undamaged), 1)
    return found, flagged


def is_calibrated(detector: object) -> bool:
    """Whether ``detector``'s weight file says how it was calibrated (``info.provenance`` has a
    ``calibration``, as an exported trained detector has; a test detector has none). ``info`` is
    optional in :class:`~retoucher.inpainting.DetectorLike`."""
    provenance = getattr(getattr(detector, "info", None), "provenance", None)
    return isinstance(provenance, dict) and "calibration" in provenance


def _default_factory(weights: Path, device: str) -> InpainterLike:
    from engine.inpainter import Inpainter

    return Inpainter(weights, device=device)


def _check_result(image: np.ndarray, hole: np.ndarray, result: object) -> float:
    """Raise SelfTestError unless ``result`` is a same-size uint8 image that differs from
    ``image`` in the hole and nowhere else; return the fraction of hole pixels that changed."""
    if not isinstance(result, np.ndarray) or result.shape != image.shape or result.dtype != np.uint8:
        got = f"{type(result).__name__} {getattr(result, 'shape', '')} {getattr(result, 'dtype', '')}"
        raise SelfTestError(f"the fill returned {got.strip()}, expected uint8 {image.shape}")
    changed = np.any(result != image, axis=2)
    outside = int(np.count_nonzero(changed & ~hole))
    if outside:
        raise SelfTestError(f"{outside} pixels outside the hole changed; only hole pixels may change")
    inside = int(np.count_nonzero(changed & hole))
    if inside == 0:
        raise SelfTestError("no hole pixel changed: the hole was not filled")
    return inside / int(np.count_nonzero(hole))


NETWORK_MARGIN_DB = 3.0
"""A trained model's own fill of the self-test hole (no edge matching, texture or mirrored pass)
must be this much closer to the sample photo (hole PSNR) than a flat fill. On the bundled sample:
the shipped model 27.1 dB (27.4 before the colour-cast field), the flat fill 17.1; the same file with its weights zeroed 16.3,
negated 16.3, random 15.7 (the app's full fill, whose edge matching rebuilds the hole from its
edge, gave 27.3 dB with the zeroed weights and passed)."""


def is_trained(info: object) -> bool:
    """Whether a model's weight file says it was trained (``provenance`` names its steps, as an
    export or a soup does; a test's random model has none)."""
    steps = getattr(info, "provenance", {}).get("steps")
    return isinstance(steps, int) and not isinstance(steps, bool) and steps > 0


def flat_fill(image: np.ndarray, hole: np.ndarray, ring: int = 8) -> np.ndarray:
    """``image`` with each part of ``hole`` filled with one colour: the mean of the valid pixels
    within ``ring`` px of it (the yardstick of the network check)."""
    from engine.crops import hole_components

    out = image.copy()
    h, w = hole.shape
    for part in hole_components(hole, 4):
        box = part.box.grown(ring).clip(w, h)
        inside, known = hole[box.slices], ~hole[box.slices]
        if known.any():
            out[box.slices][inside] = np.round(image[box.slices][known].mean(axis=0)).astype(np.uint8)
    return out


def _hole_psnr(result: np.ndarray, image: np.ndarray, hole: np.ndarray) -> float:
    error = result[hole].astype(np.float64) - image[hole]
    return float(10 * np.log10(255.0**2 / max(float(np.mean(error**2)), 1e-10)))


def _check_network(
    inpainter: object, info: object, image: np.ndarray, hole: np.ndarray, say: Callable[[str, str], None]
) -> None:
    """The network's own fill of the sample's hole against a flat fill: a trained model's must be
    :data:`NETWORK_MARGIN_DB` better (SelfTestError if not); another's figures are only shown.
    Skipped for a fill that is not the engine's Inpainter (the tests' stand-ins)."""
    from engine.inpainter import Inpainter

    if not isinstance(inpainter, Inpainter):
        return
    raw = Inpainter.from_model(
        inpainter.model,
        inpainter.device,
        name=inpainter.name,
        max_side=inpainter.max_side,
        edges=False,
        texture=0.0,
        mirror=False,
    )
    net = _hole_psnr(raw(image, hole), image, hole)
    flat = _hole_psnr(flat_fill(image, hole), image, hole)
    figures = f"its own fill {net:.2f} dB, a flat fill {flat:.2f} dB (hole PSNR)"
    if not is_trained(info):
        say("network", f"not checked: the weight file names no training steps ({figures})")
        return
    if net < flat + NETWORK_MARGIN_DB:
        raise SelfTestError(
            f"the model's network fills the sample's hole at {net:.2f} dB, not {NETWORK_MARGIN_DB:g} dB "
            f"above a flat fill's {flat:.2f} dB: its weights are broken"
        )
    say("network", f"{figures}: ok (at least {NETWORK_MARGIN_DB:g} dB above)")


def _check_detection(found: object, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Raise SelfTestError unless ``found`` is a detection of an image of ``shape``: a float32
    probability within [0, 1] and a bool mask that is the probability at its threshold; return
    (probability, mask, threshold)."""
    p, mask, t = (getattr(found, k, None) for k in ("probability", "mask", "threshold"))
    if not isinstance(p, np.ndarray) or p.dtype != np.float32 or p.shape != shape:
        got = f"{type(p).__name__} {getattr(p, 'shape', '')} {getattr(p, 'dtype', '')}".strip()
        raise SelfTestError(f"the detector's probability is {got}, expected float32 {shape}")
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise SelfTestError("the detector's probability is not within [0, 1] everywhere")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = f"{type(mask).__name__} {getattr(mask, 'shape', '')} {getattr(mask, 'dtype', '')}".strip()
        raise SelfTestError(f"the detector's mask is {got}, expected bool {shape}")
    if not isinstance(t, float) or not np.array_equal(mask, p >= t):
        raise SelfTestError("the detector's mask is not its probability at its threshold")
    return p, mask, t


def _detect(
    folder: Path,
    image: np.ndarray,
    device: str,
    factory: DetectorFactory | None,
    say: Callable[[str, str], None],
) -> None:
    """The detection steps: load the bundled detector, run it on ``image`` with damage drawn on
    it (:func:`self_test_damage`), check what it gives and, for a calibrated detector, how well
    it found the damage."""
    from engine.damage import default_damage_weights_path, read_damage_info
    from engine.weights import WeightsError

    path = default_damage_weights_path(folder)
    try:
        t0 = time.perf_counter()
        detector: DetectorLike = (factory or default_detector_factory)(str(path), device)
        load_s = time.perf_counter() - t0
        name = read_damage_info(path).name
    except (WeightsError, ValueError) as exc:
        raise SelfTestError(f"the damage detector did not load: {exc}") from exc
    where = detector_device(detector) or device
    say("detector", f"{name} ({path.name}) loaded on {where} in {load_s:.2f} s")
    scratched, drawn = self_test_damage(image)
    t0 = time.perf_counter()
    found = detector(scratched)
    detect_s = time.perf_counter() - t0
    p, mask, t = _check_detection(found, image.shape[:2])
    say("detect", f"{detect_s:.2f} s, {100 * mask.mean():.2f}% of the pixels flagged at threshold {t:.2f}")
    say("check", f"probability float32 within [0, 1], mask bool {mask.shape[1]}x{mask.shape[0]}: ok")
    _check_quality(detector, mask, drawn, say)


def _check_quality(
    detector: DetectorLike, mask: np.ndarray, drawn: np.ndarray, say: Callable[[str, str], None]
) -> None:
    """A calibrated detector must find the drawn damage and little else (SelfTestError if not);
    for another one the figures are only shown."""
    found, flagged = detection_quality(mask, drawn)
    figures = (
        f"{100 * found:.0f}% of the drawn damage found (within {QUALITY_TOLERANCE} px), "
        f"{100 * flagged:.2f}% of the undamaged pixels flagged"
    )
    if not is_calibrated(detector):
        say("quality", f"not checked: the detector's weight file has no calibration ({figures})")
        return
    if found < QUALITY_FOUND:
        raise SelfTestError(
            f"the detector found only {100 * found:.0f}% of the damage drawn on the sample photo "
            f"(at least {100 * QUALITY_FOUND:.0f}% needed)"
        )
    if flagged > QUALITY_FLAGGED:
        raise SelfTestError(
            f"the detector flagged {100 * flagged:.2f}% of the undamaged pixels of the sample photo "
            f"(at most {100 * QUALITY_FLAGGED:.0f}% allowed)"
        )
    say(
        "quality",
        f"{figures} (needed: at least {100 * QUALITY_FOUND:.0f}%, at most {100 * QUALITY_FLAGGED:.0f}%): ok",
    )


def _png_round_trip(result: np.ndarray) -> None:
    from engine.imageio import load_image, save_image

    with tempfile.TemporaryDirectory(prefix="retoucher-selftest-") as tmp:
        path = Path(tmp) / "filled.png"
        save_image(path, result)
        back = load_image(path).rgb
    if back.shape != result.shape or not np.array_equal(back, result):
        raise SelfTestError("a PNG written and read back differs from the image written")


def run_self_test(
    *,
    resources: Path | None = None,
    device: str = "auto",
    out: TextIO | None = None,
    err: TextIO | None = None,
    inpainter_factory: FillFactory | None = None,
    detector_factory: DetectorFactory | None = None,
) -> int:
    """Run every step; 0 when all pass, 1 (after a ``self-test FAILED`` line on ``err``) otherwise.
    ``resources`` defaults to :func:`engine.weights.resources_dir` (inside a bundle: the bundle's).
    The factories make the engines (tests inject broken ones to prove the checks bite)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    factory = inpainter_factory or _default_factory

    def say(label: str, text: str) -> None:
        print(f"  {label:<8} {text}", file=out, flush=True)

    started = time.perf_counter()
    print("Retoucher self-test", file=out, flush=True)
    try:
        from engine.damage import default_damage_weights_path
        from engine.imageio import ImageReadError, load_image
        from engine.weights import WeightsError, default_weights_path, read_weights_info, resources_dir

        from .bundled import sample_photo

        folder = Path(resources) if resources is not None else resources_dir()
        say("folder", str(folder))
        weights = default_weights_path(folder)
        if not weights.is_file():
            raise SelfTestError(f"no model bundled: {weights} does not exist")
        if not default_damage_weights_path(folder).is_file():
            raise SelfTestError(
                f"no damage detector bundled: {default_damage_weights_path(folder)} does not exist"
            )
        photo = sample_photo(folder)
        if not photo.is_file():
            raise SelfTestError(f"no sample photo bundled: {photo} does not exist")

        try:
            info = read_weights_info(weights)
            t0 = time.perf_counter()
            inpainter = factory(weights, device)
            load_s = time.perf_counter() - t0
        except (WeightsError, ValueError) as exc:
            raise SelfTestError(f"the model did not load: {exc}") from exc
        where = getattr(inpainter, "device_name", device)  # a plain fill function has none
        say(
            "model",
            f"{info.name} ({weights.name}, {info.dtype}, texture {info.texture:g}) loaded on {where} "
            f"in {load_s:.2f} s",
        )

        try:
            image = load_image(photo).rgb
        except ImageReadError as exc:
            raise SelfTestError(f"the sample photo did not load: {exc}") from exc
        hole = self_test_hole(image.shape[:2])
        say("photo", f"{photo.name}, {image.shape[1]}x{image.shape[0]}")
        say("hole", f"{int(hole.sum())} pixels ({100 * hole.mean():.1f}% of the photo)")

        t0 = time.perf_counter()
        result = inpainter(image, hole)
        fill_s = time.perf_counter() - t0
        say("fill", f"{fill_s:.2f} s")
        fraction = _check_result(image, hole, result)
        say("check", "pixels outside the hole unchanged: ok")
        say("check", f"hole pixels changed: {100 * fraction:.1f}%: ok")
        _check_network(inpainter, info, image, hole, say)
        _png_round_trip(result)
        say("check", "PNG written and read back identical: ok")
        _detect(folder, image, device, detector_factory, say)
    except SelfTestError as exc:
        print(f"self-test FAILED: {exc}", file=err, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - anything else broken in the installation: say what, fail
        print(f"self-test FAILED: {type(exc).__name__}: {exc}", file=err, flush=True)
        return 1
    print(f"self-test passed in {time.perf_counter() - started:.2f} s", file=out, flush=True)
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "retoucher --self-test") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fill a hole in the bundled sample photo with the bundled model, find damage "
        "drawn on it with the bundled detector, and check the results (headless).",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--resources", type=Path, default=None, help="a resources/ folder other than the bundled one"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    return run_self_test(resources=args.resources, device=args.device)
