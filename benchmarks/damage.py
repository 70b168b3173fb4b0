"""Damage detection speed on a 12-megapixel scan, with baselines timed in the same run.

    python benchmarks/damage.py [--weights FILE] [--device cpu|cuda] [--repeats 3] [--megapixels 12]

Cases, each on the same synthetic old-looking scan (4000x3000 by default):

* ``DamageDetector`` as the app and ``retoucher detect`` call it (tiles, probability, mask);
* the network alone on the whole scan in one pass (no tiling), the floor the tiling adds to;
* the same network fed the common way (``F.pixel_unshuffle`` in torch on an NCHW float tensor,
  no channels_last), to show what the uint8 cell layout and channels_last buy;
* the classical detector (OpenCV top-hat and black-hat, 9x9 ellipse), the yardstick of quality.

Prints a Markdown table: median seconds over ``--repeats`` and the ratio to the detector.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scan(megapixels: float):
    """A smooth photo-like grey scan with grain, a few scratches and specks (deterministic)."""
    import cv2
    import numpy as np

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    small = rng.integers(40, 220, (6, 8), dtype=np.uint8)
    grey = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    grey += rng.normal(0, 4, (h, w)).astype(np.float32)
    img = np.repeat(grey.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    for _ in range(20):
        x = int(rng.integers(0, w))
        cv2.line(img, (x, 0), (x + int(rng.integers(-200, 200)), h - 1), (245, 245, 245), 2, cv2.LINE_AA)
    for _ in range(300):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, c, int(rng.integers(1, 5)), (20, 20, 20), -1, cv2.LINE_AA)
    return img


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: weights in cache, allocator primed
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="detector file (default: the bundled one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--megapixels", type=float, default=12.0)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from engine.damage import DamageDetector
    from trainer.damage_synth import classical_detector

    det = DamageDetector(args.weights, device=args.device)
    image = scan(args.megapixels)
    h, w = image.shape[:2]
    net = det.model
    g = net.config.granularity

    def one_pass() -> None:
        saved = det.tile
        det.tile = 1 << 20
        try:
            det.probability(image)
        finally:
            det.tile = saved

    def common_way() -> None:
        x = torch.from_numpy(image).to(det.device).permute(2, 0, 1)[None].float() / 127.5 - 1
        x = F.pad(x, (0, (-w) % g, 0, (-h) % g), mode="replicate")
        plain = net.to(memory_format=torch.contiguous_format)
        with torch.inference_mode():
            torch.sigmoid(plain(x))
        if det.device.type == "cuda":
            torch.cuda.synchronize(det.device)  # the clock stops when the GPU is done
        net.to(memory_format=torch.channels_last)

    cases = [
        ("DamageDetector (tiles, probability + mask)", lambda: det(image)),
        ("network alone, one pass", one_pass),
        ("the common way: torch unshuffle, NCHW", common_way),
        ("classical top-hat/black-hat (OpenCV)", lambda: classical_detector(image)),
    ]
    print(
        f"damage detection on a {w}x{h} scan ({w * h / 1e6:.1f} MP), {det.name} on {det.device}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print("| case | seconds | x detector |")
    print("|---|---|---|")
    base = None
    for name, fn in cases:
        s = timed(fn, args.repeats)
        base = base or s
        print(f"| {name} | {s:.2f} | {s / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
