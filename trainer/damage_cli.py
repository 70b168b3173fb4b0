"""``retoucher-train damage train|evaluate``: the damage detector's command lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import said


def _train(args: argparse.Namespace) -> int:
    from .config import TrainError
    from .damage_train import DamageTrainConfig, DamageTrainError, train_damage

    given = {
        "steps": args.steps,
        "minutes": args.minutes,
        "batch_size": args.batch_size,
        "crop": args.crop,
        "lr": args.lr,
        "width": args.width,
        "seed": args.seed,
        "workers": args.workers,
        "init": str(args.init) if args.init else None,
        "log_every": args.log_every,
        "ckpt_every": args.ckpt_every,
        "calibration_photos": args.calibration_photos,
    }
    given = {k: v for k, v in given.items() if v is not None}
    try:
        config = DamageTrainConfig(data=str(args.data), out=str(args.out), **given)
    except ValueError as exc:
        print(f"retoucher-train damage train: error: {exc}", file=sys.stderr)
        return 2
    try:
        run = train_damage(config, explicit=set(given))
    except (DamageTrainError, TrainError, ValueError, OSError) as exc:
        print(f"retoucher-train damage train: error: {said(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"wrote {run.weights}")
    # stopped by --minutes before its --steps: exported, but not done (as the inpainting trainer's
    # --time-limit: a script that chains runs sees it)
    return 0 if run.finished else 3


def _evaluate(args: argparse.Namespace) -> int:
    from engine.damage import DamageDetector
    from engine.weights import WeightsError

    from .damage_eval import evaluate_detectors, format_kind_table, format_table, write_report
    from .evaluate import check_report_file

    try:
        det = DamageDetector(args.weights, device=args.device)
    except (WeightsError, ValueError) as exc:
        print(f"retoucher-train damage evaluate: error: {exc}", file=sys.stderr)
        return 2
    threshold = args.threshold if args.threshold is not None else det.threshold
    try:
        if args.json:  # before the work: a path that cannot be written lost it in a traceback
            check_report_file(Path(args.json), f"--json {args.json}", "damage.json")
        rows = evaluate_detectors(
            det.probability,
            threshold,
            args.data,
            split=args.split,
            limit=args.limit,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except (ValueError, OSError) as exc:
        print(f"retoucher-train damage evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"held-out synthetic damage: {rows[0].photos} {args.split} photos (seed {args.seed}), native resolution"
    )
    print("\n".join(format_table(rows)))
    print("\nrecall at 2 px by kind of damage:")
    print("\n".join(format_kind_table(rows)))
    if args.json:
        extra = {"weights": str(args.weights or "bundled"), "split": args.split, "seed": args.seed}
        extra["detector"] = det.name
        try:
            write_report(args.json, rows, json.loads(json.dumps(extra)))
        except OSError as exc:  # the tables above are printed: only the file is missing
            print(f"retoucher-train damage evaluate: error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.json}")
    return 0


def add_damage(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "damage",
        help="train or evaluate the damage detector (scratches, cracks, dust, spots)",
        description="The damage detector behind Tools > Find Damage and 'retoucher detect'.",
    )
    dsub = d.add_subparsers(dest="damage_command", required=True)

    t = dsub.add_parser(
        "train",
        help="train on synthetic damage drawn over the train split's photos",
        description="Train (or resume, when RUN_DIR holds a checkpoint) the damage detector on "
        "synthetic damage over the source photos of the train split of a prepared folder; ends with "
        "a checkpoint and RUN_DIR/damage.safetensors (threshold calibrated on fresh damage).",
    )
    t.add_argument("--data", type=Path, required=True, metavar="DATA_DIR", help="a 'prepare' output folder")
    t.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    t.add_argument("--steps", type=int, help="total steps of the schedule (default 20000)")
    t.add_argument(
        "--minutes", type=float, default=None, help="stop (checkpoint, export; exit status 3) after this long"
    )
    t.add_argument("--batch-size", type=int, help="default 16")
    t.add_argument("--crop", type=int, help="training crop side (default 256)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 0.002)")
    t.add_argument("--width", type=int, help="channels at half resolution (default 16)")
    t.add_argument("--seed", type=int, help="default 0")
    t.add_argument("--workers", type=int, help="data worker processes (default 1)")
    t.add_argument("--init", type=Path, default=None, metavar="WEIGHTS", help="start from a detector file")
    t.add_argument("--log-every", type=int, metavar="STEPS", help="default 50")
    t.add_argument("--ckpt-every", type=int, metavar="STEPS", help="default 500")
    t.add_argument("--calibration-photos", type=int, help="train photos the threshold is calibrated on")
    t.set_defaults(func=_train)

    e = dsub.add_parser(
        "evaluate",
        help="precision/recall/F1 and clean-photo flags, against the classical detector",
        description="Held-out synthetic damage on the val split's photos at native resolution; the "
        "same photos and damage for our detector and the classical top-hat/black-hat detector.",
    )
    e.add_argument("--data", type=Path, required=True, metavar="DATA_DIR")
    e.add_argument("--weights", type=Path, default=None, help="detector file (default: the bundled one)")
    e.add_argument("--threshold", type=float, default=None, help="default: the file's calibrated one")
    e.add_argument("--split", default="val", choices=("val", "test"))
    e.add_argument("--limit", type=int, default=300, help="photos (default 300; 0 = all)")
    e.add_argument("--seed", type=int, default=14)
    e.add_argument("--device", default="auto")
    e.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)
