"""Procedurally paint resources/sample.jpg: a 1024x768 evening landscape (sky gradient, sun,
layered hills, a lake with reflections, a meadow) with things to retouch away: a power pole
with wires and a signpost. Deterministic (seed 2024). numpy + Pillow only."""

import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 1024, 768
rng = np.random.default_rng(2024)


def fbm1d(n, octaves=6, seed=0):
    r = np.random.default_rng(seed)
    out = np.zeros(n)
    amp, freq = 1.0, 2
    for _ in range(octaves):
        pts = r.standard_normal(freq + 2)
        xs = np.linspace(0, freq, n)
        i = np.floor(xs).astype(int)
        t = xs - i
        t = t * t * (3 - 2 * t)
        out += amp * (pts[i] * (1 - t) + pts[i + 1] * t)
        amp *= 0.5
        freq *= 2
    return out / np.abs(out).max()


def noise2d(h, w, scale, seed):
    r = np.random.default_rng(seed)
    small = r.standard_normal((h // scale + 2, w // scale + 2)).astype(np.float32)
    im = Image.fromarray(small).resize((w + 2 * scale, h + 2 * scale), Image.BICUBIC)
    return np.asarray(im)[:h, :w]


y = np.linspace(0, 1, H)[:, None, None]
top = np.array([38, 72, 140], float)
mid = np.array([120, 160, 210], float)
low = np.array([250, 196, 140], float)
t = np.clip(y / 0.55, 0, 1)
sky = np.where(t < 0.6, top + (mid - top) * (t / 0.6), mid + (low - mid) * ((t - 0.6) / 0.4))
img = np.broadcast_to(sky, (H, W, 3)).copy()

# sun and its glow
yy, xx = np.mgrid[0:H, 0:W]
sx, sy = 760, 318
d = np.hypot(xx - sx, yy - sy)
glow = np.exp(-d / 120.0)[..., None]
img = img * (1 - 0.55 * glow) + np.array([255, 230, 180]) * 0.55 * glow
img[d < 34] = (255, 246, 222)


# soft clouds
def stretched(scale_y, scale_x, seed):
    r = np.random.default_rng(seed)
    small = r.standard_normal((H // scale_y + 2, W // scale_x + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((W + 2 * scale_x, H + 2 * scale_y), Image.BICUBIC))[
        :H, :W
    ]


clouds = stretched(40, 160, 1) + 0.45 * stretched(14, 50, 2) + 0.2 * stretched(5, 16, 3)
cmask = np.clip((clouds - 0.55) * 0.9, 0, 0.8) * np.clip(1 - y[..., 0] / 0.42, 0, 1)
img = img * (1 - 0.5 * cmask[..., None]) + 250 * 0.5 * cmask[..., None]

# hills, far to near: lighter/bluer far away (atmospheric perspective)
horizon = 470
layers = [
    (horizon - 95, 45, (128, 136, 170), 3),
    (horizon - 50, 30, (92, 110, 128), 4),
    (horizon - 12, 16, (62, 92, 72), 5),
]
for base, amp, colour, seed in layers:
    ridge = base + amp * fbm1d(W, seed=seed)
    tex = noise2d(H, W, 10, seed + 10)
    under = yy >= ridge[None, :]
    shade = np.clip(1 - (yy - ridge[None, :]) / 400.0, 0.75, 1.0)[..., None]
    c = np.array(colour, float)[None, None] * shade * (1 + 0.025 * tex[..., None])
    img = np.where(under[..., None], c, img)

# lake with a blurred, darkened reflection of what is above the shore
shore = horizon + 10
lake_bottom = 600
rows = np.arange(lake_bottom - shore)
src_rows = np.clip(shore - 1 - (rows * 1.6).astype(int), 0, H - 1)  # foreshortened mirror image
ripple = np.round(
    3
    * np.sin(np.arange(W)[None, :] / 9.0 + rows[:, None] * 0.9)
    * (0.3 + rows[:, None] / (lake_bottom - shore))
).astype(int)
cols = np.clip(np.arange(W)[None, :] + ripple, 0, W - 1)
refl = img[src_rows[:, None], cols]
streaks = np.clip(stretched(2, 60, 21)[shore:lake_bottom] - 1.2, 0, 1)[..., None] * 40
img[shore:lake_bottom] = refl * 0.72 + np.array([25, 45, 70]) * 0.28 + streaks

# meadow in front
mtex = noise2d(H, W, 3, 30) * 0.6 + noise2d(H, W, 20, 31)
edge = lake_bottom + 8 * fbm1d(W, seed=40)
grass = yy >= edge[None, :]
depth = np.clip((yy - lake_bottom) / (H - lake_bottom), 0, 1)[..., None]
gcol = np.array([96, 128, 52]) * (1 - 0.35 * depth) + np.array([40, 60, 20]) * 0.35 * depth
gcol = gcol * (1 + 0.12 * mtex[..., None])
img = np.where(grass[..., None], gcol, img)

im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
draw = ImageDraw.Draw(im)
# a wooden power pole with a cross-arm and sagging wires: the classic thing to remove
px = 250
draw.rectangle([px - 5, 170, px + 5, 640], fill=(58, 44, 34))
draw.rectangle([px - 48, 196, px + 48, 204], fill=(58, 44, 34))
for k, off in enumerate((-40, 0, 40)):

    def sag(x, off=off, k=k):
        span = (W - px) if x > px else px
        u = (x - px) / span
        return 199 + k * 9 + 60 * u * u * (1 if x > px else 0.5) + 0 * off

    pts = [(x, sag(x)) for x in range(0, W + 8, 8)]
    draw.line(pts, fill=(28, 28, 32), width=2)
# a signpost in the meadow
draw.rectangle([820, 600, 826, 690], fill=(70, 52, 36))
draw.polygon([(790, 600), (860, 600), (872, 614), (860, 628), (790, 628)], fill=(190, 160, 60))
# a few birds
for bx, by in ((520, 150), (545, 165), (575, 140)):
    draw.arc([bx - 9, by - 4, bx, by + 4], 200, 340, fill=(30, 30, 40), width=2)
    draw.arc([bx, by - 4, bx + 9, by + 4], 200, 340, fill=(30, 30, 40), width=2)
im = im.filter(ImageFilter.GaussianBlur(0.6))
out = sys.argv[1] if len(sys.argv) > 1 else "resources/sample.jpg"
im.save(out, quality=88, optimize=True, progressive=True)
print(out)
