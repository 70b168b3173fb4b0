"""Texture strength: the photos task of ``retoucher-train evaluate`` with the Inpainter's
``texture`` at several strengths, against Navier-Stokes in the same run.

    .venv/bin/python benchmarks/texture.py --data data/cub256 [--weights W] \\
        [--strengths 0 0.5 1] [--split val] [--photos-limit 20]

The same photos and seeded holes (brush strokes, thin scratches, one object blob) for every
strength; each strength is a method of its own (``engine.texture`` adds the photo's texture,
synthesised from around the hole, to the network's fill). Prints the hole PSNR and the texture
ratio per task and strength (texture: the fill's gradients over the truth's, 1 = as detailed),
and writes the full tables and a grid per task next to ``--out``. Choose the default on the val
split; the test split only reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.evaluate import _load_inpainter, name_with_texture  # noqa: E402
from trainer.photo_eval import _fmt, evaluate_photos  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a prepared folder (retoucher-train prepare)")
    p.add_argument(
        "--weights", default="resources/weights/default.safetensors", help="weight file or checkpoint"
    )
    p.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--photos-limit", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/texture-benchmark.md")
    args = p.parse_args(argv)

    models = {}
    for k, s in enumerate(args.strengths):
        inp = _load_inpainter(args.weights, args.device, texture=s)[0]
        name_with_texture(inp)
        models["ours" if k == 0 else f"cmp{k}"] = inp
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines, section, grids = evaluate_photos(
        args.data,
        args.split,
        models,
        limit=args.photos_limit,
        seed=args.seed,
        radius=3,
        grid_rows=6,
        grid_path=lambda kind: out.with_name(f"{out.stem}-{kind}.jpg"),
        baselines=("ns",),
    )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{section['photos']} {args.split} photos; hole PSNR dB / texture ratio (median)")
    print(f"| holes | Navier-Stokes | {' | '.join(f'texture {s:g}' for s in args.strengths)} |")
    print("|---|---:|" + "---:|" * len(args.strengths))
    for kind, task in section["tasks"].items():
        cells = [f"{r['hole_psnr']:.2f} / {_fmt(r['texture'])}" for r in task["rows"]]
        print(f"| {kind} | {' | '.join(cells)} |")
    print(f"tables: {out}; grids: {', '.join(str(g) for g in grids)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
