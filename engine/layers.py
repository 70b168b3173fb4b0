"""Partial convolution (Liu et al. 2018, "Image Inpainting for Irregular Holes Using Partial
Convolutions"), equations (1) and (2).

For every output position, with X the input window, M the binary mask window (1 = valid pixel),
W the kernel and b the bias::

    x' = W^T (X * M) * sum(1) / sum(M) + b    if sum(M) > 0
         0                                    otherwise
    m' = 1 if sum(M) > 0 else 0

``sum(1)`` counts the kernel taps times the input channels. The mask is zero-padded like the
input, so pixels outside the image count as holes: this is the paper's replacement of zero
padding at the border.

:func:`add_upsampled_conv` is the decoder's nearest x2 upsampling and 3x3 convolution computed
at the low resolution (the same sums, a quarter of the multiplications saved); :func:`phase_kernels`
and :func:`add_phase_conv` are its two halves, for a caller that keeps the kernels.

The layer is stateless between calls. The all-ones kernel that counts valid pixels is a
non-persistent buffer made once at construction. Mask arithmetic always runs in float32 with
autocast disabled, so counts stay exact under fp16/bf16 autocast (fp16 holds integers exactly
only up to 2048, and a 3x3 window over 512 channels counts up to 4608).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PartialConv2d", "add_upsampled_conv", "add_phase_conv", "box_sum", "phase_kernels"]

# Nearest x2 upsampling then a 3x3 convolution (padding 1): output row 2i+a takes the kernel's rows
# -1, 0, +1 from low-resolution rows i-1, i, i (a = 0) or i, i, i+1 (a = 1), i.e. a 2-row kernel
# over rows i-1+a and i+a whose rows are sums of the 3x3 kernel's: _PHASE_ROWS[a] @ kernel rows.
# The same holds for columns.
_PHASE_ROWS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def box_sum(x: torch.Tensor, size: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The sum of each ``size`` x ``size`` window of ``x`` (N, C, H, W), every channel on its
    own, at ``stride``, over ``x`` zero-padded by ``padding`` on each side: what a convolution
    with ones (or sum pooling counting the padding) gives, as shifted adds of strided views,
    ``size - 1`` along the rows and as many down the columns. Exact for integer-valued float32
    (mask counts) up to 2**24; in the dtype of ``x``.

    On the development CPU this is quicker than either for the partial convolutions' 1-channel
    mask counts (several times quicker than sum pooling: a 512x512 3x3 stride-1 count 6.0 -> 0.6
    ms, a 7x7 stride-2 one 3.8 -> 1.3 ms, under load), and it is one code path on every device
    (a GPU convolution may round float32 to TF32)."""
    if size < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"box_sum needs size and stride >= 1 and padding >= 0, got {size}, {stride}, {padding}"
        )
    h, w = x.shape[-2] + 2 * padding, x.shape[-1] + 2 * padding
    if h < size or w < size:
        raise ValueError(
            f"a {size}x{size} window does not fit a {x.shape[-2]}x{x.shape[-1]} input padded by {padding}"
        )
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    out_h, out_w = (h - size) // stride + 1, (w - size) // stride + 1
    span_w, span_h = (out_w - 1) * stride + 1, (out_h - 1) * stride + 1
    rows = x[..., :, 0:span_w:stride].clone()
    for t in range(1, size):
        rows += x[..., :, t : t + span_w : stride]
    out = rows[..., 0:span_h:stride, :].clone()
    for t in range(1, size):
        out += rows[..., t : t + span_h : stride, :]
    return out


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four 2x2 phase kernels (4 O, C, 2, 2) of a 3x3 ``weight`` (O, C, 3, 3) for
    :func:`add_upsampled_conv`, phase (a, b) = (output row, column parity) at rows ``(2a + b) O``
    on; computed in the weight's dtype with autocast off (the taps' sums in full)."""
    if weight.dim() != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"phase_kernels needs a 3x3 kernel (O, C, 3, 3), got {tuple(weight.shape)}")
    o = weight.shape[0]
    with torch.autocast(device_type=weight.device.type, enabled=False):
        rows = torch.tensor(_PHASE_ROWS, dtype=weight.dtype, device=weight.device)  # (2, 2, 3)
        return torch.einsum("apy,ocyx,bqx->abocpq", rows, weight, rows).reshape(4 * o, -1, 2, 2)


def add_upsampled_conv(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out += conv2d(nearest_upsample_x2(x), weight, padding=1)`` for a 3x3 ``weight`` (O, C, 3,
    3), ``x`` (N, C, h, w), ``out`` (N, O, 2h, 2w); returns ``out``.

    Computed without upsampling: each of the four output phases (even or odd row and column) is a
    2x2 convolution of ``x`` whose taps are sums of the 3x3 kernel's (one convolution with 4 O
    outputs makes all four), so the multiplications are 16 per output pixel group of four
    instead of 36, and the upsampled ``x`` is never made. Exact up to float rounding.
    """
    return add_phase_conv(out, x, phase_kernels(weight))


def add_phase_conv(out: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """:func:`add_upsampled_conv` given the weight's :func:`phase_kernels` (4 O, C, 2, 2), for a
    caller that keeps them (a model at inference: the same on every call)."""
    n, _, h, w = x.shape
    o = kernels.shape[0] // 4
    if kernels.shape[0] != 4 * o or kernels.shape[-2:] != (2, 2):
        raise ValueError(f"kernels must be (4 O, C, 2, 2) phase kernels, got {tuple(kernels.shape)}")
    if out.shape != (n, o, 2 * h, 2 * w):
        raise ValueError(f"out must have shape {(n, o, 2 * h, 2 * w)}, got {tuple(out.shape)}")
    phases = F.conv2d(x, kernels, None, 1, 1)  # (N, 4 O, h + 1, w + 1)
    grid = out.unflatten(2, (h, 2)).unflatten(4, (w, 2))  # a view: [n, o, i, a, j, b]
    for a in range(2):
        for b in range(2):
            k = 2 * a + b
            grid[:, :, :, a, :, b] += phases[:, k * o : (k + 1) * o, a : a + h, b : b + w]
    return out


class PartialConv2d(nn.Module):
    """2-D partial convolution.

    ``forward(x, mask)`` takes ``x`` of shape ``(N, C_in, H, W)`` and ``mask`` of shape
    ``(N, 1, H, W)`` (the same mask for every channel) or ``(N, C_in, H, W)`` (one per channel),
    1 = valid. It returns ``(out, new_mask)`` with ``new_mask`` of shape ``(N, 1, H', W')``.
    """

    mask_kernel: torch.Tensor
    #: Count valid pixels with :func:`box_sum` (fast) rather than a convolution with ``mask_kernel``.
    #: Both are exact; the switch exists so that benchmarks/inference.py can measure the gain.
    box_sum_counts: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1 or padding < 0:
            raise ValueError("kernel_size and stride must be >= 1 and padding >= 0")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        # The convolution proper has no bias: the bias is added after the re-weighting.
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        if self.bias is not None:
            # Same initialisation as nn.Conv2d's bias.
            fan_in = in_channels * kernel_size * kernel_size
            bound = 1.0 / fan_in**0.5
            nn.init.uniform_(self.bias, -bound, bound)
        self.register_buffer("mask_kernel", torch.ones(1, 1, kernel_size, kernel_size), persistent=False)
        self.window_size = float(in_channels * kernel_size * kernel_size)  # sum(1)

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )

    def mask_update(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(scale, new_mask)`` for ``mask`` of shape (N, 1 or C_in, H, W), both float32
        (float64 for a float64 mask) of shape ``(N, 1, H', W')``.

        ``scale`` is ``sum(1) / sum(M)`` where ``sum(M) > 0`` and 0 elsewhere.
        """
        if mask.dim() != 4 or mask.shape[1] not in (1, self.in_channels):
            raise ValueError(
                f"mask must have shape (N, 1, H, W) or (N, {self.in_channels}, H, W), got {tuple(mask.shape)}"
            )
        with torch.autocast(device_type=mask.device.type, enabled=False):
            m = mask.double() if mask.dtype == torch.float64 else mask.float()
            if m.shape[1] == 1:
                valid_channels = m * self.in_channels
            else:
                valid_channels = m.sum(dim=1, keepdim=True)
        return self.scale_from_counts(valid_channels)

    def scale_from_counts(self, valid_channels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``valid_channels`` (N, 1, H, W): how many input channels are valid at each pixel.
        Its box sum over each window is sum(M); returns ``(scale, new_mask)``."""
        with torch.autocast(device_type=valid_channels.device.type, enabled=False):
            if self.box_sum_counts:
                counts = box_sum(valid_channels, self.kernel_size, self.stride, self.padding)
            else:
                counts = F.conv2d(
                    valid_channels,
                    self.mask_kernel.to(valid_channels.dtype),
                    stride=self.stride,
                    padding=self.padding,
                )
            new_mask = (counts > 0).to(counts.dtype)
            scale = self.window_size / counts.clamp(min=1e-8) * new_mask
        return scale, new_mask

    def forward_masked(
        self,
        x_masked: torch.Tensor,
        scale: torch.Tensor,
        new_mask: torch.Tensor,
        bn: nn.BatchNorm2d | None = None,
    ) -> torch.Tensor:
        """The convolution part, given ``X * M`` and the results of :meth:`mask_update`.

        With ``bn`` (a BatchNorm in eval mode that follows this layer, which then has no bias),
        the normalisation is folded in: BN(conv(XM) * s) = conv_{W*a}(XM) * s + b with
        a = gamma / sqrt(var + eps) and b = beta - mean * a; one pass over the output fewer.
        """
        weight, shift = self.folded(bn)
        out = F.conv2d(x_masked, weight, None, self.stride, self.padding)
        return self.rescale(out, scale, new_mask, shift)

    def folded(self, bn: nn.BatchNorm2d | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(kernel, shift)``: the convolution's kernel and, with ``bn`` (see
        :meth:`forward_masked`), the kernel scaled by BatchNorm's ``a`` and its shift ``b``
        (None without ``bn``)."""
        if bn is None:
            return self.conv.weight, None
        if self.bias is not None or bn.training:
            raise ValueError("BatchNorm folding needs a bias-free layer and BatchNorm in eval mode")
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return self.conv.weight * a.view(-1, 1, 1, 1), bn.bias - bn.running_mean * a

    def rescale(
        self, out: torch.Tensor, scale: torch.Tensor, new_mask: torch.Tensor, shift: torch.Tensor | None
    ) -> torch.Tensor:
        """The re-weighted output from the bare convolution ``out`` = W^T (X * M): ``out * scale``
        plus the bias where ``new_mask`` is valid, or ``out * scale + shift`` (:meth:`folded`)."""
        if shift is not None:
            return torch.addcmul(shift.to(out.dtype).view(1, -1, 1, 1), out, scale.to(out.dtype))
        out = out * scale.to(out.dtype)
        if self.bias is not None:
            out = torch.addcmul(out, self.bias.to(out.dtype).view(1, -1, 1, 1), new_mask.to(out.dtype))
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match input shape {tuple(x.shape)}")
        scale, new_mask = self.mask_update(mask)
        out = self.forward_masked(x * mask.to(x.dtype), scale, new_mask)
        return out, new_mask.to(mask.dtype if mask.is_floating_point() else torch.float32)
