"""The README's Find Damage example: an old-looking print made from resources/sample.jpg (aged,
scratched, dusty: trainer.damage_synth with a fixed seed), what the bundled detector finds, and
the fill, exactly as Tools > Find Damage then Fill do it (retoucher.damage.damage_mask with the
calibrated threshold and the default grow, then the bundled Inpainter).

    python scripts/damage_example.py docs/damage_example.png [--seed N]

The picture: the whole photo at half size (before | found, in red over the photo | after), and
below, one 100% crop of each. Also prints the pixel figures of the find against the drawn damage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.damage import DamageDetector  # noqa: E402 - after the path set-up
from engine.inpainter import Inpainter  # noqa: E402
from retoucher.bundled import sample_photo  # noqa: E402
from retoucher.damage import damage_mask  # noqa: E402
from trainer.damage_eval import Counts  # noqa: E402
from trainer.damage_synth import synthesize  # noqa: E402


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    out[mask] = out[mask] * 0.3 + np.array([255, 0, 0], np.float32) * 0.7
    return out.astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--crop", default="560,300,380,260", help="x,y,w,h of the 100%% crop")
    args = ap.parse_args(argv)

    photo = np.asarray(Image.open(sample_photo()).convert("RGB"))
    sample = synthesize(np.random.default_rng(args.seed), photo)
    before = sample.damaged
    detector = DamageDetector(device="cpu")
    detection = detector(before)  # one network pass: scored raw, filled grown
    found = damage_mask(detection)
    after = Inpainter(device="cpu")(before, found)

    counts = Counts()
    counts.add(detection.mask, sample.label, detector(sample.clean).mask)
    p, r, f = counts.scores(2)
    print(
        f"{detector.name} at {detector.threshold:.3f}: precision {p:.3f}, recall {r:.3f}, F1 {f:.3f} (2 px); "
        f"{100 * counts.clean_share:.2f}% flagged on the undamaged print; {100 * found.mean():.2f}% filled"
    )

    panels = [before, overlay(before, found), after]
    h, w = before.shape[:2]
    half = [np.asarray(Image.fromarray(p).resize((w // 2, h // 2), Image.Resampling.LANCZOS)) for p in panels]
    x, y, cw, ch = (int(v) for v in args.crop.split(","))
    crops = [p[y : y + ch, x : x + cw] for p in panels]
    gap = 8
    top = np.full((h // 2, 3 * (w // 2) + 2 * gap, 3), 255, np.uint8)
    bottom = np.full((ch, 3 * (w // 2) + 2 * gap, 3), 255, np.uint8)
    for i, (a, c) in enumerate(zip(half, crops, strict=True)):
        x0 = i * (w // 2 + gap)
        top[:, x0 : x0 + w // 2] = a
        bottom[:, x0 : x0 + cw] = c
    grid = np.concatenate([top, np.full((gap, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
