"""The reversible edits of a :class:`~retoucher.document.Document`: what the undo history holds.

An edit stores only what it changed: a mask's bounding box packed to one bit per pixel and
deflated, a fill's changed pixels before and after (with such a map of where they lie in their
box, or their indices when they are few in a large box): a brush stroke costs a few kilobytes whatever the photo's size; a fill costs 6 bytes a pixel
it changed (3 before, 3 after: 6 MB for a 1000x1000 object, about 1 MB for a 400x400 one; 137 MB
for a whole 24-megapixel photo). The window keeps the history within a memory budget by letting
go of the oldest steps' data (:class:`ForgottenEdit`), never the latest step's.
``redo``/``undo`` replay it through the document's low-level writers
(``_write_mask``, ``_write_pixels``, ``_set_state``), which check the box and emit the
document's events. Edits are made by the document's methods, never by views.
"""

from __future__ import annotations

import itertools
import os
import zlib
from typing import TYPE_CHECKING

import numpy as np

from engine.geometry import Rect

if TYPE_CHECKING:  # pragma: no cover
    from .document import Document

__all__ = ["Edit", "ForgottenEdit", "history_budget", "MaskEdit", "ImageEdit", "PixelPositions"]

_states = itertools.count(1)


class _PackedMask:
    """A bool patch stored at one bit per pixel, deflated (zlib, its quickest level): a box is
    mostly one value (a stroke across a 100-megapixel photo kept 2 x 12.5 MB in the history, now
    about 0.3 MB, for 2 x 17 ms more on its release)."""

    __slots__ = ("shape", "bits")

    def __init__(self, patch: np.ndarray) -> None:
        self.shape = patch.shape
        self.bits = zlib.compress(np.packbits(patch, axis=None), 1)

    def unpack(self) -> np.ndarray:
        n = self.shape[0] * self.shape[1]
        packed = np.frombuffer(zlib.decompress(self.bits), dtype=np.uint8)
        return np.unpackbits(packed, count=n).astype(bool).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self.bits)


class Edit:
    """One reversible change of a document; ``redo`` and ``undo`` replay it."""

    label: str = ""

    def redo(self, doc: Document) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def undo(self, doc: Document) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def nbytes(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class MaskEdit(Edit):
    """A change of the hole mask inside ``rect``: the patch before and after, bit-packed."""

    def __init__(self, label: str, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        self.label = label
        self.rect = rect
        self._before = _PackedMask(before)
        self._after = _PackedMask(after)

    def redo(self, doc: Document) -> None:
        doc._write_mask(self.rect, self._after.unpack())

    def undo(self, doc: Document) -> None:
        doc._write_mask(self.rect, self._before.unpack())

    @property
    def nbytes(self) -> int:
        return self._before.nbytes + self._after.nbytes


class PixelPositions:
    """Where pixels changed in a box (a fill's, or a save's since the original), as rows and columns within the box: a bit-packed
    map of the box when they are dense, their indices (4 bytes each) when they are few in a
    large box. Filling 500 specks spread over a photo, each undo and redo unpacked and scanned
    a map of the whole photo (0.1 s at 24 MP, 0.2 s at 96 MP); the indices of the few pixels
    cost nothing to replay."""

    __slots__ = ("_width", "_map", "_index")

    SPARSE = 32  # indices when fewer than 1 in this many of the box's pixels changed

    def __init__(self, rect: Rect, ys: np.ndarray, xs: np.ndarray) -> None:
        self._width = rect.width
        self._map: _PackedMask | None = None
        self._index: np.ndarray | None = None
        if len(ys) * self.SPARSE < rect.width * rect.height:
            self._index = (np.asarray(ys, np.int64) * rect.width + xs).astype(
                np.min_scalar_type(rect.width * rect.height)
            )
        else:
            where = np.zeros((rect.height, rect.width), dtype=bool)
            where[ys, xs] = True
            self._map = _PackedMask(where)

    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows and columns, in row-major order (the order of a fill's values)."""
        if self._index is not None:
            return np.divmod(self._index.astype(np.int64), self._width)
        assert self._map is not None
        return np.nonzero(self._map.unpack())

    def dense_map(self) -> np.ndarray | None:
        """The box's bool map of them when they are kept as one (many of the box's pixels; a
        mask assignment writes them quicker than their rows and columns), else None."""
        return None if self._map is None else self._map.unpack()

    @property
    def nbytes(self) -> int:
        return self._map.nbytes if self._map is not None else int(self._index.nbytes)  # type: ignore[union-attr]


class ImageEdit(Edit):
    """A fill: the changed image pixels and the hole it cleared from the mask, as one step. It
    moves the document to a new image state (a fresh id) and back.

    ``ys`` and ``xs`` (rows and columns within the ``rect`` box, row-major; None with ``rect``
    None: no pixel changed) are the changed pixels, ``before`` and ``after`` (N x 3) their
    values: only they are kept (with where they lie, :class:`PixelPositions`), not the box: a fill
    of scattered specks (Find Damage's) spans the whole photo, 149 MB a step on a 24-megapixel
    photo as boxes, a few kilobytes now."""

    def __init__(
        self,
        label: str,
        rect: Rect | None,
        ys: np.ndarray | None,
        xs: np.ndarray | None,
        before: np.ndarray | None,
        after: np.ndarray | None,
        mask_edit: MaskEdit | None,
        state_before: int,
    ) -> None:
        self.label = label
        self.rect = rect
        self._where: PixelPositions | None = None
        self._before = self._after = None
        if (
            rect is not None
            and ys is not None
            and xs is not None
            and before is not None
            and after is not None
        ):
            self._where = PixelPositions(rect, ys, xs)
            self._before, self._after = before, after
        self.mask_edit = mask_edit
        self.state_before = state_before
        self.state_after = next(_states)

    def _write(self, doc: Document, pixels: np.ndarray | None) -> None:
        if self.rect is None or self._where is None or pixels is None:
            return
        doc._write_pixels(self.rect, self._where, pixels)  # the changed pixels alone

    def redo(self, doc: Document) -> None:
        self._write(doc, self._after)
        if self.mask_edit is not None:
            self.mask_edit.redo(doc)
        doc._set_state(self.state_after)

    def undo(self, doc: Document) -> None:
        self._write(doc, self._before)
        if self.mask_edit is not None:
            self.mask_edit.undo(doc)
        doc._set_state(self.state_before)

    @property
    def nbytes(self) -> int:
        n = 0
        if self._where is not None and self._before is not None and self._after is not None:
            n = self._where.nbytes + self._before.nbytes + self._after.nbytes
        return n + (self.mask_edit.nbytes if self.mask_edit else 0)


GIB = 1 << 30


def history_budget() -> int:
    """The bytes the undo history may hold: a quarter of the machine's memory, 1 to 4 GiB (2 GiB
    where it cannot be told): 7 to 30 whole-photo fills of a 24-megapixel photo, thousands of
    strokes."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return 2 * GIB
    return min(max(total // 4, GIB), 4 * GIB)


class ForgottenEdit(Edit):
    """What is left of a step let go to keep the history within its memory budget: its name. It
    can be neither undone nor redone (the window stops Undo before it)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def _refuse(self) -> None:
        raise RuntimeError(f"\u201c{self.label}\u201d was let go to keep the history within its memory")

    def redo(self, doc: Document) -> None:
        self._refuse()

    def undo(self, doc: Document) -> None:
        self._refuse()

    @property
    def nbytes(self) -> int:
        return 0
