"""The partial-convolution U-Net of Liu et al. 2018, built from a typed config.

Encoder: ``depth`` partial convolutions with stride 2 (kernels 7,5,5,3,... in the paper), BatchNorm
on every layer but the first, ReLU. Decoder: nearest x2 upsampling of features *and* masks,
concatenation with the encoder's skip features *and their masks*, a 3x3 partial convolution,
BatchNorm and LeakyReLU(0.2); the last decoder layer (which sees the input image and its mask)
has neither, and outputs the image. Optionally (``UNetConfig.refine``) a small full-resolution
head that sees the hole map corrects that output (:class:`RefineHead`).

Images enter the network scaled to [-1, 1]; masks are the paper's M (float, 1 = valid).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import PartialConv2d, add_phase_conv, box_sum, phase_kernels
from .unet_config import MODEL_PRESETS, PAPER_256, PAPER_512, UNetConfig, paper_kernels

__all__ = [
    "UNetConfig",
    "PConvUNet",
    "RefineHead",
    "create_model",
    "paper_kernels",
    "PAPER_256",
    "PAPER_512",
    "MODEL_PRESETS",
    "BN_SCOPES",
]

# PConvUNet.freeze_bn: the BatchNorm layers that keep their statistics (the paper's fine-tuning
# freezes the encoder's; "all" also the decoder's)
BN_SCOPES = ("encoder", "all")


class _EncoderBlock(nn.Module):
    #: In eval mode, fold BatchNorm into the partial convolution (see
    #: PartialConv2d.forward_masked). A switch only so that the benchmark can measure the gain.
    fold_bn: bool = True

    def __init__(self, cin: int, cout: int, kernel: int, bn: bool) -> None:
        super().__init__()
        self.pconv = PartialConv2d(cin, cout, kernel, stride=2, padding=kernel // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fold_bn and self.bn is not None and not self.bn.training:  # BatchNorm folded in
            scale, new_m = self.pconv.mask_update(m)
            x = self.pconv.forward_masked(x * m.to(x.dtype), scale, new_m, bn=self.bn)
            return self.act(x), new_m
        x, m = self.pconv(x, m)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x), m


def _values_key(tensors: list[torch.Tensor]) -> tuple[Any, ...] | None:
    """What tells these tensors' values apart from any later ones: each one's storage address,
    in-place version count, dtype, device, shape and strides (an in-place change through the
    tensor, such as an optimiser step, an EMA update or ``load_state_dict``, bumps the version;
    ``.to()``, ``.half()`` or a new ``.data`` moves the storage). Not seen: a write that goes
    around the tensor (through ``.data``, a NumPy view or DLPack, or another process's shared
    memory); such a caller calls :meth:`PConvUNet.forget_kernels`. None when one of them keeps no
    version count (an inference tensor): nothing is kept."""
    try:
        return tuple((t.data_ptr(), t._version, t.dtype, t.device, t.shape, t.stride()) for t in tensors)
    except RuntimeError:
        return None


def _keeps_kernels() -> bool:
    """Whether this forward may keep derived kernels: inference mode (the Inpainter's), and no
    tracer or compiler that would bake them in as constants or cannot compare addresses."""
    return (
        torch.is_inference_mode_enabled() and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
    )


class _DecoderBlock(nn.Module):
    fold_bn: bool = True  # as _EncoderBlock.fold_bn
    #: With a 3x3 kernel, convolve the decoder features at their own resolution
    #: (:func:`engine.layers.add_upsampled_conv`) and the skip features apart, instead of
    #: upsampling and concatenating: the same sums. A switch only so that the benchmark can
    #: measure the gain.
    subpixel: bool = True

    def __init__(self, cin_up: int, cin_skip: int, cout: int, kernel: int, last: bool) -> None:
        super().__init__()
        self.cin_up, self.cin_skip = cin_up, cin_skip
        self.pconv = PartialConv2d(cin_up + cin_skip, cout, kernel, stride=1, padding=kernel // 2, bias=last)
        self.bn = None if last else nn.BatchNorm2d(cout)
        self.act = None if last else nn.LeakyReLU(0.2, inplace=True)
        # (key, kernels, the sources' aliases): see _subpixel_kernels
        self._kept: tuple[Any, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None], Any] | None = None

    def _subpixel_kernels(self, fold: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(skip kernel, phase kernels of the upsampled part, shift)`` from the (BatchNorm-folded,
        ``fold``) weight. In inference mode they are kept between calls while the tensors they
        are made from hold the same values (:func:`_values_key`; the aliases kept beside them
        hold on to those storages, so no other tensor can take their addresses): derived on
        every call, they cost the bundled model 15-18 ms of a 512x512 fill (about 217 ms). A
        copy or pickle of the block, and a move (``.to()``, ``.half()``), drop them."""
        sources = [self.pconv.conv.weight]
        if fold:
            assert self.bn is not None
            sources += [self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var]
        key = _values_key(sources) if _keeps_kernels() else None
        if key is not None:
            key = (key, fold, self.bn.eps if fold and self.bn is not None else None)
            kept = self._kept  # read once: another thread may replace it
            if kept is not None and kept[0] == key:
                return kept[1]
        weight, shift = self.pconv.folded(self.bn if fold else None)
        skip = weight[:, self.cin_up :]
        if key is not None:  # its own storage, in the weight's memory format: not the whole weight kept
            layout = torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) else None
            skip = skip.contiguous(memory_format=layout or torch.contiguous_format)
        kernels = (skip, phase_kernels(weight[:, : self.cin_up]), shift)
        self._kept = None if key is None else (key, kernels, [t.detach() for t in sources])
        return kernels

    def forget_kernels(self) -> None:
        """Drop the kept kernels (see :meth:`_subpixel_kernels`)."""
        self._kept = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {**state, "_kept": None}  # a copy's kernels would be keyed on the original's storages

    def _apply(self, fn: Any, recurse: bool = True) -> _DecoderBlock:
        self._kept = None  # the old storages are let go at once, not at the next forward
        return super()._apply(fn, recurse)

    def forward(
        self, x: torch.Tensor, m: torch.Tensor, skip: torch.Tensor, skip_m: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The concatenated input has one mask per channel: the upsampled mask over the decoder
        # features, the skip mask over the skip features. Rather than materialise that
        # (N, C_up + C_skip, H, W) mask, mask each part by broadcasting (the decoder part before
        # upsampling: nearest upsampling commutes with masking) and count valid channels per
        # pixel directly (what the layer's mask sum over channels would give).
        x = x * m.to(x.dtype)
        skip = skip * skip_m.to(skip.dtype)
        m = F.interpolate(m, scale_factor=2.0, mode="nearest")
        with torch.autocast(device_type=m.device.type, enabled=False):
            valid_channels = m.float() * self.cin_up + skip_m.float() * self.cin_skip
        scale, m = self.pconv.scale_from_counts(valid_channels)
        fold = self.fold_bn and self.bn is not None and not self.bn.training  # BatchNorm folded in
        if self.subpixel and self.pconv.kernel_size == 3:
            # conv(cat(up(x), skip)) = conv_skip(skip) + conv_up(up(x)), the latter at x's size
            skip_kernel, up_kernels, shift = self._subpixel_kernels(fold)
            out = F.conv2d(skip, skip_kernel, None, 1, 1)
            x = self.pconv.rescale(add_phase_conv(out, x, up_kernels), scale, m, shift)
        else:
            x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], dim=1)
            x = self.pconv.forward_masked(x, scale, m, bn=self.bn if fold else None)
        if self.bn is not None and not fold:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, m


def _channels_last_view(x: torch.Tensor) -> torch.Tensor:
    """A contiguous 1-channel ``x`` (N, 1, H, W) with channels-last strides: the same elements
    (a single channel's stride is never used), which an operation joining it with channels-last
    tensors takes for channels-last; any other ``x`` as it is."""
    if x.shape[1] != 1 or not x.is_contiguous():
        return x
    return x.as_strided(x.shape, (x.stride(0), 1, x.stride(2), 1))


class RefineHead(nn.Module):
    """A small residual head at full resolution that sees where the hole is.

    Why: in the paper's last layer the image skip (3 channels) is concatenated with the decoder
    features (32-64 channels, all valid by then), so the partial convolution's re-weighting
    ``sum(1) / sum(M)`` barely changes at a hole pixel, and a hole pixel (zeroed) looks exactly
    like a mid-grey one. The network cannot tell a 1-2 pixel hole from a grey pixel and pulls
    thin strokes towards grey (light specks on dark areas, dark ones on light).

    The head's features, all at full resolution: the network's output ``out``, the masked image,
    the hole map ``H = 1 - M``, ``N`` = hole pixels with a valid pixel within ``RADIUS``, and on
    those pixels the mean of the valid pixels around them (``N * local mean``) and ``N * out``.
    The last two make "blend the output towards the valid neighbours near the hole's edge" a
    linear function of the features. The head adds ``lin(features) + conv(LeakyReLU(conv(
    features)))`` to ``out``; ``lin`` and the last convolution start at zero, so a model grown
    from paper-architecture weights starts out identical.
    """

    RADIUS = 2  # the local mean looks at a 5x5 window

    def __init__(self, in_channels: int, out_channels: int, width: int) -> None:
        super().__init__()
        # out, image, H, N, N * local mean, N * out
        n_features = out_channels + in_channels + 2 + in_channels + out_channels
        self.linear = nn.Conv2d(n_features, out_channels, 1)
        self.conv1 = nn.Conv2d(n_features, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = nn.Conv2d(width, out_channels, 3, padding=1)
        for conv in (self.linear, self.conv2):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def features(self, out: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = 2 * self.RADIUS + 1
        with torch.autocast(device_type=mask.device.type, enabled=False):
            m = mask.float()
            img = image.float() * m
            # the 5x5 window sums as shifted adds (engine.layers.box_sum): on the development CPU
            # 2 ms for the mirrored pair's 3-channel channels-last 512x512 image, where sum pooling
            # took 25, and the same code on a GPU (whose convolution may round float32 to TF32)
            count = box_sum(m, k, 1, self.RADIUS)
            total = box_sum(img, k, 1, self.RADIUS)
            hole = 1.0 - m
            near = hole * (count > 0).float()
            near_mean = near * (total / count.clamp(min=1.0))
        dt = out.dtype
        near, hole = near.to(dt), hole.to(dt)
        if out.is_contiguous(memory_format=torch.channels_last):
            # the 1-channel maps viewed with channels-last strides (the same elements), so that
            # the concatenation comes out channels-last like the rest: it came out contiguous, and
            # each convolution below converted the 14-channel full-resolution features again (12
            # ms of a 512x512 fill's mirrored pair on the development CPU)
            hole, near = _channels_last_view(hole), _channels_last_view(near)
        return torch.cat([out, img.to(dt), hole, near, near_mean.to(dt), near * out], dim=1)

    def forward(self, out: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.features(out, image, mask)
        return out + self.linear(x) + self.conv2(self.act(self.conv1(x)))


class PConvUNet(nn.Module):
    """Partial-convolution U-Net. ``forward(image, mask) -> image``.

    ``image`` is ``(N, C, H, W)`` in [-1, 1] with hole pixels arbitrary, ``mask`` is
    ``(N, 1, H, W)``, 1 = valid. H and W must be multiples of ``config.granularity``.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        self._frozen_bn: str | None = None  # the scope of freeze_bn, if called
        widths = config.widths
        self.encoder = nn.ModuleList()
        cin = config.in_channels
        for i, (w, k) in enumerate(zip(widths, config.kernels)):
            self.encoder.append(_EncoderBlock(cin, w, k, bn=i > 0))
            cin = w
        self.decoder = nn.ModuleList()
        # Decoder level i (deepest first) upsamples level i+1 and joins encoder level i-1's
        # output (or the input image at the top).
        for i in reversed(range(config.depth)):
            skip_c = widths[i - 1] if i > 0 else config.in_channels
            out_c = widths[i - 1] if i > 0 else config.out_channels
            self.decoder.append(_DecoderBlock(cin, skip_c, out_c, config.decoder_kernel, last=(i == 0)))
            cin = out_c
        self.refine = (
            RefineHead(config.in_channels, config.out_channels, config.refine) if config.refine else None
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        g = self.config.granularity
        if image.shape[-1] % g or image.shape[-2] % g:
            raise ValueError(
                f"image sides must be multiples of {g} for a depth-{self.config.depth} model, "
                f"got {tuple(image.shape[-2:])}"
            )
        feats = [(image, mask)]
        x, m = image, mask
        for block in self.encoder:
            x, m = block(x, m)
            feats.append((x, m))
        feats.pop()  # the bottleneck is not a skip
        for block in self.decoder:
            skip, skip_m = feats.pop()
            x, m = block(x, m, skip, skip_m)
        if self.refine is not None:
            x = self.refine(x, image, mask)
        return x

    def freeze_bn(self, scope: str = "encoder") -> None:
        """BatchNorm layers in ``scope`` (:data:`BN_SCOPES`: ``"encoder"``, the fine-tuning phase
        of the paper, or ``"all"``) use and keep their running statistics, and their affine
        parameters stop learning; the others learn. It holds through later ``train()`` calls."""
        if scope not in BN_SCOPES:
            raise ValueError(f"BatchNorm scope must be one of {', '.join(BN_SCOPES)}, got {scope!r}")
        self._frozen_bn = scope
        frozen = self._frozen_bn_layers()
        for block in (*self.encoder, *self.decoder):
            if block.bn is not None:
                keep = block.bn in frozen
                block.bn.train(self.training and not keep)
                for p in block.bn.parameters():
                    p.requires_grad_(not keep)

    def _frozen_bn_layers(self) -> list[nn.BatchNorm2d]:
        if self._frozen_bn is None:
            return []
        blocks = list(self.encoder) + (list(self.decoder) if self._frozen_bn == "all" else [])
        return [block.bn for block in blocks if block.bn is not None]

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if mode:
            for bn in self._frozen_bn_layers():
                bn.eval()
        return self

    def forget_kernels(self) -> None:
        """Drop the kernels the decoder keeps between inference calls: for a caller that changes
        the weights around the tensors (through ``.data``, a NumPy view, shared memory), which
        the decoder cannot see (an in-place change through the tensors, ``load_state_dict`` or a
        move it sees itself)."""
        for block in self.decoder:
            block.forget_kernels()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def create_model(name_or_config: str | UNetConfig | dict[str, Any] = "paper") -> PConvUNet:
    """timm-style factory: a preset name (``paper``, ``paper512``, ``small``, ``tiny``),
    a :class:`UNetConfig` or its dict form."""
    if isinstance(name_or_config, UNetConfig):
        cfg = name_or_config
    elif isinstance(name_or_config, dict):
        cfg = UNetConfig.from_dict(name_or_config)
    else:
        try:
            cfg = MODEL_PRESETS[name_or_config]
        except KeyError:
            raise ValueError(
                f"unknown model {name_or_config!r}; choose one of {sorted(MODEL_PRESETS)}"
            ) from None
    return PConvUNet(cfg)
