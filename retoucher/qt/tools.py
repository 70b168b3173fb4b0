"""The painting tools. A tool turns pointer positions (image coordinates, floats) into edits of
the document's hole mask; the canvas feeds it and pushes the finished edit to the undo stack."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF

from ..document import Document, Edit, Rect

if TYPE_CHECKING:
    from PySide6.QtWidgets import QGraphicsRectItem


class ToolKind(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    RECTANGLE = "rectangle"


class Tool:
    """Press, drag, release. ``release`` returns the finished edit (already applied) or None."""

    kind: ToolKind
    shows_brush = False

    def press(self, doc: Document, x: float, y: float) -> None:
        raise NotImplementedError

    def move(self, doc: Document, x: float, y: float) -> None:
        raise NotImplementedError

    def release(self, doc: Document, x: float, y: float) -> Edit | None:
        raise NotImplementedError

    def cancel(self, doc: Document) -> Edit | None:
        """Abandon a drag (e.g. the document is about to change); returns what was done."""
        return None


class BrushTool(Tool):
    """Paints hole (or, as the eraser, removes it) with a round brush of ``diameter()`` pixels."""

    kind = ToolKind.BRUSH
    shows_brush = True
    value = True

    def __init__(self, diameter: Callable[[], float]) -> None:
        self._diameter = diameter

    @property
    def radius(self) -> float:
        return self._diameter() / 2.0

    def press(self, doc: Document, x: float, y: float) -> None:
        doc.begin_stroke(self.value)
        doc.stroke_to(x, y, self.radius)

    def move(self, doc: Document, x: float, y: float) -> None:
        if doc.stroking:
            doc.stroke_to(x, y, self.radius)

    def release(self, doc: Document, x: float, y: float) -> Edit | None:
        if not doc.stroking:
            return None
        doc.stroke_to(x, y, self.radius)
        return doc.end_stroke()

    def cancel(self, doc: Document) -> Edit | None:
        return doc.end_stroke() if doc.stroking else None


class EraserTool(BrushTool):
    kind = ToolKind.ERASER
    value = False


def pixel_rect(x0: float, y0: float, x1: float, y1: float) -> Rect:
    """The pixels from the one under the first corner to the one under the second, inclusive."""
    return Rect(
        math.floor(min(x0, x1)),
        math.floor(min(y0, y1)),
        math.floor(max(x0, x1)) + 1,
        math.floor(max(y0, y1)) + 1,
    )


class RectangleTool(Tool):
    """Drag a box; every pixel in it becomes hole (the seed's regular holes)."""

    kind = ToolKind.RECTANGLE

    def __init__(self, band: QGraphicsRectItem) -> None:
        self._band = band
        self._start: tuple[float, float] | None = None

    def _show(self, doc: Document, x: float, y: float) -> Rect:
        assert self._start is not None
        r = pixel_rect(*self._start, x, y).clip(doc.width, doc.height)
        self._band.setRect(QRectF(r.x0, r.y0, r.width, r.height))
        self._band.setVisible(True)
        return r

    def press(self, doc: Document, x: float, y: float) -> None:
        self._start = (x, y)
        self._show(doc, x, y)

    def move(self, doc: Document, x: float, y: float) -> None:
        if self._start is not None:
            self._show(doc, x, y)

    def release(self, doc: Document, x: float, y: float) -> Edit | None:
        if self._start is None:
            return None
        r = self._show(doc, x, y)
        self._start = None
        self._band.setVisible(False)
        return doc.set_rect(r, True)

    def cancel(self, doc: Document) -> Edit | None:
        self._start = None
        self._band.setVisible(False)
        return None
