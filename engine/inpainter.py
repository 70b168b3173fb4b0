"""The one entry point for filling holes: :class:`Inpainter`.

``Inpainter()(image, hole)`` takes a ``uint8 HxWx3`` RGB image and a ``bool HxW`` mask (True = hole)
and returns a new image in which only the hole pixels changed.

How an image reaches the network:

* Small images (longest side <= ``max_side``) go through whole, padded to the model's
  granularity (2 ** depth); the padding is marked as hole, exactly like the border of the image.
* Larger images follow the crop plan of :mod:`engine.crops`: each part of the hole is filled in
  its own crop with context around it (at full resolution when it fits the working size, in
  tiles along long thin strokes, scaled down to the working size for large solid holes), and
  only hole pixels are pasted back. Memory and time then depend on the holes, not on the
  photo's megapixels. Specks near each other (dust) are tried together first
  (:func:`engine.crops.group_specks`): those thin everywhere are filled from the photo alone in
  one window; the others, too wide for that, by the network in crops they share where one crop
  has fewer pixels than theirs apart (:func:`engine.crops.share_crops`).
* Scaled crops are resized in uint8 with Pillow (box filter down, bicubic up), so even a hole
  covering most of a large photo needs little memory; the upscaled fill is matched to the photo
  again at full resolution (below), where the scaled photo's edge was only an average of it.
* The network fills the crop and its mirror image (left-right) in one batch, and the two fills
  are averaged (``mirror``, on by default): its errors on the two are partly independent, so the
  average is closer to the truth (val split, with v6: +0.06 dB on the photos' strokes and
  objects, +0.04-0.05 on the squares; test split, both with ``engine.seams.THIN`` 5: +0.03 to
  +0.05 dB on every task but the scratches, which it leaves as they were) for twice the
  network's time (a 512x512 stroke 216-218 ms instead of 150 with one pass on the 2-core
  development CPU, within the 250 ms the app allows itself there, since the decoder convolves at
  low resolution: see :func:`engine.layers.add_upsampled_conv`). ``mirror=False`` gives one pass.
* The network's output is matched to the photo at the hole's edge before it is pasted
  (:mod:`engine.seams`): what it got wrong on the pixels around the hole is interpolated into
  the hole and taken off, so no step or colour offset is left at the edge; the hole's thin parts
  are filled from the photo's edge values alone (a clamped thin plate blended with a membrane),
  the network's detail coming in where the hole is wider.
* Where the photo around a hole is grey (a greyscale scan, or a black-and-white photo read in
  colour: a few levels of noise, a faint tint), so is the fill, with the photo's tone, except
  next to something coloured in it (:mod:`engine.grey`); where it is strongly coloured, the network fills the crop with that
  colour cast taken off and the cast is added back (:mod:`engine.chroma`), and where it is very
  bright or dark (a white wall, a night sky), so is its level.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .chroma import surround_fields
from .convert import from_network, to_network
from .crops import GROUP_CONTEXT, Region, group_specks, plan_regions, share_crops
from .distributed import device_for_rank
from .geometry import Rect
from .grey import LOCAL, grey_fill, grey_tone
from .mirror_pass import MIRROR, check_mirror
from .seams import MARGIN, edge_window, match_edges, membrane, photo_fill, thin_fill
from .texture import add_texture, check_mask
from .texture_strength import check_texture
from .unet import PConvUNet, UNetConfig
from .weights import WeightsError, WeightsInfo, load_weights, model_weights_path

__all__ = ["Inpainter", "InpaintCancelled", "NothingToFillError", "select_device"]

CancelFn = Callable[[], bool]
ProgressFn = Callable[[float], None]


class InpaintCancelled(Exception):
    """Raised when the caller's ``cancel()`` returned True; the input is untouched."""


class NothingToFillError(ValueError):
    """Every pixel of the image is hole: there is nothing to fill the hole from."""

    def __init__(self, what: str = "") -> None:
        super().__init__(f"{what}the whole image is marked as hole: there is nothing to fill it from")


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: the local CUDA GPU when there is one, else the CPU; ``cpu``, ``cuda``,
    ``cuda:N``. A clear :class:`ValueError` for anything this machine cannot do."""
    return device_for_rank(str(device))


def device_name(device: torch.device) -> str:
    """A device as people read it: the GPU's own name, or "CPU" (the app's status bar, the
    batch summary and the self-test say both the model's and the detector's so)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively on ``device`` (CPUs with AVX512-BF16/AMX; GPUs
    of compute capability 8.0 on, Ampere and later). Not ``torch.cuda.is_bf16_supported()``: by
    default it counts emulation, so it said yes on every CUDA card (cuDNN has no bf16
    convolutions before Ampere), and it answers for the current GPU, not ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def inference_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision``: ``fp32`` (None: full precision), ``bf16``, or
    ``auto`` = bf16 where it runs natively, else fp32. Mask arithmetic stays float32 either way
    (see :class:`engine.layers.PartialConv2d`); measured on a 2-core AVX512-BF16 CPU, bf16 makes
    the paper-512 model 1.6x faster with outputs within half a grey level (max) of fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision == "fp32":
        return None
    if bf16_supported(device):
        return torch.bfloat16
    if precision == "bf16":
        raise ValueError(f"bf16 inference is not supported on {device} here; use fp32 or auto")
    return None


def _check_count(value: object, name: str) -> int:
    """``value`` as an int; ValueError unless it is a whole number of at least 1 (not a bool):
    ``max_side=200.0`` passed and failed deep in a call, only where a stroke needed tiles, and 0
    or a negative count stood for another without a word."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


class Inpainter:
    """Fill holes in RGB photos with a partial-convolution U-Net.

    ``weights``: a Retoucher safetensors file; None loads ``resources/weights/default.safetensors``.
    ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    ``max_side``: the largest side fed to the network in one pass (default: twice the model's
    training resolution, at least 512).
    ``precision``: ``auto`` (bf16 autocast where the hardware runs it natively, else fp32),
    ``fp32`` or ``bf16``.
    ``edges``: match the fill to the photo at the hole's edge (:mod:`engine.seams`; on by
    default; off gives the network's raw output in the hole). ``thin``: with ``edges``, fill the
    hole's thin parts (a scratch a few pixels wide) from the photo's edge alone (on by default).
    ``texture``: how much of the photo's fine texture, synthesised from around the hole, is added
    to the fill (:mod:`engine.texture`; 0 = the network's fill alone, 1 = as strong as around the
    hole): the default of every call, which a call's own ``texture=`` overrides (the model stays
    loaded whatever strength a user picks). None: the model's own strength, which its weight file
    names (the one its published evaluation was run at; 0 for a file that names none).
    ``mirror``: average the network's fill with its fill of the mirrored crop (on by default:
    0.03-0.05 dB better than one pass for twice the network's time, see the module's
    docstring): the default of every call, which a call's own ``mirror=`` overrides (the model
    stays loaded).
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        *,
        max_side: int | None = None,
        batch_size: int = 8,
        precision: str = "auto",
        edges: bool = True,
        thin: bool = True,
        texture: float | None = None,
        mirror: bool = MIRROR,
    ) -> None:
        path = model_weights_path(weights)
        dev = select_device(device)
        model, info = load_weights(path, device=dev)
        self._setup(
            model,
            info,
            dev,
            max_side,
            batch_size,
            precision=precision,
            edges=edges,
            thin=thin,
            texture=texture,
            mirror=mirror,
        )

    @classmethod
    def from_model(
        cls,
        model: PConvUNet,
        device: str | torch.device = "cpu",
        *,
        name: str = "in-memory model",
        max_side: int | None = None,
        batch_size: int = 8,
        channels_last: bool = True,
        precision: str = "auto",
        edges: bool = True,
        thin: bool = True,
        texture: float | None = None,
        mirror: bool = MIRROR,
    ) -> Inpainter:
        """Wrap a model object (tests, evaluation during training). The Inpainter takes the model
        over: it is put in eval mode on ``device`` (and in channels_last memory format unless
        ``channels_last=False``). Call ``model.train()`` afterwards to keep training it."""
        self = cls.__new__(cls)
        dev = select_device(device)
        info = WeightsInfo(path=None, name=name, config=model.config)
        self._setup(
            model.to(dev),
            info,
            dev,
            max_side,
            batch_size,
            channels_last,
            precision,
            edges,
            thin,
            texture,
            mirror,
        )
        return self

    def _setup(
        self,
        model: PConvUNet,
        info: WeightsInfo,
        device: torch.device,
        max_side: int | None,
        batch_size: int,
        channels_last: bool = True,
        precision: str = "auto",
        edges: bool = True,
        thin: bool = True,
        texture: float | None = None,
        mirror: bool = MIRROR,
    ) -> None:
        cfg = model.config
        texture = info.texture if texture is None else check_texture(texture)
        mirror = check_mirror(mirror)
        if max_side is not None:
            max_side = _check_count(max_side, "max_side")
        batch_size = _check_count(batch_size, "batch_size")
        if cfg.in_channels != 3 or cfg.out_channels != 3:
            raise WeightsError(
                f"model {info.name!r} maps {cfg.in_channels} to {cfg.out_channels} channels; "
                "the Inpainter needs an RGB-to-RGB model (3 and 3)"
            )
        self.model = model.eval()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.info = info
        self.device = device
        self.config: UNetConfig = model.config
        g = self.config.granularity
        side = max(512, 2 * self.config.image_size) if max_side is None else max_side
        self.max_side = max(g, -(-side // g) * g)  # rounded up to the granularity
        self.batch_size = batch_size
        self.autocast_dtype = inference_dtype(device, precision)
        self.edges = edges
        self.thin = thin
        self.texture = texture
        self.mirror = mirror

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def __repr__(self) -> str:
        return f"Inpainter(model={self.name!r}, device={self.device_name!r}, max_side={self.max_side})"

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check(image: np.ndarray, hole: np.ndarray, what: str = "") -> np.ndarray:
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
        ):
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{what}image must be a uint8 HxWx3 RGB array, got {got}")
        if not isinstance(hole, np.ndarray) or hole.ndim != 2:
            raise ValueError(f"{what}hole mask must be a bool HxW array")
        if hole.shape != image.shape[:2]:
            raise ValueError(
                f"{what}hole mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        if hole.dtype != bool:
            hole = hole != 0
        if hole.all():
            raise NothingToFillError(what)
        return hole

    def _strength(self, texture: float | None) -> float:
        return self.texture if texture is None else check_texture(texture)

    def _mirrored(self, mirror: bool | None) -> bool:
        return self.mirror if mirror is None else check_mirror(mirror)

    @staticmethod
    def _finish(
        fill: np.ndarray,
        image: np.ndarray,
        hole: np.ndarray,
        strength: float,
        hidden: np.ndarray | None = None,
        whole: np.ndarray | None = None,
        tone: np.ndarray | None = None,
    ) -> np.ndarray:
        """The network's (edge-matched) fill of ``image`` with the photo's texture (never from
        ``hidden`` pixels; ``whole``: the hole this one is the rest of) added at ``strength``
        and, given the grey ``tone`` it was told (:func:`engine.grey.grey_tone`; None for
        colour), made grey (:func:`engine.grey.grey_fill`)."""
        textured = add_texture(fill, image, hole, strength, hidden=hidden, whole=whole)
        return textured if tone is None else grey_fill(textured, image, hole, tone)

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def _fill(
        self,
        x: torch.Tensor,
        valid: torch.Tensor,
        mirror: bool,
        whole: torch.Tensor | None = None,
        shortcut: bool = True,
    ) -> torch.Tensor:
        """``x`` (N,3,h,w) in [-1,1] with holes zeroed, ``valid`` (N,1,h,w) float 1=valid, any
        h, w (see :func:`engine.convert.to_network`). Returns the network's output for ``x`` with
        its colour cast taken off, the cast added back (:mod:`engine.chroma`; with ``mirror``,
        averaged with its mirrored pass), same size, matched to the image at the hole's edge and
        held near the photo's smooth continuation where the surround is flat unless ``edges`` is
        off (``whole``: see :func:`engine.seams.match_edges`). ``shortcut``:
        a hole thin everywhere is filled from the photo alone, without the network, whose output
        would be replaced there (off for a scaled crop, whose output is read around the hole)."""
        photo_only = self._photo_only(x, valid, whole) if shortcut else None
        if photo_only is not None:
            return photo_only
        g = self.config.granularity
        h, w = x.shape[-2:]
        image, known = x, valid
        # a saturated colour's cast and a bright or dark surround's level: taken off here, added
        # back below; and how much the surround varies, which the edge match holds a fill to
        cast, spread = surround_fields(x, valid)
        x = (x - cast) * valid
        ph, pw = (-h) % g, (-w) % g
        if ph or pw:
            # Padding is outside the photo: a hole, as the partial convolution treats the border.
            x = F.pad(x, (0, pw, 0, ph))
            valid = F.pad(valid, (0, pw, 0, ph))
        ctx = (
            torch.autocast(x.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            out = self._network(x, valid, mirror)[..., :h, :w] + cast
        if self.edges:  # on the image only: the padding is no part of the hole
            out = match_edges(out, image, known, thin=self.thin, whole=whole, spread=spread)
        return out

    @property
    def _from_photo(self) -> bool:
        """Whether thin parts of a hole are filled from the photo alone (the edge match and its
        thin fill both on), so that the network need not run for a hole thin everywhere."""
        return self.edges and self.thin

    def _photo_only(
        self, x: torch.Tensor, valid: torch.Tensor, whole: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The fill of ``x`` from the photo alone when every hole part is thin (the edge
        matching would replace the network's output everywhere: :func:`engine.seams.photo_fill`), else
        None (the network must run)."""
        return photo_fill(x, valid, whole) if self._from_photo else None

    def _thin_fill(
        self,
        crop: np.ndarray,
        hole: np.ndarray,
        box: tuple[slice, slice],
        boxes: Sequence[tuple[slice, slice]],
        whole: np.ndarray | None,
        tone: np.ndarray | None,
    ) -> tuple[np.ndarray, list[bool]] | None:
        """The fill from the photo alone, in ``box`` (the edge window of the pixels to fill,
        :func:`engine.seams.edge_window`; slices of the crop), of the hole pixels of ``crop``'s
        ``hole`` in those ``boxes`` (slices of the crop: a region's core, or each speck's of a
        group) whose pixels all lie on thin parts of the hole (decided on ``whole`` where given,
        as :meth:`_fill` does; the network's output would be replaced on every one of them),
        made grey in ``tone`` as :meth:`_finish` does: the window's filled pixels (the thin
        boxes' pixels) and which boxes are thin; None when none is. Thin parts get no texture, so the texture step
        has nothing to add. Dense dust: each speck's region matched the edges over every speck
        still unfilled in its crop (a window of the whole crop) and looked for texture there,
        12-15 ms a speck (3000 specks on a 12-megapixel scan: 43.5 s); a window of its own
        pixels is a few dozen pixels."""
        x, valid = to_network(crop[box], hole[box], self.device)
        whole_valid = None if whole is None else to_network(crop[box], whole[box], self.device)[1]
        found = thin_fill(x, valid, [_within(b, box) for b in boxes], whole_valid)
        if found is None:
            return None
        filled = from_network(found[0])[0]
        if tone is not None:
            # greyed in the window with the 4 LOCAL px round it that its pixels look at (a thin
            # part's pixels are told in the LOCAL px box, which holds their edge; 4 LOCAL for a
            # web of them)
            near = _grown(box, 4 * LOCAL)
            done = crop[near].copy()
            inner = tuple(slice(b.start - n.start, b.stop - n.start) for b, n in zip(box, near))
            done[inner] = filled
            filled = grey_fill(done, crop[near], hole[near], tone)[inner]
        return filled, found[1]

    @staticmethod
    def _region(
        result: np.ndarray,
        remaining: np.ndarray,
        hole: np.ndarray,
        rect: Rect,
        cores: Sequence[tuple[slice, slice]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """What a region (or a group of specks) of the crop plan fills, in its crop ``rect`` of
        the photo being filled (``result``; ``remaining``: its hole pixels not filled yet): the
        crop (a view of ``result``), its unfilled hole (a view of ``remaining``), the pixels of
        that in the ``cores`` (slices of the crop) to fill now, and the crop's part of the ``hole`` as it was before
        earlier regions filled some of it (None: the same)."""
        crop_hole = remaining[rect.slices]
        todo = np.zeros_like(crop_hole)
        for core in cores:
            todo[core] = crop_hole[core]
        crop = result[rect.slices]
        if not todo.any():
            return crop, crop_hole, todo, None
        # the crop's part of the hole before earlier crops filled some of it: its thin parts are
        # its own, not the rest's (a band without detail or grain at each seam)
        whole = hole[rect.slices]
        return crop, crop_hole, todo, None if np.array_equal(whole, crop_hole) else whole

    @staticmethod
    def _tone(
        tone: np.ndarray | None, crop: np.ndarray, crop_hole: np.ndarray, shape: tuple[int, ...]
    ) -> np.ndarray | None:
        """The grey tone a crop's fill is made in: the photo's ``tone`` for a grey photo, else
        the crop's own (None: colour). In a colour photo each crop is told on its own, except
        one that is the whole photo (of ``shape``), told with it (22 ms again for a near-grey
        512x512 colour photo)."""
        if tone is not None or crop.shape[:2] == shape[:2]:
            return tone
        return grey_tone(crop, crop_hole)

    def _fill_specks(
        self,
        result: np.ndarray,
        remaining: np.ndarray,
        hole: np.ndarray,
        group: Sequence[Region],
        tone: np.ndarray | None,
    ) -> list[Region]:
        """Fill the specks of a ``group`` (:func:`engine.crops.group_specks`) whose pixels all
        lie on thin parts of the hole from the photo alone, in one window (:meth:`_thin_fill`),
        in a crop that holds each speck's; returns the others, for the caller to fill one at a
        time. The grey tone (a colour photo's) is told on the specks' window with
        :data:`GROUP_CONTEXT` px round it, about what a speck's own crop shows (the crop that
        holds them all was most of a photo, whose colour then kept a grey wall's specks from
        being made grey). Dense dust: a window a speck cost about 4 ms each, most of it the
        same steps on a few dozen pixels (3000 specks on a 12-megapixel scan: 11.5 s)."""
        if not self._from_photo:
            return list(group)
        rect = group[0].crop
        for r in group[1:]:
            rect = rect.union(r.crop)
        cores = _cores(rect, group)
        crop, crop_hole, todo, whole = self._region(result, remaining, hole, rect, cores)
        box = edge_window(todo)
        found = None
        if box is not None:
            around = _grown(box, GROUP_CONTEXT)
            crop_tone = self._tone(tone, crop[around], crop_hole[around], hole.shape)
            found = self._thin_fill(crop, crop_hole, box, cores, whole, crop_tone)
        if found is None:
            return [r for r, core in zip(group, cores) if crop_hole[core].any()]
        filled, thin = found
        inside = [_within(core, box) for core in cores]
        view, open_ = crop[box], crop_hole[box]
        left = []
        for r, part, ok in zip(group, inside, thin):
            mine = open_[part].copy()  # its pixels still to fill (an earlier speck's box may hold some)
            if not ok:
                if mine.any():
                    left.append(r)
                continue
            view[part][mine] = filled[part][mine]
            open_[part][mine] = False
        return left

    def _network(self, x: torch.Tensor, valid: torch.Tensor, mirror: bool) -> torch.Tensor:
        """The network's float32 output for ``x``; with ``mirror``, averaged with its output for
        the mirrored ``x`` (both in one batch)."""
        if not mirror:
            return self.model(x.contiguous(memory_format=torch.channels_last), valid).float()
        n = x.shape[0]
        both = self.model(
            torch.cat([x, x.flip(-1)]).contiguous(memory_format=torch.channels_last),
            torch.cat([valid, valid.flip(-1)]),
        ).float()
        return (both[:n] + both[n:].flip(-1)) * 0.5

    def _continued(self, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """``crop`` (uint8 hxwx3) with its ``hole`` filled by the smooth continuation of its
        other pixels (:func:`engine.seams.membrane`)."""
        x, valid = to_network(crop, hole, self.device)
        return from_network(membrane(x, valid))[0]

    def _fill_crop(
        self,
        crop: np.ndarray,
        hole: np.ndarray,
        scaled: bool,
        mirror: bool,
        cancel: CancelFn | None = None,
        whole: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fill one crop (uint8 hxwx3, bool hxw); returns the network's uint8 hxwx3 result.
        ``cancel`` is asked again before a scaled crop's match at full resolution (tens of
        seconds for a hole over most of a 24-megapixel photo on a 2-core CPU). ``whole``: the
        crop's part of the hole as it was before earlier crops filled some of it (None: ``hole``)."""
        h, w = hole.shape
        if not scaled and max(h, w) <= self.max_side:
            whole_valid = None if whole is None else to_network(crop, whole, self.device)[1]
            return from_network(self._fill(*to_network(crop, hole, self.device), mirror, whole_valid))[0]
        # at full resolution, only the part of the crop the edge match reads and changes: float
        # copies of a whole crop (12 bytes a pixel each) took gigabytes for an object on a large photo
        box = edge_window(hole) or (slice(0, h), slice(0, w))
        x, valid = to_network(crop[box], hole[box], self.device)
        whole_valid = None if whole is None else to_network(crop[box], whole[box], self.device)[1]
        photo_only = self._photo_only(x, valid, whole_valid)  # the upscaled fill would be replaced
        if photo_only is not None:
            done = crop.copy()
            done[box] = from_network(photo_only)[0]
            return done
        # Uniform scale down to the working size; a small cell that holds any hole pixel is hole.
        s = self.max_side / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BOX))
        small_hole = (
            np.asarray(Image.fromarray(hole.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)) > 0
        )
        # the network's fill even where the small hole is thin everywhere (lines a few pixels
        # wide once scaled): the upscale reads its pixels around the hole, the match at full
        # resolution measures its difference from the photo there
        filled = from_network(self._fill(*to_network(small, small_hole, self.device), mirror, None, False))[0]
        up = np.asarray(Image.fromarray(filled).resize((w, h), Image.Resampling.BICUBIC))
        if not self.edges:
            return up
        if cancel is not None and cancel():
            raise InpaintCancelled()
        # matched to the photo again at its own resolution: the scaled fill's edge was matched
        # to the scaled photo only (a step of 2-5 grey levels at a 560 px object's edge), and a
        # thin part joined to the hole (a wire into the object) is filled from the photo's own
        # edge here instead of an upscaled blur (29.4 -> 38.3 dB on such a wire)
        y = to_network(up[box], np.zeros_like(hole[box]), self.device)[0]
        done = up.copy()
        done[box] = from_network(match_edges(y, x, valid, thin=self.thin, whole=whole_valid))[0]
        return done

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        *,
        cancel: CancelFn | None = None,
        progress: ProgressFn | None = None,
        texture: float | None = None,
        mirror: bool | None = None,
        hidden: np.ndarray | None = None,
    ) -> np.ndarray:
        """``image`` with ``hole`` filled (only hole pixels change); ``texture``: this call's
        strength (None: the Inpainter's ``texture``); ``mirror``: whether this call averages in
        the mirrored pass (None: the Inpainter's ``mirror``); ``hidden`` (bool HxW): pixels that
        are no photo (a transparent part the caller continued smoothly, as
        :func:`engine.hidden.revealed` does), never a source of the photo's texture."""
        hole = self._check(image, hole)
        hidden = check_mask(hidden, hole, "hidden")
        strength = self._strength(texture)
        mirror = self._mirrored(mirror)
        result = image.copy()
        if not hole.any():
            if progress:
                progress(1.0)
            return result
        h, w, g = *hole.shape, self.config.granularity
        regions = plan_regions(hole, self.max_side, self.config.image_size, granularity=g)
        remaining = hole.copy()  # pixels filled by an earlier region are context for later ones
        # a grey photo is told on the whole photo: a coloured object over 1% of one crop made
        # that crop colour and its fill tinted, up to the crop's edges (None, a colour photo:
        # each crop decides on its own, a crop of grey sky filled grey)
        tone = grey_tone(image, hole if hidden is None else hole | hidden)
        done = 0
        for group in group_specks(regions, MARGIN):
            if len(group) > 1:
                if cancel is not None and cancel():
                    raise InpaintCancelled()
                left = self._fill_specks(result, remaining, hole, group, tone)
                done += len(group) - len(left)
                if progress:
                    progress(done / len(regions))
                group = left
            # alone, or the specks of a group not filled with it: a network pass a crop, specks
            # near each other sharing one
            for rect, members in share_crops(group, h, w, self.max_side, self.config.image_size, g):
                if cancel is not None and cancel():
                    raise InpaintCancelled()
                cores = _cores(rect, members)
                crop, crop_hole, todo, whole = self._region(result, remaining, hole, rect, cores)
                if todo.any():
                    r = members[0]
                    crop_tone = self._tone(tone, crop, crop_hole, hole.shape)
                    # a region that is its crop's whole hole: _fill_crop's own thin-only check, on
                    # the same window (here it was made twice: 3-4 ms of a 512x512 stroke's fill);
                    # specks sharing a crop were not thin in their group's window
                    alone = (
                        len(members) > 1
                        or r.scaled
                        or np.array_equal(todo, crop_hole)
                        or not self._from_photo
                    )
                    box = None if alone else edge_window(todo)
                    thin = (
                        None
                        if box is None
                        else self._thin_fill(crop, crop_hole, box, cores, whole, crop_tone)
                    )
                    if thin is not None:  # a speck or a scratch: filled from the photo alone
                        filled = thin[0]
                        crop[box][todo[box]] = filled[todo[box]]
                    else:
                        if whole is not None and whole.all() and not crop_hole.all():
                            # a tile blind to the photo (a hole across a narrow photo): the smooth
                            # continuation of the earlier fills around it, not the network's
                            # guess, which drifted a few levels a tile along the chain (a flat 60
                            # px strip 37 levels off mid-hole); the texture step gives it their
                            # grain. (With no earlier fill in view, the network's prior is all
                            # there is.)
                            fill = self._continued(crop, crop_hole)
                        else:
                            fill = self._fill_crop(crop, crop_hole, r.scaled, mirror, cancel, whole)
                            # before the texture: seconds on a large hole
                            if cancel is not None and cancel():
                                raise InpaintCancelled()
                            # one large hole is one region: half-way before its texture
                            if progress and r.scaled:
                                progress((done + 0.5) / len(regions))
                        no_photo = None if hidden is None else hidden[rect.slices]
                        filled = self._finish(fill, crop, crop_hole, strength, no_photo, whole, crop_tone)
                        crop[todo] = filled[todo]
                    crop_hole[todo] = False
                done += len(members)
                if progress:
                    progress(done / len(regions))
        if cancel is not None and cancel():
            raise InpaintCancelled()
        return result

    @torch.inference_mode()
    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        *,
        texture: float | None = None,
        mirror: bool | None = None,
        hidden: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Fill many images of one size in batches of ``batch_size`` network passes
        (``texture`` and ``mirror`` as for a call; ``hidden``: each image's, or None).

        Images larger than ``max_side`` fall back to one call each (the crop strategy).
        """
        if len(images) != len(holes):
            raise ValueError(f"{len(images)} images but {len(holes)} masks")
        strength = self._strength(texture)
        mirror = self._mirrored(mirror)
        checked = [self._check(im, ho, f"item {i}: ") for i, (im, ho) in enumerate(zip(images, holes))]
        if hidden is not None and len(hidden) != len(images):
            raise ValueError(f"{len(images)} images but {len(hidden)} hidden masks")
        no_photo = [
            check_mask(None if hidden is None else hidden[i], ho, "hidden", f"item {i}: ")
            for i, ho in enumerate(checked)
        ]
        if len(images) == 0:
            return []
        shape = images[0].shape
        if any(im.shape != shape for im in images):
            raise ValueError("inpaint_batch needs images of one size; call the Inpainter per image")
        if max(shape[:2]) > self.max_side:
            return [
                self(im, ho, texture=strength, mirror=mirror, hidden=hi)
                for im, ho, hi in zip(images, checked, no_photo)
            ]
        results = [im.copy() for im in images]
        todo = [i for i, ho in enumerate(checked) if ho.any()]
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            x, valid = to_network(
                np.stack([images[i] for i in idx]), np.stack([checked[i] for i in idx]), self.device
            )
            out = from_network(self._fill(x, valid, mirror))
            for j, i in enumerate(idx):
                tone = grey_tone(images[i], checked[i])
                filled = self._finish(out[j], images[i], checked[i], strength, no_photo[i], tone=tone)
                results[i][checked[i]] = filled[checked[i]]
        return results


def _cores(rect: Rect, regions: Sequence[Region]) -> list[tuple[slice, slice]]:
    """The ``regions``' cores as slices of their crop ``rect`` (a group's, or a shared one)."""
    return [r.core.translated(-rect.x0, -rect.y0).slices for r in regions]


def _within(box: tuple[slice, slice], window: tuple[slice, slice]) -> tuple[slice, slice]:
    """``box`` (slices of an image) in the coordinates of ``window`` (slices of the same
    image), cut to it (empty where they do not meet)."""
    return tuple(  # type: ignore[return-value]
        slice(
            min(max(b.start - w.start, 0), w.stop - w.start), min(max(b.stop - w.start, 0), w.stop - w.start)
        )
        for b, w in zip(box, window)
    )


def _grown(box: tuple[slice, slice], margin: int) -> tuple[slice, slice]:
    """``box`` (slices of an image) with ``margin`` more pixels on each side, cut at the image's
    top and left (slicing cuts the rest)."""
    return tuple(slice(max(0, b.start - margin), b.stop + margin) for b in box)  # type: ignore[return-value]
