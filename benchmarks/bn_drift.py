"""BatchNorm drift: what a fine-tune's re-estimated BatchNorm statistics alone do to a model.

    .venv/bin/python benchmarks/bn_drift.py --data data/cub256 \\
        --mask-dir ../shared/data/nvidia_test_masks [--batches 300] [--limit 200]

A fine-tune with its BatchNorm layers learning (``--freeze-bn none``) re-estimates their running
statistics on its own batches within a few dozen steps. This runs ``--batches`` batches of a
training recipe's data (the masks, native share, batch size and seed that ``retoucher-train
train`` would draw: the data pipeline is the trainer's own) through the model in training mode
without gradients, so that only the statistics move: every BatchNorm layer's, and the decoder's
alone (the encoder's kept, as ``--phase finetune`` keeps them). Each drifted copy is then judged
by ``retoucher-train evaluate`` against the unchanged model in the same run, the same images and
holes (default: the centre hole on 200 val squares). The sixth round (docs/training-rounds.md) is this run with
the defaults on v4: 30.81 dB unchanged, 29.87 every statistic re-estimated, 29.83 the decoder's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.convert import batch_to_network  # noqa: E402
from engine.weights import load_weights, read_weights_info, save_weights  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.data import InpaintingDataset, StepBatchSampler, collate  # noqa: E402
from trainer.evaluate import EvalConfig, evaluate  # noqa: E402
from trainer.loop import training_data  # noqa: E402

# the fifth round's recipe (G), whose first steps lost ~1 dB on the centre hole
RECIPE_MASKS = "center:0.1,folder:0.25,rects:0.05,brush:0.3,scratches:0.15,blobs:0.15"
# drifted copies: their name, and the BatchNorm layers kept as they were (None: none kept)
SCOPES = {"every statistic re-estimated": None, "the decoder's re-estimated": "encoder"}


def drift(
    weights: Path, config: TrainConfig, dataset: InpaintingDataset, batches: int, keep: str | None
) -> torch.nn.Module:
    """The model of ``weights`` after ``batches`` of ``config``'s batches of ``dataset`` in
    training mode, no gradients; the BatchNorm layers of scope ``keep`` hold their statistics."""
    model, _ = load_weights(weights)
    if keep is not None:
        model.freeze_bn(keep)
    model.train()
    sampler = StepBatchSampler(
        len(dataset),
        config.batch_size,
        seed=config.seed,
        start_step=0,
        stop_step=batches,
        rank=0,
        world_size=1,
    )
    with torch.no_grad():
        for keys in sampler:
            gt, hole_map = batch_to_network(*collate([dataset[k] for k in keys]), torch.device("cpu"))
            model(gt * hole_map, hole_map)
    return model.eval()


def save_drifted(path: Path, model: torch.nn.Module, weights: Path, label: str, recipe: dict) -> None:
    """``model`` (a drifted copy of ``weights``) written to ``path`` with the texture strength
    of ``weights``: every model of the comparison then fills alike, and the figures measure the
    drift alone (a copy that named none filled at 0 against v6's own 0.5)."""
    texture = read_weights_info(weights).texture
    save_weights(path, model, {"bn_drift": recipe}, name=label, texture=texture)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a prepared folder (retoucher-train prepare)")
    p.add_argument("--weights", type=Path, default=ROOT / "resources/weights/default.safetensors")
    p.add_argument("--mask-dir", help="the recipe's mask folder (white = hole)")
    p.add_argument(
        "--masks", default=RECIPE_MASKS, help=f"the recipe's mask mixture (default {RECIPE_MASKS})"
    )
    p.add_argument("--native-share", type=float, default=0.5, help="the recipe's --native-share (0.5)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, default=300, help="batches run through the model (300)")
    p.add_argument("--task", default="center", help="evaluate's --task (center)")
    p.add_argument("--split", default="val")
    p.add_argument("--limit", type=int, default=200, help="evaluate's --limit (200)")
    p.add_argument("--photos-limit", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        data=args.data,
        masks=args.masks,
        mask_dir=args.mask_dir,
        native_share=args.native_share,
        batch_size=args.batch_size,
        seed=args.seed,
        workers=0,
    )
    _, _, _, dataset = training_data(config)
    with tempfile.TemporaryDirectory() as tmp:
        drifted = []
        for label, keep in SCOPES.items():
            path = Path(tmp) / f"{len(drifted)}.safetensors"
            model = drift(args.weights, config, dataset, args.batches, keep)
            save_drifted(path, model, args.weights, label, {"batches": args.batches, "kept": keep})
            drifted.append(str(path))
        report = evaluate(
            EvalConfig(
                data=args.data,
                weights=str(args.weights),
                task=args.task,
                mask_dir=args.mask_dir,
                split=args.split,
                limit=args.limit,
                photos_limit=args.photos_limit,
                compare=tuple(drifted),
                out=str(Path(tmp) / "bn_drift.md"),
                grid_rows=0,
                progress=False,
            ),
            log=lambda _line: None,
        )
    print(
        f"BatchNorm drift: {args.batches} batches of {args.batch_size} ({args.masks}, native share "
        f"{args.native_share:g}, seed {args.seed}) through {args.weights.name}, no gradients\n"
    )
    print(report.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
