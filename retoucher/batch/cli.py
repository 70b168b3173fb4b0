"""``retoucher batch INPUT_DIR OUTPUT_DIR ...``: the command line of :func:`run_batch`, with a
progress bar, exit statuses (0 all good, 1 some photos failed, 2 usage error, 130 interrupted)
and, under ``torchrun``, each rank's share and the meeting of the ranks at the end so that all
exit with the status of the whole batch (the flow is :func:`.console.run_command`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.mirror_pass import MIRROR
from engine.texture_strength import MAX_TEXTURE, TEXTURE

from ..damage import DEFAULT_DILATE
from ..inpainting import DetectorFactory
from .console import Parser, add_run_options, rank_from_env, run_command
from .options import OUTPUT_FORMATS, BatchOptions, MaskSpec
from .runner import run_batch

__all__ = ["build_parser", "main", "rank_from_env"]


def build_parser(prog: str = "retoucher batch") -> argparse.ArgumentParser:
    p = Parser(
        prog=prog,
        description=(
            "Fill a hole in every photo of INPUT_DIR and write the results to OUTPUT_DIR "
            "(same file names). The hole is a given one (--masks, --mask, --rect or "
            "--center-hole), the damage found in the photo (--find-damage), or both together. "
            "Inputs are never modified; finished outputs are skipped on a "
            "re-run unless --overwrite. Exit status: 0 all good, 1 some photos failed, "
            "2 usage error, 130 interrupted (Ctrl-C; a re-run resumes). Runs under 'torchrun --nproc_per_node=N' too (each rank takes its "
            "share of the files; all ranks exit with the status of the whole batch)."
        ),
    )
    p.add_argument("input_dir", metavar="INPUT_DIR", type=Path, help="folder of photos")
    p.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the results go")
    m = p.add_argument_group(
        "given hole (at most one; or none with --find-damage)"
    ).add_mutually_exclusive_group()
    m.add_argument(
        "--masks",
        metavar="DIR",
        type=Path,
        help="folder of PNG masks named <stem>.png or <stem>_mask.png, white = hole "
        "(only <stem>_mask.png when DIR is INPUT_DIR: masks next to the photos); a photo "
        "without one fails, or with --find-damage gets only the damage found filled",
    )
    m.add_argument("--mask", metavar="FILE", type=Path, help="one mask for every photo")
    m.add_argument("--rect", metavar="X,Y,W,H", help="a rectangular hole, in pixels")
    m.add_argument("--center-hole", metavar="SIZE", help="a centred square hole of SIZE (or WxH) pixels")
    d = p.add_argument_group("found damage")
    d.add_argument(
        "--find-damage",
        action="store_true",
        help="also fill the scratches, cracks, dust and spots the damage detector finds "
        "(with a given hole: both are filled)",
    )
    add_damage_options(d, weights_flag="--damage-weights")
    p.add_argument(
        "--weights",
        metavar="PATH",
        type=Path,
        help="model weights (.safetensors); default: the bundled model",
    )
    p.add_argument(
        "--texture",
        metavar="S",
        type=float,
        help="add the photo's fine texture (grain, foliage, gravel), synthesised from around "
        "each hole, to the fill: 0 = the model's fill alone, 1 = as strong as around the hole, "
        f"up to {MAX_TEXTURE:g} (default: the model's own strength, which its weight file names; "
        f"{TEXTURE:g} for a file that names none)",
    )
    p.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=MIRROR,
        help="fill each hole's crop and its mirror image and average the two fills (the default): "
        "0.03-0.05 dB more accurate than one pass with the bundled model (test split), for twice "
        "the network's time; --no-mirror: one pass",
    )
    p.add_argument(
        "--format", default="same", choices=OUTPUT_FORMATS, help="output format (default: same as the input)"
    )
    p.add_argument(
        "--quality",
        type=int,
        default=None,
        help="JPEG/WebP quality 1-100 (default: a JPEG written from a JPEG keeps the "
        "original's quantisation, anything else 95; a lossless WebP stays lossless)",
    )
    add_run_options(p)
    return p


def add_damage_options(p: argparse._ActionsContainer, *, weights_flag: str) -> None:
    """--threshold, --dilate and the detector's weights (``weights_flag``), shared with
    ``retoucher detect``."""
    p.add_argument(
        "--threshold",
        metavar="T",
        type=float,
        default=None,
        help="damage probability from which a pixel counts as damage, in (0, 1]; lower finds "
        "more (default: the detector's calibrated threshold)",
    )
    p.add_argument(
        "--dilate",
        metavar="PX",
        type=int,
        default=None,
        help=f"grow the found damage by PX pixels (default {DEFAULT_DILATE})",
    )
    p.add_argument(
        weights_flag,
        metavar="FILE",
        type=Path,
        default=None,
        help="damage detector weights (.safetensors); default: the bundled detector",
    )


# options whose value may start with a minus sign (a negative number the value's own check refuses)
_SIGNED_VALUES = ("--rect", "--center-hole")


def _signed_values_joined(argv: Sequence[str]) -> list[str]:
    """``--rect -1,0,5,5`` as ``--rect=-1,0,5,5`` (and ``--center-hole -3x4``): argparse takes a
    value that starts with a minus sign and a digit for an option and says only "expected one
    argument"; joined, the value's own check tells what is wrong with it. Nothing after ``--``
    (the end of the options) is touched."""
    out = list(argv)
    end = out.index("--") if "--" in out else len(out)
    for i in range(end - 2, -1, -1):
        if out[i] in _SIGNED_VALUES and re.match(r"-\d", out[i + 1]):
            out[i : i + 2] = [f"{out[i]}={out[i + 1]}"]
    return out


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "retoucher batch",
    detector_factory: DetectorFactory | None = None,
) -> int:
    """``retoucher batch`` command line; returns the exit status. ``detector_factory``: how
    ``--find-damage`` makes its detector (tests inject fakes; default: the engine's)."""

    return run_command(
        build_parser(prog),
        _signed_values_joined(sys.argv[1:] if argv is None else argv),
        _options,
        run_batch,
        prog=prog,
        doing="retouching",
        detector_factory=detector_factory,
    )


def _options(args: argparse.Namespace) -> BatchOptions:
    """The options the command line asks for; ValueError for a bad value."""
    damage = (args.threshold, args.dilate, args.damage_weights)
    if not args.find_damage and any(v is not None for v in damage):
        raise ValueError("--threshold, --dilate and --damage-weights go with --find-damage")
    masks: MaskSpec | None = None
    if args.masks is not None:
        masks = MaskSpec("dir", args.masks)
    elif args.mask is not None:
        masks = MaskSpec("file", args.mask)
    elif args.rect is not None:
        masks = MaskSpec("rect", args.rect)
    elif args.center_hole is not None:
        masks = MaskSpec("center", args.center_hole)
    return BatchOptions(
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        masks=masks,
        weights=args.weights,
        device=args.device,
        format=args.format,
        overwrite=args.overwrite,
        recursive=args.recursive,
        quality=args.quality,
        find_damage=args.find_damage,
        threshold=args.threshold,
        dilate=DEFAULT_DILATE if args.dilate is None else args.dilate,
        damage_weights=args.damage_weights,
        texture=args.texture,
        mirror=args.mirror,
    )
