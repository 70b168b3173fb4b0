"""Texture strength: the photos task of ``retoucher-train evaluate`` with the Inpainter's
``texture`` at several strengths, against Navier-Stokes in the same run.

    .venv/bin/python benchmarks/texture.py --data data/cub256 [--weights W] \\
        [--strengths 0 0.5 1] [--split val] [--photos-limit 20]

    .venv/bin/python benchmarks/texture.py --data data/cub256 --weights runs/new/ckpt.pt \\
        --strengths 0.25 --also resources/weights/default.safetensors@0 --photos-limit 200

The same photos and seeded holes (brush strokes, thin scratches, one object blob) for every
strength; each strength is a method of its own (``engine.texture`` adds the photo's texture,
synthesised from around the hole, to the network's fill). Prints the hole PSNR and the texture
ratio per task and strength (texture: the fill's gradients over the truth's, 1 = as detailed),
and writes the full tables and a grid per task next to ``--out``. ``--also W@S``
adds other models (each at its own strength) to the same run; every fill after the first (the
other strengths' and these) is paired by photo with the first strength's (:mod:`trainer.paired`: the mean difference and its 95% interval), the
check of a candidate against the shipped model. Choose the default on the val
split; the test split only reports.

Beside ``--out`` (same name, ``.json``): the run's settings, each model's name and the photos
task's figures as ``retoucher-train evaluate`` writes them (under ``photos``: per task the rows
of every method, the gains over Navier-Stokes and the paired differences), so that they can be
read again without rerunning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.atomic import write_text_atomic  # noqa: E402
from trainer.evaluate import _load_inpainter, name_with_texture  # noqa: E402
from trainer.paired import PairedDifference  # noqa: E402
from trainer.photo_eval import _fmt, evaluate_photos  # noqa: E402


def _weights_at(spec: str) -> tuple[str, float]:
    """``WEIGHTS@STRENGTH`` (an --also value) as (weights, strength)."""
    weights, at, strength = spec.rpartition("@")
    try:
        if at:
            return weights, float(strength)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"takes WEIGHTS@STRENGTH, got {spec!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a prepared folder (retoucher-train prepare)")
    p.add_argument(
        "--weights",
        default=str(ROOT / "resources/weights/default.safetensors"),
        help="weight file or checkpoint",
    )
    p.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument(
        "--also",
        nargs="+",
        type=_weights_at,
        default=[],
        metavar="W@S",
        help="more models after the strengths, each a weight file or checkpoint at a strength "
        "(e.g. resources/weights/default.safetensors@0); each is paired by photo with the first",
    )
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--photos-limit", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/texture-benchmark.md")
    args = p.parse_args(argv)

    if Path(args.out).suffix.lower() == ".json":
        p.error("--out names the tables' markdown file; the JSON is written beside it (same name, .json)")
    runs = [(args.weights, s) for s in args.strengths] + args.also
    models = {}
    for k, (weights, s) in enumerate(runs):
        inp = _load_inpainter(weights, args.device, texture=s)[0]
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
    write_text_atomic(out, "\n".join(lines) + "\n")
    figures = {
        "data": str(args.data),
        "split": args.split,
        "seed": args.seed,
        "photos_limit": args.photos_limit,
        "strengths": args.strengths,
        "models": {  # "ours": the first strength, then cmp1, ... as in photos' rows
            key: {"weights": str(weights), "texture": m.texture, "name": m.name}
            for (key, m), (weights, _s) in zip(models.items(), runs)
        },
        "photos": section,
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(figures, indent=2) + "\n")
    print(f"{section['photos']} {args.split} photos; hole PSNR dB / texture ratio (median)")
    heads = [f"texture {s:g}" for s in args.strengths] + [
        m.name for m in list(models.values())[len(args.strengths) :]
    ]
    print(f"| holes | Navier-Stokes | {' | '.join(heads)} |")
    print("|---|---:|" + "---:|" * len(heads))
    for kind, task in section["tasks"].items():
        cells = [f"{r['hole_psnr']:.2f} / {_fmt(r['texture'])}" for r in task["rows"]]
        print(f"| {kind} | {' | '.join(cells)} |")
    for kind, task in section["tasks"].items():
        for key, lead in task.items():
            if key.startswith("ours_vs_"):
                print(
                    f"{kind}: texture {args.strengths[0]:g} vs {models[key.removeprefix('ours_vs_')].name}, "
                    "paired by photo: "
                    f"{PairedDifference(**lead).describe()}"
                )
    print(f"tables: {out}, figures: {out.with_suffix('.json')}; grids: {', '.join(str(g) for g in grids)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
