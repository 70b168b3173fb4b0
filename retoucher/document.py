"""The Qt-free model of one open photo: the image, its hole mask, the untouched original, the
file's metadata and the reversible edits that change them.

Views (the Qt canvas, tests, scripts) observe a :class:`Document` through its events and never
reach into its arrays to change them; every change goes through a method that returns an
:class:`~retoucher.edits.Edit` (see :mod:`retoucher.edits`: an edit stores only what it
changed). The desktop app wraps each edit in a ``QUndoCommand``.

Conventions: image ``uint8 HxWx3 RGB``; hole mask ``bool HxW``, True = hole. Pixel ``(row i,
column j)`` covers the continuous square ``[j, j+1) x [i, i+1)``; brush positions are continuous
coordinates in that space (what a view gets from its scene coordinates, see
:mod:`retoucher.brush`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.formats import DEFAULT_QUALITY, is_written, output_format
from engine.geometry import Rect
from engine.grey import is_grey
from engine.jpeg_blocks import changed_pixels
from engine.metadata import PhotoMetadata

from . import mask_ops
from .brush import paint_capsule
from .edits import Edit, ImageEdit, MaskEdit, PixelPositions

if TYPE_CHECKING:  # pragma: no cover
    from engine.imageio import LoadedImage, SourceFile

__all__ = ["Rect", "Event", "Edit", "MaskEdit", "ImageEdit", "Document", "printable", "CHANGE_CELL"]

CHANGE_CELL = 256  # image_changed tells a fill's change in boxes of at most this square, px


def printable(text: str) -> str:
    """A path or file name as text to show: a Linux name whose bytes are not UTF-8 (Python keeps
    them as surrogates, which Qt drops: "caf\\udce9.png" showed as "caf.png") gets "\\ufffd" for
    each such byte ("?" for a lone surrogate that stands for no byte: a Windows name)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _file_key(path: str | os.PathLike[str]) -> str:
    """One name per file whatever the way it is named (relative, through links)."""
    return os.path.normcase(os.path.realpath(path))


class Event:
    """A minimal Qt-free signal: ``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``. Slots are
    held strongly and called in connection order; an exception in a slot reaches the caller of
    ``emit`` unchanged, and disconnecting a slot that is not connected is a ValueError."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any]) -> None:
        self._slots.append(fn)

    def disconnect(self, fn: Callable[..., Any]) -> None:
        self._slots.remove(fn)

    def emit(self, *args: Any) -> None:
        for fn in list(self._slots):
            fn(*args)


# --------------------------------------------------------------------------- document
class Document:
    """One open photo.

    ``image`` is the current picture (changed only by fills), ``original`` the picture as it
    was opened (read-only), ``mask`` the hole mask the user paints, ``alpha`` the transparency
    kept aside (``uint8 HxW`` or None), ``path`` the file it refers to (None: not saved yet) and
    ``metadata`` the :class:`~engine.metadata.PhotoMetadata` of that file (EXIF, ICC, DPI, XMP,
    format, mode, pages, JPEG tables), which :meth:`save` writes back;
    :attr:`save_in_place_problem` says when writing back over the file would lose part of it.
    ``source`` describes that file as it was read or last written (an
    :class:`engine.imageio.SourceFile`, None for a picture from no file): a JPEG saved from a
    JPEG keeps the coefficients of every block whose pixels did not change since then.
    Events: ``mask_changed(Rect)``, ``image_changed(Rect)``, ``state_changed()`` (the dirty flag
    may have changed); :attr:`mask_revision` counts the mask's changes. The mask changes through
    strokes, rectangles, polygons, grow, shrink, invert, clear and set (:mod:`retoucher.mask_ops`
    does the whole-mask work), each one edit.
    """

    def __init__(
        self,
        rgb: np.ndarray,
        *,
        alpha: np.ndarray | None = None,
        metadata: PhotoMetadata | None = None,
        path: str | os.PathLike[str] | None = None,
        source: SourceFile | None = None,
        copy: bool = True,
    ) -> None:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"a document needs a uint8 HxWx3 RGB image, got {rgb.dtype} {rgb.shape}")
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError("a document needs a non-empty image")
        # ``copy=False`` hands the array over (a freshly decoded photo): one 24 MP copy less.
        if copy or not rgb.flags.writeable:
            self.image = np.array(rgb, order="C", copy=True)
        else:
            self.image = np.ascontiguousarray(rgb)
        self.original = self.image.copy()
        self.original.flags.writeable = False
        self.mask = np.zeros(self.image.shape[:2], dtype=bool)
        self.alpha = alpha
        self.metadata = metadata if metadata is not None else PhotoMetadata()
        self.path = Path(path) if path is not None else None
        self.source = source
        # The files this photo must not be written over, and why: the one it was opened from
        # when that holds more than an 8-bit picture (16 bits, pages, CMYK). Kept after a copy
        # is saved: the document then refers to the copy, whose problem is gone.
        self._kept_files: dict[str, str] = {}
        problem = self.save_in_place_problem
        if self.path is not None and problem:
            self._kept_files[_file_key(self.path)] = problem
        # The pixels the file at ``source`` stands for: ``original``, except where a save wrote
        # others: (the box, where in it, their values); None: the original everywhere.
        self._file_patch: tuple[Rect, PixelPositions, np.ndarray] | None = None
        self.mask_changed = Event()
        self.image_changed = Event()
        self.state_changed = Event()
        self._state = 0
        self._saved_state: int | None = 0
        self._mask_revision = 0
        self._stroke: _Stroke | None = None
        self.last_point: tuple[float, float] | None = None
        """Where the last brush or eraser stroke ended (``(x, y)``), None before the first."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_loaded(cls, loaded: LoadedImage) -> Document:
        """From an ``engine.imageio.LoadedImage``, taking over its pixel array."""
        return cls(
            loaded.rgb,
            alpha=loaded.alpha,
            metadata=loaded.metadata,
            path=loaded.path,
            source=loaded.source,
            copy=False,
        )

    @classmethod
    def from_picture(
        cls, rgb: np.ndarray, *, alpha: np.ndarray | None = None, icc_profile: bytes | None = None
    ) -> Document:
        """A photo from no file (pasted, dropped image data): unsaved (it exists nowhere else:
        closing or opening another photo asks); a grey picture is saved grey, as a grey photo
        file is (it became an RGB file). ``icc_profile``: the colour space it came with (a Display
        P3 screenshot), kept to be shown and saved with it; an RGB or, for a grey picture, a Gray
        profile (another, or one that cannot be read, is left out: logged)."""
        from engine.metadata import icc_colour_space

        space = icc_colour_space(icc_profile, Path("the pasted picture")) if icc_profile else None
        # a grey picture with an RGB profile stays an RGB one, as a grey file's palette does: saved
        # grey, its profile was dropped without a word (a linear grey's 188 on screen, 128 after)
        grey = is_grey(rgb) and space != "RGB"
        metadata = PhotoMetadata(
            mode="L" if grey else "RGB",
            icc_profile=icc_profile if space == "RGB" else None,
            grey_icc_profile=icc_profile if space == "GRAY" and grey else None,
        )
        doc = cls(rgb, alpha=alpha, metadata=metadata, copy=False)
        doc.mark_unsaved()
        return doc

    @classmethod
    def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> Document:
        """Load a photo file (``engine.imageio.load_image``; raises its ``ImageReadError``)."""
        from engine.imageio import load_image

        return cls.from_loaded(load_image(path, **kwargs))

    # ------------------------------------------------------------------ properties
    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def bounds(self) -> Rect:
        return Rect(0, 0, self.width, self.height)

    @property
    def has_hole(self) -> bool:
        return bool(self.mask.any())

    @property
    def dirty(self) -> bool:
        """True when the image differs from the file it was last opened from or saved to
        (painting the mask alone does not make a photo unsaved). Told by the history's states, not
        the pixels: a fill undone and made again with the same result still counts as a change
        (asked about on close; comparing a 24 MP photo with its file at every step costs 0.2 s)."""
        return self._state != self._saved_state

    @property
    def mask_revision(self) -> int:
        """How many times the mask has changed since the document was made: every write (a stroke's
        every dab, each mask edit, and each undo or redo of an edit that holds a mask change) adds
        one, so an unchanged revision means the mask is exactly as it was when it was read."""
        return self._mask_revision

    @property
    def image_state(self) -> int:
        """An id of the current image content; every fill (and its undo) changes it."""
        return self._state

    @property
    def display_name(self) -> str:
        return printable(self.path.name) if self.path is not None else "Untitled"

    @property
    def save_in_place_problem(self) -> str | None:
        """Why saving over the file this photo came from would lose part of it (the file
        holds more pages, more bits per channel or another colour model than an 8-bit RGB(A)
        picture), or None when it would not."""
        fmt = self.metadata.format
        if fmt and not is_written(fmt):  # PSD, GIF...: read, not written
            return f"Retoucher does not write {fmt} files"
        lost = self._lost_in_writing()
        return None if lost is None else _SAVED_OVER[lost[0]].format(lost[1])

    @property
    def copy_note(self) -> str | None:
        """What a file saved from this photo leaves out of the file it came from (more pages,
        bits or another colour model than an 8-bit RGB(A) picture), or None: nothing is left
        out (a file saved from it becomes what it refers to, so this is said once)."""
        lost = self._lost_in_writing()
        return None if lost is None else _SAVED_AS_COPY[lost[0]].format(lost[1])

    def _lost_in_writing(self) -> tuple[str, object] | None:
        """What an 8-bit RGB(A) picture written from this photo leaves out of its file: (kind,
        detail) with kind "pages" (their count), "cmyk", "bits" or "mode" (the file's mode),
        or None."""
        meta = self.metadata
        if meta.pages > 1 and (meta.format or "").upper() != "MPO":  # MPO: previews, not pages
            return "pages", meta.pages
        mode = meta.mode or "RGB"
        if mode in _EIGHT_BIT_MODES:
            return None
        if mode == "CMYK":
            return "cmyk", mode
        return ("bits" if meta.bits_per_channel_lost else "mode"), mode

    @property
    def changed_on_disk(self) -> bool:
        """Whether the file this photo refers to was written since it was read or saved here
        (another program, another window): a save over it loses those changes. False for a
        photo in no file, and for a file gone since (a save makes it again)."""
        # os.path.exists: False for any error (a dead network share raised ENOTCONN through
        # Path.exists, out of Quit's save, and the window closed with the work unsaved); the
        # save then says what is wrong
        if self.path is None or self.source is None or not os.path.exists(self.path):
            return False
        return self.source.changed_on_disk()

    def write_over_problem(self, target: str | os.PathLike[str]) -> str | None:
        """Why this photo must not be saved to ``target`` (None: it may): it is the file the photo
        refers to and :attr:`save_in_place_problem` applies, or the file it was opened from held
        more than Retoucher writes (still so after a copy was saved and the photo refers to it)."""
        key = _file_key(target)
        if self.path is not None and key == _file_key(self.path) and self.save_in_place_problem:
            return self.save_in_place_problem
        return self._kept_files.get(key)

    def mark_saved(self) -> None:
        self._saved_state = self._state
        self.state_changed.emit()

    def mark_unsaved(self) -> None:
        """For a photo that exists only in memory (pasted): nothing on disk matches it."""
        self._saved_state = None
        self.state_changed.emit()

    # ------------------------------------------------------------------ low-level writes
    def _check_patch(self, rect: Rect, patch: np.ndarray) -> None:
        """An edit made on another photo (or a bug) must fail loudly, never write elsewhere."""
        if rect.clip(self.width, self.height) != rect or patch.shape[:2] != (rect.height, rect.width):
            raise ValueError(
                f"an edit of the box {rect} ({patch.shape[1]}x{patch.shape[0]} pixels) does not fit "
                f"this {self.width}x{self.height} photo; it belongs to another one"
            )

    def _write_mask(self, rect: Rect, patch: np.ndarray) -> None:
        self._check_patch(rect, patch)
        self.mask[rect.slices] = patch
        self._mask_written(rect)

    def _mask_written(self, rect: Rect) -> None:
        """The one place that follows every change of the mask: count it, tell the views."""
        self._mask_revision += 1
        self.mask_changed.emit(rect)

    def _write_pixels(self, rect: Rect, where: PixelPositions, values: np.ndarray) -> None:
        """Write ``values`` (N x 3) at the pixels ``where`` of the box ``rect`` (a fill's changed
        pixels alone: one spread over the whole photo copies no box) and tell the views, one
        event for each :data:`CHANGE_CELL` square that changed: they redraw (and shrink for
        zooming out) the specks of a fill over the whole photo, not the photo."""
        dense = where.dense_map()
        if dense is None:
            ys, xs = where.rows_cols()
            count, inside = len(ys), not len(ys) or (ys.max() < rect.height and xs.max() < rect.width)
        else:
            count, inside = int(np.count_nonzero(dense)), dense.shape == (rect.height, rect.width)
        if rect.clip(self.width, self.height) != rect or not inside or values.shape != (count, 3):
            raise ValueError(
                f"an edit of {count} pixels in the box {rect} does not fit this "
                f"{self.width}x{self.height} photo; it belongs to another one"
            )
        if dense is not None:
            self.image[rect.slices][dense] = values
            boxes = Rect.per_cell_of(dense, rect.x0, rect.y0, CHANGE_CELL)
        else:
            ys, xs = ys + rect.y0, xs + rect.x0
            self.image[ys, xs] = values
            boxes = Rect.per_cell(ys, xs, CHANGE_CELL)
        for box in boxes:
            self.image_changed.emit(box)

    def _not_stroking(self, what: str) -> None:
        """A stroke's undo patch is the mask as it was when the stroke began: any other change
        in between would be undone (or redone) with it. The view ends the stroke first."""
        if self._stroke is not None:
            raise RuntimeError(f"{what} during a brush stroke; call end_stroke() first")

    def _set_state(self, state: int) -> None:
        self._state = state
        self.state_changed.emit()

    def _mask_edit(self, label: str, rect: Rect, before: np.ndarray) -> MaskEdit | None:
        after = self.mask[rect.slices]
        if np.array_equal(before, after):
            return None
        return MaskEdit(label, rect, before, after.copy())

    # ------------------------------------------------------------------ mask editing
    def begin_stroke(
        self, value: bool = True, label: str | None = None, start: tuple[float, float] | None = None
    ) -> None:
        """Start a brush (``value=True``) or eraser (``value=False``) stroke. Until
        :meth:`end_stroke`, every other change of the document raises ``RuntimeError``.
        ``start``: the stroke begins there, so its first :meth:`stroke_to` paints a straight
        line from it (Shift+click from :attr:`last_point`)."""
        self._not_stroking("a new stroke")
        self._stroke = _Stroke(bool(value), label or ("Brush stroke" if value else "Erase"), self.mask)
        self._stroke.last = start

    @property
    def stroking(self) -> bool:
        return self._stroke is not None

    def stroke_to(self, x: float, y: float, radius: float) -> Rect | None:
        """Extend the current stroke to ``(x, y)`` with a round brush of ``radius`` pixels;
        the first call stamps one dab. Returns the changed box (also emitted)."""
        if self._stroke is None:
            raise RuntimeError("stroke_to() outside a stroke; call begin_stroke() first")
        if not all(map(math.isfinite, (x, y, radius))):  # a tablet's glitch: no dab, not kept
            return None
        s = self._stroke
        start = s.last if s.last is not None else (x, y)
        s.last = (x, y)
        rect = paint_capsule(self.mask, start, (x, y), radius, s.value)
        if rect is None:
            return None
        s.rect = rect.union(s.rect)
        self._mask_written(rect)
        return rect

    def end_stroke(self) -> MaskEdit | None:
        """Finish the stroke; the returned edit is already applied (None: nothing changed)."""
        s, self._stroke = self._stroke, None
        if s is not None and s.last is not None:
            self.last_point = s.last
        if s is None or s.rect is None:
            return None
        return self._mask_edit(s.label, s.rect, s.snapshot[s.rect.slices])

    def set_rect(self, rect: Rect, value: bool = True, label: str | None = None) -> MaskEdit | None:
        """Mark (or unmark) a rectangle of pixels as hole."""
        self._not_stroking("a rectangle")
        rect = rect.clip(self.width, self.height)
        if rect.empty:
            return None
        new = np.full((rect.height, rect.width), bool(value))
        return self._replace_mask(label or ("Rectangle" if value else "Erase rectangle"), rect, new)

    def _replace_mask(self, label: str, box: Rect, new: np.ndarray) -> MaskEdit | None:
        """Write ``new`` (the whole mask inside ``box``) as one edit that stores only the box of
        the pixels that changed."""
        changed = Rect.bounding(new != self.mask[box.slices])
        if changed is None:
            return None
        rect = changed.translated(box.x0, box.y0)
        before = self.mask[rect.slices].copy()
        after = new[changed.slices]
        self.mask[rect.slices] = after
        try:
            self._mask_written(rect)
            return MaskEdit(label, rect, before, after.copy())
        except BaseException:
            # all or nothing: out of memory in a view that redraws (Find Damage's find at 24 MP)
            # left the hole in the mask with no undo step, for the next Fill to fill unseen
            self.mask[rect.slices] = before
            with contextlib.suppress(Exception):
                self._mask_written(rect)
            raise

    def set_mask(self, mask: np.ndarray, label: str = "Set mask") -> MaskEdit | None:
        """Replace the whole mask (e.g. one loaded from a file)."""
        self._not_stroking("replacing the mask")
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, the photo {self.width}x{self.height}")
        return self._replace_mask(label, self.bounds, mask)

    def clear_mask(self) -> MaskEdit | None:
        self._not_stroking("clearing the mask")
        box = Rect.bounding(self.mask)
        if box is None:
            return None
        return self._replace_mask("Clear mask", box, np.zeros((box.height, box.width), dtype=bool))

    def invert_mask(self) -> MaskEdit | None:
        """Hole becomes non-hole and the other way round (a mask that is all hole after this
        cannot be filled: the fill needs some of the photo to fill from)."""
        self._not_stroking("inverting the mask")
        return self._replace_mask("Invert mask", self.bounds, ~self.mask)

    def grow_mask(self, radius: int) -> MaskEdit | None:
        """Grow the hole by a disc of ``radius`` pixels (see :func:`retoucher.mask_ops.grow`)."""
        self._not_stroking("growing the mask")
        result = mask_ops.grow(self.mask, radius)
        return None if result is None else self._replace_mask(f"Grow mask {radius} px", *result)

    def shrink_mask(self, radius: int) -> MaskEdit | None:
        """Shrink the hole by a disc of ``radius`` pixels (see :func:`retoucher.mask_ops.shrink`)."""
        self._not_stroking("shrinking the mask")
        result = mask_ops.shrink(self.mask, radius)
        return None if result is None else self._replace_mask(f"Shrink mask {radius} px", *result)

    def fill_polygon(
        self, points: Sequence[tuple[float, float]], value: bool = True, label: str | None = None
    ) -> MaskEdit | None:
        """Mark (or unmark) the pixels whose centre lies inside the closed polygon ``points``
        (``(x, y)`` image coordinates; see :func:`retoucher.mask_ops.polygon`)."""
        self._not_stroking("a polygon")
        result = mask_ops.polygon(points, self.width, self.height)
        if result is None:
            return None
        box, inside = result
        current = self.mask[box.slices]
        new = current | inside if value else current & ~inside
        return self._replace_mask(label or ("Lasso" if value else "Erase lasso"), box, new)

    # ------------------------------------------------------------------ fills
    def apply_fill(self, result: np.ndarray, hole: np.ndarray, label: str = "Fill") -> Edit | None:
        """Take the engine's ``result`` for ``hole`` (the mask it was run with): only hole pixels
        of the image change, and the hole is cleared from the mask, in one edit (a mask edit alone
        when no pixel changed: the photo is not made unsaved; None when nothing changed)."""
        self._not_stroking("a fill")
        result = np.asarray(result)
        hole = np.asarray(hole, dtype=bool)
        if result.shape != self.image.shape or result.dtype != np.uint8:
            raise ValueError(
                f"fill result is {result.dtype} {result.shape}, the photo {self.image.dtype} {self.image.shape}"
            )
        if hole.shape != self.mask.shape:
            raise ValueError("fill hole and photo differ in size")
        box = Rect.bounding(hole)
        if box is None:
            return None
        sub_hole = hole[box.slices]
        # the hole's pixels alone (row-major), not the box's: a fill of specks spans the photo;
        # their rows and columns in the smallest type that holds them (8 bytes each were most of
        # a 1.3 GB peak filling a whole 24-megapixel photo)
        index_type = np.min_scalar_type(max(box.width, box.height))
        ys, xs = (a.astype(index_type) for a in np.nonzero(sub_hole))
        old = self.image[box.slices][ys, xs]
        new = result[box.slices][ys, xs]
        differs = (old != new).any(axis=1)
        rect = None
        if differs.any():
            ys, xs = ys[differs], xs[differs]
            y0, x0 = int(ys.min()), int(xs.min())
            rect = Rect(x0, y0, int(xs.max()) + 1, int(ys.max()) + 1).translated(box.x0, box.y0)
            ys, xs = ys - y0, xs - x0
        mask_before = self.mask[box.slices].copy()
        mask_after = mask_before & ~sub_hole
        mask_edit = None
        if not np.array_equal(mask_before, mask_after):
            mask_edit = MaskEdit(label, box, mask_before, mask_after)
        if rect is None:  # no pixel changed (a flat background): the photo stays in its state
            if mask_edit is not None:
                mask_edit.redo(self)  # the hole is still used up
            return mask_edit
        edit = ImageEdit(label, rect, ys, xs, old[differs], new[differs], mask_edit, self._state)
        try:
            edit.redo(self)
        except BaseException:
            # all or nothing: a failure half-way (out of memory in a view that redraws) left the
            # photo with filled pixels that no undo step knew of, saved by the next Save
            with contextlib.suppress(Exception):
                edit.undo(self)
            raise
        return edit

    # ------------------------------------------------------------------ history
    def undo(self, edit: Edit) -> None:
        self._not_stroking("undo")
        edit.undo(self)

    def redo(self, edit: Edit) -> None:
        self._not_stroking("redo")
        edit.redo(self)

    # ------------------------------------------------------------------ files
    def save(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        format: str | None = None,
        quality: int = DEFAULT_QUALITY,
        keep_jpeg_compression: bool = False,
        run: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> Path:
        """Write the image (atomically, with its alpha and metadata) to ``path`` (default: where
        it came from, in its format). ``quality`` applies to JPEG and WebP; with
        ``keep_jpeg_compression`` a photo read from a JPEG and written as one keeps the
        original's quantisation and chroma subsampling instead, and only the blocks that hold a
        pixel changed since the file was read (or last saved) are re-encoded (see
        :func:`engine.imageio.save_image`). The document then refers to the written file (so
        :attr:`save_in_place_problem` no longer applies).

        ``run(work)``: how the writing is run (default: here); the app runs it in a worker
        thread while its window repaints (seconds for a large PNG). ``work`` only reads the
        document, which must not change until it returns; the document changes afterwards,
        in the caller's thread."""
        from engine.imageio import SourceFile, save_image

        if path is None:
            if self.path is None:
                raise ValueError("this photo has no file yet; give a path (Save As)")
            path = self.path
            format = format or self.metadata.format
        fmt = output_format(path, format)
        source = self.source if fmt == "JPEG" else None

        def work() -> tuple[str | os.PathLike[str], tuple[Rect, PixelPositions, np.ndarray] | None]:
            # one comparison with the original (0.2 s at 24 MP) for both: the JPEG's changed
            # blocks and what the written file then stands for: the written pixels that differ
            # from the original alone, not the box around them (a fill of specks in two far
            # corners kept 71 MB of a 24 MP photo while it was open); taken before
            # _changed_since_file, which corrects ``vs_original`` in place
            vs_original = changed_pixels(self.image, self.original)
            rect = Rect.bounding(vs_original)
            patch = None
            if rect is not None:
                ys, xs = np.nonzero(vs_original[rect.slices])
                patch = (rect, PixelPositions(rect, ys, xs), self.image[rect.slices][ys, xs])
            written = save_image(
                path,
                self.image,
                alpha=self.alpha,
                metadata=self.metadata,
                format=fmt,
                quality=quality,
                keep_jpeg_compression=keep_jpeg_compression,
                source=source,
                changed=None if source is None else self._changed_since_file(vs_original),
                own_process=run is not None,  # a TIFF's encoder would freeze the caller's window
            )
            return written, patch

        written, self._file_patch = work() if run is None else run(work)
        self.path = Path(written)
        self.source = SourceFile.of(written)  # upright: a written file has orientation 1
        self.metadata = self.metadata.as_written(
            fmt, keep_jpeg_compression=keep_jpeg_compression, alpha=self.alpha is not None
        )
        self.mark_saved()
        return self.path

    def _changed_since_file(self, vs_original: np.ndarray) -> np.ndarray:
        """bool HxW: where the image differs from the pixels its file stands for: ``vs_original``
        (where it differs from the original), taken over and corrected where a save wrote others."""
        changed = vs_original
        if self._file_patch is not None:  # elsewhere the file holds the original's pixels
            rect, where, values = self._file_patch
            ys, xs = where.rows_cols()
            ys, xs = ys + rect.y0, xs + rect.x0
            changed[ys, xs] = (self.image[ys, xs] != values).any(axis=1)
        return changed

    def export_mask(self, path: str | os.PathLike[str]) -> Path:
        """Write the hole mask as a black-and-white image (white = hole)."""
        from engine.imageio import save_mask

        return Path(save_mask(path, self.mask) or path)


# Pillow modes that an 8-bit RGB(A) picture holds without loss (palette and grey widen to RGB;
# engine.imageio writes a grey file's neutral picture greyscale again).
_SAVED_OVER = {
    "pages": "the file holds {} pages; only the first one would be kept",
    "cmyk": "the file is CMYK; it would be written back as RGB",
    "bits": "the file has more than 8 bits per channel ({}); it would be written back with 8",
    "mode": "the file's colour mode is {}; it would be written back as 8-bit RGB",
}
"""Why a photo is not saved over its file (:attr:`Document.save_in_place_problem`)."""
_SAVED_AS_COPY = {
    "pages": "it holds the first of the original's {} pages only",
    "cmyk": "written in RGB (the original is CMYK)",
    "bits": "written with 8 bits per channel (the original has more: {})",
    "mode": "written as 8-bit RGB (the original's colour mode is {})",
}
"""What a copy saved from such a photo leaves out (:attr:`Document.copy_note`)."""
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX"})


class _Stroke:
    __slots__ = ("value", "label", "snapshot", "rect", "last")

    def __init__(self, value: bool, label: str, mask: np.ndarray) -> None:
        self.value = value
        self.label = label
        # A full copy costs a few milliseconds even at 24 MP and makes the undo patch exact.
        self.snapshot = mask.copy()
        self.rect: Rect | None = None
        self.last: tuple[float, float] | None = None
