"""Synthetic old-photo damage for training and evaluating the damage detector.

One sample is made in three passes over a photo crop (uint8 RGB), each drawn from a seeded
``numpy.random.Generator`` so that a seed always gives the same sample:

1. **Scene content that is not damage** (hard negatives), drawn *into the scene* before ageing so
   it is softened, faded and grained like the rest of the photo: wires and thin branches, hair,
   printed text, fine hatching, posts and poles (opaque straight bars 2-16 px wide, shaded
   across, ending inside the crop, some with a cross-arm), twigs (smooth branching shoots
   that taper) and overhead wires (parallel sagging lines, mostly near horizontal). A third of
   the prints are not softened at all (:data:`SHARP`), so that thin scene content is as sharp as
   the damage drawn on it: a detector that took every sharp line for damage flagged twigs, poles
   and wires in sharp photos.
2. **Ageing**: grayscale, sepia or faded colour; lower contrast and lifted blacks; softness
   (Gaussian blur); film grain; sometimes a vignette and JPEG.
3. **Damage** on the aged print, with its exact mask as the label: bright and dark hairline
   scratches 1-8 px (long, nearly straight, often vertical, sometimes broken), branching cracks,
   dust specks, small spots and stains, creases (a bright ridge beside its shadow). Then the
   scan: slight blur, noise and JPEG, applied alike to the damaged and the clean print.

The label is a pixel whose area a drawn element's geometry covers at least :data:`LABEL_COVERAGE`
(however faint the element) and that the damage visibly changed (by :data:`LABEL_MIN_CHANGE`
grey levels): a white scratch across white sky that changes nothing is not something a detector
can see or a fill needs to repair, while a faint scratch that does change the print is damage.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.grey import LUMA

__all__ = [
    "KINDS",
    "DamageSample",
    "LABEL_COVERAGE",
    "LABEL_MIN_CHANGE",
    "Layer",
    "synthesize",
    "classical_detector",
]

LABEL_COVERAGE = 0.4
LABEL_MIN_CHANGE = 10.0
SEPIA = np.array([1.07, 0.95, 0.74], np.float32)
SHARP = 1 / 3
"""The share of prints that ageing does not soften (the rest: a Gaussian blur of sigma 0.3-1.6)."""
SCENE_NEGATIVES = 0.6
"""The share of samples with scene content that is not damage drawn into them."""
SCENE_KIND_SHARE = (0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.25)
"""How often each kind of scene content is drawn: lines, hair, text, hatching, posts, twigs and
(twice as often: thin, dark and sharp, they are the likest to a scratch) overhead wires."""


@dataclass(frozen=True)
class DamageSample:
    """``damaged`` and ``clean`` (uint8 HxWx3: the same aged, scanned print with and without the
    damage), ``label`` (bool HxW, True = damage) and ``kinds`` (uint8 HxW: 1 + the index in
    :data:`KINDS` of the damage at each labelled pixel, 0 elsewhere; None when unknown)."""

    damaged: np.ndarray
    clean: np.ndarray
    label: np.ndarray
    kinds: np.ndarray | None = None


# ---------------------------------------------------------------------------- drawing helpers
def _curve(rng: np.random.Generator, h: int, w: int, *, straight: float, vertical: bool) -> np.ndarray:
    """Points of a long gentle curve crossing much of an ``h`` x ``w`` crop."""
    length = rng.uniform(0.3, 1.5) * max(h, w)
    angle = rng.normal(np.pi / 2, 0.15) if vertical else rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    t = np.linspace(-0.5, 0.5, max(8, int(length // 6)))
    bend = rng.normal(0, (1 - straight) * 0.15 * length)
    dx, dy = np.cos(angle), np.sin(angle)
    xs = cx + t * length * dx - bend * (t**2 - 0.25) * dy
    ys = cy + t * length * dy + bend * (t**2 - 0.25) * dx
    wobble = rng.normal(0, 0.3, t.size).cumsum() * (1 - straight)
    return np.stack([xs - wobble * dy, ys + wobble * dx], axis=1)


def _polyline(canvas: np.ndarray, pts: np.ndarray, width: int, value: int = 255) -> None:
    cv2.polylines(
        canvas, [np.round(pts * 4).astype(np.int32)], False, value, max(1, width), cv2.LINE_AA, shift=2
    )


def _blend(img: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``img`` (float32 HxWx3) with ``colour`` (3,) or (HxWx3) laid over by ``coverage`` in [0, 1]."""
    a = coverage[..., None]
    return img * (1 - a) + colour * a


def _tone(rng: np.random.Generator, bright: bool) -> np.ndarray:
    """A damage colour: paper white / light grey, or near-black, slightly warm."""
    v = rng.uniform(215, 255) if bright else rng.uniform(5, 55)
    return (np.array([v, v, v], np.float32) * rng.uniform(0.96, 1.04, 3)).clip(0, 255).astype(np.float32)


# ---------------------------------------------------------------------------- scene negatives
@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _scene_negatives(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    kinds = rng.choice(7, size=rng.integers(1, 3), replace=False, p=SCENE_KIND_SHARE)
    for kind in kinds:
        cov = np.zeros((h, w), np.uint8)
        if kind == 0:  # wires and thin branches: long smooth lines, dark or light
            for _ in range(rng.integers(1, 4)):
                _polyline(
                    cov,
                    _curve(rng, h, w, straight=rng.uniform(0.6, 1), vertical=False),
                    int(rng.integers(1, 4)),
                )
            colour = _tone(rng, rng.random() < 0.3)
            img = _blend(img, cov / 255.0 * rng.uniform(0.6, 1), colour)
        elif kind == 1:  # hair: a bundle of thin strands
            base = _curve(rng, h, w, straight=0.3, vertical=False)
            for _ in range(rng.integers(10, 50)):
                _polyline(cov, base + rng.normal(0, 6, 2) + rng.normal(0, 1.5, base.shape).cumsum(0) * 0.3, 1)
            colour = _tone(rng, rng.random() < 0.2) * rng.uniform(0.4, 1)
            img = _blend(img, cov / 255.0 * rng.uniform(0.4, 0.9), colour)
        elif kind == 2:  # printed text
            pil = Image.fromarray(cov)
            draw = ImageDraw.Draw(pil)
            for _ in range(rng.integers(1, 5)):
                size = int(rng.integers(9, 40))
                text = "".join(
                    rng.choice(list(string.ascii_letters + string.digits + " .,")) for _ in range(12)
                )
                draw.text((rng.uniform(-20, w), rng.uniform(-10, h)), text, fill=255, font=_font(size))
            cov = np.asarray(pil)
            img = _blend(img, cov / 255.0, _tone(rng, rng.random() < 0.4))
        elif kind == 4:
            img = _posts(rng, img)
        elif kind == 5:
            img = _twigs(rng, img)
        elif kind == 6:
            img = _wires(rng, img)
        else:  # fine hatching (fabric, fences, ruled lines)
            step = rng.uniform(3, 9)
            angle = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            phase = (xx * np.cos(angle) + yy * np.sin(angle)) / step
            stripes = (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** 4
            region = np.zeros((h, w), np.float32)
            cv2.ellipse(
                region,
                (int(rng.uniform(0, w)), int(rng.uniform(0, h))),
                # axes of 20 px up to the photo's size, as before for any photo of 20 px or more (one
                # under 20 px made uniform(20, w) fail: "high - low < 0", and no detector was exported)
                (int(rng.uniform(min(20, w), w)), int(rng.uniform(min(20, h), h))),
                float(rng.uniform(0, 180)),
                0,
                360,
                1.0,
                -1,
            )
            img = _blend(img, stripes * region * rng.uniform(0.2, 0.6), _tone(rng, rng.random() < 0.5))
    return img


def _scene_tone(rng: np.random.Generator) -> np.ndarray:
    """The colour of a thing in the scene: dark wood or bark, grey metal or concrete, or paint."""
    pick = rng.random()
    if pick < 0.6:
        v = rng.uniform(20, 90)
        rgb = np.array([v * 1.15, v, v * 0.8])
    elif pick < 0.85:
        v = rng.uniform(90, 180)
        rgb = np.array([v, v, v * 1.03])
    else:
        rgb = rng.uniform(190, 245, 3)
    return rgb.clip(0, 255).astype(np.float32)


def _posts(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Posts, poles and masts: opaque straight bars 2-16 px wide, mostly upright, standing on a
    base inside the crop (or below it) and ending inside it at the top or beyond it, shaded across
    their width like a round pole in side light; some carry a cross-arm near the top."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        width = float(rng.uniform(2, 16))
        tilt = rng.normal(0, 0.06) if rng.random() < 0.8 else rng.uniform(-1.2, 1.2)
        bx, by = rng.uniform(0, w), rng.uniform(0.4, 1.3) * h
        length = rng.uniform(0.3, 1.5) * h
        tx, ty = bx + length * np.sin(tilt), by - length * np.cos(tilt)
        cov = np.zeros((h, w), np.uint8)
        _polyline(cov, np.array([[bx, by], [tx, ty]]), max(1, round(width)))
        if rng.random() < 0.4:  # a cross-arm
            at = rng.uniform(0.03, 0.2)
            cx, cy = tx + (bx - tx) * at, ty + (by - ty) * at
            half = width * rng.uniform(1.5, 6)
            dx, dy = np.cos(tilt), np.sin(tilt)
            arm = np.array([[cx - half * dx, cy - half * dy], [cx + half * dx, cy + half * dy]])
            _polyline(cov, arm, max(1, round(width * rng.uniform(0.4, 0.8))))
        # shading across the pole: the signed distance from its axis, over its half-width
        nx, ny = np.cos(tilt), np.sin(tilt)
        across = np.clip(((xx - bx) * nx + (yy - by) * ny) / (width / 2), -1, 1)
        light = 1 + rng.uniform(0, 0.35) * across * rng.choice([-1, 1])
        colour = _scene_tone(rng)[None, None, :] * light[..., None]
        img = _blend(img, cov / 255.0 * rng.uniform(0.9, 1.0), colour)
    return img


def _wires(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Overhead wires: 1-5 parallel lines 1-2 px wide, sagging between poles beyond the crop,
    mostly near horizontal (a scratch on a print runs mostly along the film, upright here), dark
    against the sky or light against a dark ground."""
    h, w = img.shape[:2]
    cov = np.zeros((h, w), np.uint8)
    angle = rng.normal(0, 0.2) if rng.random() < 0.8 else rng.uniform(0, np.pi)
    length = rng.uniform(0.8, 2.0) * max(h, w)
    sag = -rng.uniform(0, 0.08) * length  # the middle hangs lowest
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    t = np.linspace(-0.5, 0.5, max(16, int(length // 4)))
    dx, dy = np.cos(angle), np.sin(angle)
    width = int(rng.integers(1, 3))
    offset = 0.0
    for _ in range(int(rng.integers(1, 6))):
        bend = sag * (t**2 - 0.25) + offset
        _polyline(
            cov, np.stack([cx + t * length * dx - bend * dy, cy + t * length * dy + bend * dx], 1), width
        )
        offset += rng.uniform(3, 14)
    colour = _scene_tone(rng) if rng.random() < 0.8 else _tone(rng, True)
    return _blend(img, cov / 255.0 * rng.uniform(0.7, 1.0), colour)


def _twigs(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Twigs and bare branches: smooth shoots that branch at an angle and taper from up to 8 px
    at their base to 1 px at their tips, opaque, in a bark or leafless-wood colour."""
    h, w = img.shape[:2]
    cov = np.zeros((h, w), np.uint8)
    stack = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * np.pi), float(rng.uniform(2, 8)))]
    shoots = 0
    while stack and shoots < 20:
        x, y, a, width = stack.pop()
        steps = int(width * rng.uniform(10, 30))
        bend = rng.normal(0, 0.004)
        for i in range(steps):
            a += bend + rng.normal(0, 0.04)
            nx, ny = x + 2 * np.cos(a), y + 2 * np.sin(a)
            here = width * (1 - i / steps * 0.6)  # tapering to 40% of the shoot's base
            cv2.line(
                cov,
                (round(x * 4), round(y * 4)),
                (round(nx * 4), round(ny * 4)),
                255,
                max(1, round(here)),
                cv2.LINE_AA,
                2,
            )
            x, y = nx, ny
            if width > 1.5 and rng.random() < 0.04:
                side = rng.choice([-1, 1]) * rng.uniform(0.3, 0.9)
                stack.append((x, y, a + side, here * rng.uniform(0.4, 0.7)))
        shoots += 1
    return _blend(img, cov / 255.0 * rng.uniform(0.85, 1.0), _scene_tone(rng))


# ---------------------------------------------------------------------------- ageing and scan
def _age(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    mode = rng.choice(3, p=[0.4, 0.3, 0.3])
    grey = img @ np.array(LUMA, np.float32)
    if mode == 0:
        img = np.repeat(grey[..., None], 3, axis=2)
    elif mode == 1:
        img = (grey[..., None] * SEPIA * rng.uniform(0.9, 1.05)).clip(0, 255)
    else:
        keep = rng.uniform(0.4, 0.9)  # faded colour: desaturated, with a warm cast
        img = (
            img * keep + grey[..., None] * (1 - keep) + np.array([30, 20, 0], np.float32) * rng.uniform(0, 1)
        )
    contrast = rng.uniform(0.5, 1.0)
    img = (img - 128) * contrast + 128 + rng.uniform(0, 30)
    if rng.random() >= SHARP:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6))
    if rng.random() < 0.3:
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
        img = img * (1 - rng.uniform(0.2, 0.8) * r2)[..., None]
    grain = rng.normal(0, rng.uniform(1, 9), img.shape[:2]).astype(np.float32)
    if rng.random() < 0.5:
        grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.5, 1.2)) * 1.5
    return img + grain[..., None]


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def _scan(img: np.ndarray, blur: float, noise: np.ndarray, quality: int | None) -> np.ndarray:
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    out = np.clip(img + noise, 0, 255).round().astype(np.uint8)
    return _jpeg(out, quality) if quality else out


# ---------------------------------------------------------------------------- damage
@dataclass(frozen=True)
class Layer:
    """One drawn element: ``shape`` = how much of each pixel its geometry covers (0..1, from the
    anti-aliased drawing), ``alpha`` = its opacity there (shape times strength and fading), the
    ``colour`` laid over the print, and its ``kind`` (an index into :data:`KINDS`)."""

    shape: np.ndarray
    alpha: np.ndarray
    colour: np.ndarray
    kind: int


KINDS = (
    "hairline scratch (1-2 px)",
    "wide scratch (3-8 px)",
    "crack",
    "dust and lint",
    "spot or stain",
    "crease",
)
"""The kinds of damage, as :attr:`DamageSample.kinds` numbers them (1 + index; 0 = none)."""


def _scratches(rng: np.random.Generator, h: int, w: int, out: list[Layer]) -> None:
    for _ in range(rng.integers(1, 7)):
        cov = np.zeros((h, w), np.uint8)
        width = int(rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 8]))
        pts = _curve(rng, h, w, straight=rng.uniform(0.8, 1), vertical=rng.random() < 0.6)
        if rng.random() < 0.4:  # broken: a few pieces
            cuts = np.sort(
                rng.choice(len(pts), size=min(len(pts) - 1, int(rng.integers(2, 6))), replace=False)
            )
            for a, b in zip(cuts[::2], cuts[1::2]):
                _polyline(cov, pts[a : b + 1], width)
        else:
            _polyline(cov, pts, width)
        strength = rng.uniform(0.5, 1.0)
        # intensity that varies along the scratch
        fade = cv2.resize(rng.uniform(0.5, 1.0, (4, 4)).astype(np.float32), (w, h))
        shape = cov / 255.0
        out.append(
            Layer(shape, shape * strength * fade, _tone(rng, rng.random() < 0.65), 0 if width <= 2 else 1)
        )


def _cracks(rng: np.random.Generator, h: int, w: int, out: list[Layer]) -> None:
    cov = np.zeros((h, w), np.uint8)
    stack = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * np.pi), int(rng.integers(30, 120)))]
    segments = 0
    while stack and segments < 12:
        x, y, a, n = stack.pop()
        pts = [(x, y)]
        for _ in range(n):
            a += rng.normal(0, 0.35)
            x, y = x + 2 * np.cos(a), y + 2 * np.sin(a)
            pts.append((x, y))
            if rng.random() < 0.03:
                stack.append(
                    (x, y, a + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2), int(n * rng.uniform(0.3, 0.7)))
                )
        _polyline(cov, np.array(pts), int(rng.choice([1, 1, 2, 3])))
        segments += 1
    shape = cov / 255.0
    out.append(Layer(shape, shape * rng.uniform(0.6, 1.0), _tone(rng, rng.random() < 0.4), 2))


def _dust(rng: np.random.Generator, h: int, w: int, out: list[Layer]) -> None:
    bright = rng.random() < 0.6
    cov = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(5, 120))):
        c = (int(rng.uniform(0, w) * 4), int(rng.uniform(0, h) * 4))
        axes = (int(rng.uniform(0.5, 4) * 4), int(rng.uniform(0.5, 4) * 4))
        cv2.ellipse(cov, c, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA, shift=2)
    if rng.random() < 0.5:  # fibres: short curly hairs of lint
        for _ in range(int(rng.integers(1, 6))):
            start = rng.uniform([0, 0], [w, h])
            steps = rng.normal(0, 1.0, (int(rng.integers(8, 30)), 2)).cumsum(0) + start
            _polyline(cov, steps, 1)
    shape = cov / 255.0
    out.append(Layer(shape, shape * rng.uniform(0.7, 1.0), _tone(rng, bright), 3))


def _spots(rng: np.random.Generator, h: int, w: int, out: list[Layer]) -> None:
    for _ in range(int(rng.integers(1, 5))):
        r = rng.uniform(3, 20)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        yy, xx = np.ogrid[0:h, 0:w]
        d = np.hypot(yy - cy, xx - cx) / r
        noise = cv2.resize(rng.uniform(0.6, 1.4, (8, 8)).astype(np.float32), (w, h))
        cov = np.clip((1.0 - d * noise) * 3, 0, 1).astype(np.float32)
        colour = _tone(rng, rng.random() < 0.5)
        if rng.random() < 0.5:  # a brownish stain
            colour = np.array([120, 85, 50], np.float32) * rng.uniform(0.5, 1.2)
        out.append(Layer(cov, cov * rng.uniform(0.5, 0.95), colour, 4))


def _creases(rng: np.random.Generator, h: int, w: int, out: list[Layer]) -> None:
    pts = _curve(rng, h, w, straight=0.95, vertical=False)
    width = int(rng.integers(3, 11))
    ridge = np.zeros((h, w), np.uint8)
    _polyline(ridge, pts, max(1, width // 2))
    shadow = np.zeros((h, w), np.uint8)
    d = np.array([1.0, 1.0]) * max(1, width // 2)
    _polyline(shadow, pts + d, max(1, width // 2))
    out.append(Layer(shadow / 255.0, shadow / 255.0 * rng.uniform(0.4, 0.8), _tone(rng, False), 5))
    out.append(Layer(ridge / 255.0, ridge / 255.0 * rng.uniform(0.6, 1.0), _tone(rng, True), 5))


DAMAGE_KINDS = ((_scratches, 0.75), (_cracks, 0.3), (_dust, 0.6), (_spots, 0.3), (_creases, 0.15))


def synthesize(rng: np.random.Generator, photo: np.ndarray, *, damage: bool = True) -> DamageSample:
    """One sample from ``photo`` (uint8 HxWx3): scene negatives, ageing, damage, scan."""
    h, w = photo.shape[:2]
    img = photo.astype(np.float32)
    if rng.random() < SCENE_NEGATIVES:
        img = _scene_negatives(rng, img)
    aged = _age(rng, img)
    layers: list[Layer] = []
    if damage:
        while not layers:
            for draw, p in DAMAGE_KINDS:
                if rng.random() < p:
                    draw(rng, h, w, layers)
    damaged = aged
    kinds = np.zeros((h, w), np.uint8)
    for layer in layers:
        damaged = _blend(damaged, layer.alpha.astype(np.float32), layer.colour)
        kinds[layer.shape >= LABEL_COVERAGE] = layer.kind + 1  # the topmost element names the pixel
    blur = rng.uniform(0.3, 0.7) if rng.random() < 0.3 else 0.0
    noise = rng.normal(0, rng.uniform(0, 2.5), (h, w, 1)).astype(np.float32)
    quality = int(rng.integers(60, 96)) if rng.random() < 0.5 else None
    clean_u8 = _scan(aged, blur, noise, quality)
    damaged_u8 = _scan(damaged, blur, noise, quality)
    change = np.abs(damaged.clip(0, 255) - aged.clip(0, 255)).max(axis=2)
    label = (kinds > 0) & (change >= LABEL_MIN_CHANGE)
    kinds[~label] = 0
    return DamageSample(damaged=damaged_u8, clean=clean_u8, label=label, kinds=kinds)


def classical_detector(image: np.ndarray, threshold: float = 40, size: int = 9) -> np.ndarray:
    """The yardstick of issue 14: white top-hat and black-hat of the grey image with a
    ``size`` x ``size`` ellipse, either above ``threshold`` -> damage."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    top = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel)
    black = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    return (top > threshold) | (black > threshold)
