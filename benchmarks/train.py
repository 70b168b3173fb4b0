"""Training speed: images per second of one optimisation step (forward, loss, backward, Adam)
for each model width, with the paper's full loss (VGG perceptual + style) and with ``--loss l1``,
on the CPU and on CUDA when present. Also the data pipeline's own rate (decode-free preloaded
images, random crops/flips, masks), to show it is not the bottleneck.

    .venv/bin/python benchmarks/train.py                       # tiny, small, paper; full and l1
    .venv/bin/python benchmarks/train.py --presets small --batch-size 8 --steps 5
    .venv/bin/python benchmarks/train.py --vgg-size 128        # VGG at reduced resolution

Uses the trainer's own TrainStep, so the numbers are those of ``retoucher-train train``.
The ratio column is relative to the baseline row (default: paper widths, full loss, same device;
the first row measured when the baseline was not, and the header names it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.unet import MODEL_PRESETS, PConvUNet
from trainer.config import TrainConfig
from trainer.masks import parse_mask_mixture
from trainer.step import TrainStep, amp_dtype, build_loss, cuda_speed_switches


def step_rate(preset: str, loss: str, device: torch.device, args: argparse.Namespace) -> float:
    cfg = TrainConfig(
        loss=loss,
        vgg_size=args.vgg_size,
        vgg_calibration="off",  # the speed is the same; calibrating needs a prepared folder
        channels_last=not args.no_channels_last,
        amp=args.amp,
    )
    if device.type == "cuda":
        cuda_speed_switches()  # as retoucher-train train sets them
    torch.manual_seed(0)
    model = PConvUNet(MODEL_PRESETS[preset]).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    loss_fn, _ = build_loss(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    adtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=adtype == torch.float16)
    step = TrainStep(
        model,
        loss_fn,
        opt,
        None,
        scaler,
        device=device,
        autocast_dtype=adtype,
        channels_last=cfg.channels_last,
    )
    rng = np.random.default_rng(0)
    masks = parse_mask_mixture("center:0.4,rects:0.2,strokes:0.4")
    n, s = args.batch_size, args.size
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8))
    holes = torch.from_numpy(np.stack([masks(rng, s, s) for _ in range(n)]))[:, None]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step(images, holes, step=0)
    sync()
    t = time.perf_counter()
    for _ in range(args.steps):
        step(images, holes, step=0)
    sync()
    return args.steps * n / (time.perf_counter() - t)


def data_rate(args: argparse.Namespace) -> float:
    """Samples per second of the dataset + collate alone (one process), preloaded images."""
    from trainer.data import InpaintingDataset, collate

    class _Images:
        def __init__(self, n: int, s: int) -> None:
            self.array = np.random.default_rng(0).integers(0, 256, (n, s, s, 3), dtype=np.uint8)
            self.shape = self.array.shape[1:]

        def __len__(self) -> int:
            return len(self.array)

        def __getitem__(self, i: int) -> np.ndarray:
            return self.array[i]

    spec = "center:0.4,strokes:0.3,folder:0.3" if args.mask_dir else "center:0.4,rects:0.2,strokes:0.4"
    ds = InpaintingDataset(_Images(64, args.size), parse_mask_mixture(spec, args.mask_dir))  # type: ignore[arg-type]
    n = 256
    t = time.perf_counter()
    for start in range(0, n, args.batch_size):
        collate([ds[(k % 64, k)] for k in range(start, start + args.batch_size)])
    return n / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="tiny,small,paper", help="comma-separated model presets")
    p.add_argument("--losses", default="full,l1", help="comma-separated: full, l1")
    p.add_argument("--batch-size", type=int, default=6)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=3, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--vgg-size", type=int, default=None, help="VGG input side (default: full)")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="autocast as in train (auto = bf16 on Ampere-on GPUs, fp16 on older ones, off on CPU)",
    )
    p.add_argument("--devices", default="auto", help="auto = cpu (+ cuda when present)")
    p.add_argument("--baseline", default="paper/full", help="PRESET/LOSS row the ratios refer to")
    p.add_argument("--mask-dir", default=None, help="include folder masks in the data-rate row")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        if args.devices == "auto"
        else args.devices.split(",")
    )
    presets = [x for x in args.presets.split(",") if x]
    losses = [x for x in args.losses.split(",") if x]
    print(
        f"# Training speed: batch {args.batch_size}, {args.size}x{args.size}, {args.steps} timed steps "
        f"after {args.warmup} warm-up; CPU threads {torch.get_num_threads()} of {os.cpu_count()} cores"
        + (f"; VGG at {args.vgg_size}px" if args.vgg_size else "")
        + f"; amp {args.amp}"
    )
    for dev_name in devices:
        device = torch.device(dev_name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        rows = []
        for preset in presets:
            for loss in losses:
                rate = step_rate(preset, loss, device, args)
                rows.append((preset, loss, rate))
                print(f"  measured {label} {preset}/{loss}: {rate:.2f} images/s", file=sys.stderr, flush=True)
        # the ratios' row: --baseline when it was measured, else the first row, named as it is
        named = [(f"{pr}/{lo}", r) for pr, lo, r in rows]
        baseline, base = next(((n, r) for n, r in named if n == args.baseline), named[0])
        print(f"\n## {label}\n")
        print("| Model | Parameters | Loss | Images/s | Ratio to " + baseline + " |")
        print("|---|---:|---|---:|---:|")
        for preset, loss, rate in rows:
            params = PConvUNet(MODEL_PRESETS[preset]).num_parameters() / 1e6
            print(
                f"| {preset} {MODEL_PRESETS[preset].widths} | {params:.1f}M | {loss} | {rate:.2f} | {rate / base:.2f}x |"
            )
    print(f"\nData pipeline (one process, preloaded images, masks): {data_rate(args):.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
