"""``retoucher detect PHOTOS_DIR MASKS_DIR ...``: the command line of :func:`.detect.run_detect`,
with the batch command's progress bar, summary, torchrun ranks and exit statuses (0 all good,
1 some photos failed, 2 usage error, 130 interrupted; see :mod:`.console`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..damage import DEFAULT_DILATE
from ..inpainting import DetectorFactory
from .cli import add_damage_options
from .console import Parser, add_run_options, run_command
from .detect import DetectOptions, run_detect

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "retoucher detect") -> argparse.ArgumentParser:
    p = Parser(
        prog=prog,
        description=(
            "Find scratches, cracks, dust and spots in every photo of PHOTOS_DIR and write a mask "
            "for each to MASKS_DIR as <stem>.png (white = damage, the photo's size), ready for "
            "'retoucher batch --masks MASKS_DIR' or for review in the app. Photos are never "
            "modified; masks that exist are skipped on a re-run unless --overwrite. Exit status: "
            "0 all good, 1 some photos failed, 2 usage error, 130 interrupted (Ctrl-C; a re-run resumes)."
        ),
    )
    p.add_argument("input_dir", metavar="PHOTOS_DIR", type=Path, help="folder of photos")
    p.add_argument("output_dir", metavar="MASKS_DIR", type=Path, help="where the masks go")
    add_damage_options(p, weights_flag="--weights")
    add_run_options(p)
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = "retoucher detect",
    detector_factory: DetectorFactory | None = None,
) -> int:
    """``retoucher detect`` command line; returns the exit status. ``detector_factory``: how
    the detector is made (tests inject fakes; default: the engine's)."""

    return run_command(
        build_parser(prog),
        argv,
        _options,
        run_detect,
        prog=prog,
        doing="finding damage",
        detector_factory=detector_factory,
    )


def _options(args: argparse.Namespace) -> DetectOptions:
    return DetectOptions(
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        threshold=args.threshold,
        dilate=DEFAULT_DILATE if args.dilate is None else args.dilate,
        weights=args.weights,
        device=args.device,
        overwrite=args.overwrite,
        recursive=args.recursive,
    )
