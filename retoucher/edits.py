"""The reversible edits of a :class:`~retoucher.document.Document`: what the undo history holds.

An edit stores only what it changed: a bounding box and the pixels before and after, masks
packed to one bit per pixel, so an undo history of hundreds of strokes on a 24-megapixel photo
stays small. ``redo``/``undo`` replay it through the document's low-level writers
(``_write_mask``, ``_write_image``, ``_set_state``), which check the box and emit the
document's events. Edits are made by the document's methods, never by views.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from engine.geometry import Rect

if TYPE_CHECKING:  # pragma: no cover
    from .document import Document

__all__ = ["Edit", "MaskEdit", "ImageEdit"]

_states = itertools.count(1)


class _PackedMask:
    """A bool patch stored at one bit per pixel."""

    __slots__ = ("shape", "bits")

    def __init__(self, patch: np.ndarray) -> None:
        self.shape = patch.shape
        self.bits = np.packbits(patch, axis=None)

    def unpack(self) -> np.ndarray:
        n = self.shape[0] * self.shape[1]
        return np.unpackbits(self.bits, count=n).astype(bool).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)


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


class ImageEdit(Edit):
    """A fill: the changed image pixels (bounding box, before and after) and the hole it
    cleared from the mask, as one step. It moves the document to a new image state (a fresh
    id) and back."""

    def __init__(
        self,
        label: str,
        rect: Rect | None,
        before: np.ndarray | None,
        after: np.ndarray | None,
        mask_edit: MaskEdit | None,
        state_before: int,
    ) -> None:
        self.label = label
        self.rect = rect
        self._before = before
        self._after = after
        self.mask_edit = mask_edit
        self.state_before = state_before
        self.state_after = next(_states)

    def redo(self, doc: Document) -> None:
        if self.rect is not None:
            doc._write_image(self.rect, self._after)
        if self.mask_edit is not None:
            self.mask_edit.redo(doc)
        doc._set_state(self.state_after)

    def undo(self, doc: Document) -> None:
        if self.rect is not None:
            doc._write_image(self.rect, self._before)
        if self.mask_edit is not None:
            self.mask_edit.undo(doc)
        doc._set_state(self.state_before)

    @property
    def nbytes(self) -> int:
        n = 0 if self._before is None else self._before.nbytes + self._after.nbytes
        return n + (self.mask_edit.nbytes if self.mask_edit else 0)
