"""The painting tools. A tool turns pointer positions (image coordinates, floats) into edits of
the document's hole mask; the canvas feeds it and pushes the finished edit to the undo stack."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath

from ..brush import TIE_BREAK
from ..document import Document, Edit, Rect

if TYPE_CHECKING:
    from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem


class ToolKind(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    RECTANGLE = "rectangle"
    LASSO = "lasso"


@dataclass(frozen=True)
class Modifiers:
    """The keys held when a button goes down: ``shift`` (a brush draws a straight line from
    where the last stroke ended), ``alt`` (Alt or Ctrl: a lasso removes its shape from the hole)."""

    shift: bool = False
    alt: bool = False

    @classmethod
    def of(cls, held: Qt.KeyboardModifier) -> Modifiers:
        alt = Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ControlModifier
        return cls(shift=bool(held & Qt.KeyboardModifier.ShiftModifier), alt=bool(held & alt))


NO_MODIFIERS = Modifiers()

TOOL_KEYS = {
    Qt.Key.Key_Return: "close",
    Qt.Key.Key_Enter: "close",
    Qt.Key.Key_Escape: "cancel",
    Qt.Key.Key_Backspace: "back",
}
"""The keys a :attr:`Tool.pending` tool takes, and the :meth:`Tool.command` each gives."""
UNDO_COMMAND = "back"
"""What the Undo keys (Ctrl+Z) do to a :attr:`Tool.pending` tool, before the history sees them."""


class Tool:
    """Press, drag, release. ``release`` returns the finished edit (already applied) or None.
    A tool that is :attr:`pending` holds a shape that more clicks add to (a polygon): it sees
    the pointer between clicks (``hover``) and is closed (``close``: Enter, double-click),
    shortened (``back``: Backspace) or dropped (``cancel``: Esc)."""

    kind: ToolKind
    shows_brush = False

    @property
    def pending(self) -> bool:
        return False

    def press(self, doc: Document, x: float, y: float, mods: Modifiers = NO_MODIFIERS) -> None:
        raise NotImplementedError

    def move(self, doc: Document, x: float, y: float) -> None:
        raise NotImplementedError

    def release(self, doc: Document, x: float, y: float) -> Edit | None:
        raise NotImplementedError

    def cancel(self, doc: Document) -> Edit | None:
        """Abandon a drag (e.g. the document is about to change); returns what was done."""
        return None

    def hover(self, doc: Document, x: float, y: float) -> None:
        """The pointer moved with no button held while the tool is :attr:`pending`."""

    def close(self, doc: Document) -> Edit | None:
        """Finish the pending shape; returns its edit (already applied)."""
        return None

    def back(self) -> None:
        """Take back the last part of the pending shape."""

    def command(self, doc: Document, name: str) -> Edit | None:
        """``close``, ``cancel`` or ``back`` (see :data:`TOOL_KEYS`)."""
        if name == "back":
            self.back()
            return None
        return self.close(doc) if name == "close" else self.cancel(doc)


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

    def press(self, doc: Document, x: float, y: float, mods: Modifiers = NO_MODIFIERS) -> None:
        """With Shift, the stroke starts with a straight line from where the last one ended
        (the Photoshop and GIMP convention), in the same undo step as the rest of the drag."""
        start = doc.last_point if mods.shift else None
        label = None if start is None else ("Brush line" if self.value else "Erase line")
        doc.begin_stroke(self.value, label, start=start)
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
    """The pixels from the one under the first corner to the one under the second, inclusive.
    A corner on a pixel's edge takes the pixel Qt shows there, as the brush does
    (:data:`retoucher.brush.TIE_BREAK`): at 125%, 150% and 250% zoom a screen pixel's centre falls
    on an edge, and the rectangle started one photo pixel right of or below the pointer."""
    x0, y0, x1, y1 = (v + TIE_BREAK for v in (x0, y0, x1, y1))
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

    def press(self, doc: Document, x: float, y: float, mods: Modifiers = NO_MODIFIERS) -> None:
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


Point = tuple[float, float]


class LassoTool(Tool):
    """Drag: a freehand outline, filled when the button is released. Click: a polygon corner;
    a double-click, Enter or a click on the first corner closes the polygon and fills it,
    Backspace takes the last corner back and Esc drops it; drags between clicks add freehand
    stretches. Alt (or Ctrl) held at the first press removes the shape from the hole instead.
    The fill takes the pixels whose centre is inside (``Document.fill_polygon``)."""

    kind = ToolKind.LASSO
    CLICK_PX = 4.0
    """Screen pixels a press may move and still be a click; also the first corner's snap radius."""

    def __init__(self, outline: QGraphicsPathItem, screen_px: Callable[[], float]) -> None:
        self._outline = outline
        self._screen_px = screen_px  # image pixels per screen pixel (the view's zoom)
        self.colour = QColor(255, 36, 72)  # the hole's colour, for the preview's fill
        self._points: list[Point] = []
        self._value = True
        self._freehand = False  # the shape began with a drag: releasing the button closes it
        self._press_at: Point | None = None  # where the held button went down
        self._dragged = False
        self._hover: Point | None = None

    @property
    def pending(self) -> bool:
        return bool(self._points) and not self._freehand

    @property
    def points(self) -> list[Point]:
        """The corners (and freehand points) so far."""
        return list(self._points)

    def _near(self, a: Point, b: Point) -> bool:
        return math.hypot(a[0] - b[0], a[1] - b[1]) <= self.CLICK_PX * self._screen_px()

    def press(self, doc: Document, x: float, y: float, mods: Modifiers = NO_MODIFIERS) -> None:
        if not self._points:
            self._value = not mods.alt
            self._points = [(x, y)]
            self._freehand = True  # until the button comes up without a drag
        self._press_at = (x, y)
        self._dragged = False
        self._show()

    def move(self, doc: Document, x: float, y: float) -> None:
        if self._press_at is None:
            return
        p = (x, y)
        if not self._dragged:
            if self._near(p, self._press_at):
                return
            self._dragged = True
            if self._press_at != self._points[-1]:
                self._points.append(self._press_at)
        if p != self._points[-1]:
            self._points.append(p)
        self._hover = p
        self._show()

    def release(self, doc: Document, x: float, y: float) -> Edit | None:
        if self._press_at is None:
            return None
        self.move(doc, x, y)
        at, self._press_at = self._press_at, None
        if self._freehand:
            if self._dragged:
                return self.close(doc)
            self._freehand = False  # a click: the first corner of a polygon
        elif not self._dragged:
            if len(self._points) >= 3 and self._near(at, self._points[0]):
                return self.close(doc)
            if not self._near(at, self._points[-1]):
                self._points.append(at)
        self._show()
        return None

    def hover(self, doc: Document, x: float, y: float) -> None:
        self._hover = (x, y)
        self._show()

    def close(self, doc: Document) -> Edit | None:
        points, value = self._points, self._value
        self._reset()
        return doc.fill_polygon(points, value) if len(points) >= 3 else None

    def cancel(self, doc: Document) -> Edit | None:
        self._reset()
        return None

    def back(self) -> None:
        if self._press_at is None and self._points:
            self._points.pop()
            if not self._points:
                self._reset()
            self._show()

    def _reset(self) -> None:
        self._points = []
        self._freehand = False
        self._press_at = None
        self._hover = None
        self._outline.setPath(QPainterPath())
        self._outline.setVisible(False)

    def _show(self) -> None:
        """The outline so far, closed back to the first point, filled with the hole's colour
        (or only outlined when it removes)."""
        if not self._points:
            return
        points = self._points + ([self._hover] if self._hover is not None else [])
        path = QPainterPath(QPointF(*points[0]))
        for p in points[1:]:
            path.lineTo(QPointF(*p))
        path.closeSubpath()
        self._outline.setPath(path)
        fill = QColor(self.colour)
        fill.setAlpha(90)
        self._outline.setBrush(fill if self._value else Qt.BrushStyle.NoBrush)
        self._outline.setVisible(True)
