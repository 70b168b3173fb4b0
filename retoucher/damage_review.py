"""Find Damage's change of the hole mask, Qt-free: what a damage detector found, grown by a few
pixels, added to the mask the user painted, as one edit that can be re-tuned (another threshold,
another grow) without running the network again.

:func:`add_damage` composes the mask: ``mask | (damage grown by a disc of grow px)``; it only
adds, so nothing the user brushed is ever removed. :class:`FoundDamage` is that change as an
:class:`~retoucher.edits.Edit` of a document (one undo step, "Find Damage"): while it is the
latest change of the mask, :meth:`FoundDamage.apply` makes it again at another threshold or grow
from the detection it keeps (``DamageMap.at``), and the same edit stays the undo step; once the
mask changed otherwise (anywhere: the document's :attr:`~retoucher.document.Document.mask_revision`
moved on), it refuses (:meth:`FoundDamage.settle` frees the detection for good). Fully transparent
pixels of an RGBA photo are never added (:func:`retoucher.damage.visible_damage`).

Sensitivity is what the user moves: ``1 - threshold`` in :data:`SENSITIVITY_STEPS` steps (higher
finds fainter damage, and more that is not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .damage import DEFAULT_DILATE, size_text, visible_damage
from .edits import Edit, MaskEdit

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap

    from .document import Document

__all__ = [
    "FIND_DAMAGE_LABEL",
    "MAX_DAMAGE_GROW",
    "SENSITIVITY_STEPS",
    "FoundDamage",
    "add_damage",
    "sensitivity_of",
    "threshold_of",
]

MAX_DAMAGE_GROW = 20
FIND_DAMAGE_LABEL = "Find Damage"
SENSITIVITY_STEPS = 1000
"""The sensitivity scale: ``sensitivity = (1 - threshold) * SENSITIVITY_STEPS``, 1 to STEPS - 1."""


def sensitivity_of(threshold: float) -> int:
    """The sensitivity step nearest to ``threshold`` (within 1 .. STEPS - 1)."""
    return min(max(round((1.0 - threshold) * SENSITIVITY_STEPS), 1), SENSITIVITY_STEPS - 1)


def threshold_of(sensitivity: int) -> float:
    """The detector threshold of a sensitivity step (a damage probability, in (0, 1))."""
    s = min(max(int(sensitivity), 1), SENSITIVITY_STEPS - 1)
    return 1.0 - s / SENSITIVITY_STEPS


def add_damage(
    mask: np.ndarray, damage: np.ndarray, grow: int = DEFAULT_DILATE, alpha: np.ndarray | None = None
) -> np.ndarray:
    """The hole ``mask`` plus ``damage`` grown by a disc of ``grow`` pixels
    (:func:`retoucher.mask_ops.grow`), except where ``alpha`` is 0 (fully transparent), as a new
    array: neither input changes, and every hole pixel of ``mask`` stays hole."""
    mask = np.asarray(mask, dtype=bool)
    damage = np.asarray(damage, dtype=bool)
    if mask.shape != damage.shape:
        raise ValueError(f"the damage mask is {size_text(damage)}, the hole mask {size_text(mask)}")
    return mask | visible_damage(damage, grow, alpha)


class FoundDamage(Edit):
    """One Find Damage on one document: its detection (``damage``, None once settled), the
    ``threshold`` and ``grow`` it is shown at, and how many pixels it ``added`` to the mask.

    Undo gives back the mask as it was before the find, redo the find again. :meth:`apply` makes
    (or re-makes) the change; the caller puts this edit in the history once it changed something
    and keeps the history in step (the same edit stays the step whatever the threshold).
    """

    label = FIND_DAMAGE_LABEL

    def __init__(
        self, damage: DamageMap, *, grow: int = DEFAULT_DILATE, visible: np.ndarray | None = None
    ) -> None:
        self.damage: DamageMap | None = damage
        self.threshold = float(damage.threshold)
        self.grow = int(grow)
        # the damage grown by ``grow`` where the photo shows (visible_damage), when the worker
        # made it: the first apply takes it as it is (0.1-0.2 s at 24 MP off the app's thread)
        self._visible = visible
        self.added = 0
        self._doc: Document | None = None
        self._edit: MaskEdit | None = None
        self._revision = -1  # the document's mask revision this find left (see apply)

    @property
    def adjustable(self) -> bool:
        """Whether :meth:`apply` can still re-tune it (not settled)."""
        return self.damage is not None

    @property
    def changed_mask(self) -> bool:
        """Whether the find, as applied now, changed the mask."""
        return self._edit is not None

    def settle(self) -> None:
        """Keep the change as it is and drop the detection (its probability map is large)."""
        self.damage = self._visible = None

    def apply(self, doc: Document, threshold: float | None = None, grow: int | None = None) -> bool:
        """Make this find's change of ``doc``'s mask at ``threshold`` and ``grow`` (default: the
        current ones): the mask as it was before the find plus the damage. Returns whether the
        mask now differs from before the find. Raises ``ValueError`` for a bad threshold, grow or
        damage size, and ``RuntimeError`` when the find is settled, belongs to another document
        or the mask changed since it was applied; the mask is then left as it was."""
        if self.damage is None:
            raise RuntimeError("this Find Damage is settled; run Find Damage again to adjust it")
        if self._doc is not None and doc is not self._doc:
            raise RuntimeError("this Find Damage belongs to another photo")
        if self._doc is not None and doc.mask_revision != self._revision:
            raise RuntimeError("the mask changed since this Find Damage; run Find Damage again")
        t = self.threshold if threshold is None else float(threshold)
        g = self.grow if grow is None else int(grow)
        found = self.damage.at(t).mask  # checks the threshold before the mask changes
        if not 0 <= g <= MAX_DAMAGE_GROW:
            raise ValueError(f"grow damage by 0 to {MAX_DAMAGE_GROW} pixels, not {g}")
        if found.shape != doc.mask.shape:
            raise ValueError(f"the damage mask is {size_text(found)}, the photo {size_text(doc.mask)}")
        if self._edit is not None:
            doc.undo(self._edit)  # back to the mask before the find
        base = int(np.count_nonzero(doc.mask))
        ready = self._visible
        if ready is not None and t == self.damage.threshold and g == self.grow and ready.shape == found.shape:
            new = doc.mask | ready
        else:
            new = add_damage(doc.mask, found, g, doc.alpha)
            self._visible = None  # made for other values
        self._doc = doc
        self._edit = doc.set_mask(new, self.label)
        self._revision = doc.mask_revision
        self.threshold, self.grow = t, g
        self.added = int(np.count_nonzero(new)) - base
        return self._edit is not None

    def redo(self, doc: Document) -> None:
        if self._edit is not None:
            self._edit.redo(doc)
        self._revision = doc.mask_revision  # the mask is again what this find made of it

    def undo(self, doc: Document) -> None:
        if self._edit is not None:
            self._edit.undo(doc)

    @property
    def nbytes(self) -> int:
        """What the history keeps of it: its mask edit. The probability map it is adjusted from
        (4 bytes a pixel) goes when the find settles; counted, it let go a whole-photo fill's
        worth of older steps at every find near the history's budget."""
        return 0 if self._edit is None else self._edit.nbytes
