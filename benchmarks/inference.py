"""Inference speed and memory of the engine, with baselines timed in the same run.

    python benchmarks/inference.py [--device cpu|cuda|all] [--repeats 5] [--quick] [--model default]

Every case runs in a fresh child process, so "peak RSS" is that case's own high-water mark
(whole process: Python, torch, model, images). Cases:

* model forward at 256x256 and 512x512 for the paper configurations and the default model, each
  against a *plain* PyTorch partial convolution written the common way (NCHW, a per-channel mask
  tensor, the mask kernel allocated on every call, ``torch.no_grad``) with the same weights;
  ablations show what channels_last and inference_mode buy on their own, and what each of the
  engine's own forms costs when switched off (BatchNorm folded in, box sums for the mask
  counts, the decoder's upsampled convolution computed at low resolution);
* the same with bf16 autocast (the Inpainter's ``precision="auto"`` on CPUs with native bf16);
* a 6000x4000 photo with a 300x300 brushed hole (Inpainter defaults, the model's own texture
  strength and the mirrored second network pass, as the app fills; also without edge matching,
  with one network pass (``mirror=False``), and with texture 0.5): the call alone,
  and end to end
  (decode the JPEG, fill, encode the JPEG with its metadata) through engine.imageio;
* a 512x512 grainy photo with a 40 px brush stroke 300 px long (one crop): the Inpainter call
  with one network pass (``mirror=False``) without and with the photo's texture (the default
  model's own strength and 0.5; engine.texture), the first the baseline of the others, and as the
  app fills: at the model's own strength with the crop and its mirror image through the network
  (the Inpainter's default);
* OpenCV Telea on the same inputs, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- plain baseline
def plain_model(engine_model):
    """The same network, written the plain way, sharing the engine model's weights."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class PlainPConv(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x, mask):  # mask: (N, C_in, H, W)
            p = self.p
            kernel = torch.ones(1, p.in_channels, p.kernel_size, p.kernel_size, device=x.device)
            with torch.no_grad():
                counts = F.conv2d(mask, kernel, stride=p.stride, padding=p.padding)
                ratio = p.window_size / (counts + 1e-8)
                new_mask = torch.clamp(counts, 0, 1)
                ratio = ratio * new_mask
            raw = F.conv2d(x * mask, p.conv.weight, p.bias, p.stride, p.padding)
            if p.bias is not None:
                b = p.bias.view(1, -1, 1, 1)
                out = ((raw - b) * ratio + b) * new_mask
            else:
                out = raw * ratio
            return out, new_mask

    class Plain(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, mask):
            m = self.m
            feats = []
            h, hm = x, mask.expand_as(x)
            for blk in m.encoder:
                feats.append((h, hm))
                h, nm = PlainPConv(blk.pconv)(h, hm)
                if blk.bn is not None:
                    h = blk.bn(h)
                h = blk.act(h)
                hm = nm.expand(-1, h.shape[1], -1, -1)
            for blk in m.decoder:
                skip, sm = feats.pop()
                h = F.interpolate(h, scale_factor=2.0)
                hm = F.interpolate(hm, scale_factor=2.0)
                h = torch.cat([h, skip], 1)
                hm = torch.cat([hm, sm], 1)
                h, nm = PlainPConv(blk.pconv)(h, hm)
                if blk.bn is not None:
                    h = blk.bn(h)
                if blk.act is not None:
                    h = blk.act(h)
                hm = nm.expand(-1, h.shape[1], -1, -1)
            if m.refine is not None:  # the refinement head has no partial convolution: shared as is
                h = m.refine(h, x, mask)
            return h

    return Plain(engine_model).eval()


# ----------------------------------------------------------------------------- child side
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_config(name: str):
    """(architecture, weight file or None, the model's own texture strength) of ``name``."""
    from engine import MODEL_PRESETS, default_weights_path, read_weights_info
    from engine.texture_strength import TEXTURE

    if name == "default":
        path = default_weights_path()
        if path.is_file():
            info = read_weights_info(path)
            return info.config, path, info.texture
        print("no default weights bundled: the 'default' rows use the 'small' preset", file=sys.stderr)
        return MODEL_PRESETS["small"], None, TEXTURE
    return MODEL_PRESETS[name], None, TEXTURE


def run_case(case: dict) -> dict:
    import numpy as np
    import torch

    from engine import Inpainter, PConvUNet, load_weights
    from engine.mirror_pass import MIRROR

    torch.manual_seed(0)
    device = torch.device(case["device"])
    cuda = device.type == "cuda"
    repeats = case["repeats"]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn):
        fn()  # warm-up (oneDNN / cuDNN pick their kernels)
        sync()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        return times

    kind = case["kind"]
    if kind in ("telea", "dust_telea"):
        import cv2

        img, hole = (
            _big_photo() if kind == "telea" else _dusty_scan(case.get("specks", 150), case.get("wide", 0))
        )
        bgr = np.ascontiguousarray(img[..., ::-1])
        m8 = hole.astype(np.uint8) * 255
        times = timed(lambda: cv2.inpaint(bgr, m8, 3, cv2.INPAINT_TELEA))
    elif kind == "dust":
        import engine.inpainter as ei

        if case.get("network_every_crop"):  # a network pass per speck, as before the thin-only
            ei.photo_fill = ei.thin_fill = lambda *a, **k: None  # path (its texture search stays skipped)
        if case.get("window_a_speck"):  # each speck in a window of its own, as before the groups
            ei.group_specks = lambda regions, margin: [(r,) for r in regions]
        if case.get("crop_a_speck"):  # each wide speck in a crop of its own, as before they shared
            ei.share_crops = lambda specks, *a: [(r.crop, (r,)) for r in specks]
        _, path, own = _model_config("default")
        model, _ = load_weights(path)
        ip = Inpainter.from_model(model, device, texture=own)
        img, hole = _dusty_scan(case.get("specks", 150), case.get("wide", 0))
        times = timed(lambda: ip(img, hole))
    else:
        config, path, own = _model_config(case["model"])  # own: the app's strength for it
        if path is not None:
            model, _ = load_weights(path)
        else:
            model = PConvUNet(config).eval()
        if kind == "photo":
            ip = Inpainter.from_model(
                model,
                device,
                edges=case.get("edges", True),
                texture=case.get("texture", own),
                mirror=case.get("mirror", MIRROR),
            )
            img, hole = _big_photo()
            times = timed(lambda: ip(img, hole))
        elif kind == "crop":
            ip = Inpainter.from_model(
                model, device, texture=case["texture"], mirror=case.get("mirror", MIRROR)
            )
            img, hole = _stroke_crop()
            times = timed(lambda: ip(img, hole))
        elif kind == "photo_file":
            import tempfile

            from engine.imageio import load_image, save_image

            ip = Inpainter.from_model(model, device, texture=own)
            img, hole = _big_photo()
            tmp = Path(tempfile.mkdtemp())
            save_image(tmp / "in.jpg", img)

            def end_to_end():
                photo = load_image(tmp / "in.jpg")
                out = ip(photo.rgb, hole)
                save_image(tmp / "out.jpg", out, metadata=photo.metadata)

            times = timed(end_to_end)
        else:
            size = case["size"]
            x = torch.rand(1, 3, size, size, device=device) * 2 - 1
            g = torch.Generator().manual_seed(1)
            mask = (torch.rand(1, 1, size, size, generator=g) > 0.25).float().to(device)
            model = model.to(device)
            variant = case["variant"]
            if variant == "plain":
                net = plain_model(model)
                ctx = torch.no_grad
            else:
                net = model
                ctx = torch.inference_mode if "inference_mode" in variant else torch.no_grad
                if "-fold_bn" in variant:
                    import engine.unet as unet

                    unet._EncoderBlock.fold_bn = unet._DecoderBlock.fold_bn = False
                if "-box_sum" in variant:
                    from engine.layers import PartialConv2d

                    PartialConv2d.box_sum_counts = False
                if "-subpixel" in variant:
                    import engine.unet as unet

                    unet._DecoderBlock.subpixel = False
                if "channels_last" in variant:
                    net = net.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)

            bf16 = "+bf16" in variant

            def fwd():
                with ctx(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    return net(x * mask, mask)

            times = timed(fwd)
    out = {
        "ms": 1000 * min(times),
        "ms_median": 1000 * statistics.median(times),
        "peak_rss_mb": _peak_rss_mb(),
    }
    if cuda:
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _big_photo():
    """A 6000x4000 photo-like image with a 300x300 brushed (round-ended stroke) hole."""
    import numpy as np

    h, w = 4000, 6000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (128 + 100 * np.sin(xx / 300)).astype(np.uint8)
    img[..., 1] = (128 + 100 * np.cos(yy / 250)).astype(np.uint8)
    img[..., 2] = ((xx + yy) / (w + h) * 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    cy, cx = 2000, 3000
    for t in np.linspace(0, 1, 60):  # a diagonal stroke of a 60-px brush inside 300x300
        y, x = cy - 120 + 240 * t, cx - 120 + 240 * t
        hole[int(y) - 30 : int(y) + 30, int(x) - 30 : int(x) + 30] |= (
            (yy[int(y) - 30 : int(y) + 30, int(x) - 30 : int(x) + 30] - y) ** 2
            + (xx[int(y) - 30 : int(y) + 30, int(x) - 30 : int(x) + 30] - x) ** 2
        ) <= 900
    return img, hole


def _dusty_scan(count: int = 150, wide: int = 0):
    """A 4000x3000 grainy scan-like image with ``count`` specks of dust, 4-12 px across (Find
    Damage's specks, grown by 2 px), spread over it, and ``wide`` more of 14-24 px, too wide
    for the photo's own fill (a larger fleck, a brush's dab)."""
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(xx / 400), 128 + 90 * np.cos(yy / 350), (xx + yy) / (w + h) * 255], -1)
    img = np.clip(base + rng.normal(0, 6, (h, w, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    specks = [  # the thin ones drawn first: the same as before the wide ones were added
        (rng.integers(10, h - 10, count), rng.integers(10, w - 10, count), rng.integers(2, 7, count)),
        (rng.integers(20, h - 20, wide), rng.integers(20, w - 20, wide), rng.integers(7, 13, wide)),
    ]
    for y, x, r in (s for drawn in specks for s in zip(*drawn)):
        hole[y - r : y + r, x - r : x + r] |= (yy[y - r : y + r, x - r : x + r] - y) ** 2 + (
            xx[y - r : y + r, x - r : x + r] - x
        ) ** 2 <= r * r
    return img, hole


def _stroke_crop():
    """A 512x512 grainy photo-like image with a 40 px brush stroke, 300 px tall, wavy."""
    import numpy as np

    rng = np.random.default_rng(0)
    xx = np.arange(512, dtype=np.float32)[None, :, None]
    img = np.clip(128 + 40 * np.sin(xx / 20) + rng.normal(0, 12, (512, 512, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((512, 512), bool)
    for y in range(106, 406):
        x = 256 + int(60 * np.sin(y / 30))
        hole[y, x - 20 : x + 20] = True
    return img, hole


# ----------------------------------------------------------------------------- parent side
def child(case: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(case)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the ablations and the 256 paper case")
    ap.add_argument(
        "--model",
        choices=["paper512", "paper", "default"],
        help="only this model's cases (Telea, the photo baseline, always runs)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return

    import torch

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA not available: CPU only")
        devices = ["cpu"]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, threads {torch.get_num_threads()}")
    owns = {m: _model_config(m)[2] for m in ("default", "paper512")}  # each model's own texture
    own = owns["default"]
    rows = []
    for dev in devices:
        base = {"device": dev, "repeats": args.repeats}
        models = [("paper512", 512), ("paper", 256), ("default", 256), ("default", 512)]
        if args.quick:
            models = [("paper512", 512), ("default", 512)]
        if args.model:
            models = [(m, size) for m, size in models if m == args.model]
        for model, size in models:
            variants = ["plain", "channels_last+inference_mode", "channels_last+inference_mode+bf16"]
            if not args.quick and model == "paper512":
                variants[1:1] = [
                    "nchw+inference_mode",
                    "channels_last+no_grad",
                    "channels_last+inference_mode-fold_bn",
                    "channels_last+inference_mode-box_sum",
                    "channels_last+inference_mode-subpixel",
                ]
            plain_ms = None
            for variant in variants:
                r = child({**base, "kind": "forward", "model": model, "size": size, "variant": variant})
                if variant == "plain":
                    plain_ms = r.get("ms")
                ratio = f"{plain_ms / r['ms']:.2f}x" if plain_ms and "ms" in r else "-"
                rows.append((dev, f"{model} forward {size}x{size}", variant, r, ratio))
        tel = child({**base, "kind": "telea", "repeats": max(1, args.repeats // 2)})
        rows.append((dev, "6000x4000 photo, 300x300 stroke", "OpenCV Telea (whole photo)", tel, "1.00x"))
        photo_cases = [
            ("photo", "Inpainter call (the model's own texture, {own:g})", {}),
            ("photo", "Inpainter call, edge matching off", {"edges": False}),
            ("photo", "Inpainter call, one network pass (mirror off)", {"mirror": False}),
            # texture 0.5 (default model only): timed by the first case when it is the model's own
            *([("photo", "Inpainter call, texture 0.5", {"texture": 0.5})] if own != 0.5 else []),
            ("photo_file", "JPEG in -> fill -> JPEG out", {}),
        ]
        if args.model in (None, "default"):
            one_pass = {**base, "kind": "crop", "model": "default", "mirror": False}
            plain = child({**one_pass, "texture": 0.0})
            for texture in sorted({0.0, own, 0.5}):
                r = plain if texture == 0 else child({**one_pass, "texture": texture})
                ratio = f"{plain['ms'] / r['ms']:.2f}x" if "ms" in r and "ms" in plain else "-"
                mark = " (the default model's own)" if texture == own else ""
                label = f"Inpainter call, one pass, texture {texture:g}{mark}"
                rows.append((dev, "512x512 photo, 40 px stroke", label, r, ratio))
            two = child({**base, "kind": "crop", "model": "default", "texture": own})
            ratio = f"{plain['ms'] / two['ms']:.2f}x" if "ms" in two and "ms" in plain else "-"
            label = f"Inpainter call, texture {own:g}, mirrored second pass (the app's default)"
            rows.append((dev, "512x512 photo, 40 px stroke", label, two, ratio))
        for kind, label, extra in photo_cases:
            for model in ("default", "paper512"):
                if args.model and model != args.model or extra and model != "default":
                    continue
                r = child(
                    {**base, "kind": kind, "model": model, "repeats": max(1, args.repeats // 2), **extra}
                )
                ratio = f"{tel['ms'] / r['ms']:.2f}x" if "ms" in r and "ms" in tel else "-"
                own_label = label.format(own=owns[model])  # "photo" runs at the model's own
                rows.append((dev, "6000x4000 photo, 300x300 stroke", f"{own_label} ({model})", r, ratio))

        if args.model in (None, "default"):  # Find Damage's specks: thin everywhere, no network
            once = {**base, "repeats": max(1, args.repeats // 2)}
            for specks, wide in ((150, 0), (3000, 0), (1500, 300)):
                dust_tel = child({**once, "kind": "dust_telea", "specks": specks, "wide": wide})
                dust_case = f"4000x3000 scan, {specks} specks of dust" + (
                    f" and {wide} of 14-24 px" if wide else ""
                )
                rows.append((dev, dust_case, "OpenCV Telea (whole photo)", dust_tel, "1.00x"))
                variants = [("Inpainter call, the default (thin parts: no network)", {})]
                if wide:  # the wide ones: a network pass a crop, specks near each other sharing one
                    variants = [("Inpainter call, the default (wide specks sharing crops)", {})]
                    variants.append(("the same with a crop a wide speck, as before", {"crop_a_speck": True}))
                elif specks > 150:  # dense: many specks to a window
                    variants.append(("the same with a window a speck, as before", {"window_a_speck": True}))
                elif not args.quick:
                    variants.append(
                        ("the same with a network pass a speck, as before", {"network_every_crop": True})
                    )
                for label, extra in variants:
                    case = {**once, "kind": "dust", "specks": specks, "wide": wide, **extra}
                    r = child({**case, **({"repeats": 1} if extra else {})})
                    ratio = f"{dust_tel['ms'] / r['ms']:.2f}x" if "ms" in r and "ms" in dust_tel else "-"
                    rows.append((dev, dust_case, f"{label} (default)", r, ratio))

    print()
    print("| device | case | variant | best ms | median ms | peak RSS MB | speed vs baseline |")
    print("|---|---|---|---:|---:|---:|---:|")
    for dev, case, variant, r, ratio in rows:
        if "error" in r:
            print(f"| {dev} | {case} | {variant} | error: {r['error']} | | | |")
            continue
        mem = f"{r['peak_rss_mb']:.0f}"
        if "peak_cuda_mb" in r:
            mem += f" (CUDA {r['peak_cuda_mb']:.0f})"
        print(f"| {dev} | {case} | {variant} | {r['ms']:.0f} | {r['ms_median']:.0f} | {mem} | {ratio} |")
    print(
        "\nBaseline of each forward group: the plain implementation; of the 512x512 stroke: the call "
        "without texture; of the photo group and the dust: Telea."
    )


if __name__ == "__main__":
    main()
