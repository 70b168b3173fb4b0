"""The canvas: a QGraphicsView showing a document's photo, its hole mask as a translucent overlay
(any colour, hidden on request), the brush cursor, the rectangle band and the lasso outline (the
items are in :mod:`.canvas_items`); zoom, pan, the tools, compare and the split before/after view.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPen,
    QPointingDevice,
)
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QWidget

from ..document import Document, Edit, Rect
from ..screen_colours import ScreenColours, screen_colours
from .canvas_items import OVERLAY_RGBA, BrushCursorItem, MaskOverlayItem, PhotoItem
from .canvas_keys import COMPARE_KEY, PAN_KEY
from .settings import DEFAULT_BRUSH_SIZE, clamp_brush_size
from .tools import (
    TOOL_KEYS,
    UNDO_COMMAND,
    BrushTool,
    EraserTool,
    LassoTool,
    Modifiers,
    RectangleTool,
    Tool,
    ToolKind,
)
from .zoom_view import ZoomView

COMPARE_NOTICE = "Showing the original: release \\ or untick View > Compare to paint"
"""Short: the status bar's permanent labels cut a longer one at a 1100 px wide window."""


_UNDER_PEN = QColor(0, 0, 0, 200)
"""The solid line under the rectangle band's and the lasso outline's white dashes, as under the
brush outline: white dashes alone all but vanished on a bright photo (a lasso that removes has no
fill, a polygon's first edge none either)."""


class _TwoTone:
    """A shape item whose outline is drawn first as a solid dark line (:data:`_UNDER_PEN`), then
    as the item's own (white dashes) over it."""

    def _draw_outline(self, painter: QPainter) -> None:
        raise NotImplementedError

    def paint(self, painter: QPainter, option: object, widget: QWidget | None = None) -> None:
        painter.setPen(QPen(_UNDER_PEN, 0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        self._draw_outline(painter)
        super().paint(painter, option, widget)  # type: ignore[misc]


class _TwoToneRect(_TwoTone, QGraphicsRectItem):
    def _draw_outline(self, painter: QPainter) -> None:
        painter.drawRect(self.rect())


class _TwoTonePath(_TwoTone, QGraphicsPathItem):
    def _draw_outline(self, painter: QPainter) -> None:
        painter.drawPath(self.path())


class Canvas(ZoomView):
    """Shows a :class:`Document` and edits its mask with the current tool.

    Signals: ``edit_made(Document, Edit)`` when a tool finishes (the edit is applied to that
    document; push it to its undo stack), ``zoom_changed(float)``, ``compare_changed(bool)``
    (the original is shown or not), ``split_changed(bool)`` (the split before/after view is on
    or not), ``notice(str)``: a line for the status bar (why a press did not paint). Compare and
    split are never on together; neither paints.
    """

    edit_made = Signal(object, object)
    compare_changed = Signal(bool)
    split_changed = Signal(bool)
    notice = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setBackgroundBrush(QColor(46, 46, 50))
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # files dropped on the canvas go to the main window
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.photo = PhotoItem()
        self.overlay = MaskOverlayItem()
        self.overlay.setZValue(1)
        self.band = _TwoToneRect()
        self.band.setZValue(2)
        pen = QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine)
        self.band.setPen(pen)
        self.band.setVisible(False)
        self.outline = _TwoTonePath()  # the lasso's shape so far
        self.outline.setZValue(2)
        self.outline.setPen(pen)
        self.cursor_item = BrushCursorItem()
        self.cursor_item.setZValue(3)
        self.cursor_item.setVisible(False)
        for item in (self.photo, self.overlay, self.band, self.outline, self.cursor_item):
            self.scene().addItem(item)

        self.doc: Document | None = None
        self.screen_colours: ScreenColours | None = None  # the photo's colours on an sRGB screen
        self._brush_size = DEFAULT_BRUSH_SIZE
        self._lasso = LassoTool(self.outline, lambda: 1.0 / self.zoom)
        self._tools: dict[ToolKind, Tool] = {
            ToolKind.BRUSH: BrushTool(lambda: self._brush_size),
            ToolKind.ERASER: EraserTool(lambda: self._brush_size),
            ToolKind.RECTANGLE: RectangleTool(self.band),
            ToolKind.LASSO: self._lasso,
        }
        self._tool = self._tools[ToolKind.BRUSH]
        self._tool_under_pen: Tool | None = None  # the tool a pen's eraser end stands in for
        self._pen_erases = False  # the last tablet press came from a pen's eraser end
        self._dragging = False  # a tool drag is in progress
        self._panning: QPointF | None = None  # the image point the pan grabbed
        self._pointer: QPointF | None = None  # where the pointer is over the view (viewport)
        self._space = False
        self._editable = True
        self._comparing = False
        self._compare_held = False  # shown while the compare key is held (not the toggle)
        self._resume_split = False  # the held compare interrupted the split view: back after it
        self._splitting = False
        self._split_fraction = 0.5  # of the photo width; kept while the split is off
        self._split_dragging = False  # the divider is being dragged
        self._overlay_on = True  # the mask overlay is shown (while compare and split are off)
        self.set_overlay_colour(QColor(*OVERLAY_RGBA[:3]))
        self.cursor_item.set_radius(self._brush_size / 2)
        self._update_cursor_shape()
        self.zoom_changed.connect(self._follow_pointer)

    # ------------------------------------------------------------------ document
    def set_document(self, doc: Document | None) -> None:
        self.finish_drag()
        if self.doc is not None:
            self.doc.mask_changed.disconnect(self._on_mask_changed)
            self.doc.image_changed.disconnect(self._on_image_changed)
        self.doc = doc
        self.set_comparing(False)
        self.set_split(False)
        if doc is None:
            self.screen_colours = None
            self.photo.set_arrays(None, None)
            self.overlay.reset(None)
            self.scene().setSceneRect(QRectF())
        else:
            self.screen_colours = screen_colours(doc.metadata)
            self.photo.set_arrays(doc.image, doc.original, doc.alpha, self.screen_colours)
            self.overlay.reset(doc.mask)
            doc.mask_changed.connect(self._on_mask_changed)
            doc.image_changed.connect(self._on_image_changed)
            self.scene().setSceneRect(QRectF(0, 0, doc.width, doc.height))
        self.fit()
        self.viewport().update()

    def _on_mask_changed(self, rect: Rect) -> None:
        assert self.doc is not None
        self.overlay.refresh(self.doc.mask, rect)

    def _on_image_changed(self, rect: Rect) -> None:
        self.photo.image_changed(rect)

    # ------------------------------------------------------------------ tools
    @property
    def tool(self) -> ToolKind:
        return self._tool.kind

    def set_tool(self, kind: ToolKind) -> None:
        """Another tool: a polygon being clicked (three corners or more) is closed as its own
        step first, not dropped (its corners were work); the same tool again changes nothing."""
        if self._tool_under_pen is not None:  # a pen's eraser end is stroking: that stroke ends
            self.finish_drag()
        if kind is self._tool.kind:
            return
        self.finish_drag(close_shape=True)
        self._tool = self._tools[kind]
        self._update_cursor_shape()

    @property
    def brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, diameter: int) -> None:
        self._brush_size = clamp_brush_size(diameter)
        self.cursor_item.set_radius(self._brush_size / 2)

    def set_editable(self, on: bool) -> None:
        """While a fill runs the mask must not change: the view still zooms and pans."""
        if not on:
            self.finish_drag()
        self._editable = on
        self._update_cursor_shape()

    @property
    def dragging(self) -> bool:
        """A tool drag (mouse button held) is in progress."""
        return self._dragging

    def finish_drag(self, *, close_shape: bool = False) -> None:
        """End the drag in progress now: a brush stroke so far becomes its undo step
        (``edit_made``); a rectangle, lasso or polygon in progress is dropped, or with
        ``close_shape`` a polygon of three corners or more is closed as its own step (Fill with
        a polygon clicked: it is part of the hole). Call it before any other change of the
        document (undo, redo, clear, fill, another photo): a stroke's undo step must not span
        other edits."""
        if not self._dragging and not self._tool.pending:
            return
        pending = self._tool.pending and not self._dragging
        self._dragging = False
        if self.doc is not None:
            edit = self._tool.close(self.doc) if close_shape and pending else self._tool.cancel(self.doc)
            self._emit_edit(edit)
        self._end_pen_eraser()

    # ------------------------------------------------------------------ a pen's eraser end
    def viewportEvent(self, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.TabletPress:  # Qt makes a mouse press of it next
            self._pen_erases = event.pointerType() == QPointingDevice.PointerType.Eraser
        elif kind == QEvent.Type.TabletRelease:
            self._pen_erases = False
        return super().viewportEvent(event)

    def _pressed_with_eraser_end(self, event: QMouseEvent) -> bool:
        """The press comes from a pen's eraser end: the tablet press said so, or the device of
        the mouse press Qt made of it. Read once for every press, whichever way it goes (a press
        in Split or Compare left the tablet's word for the next plain mouse stroke, which erased)."""
        device = event.pointingDevice()
        erases = self._pen_erases or (
            device is not None and device.pointerType() == QPointingDevice.PointerType.Eraser
        )
        self._pen_erases = False
        return erases

    def _start_pen_eraser(self) -> None:
        """A pen's eraser end (a Wacom pen turned over) erases with the brush's size whatever tool
        is chosen, for that stroke, as in painting programs (it painted); a polygon being clicked
        takes the press as its next corner."""
        if not self._tool.pending and self._tool.kind is not ToolKind.ERASER:
            self._tool_under_pen, self._tool = self._tool, self._tools[ToolKind.ERASER]
            self._update_cursor_shape()

    def _end_pen_eraser(self) -> None:
        if self._tool_under_pen is not None:
            self._tool, self._tool_under_pen = self._tool_under_pen, None
            self._update_cursor_shape()

    def finish_held_drag(self) -> None:
        """:meth:`finish_drag` for a drag with the button held only: a polygon being clicked
        stays open across a look at the original (``\\``, Split), which changes nothing (it
        was dropped, its corners lost)."""
        if self._dragging:
            self.finish_drag()

    @property
    def shape_pending(self) -> bool:
        """A polygon is being clicked (its corners are no undo steps yet)."""
        return self._tool.pending and not self._dragging and self.doc is not None

    def take_back_corner(self) -> None:
        """Take back the pending polygon's last corner (what the Undo keys do to it)."""
        if self.shape_pending and self.doc is not None:
            self._emit_edit(self._tool.command(self.doc, UNDO_COMMAND))

    def _emit_edit(self, edit: Edit | None) -> None:
        if edit is not None and self.doc is not None:
            self.edit_made.emit(self.doc, edit)

    # ------------------------------------------------------------------ mask overlay
    def set_overlay_visible(self, on: bool) -> None:
        """Show or hide the mask overlay; painting still changes the (hidden) mask."""
        self._overlay_on = bool(on)
        self._sync_overlay()

    def set_overlay_colour(self, colour: QColor) -> None:
        """The hole's colour (its translucency stays), for the overlay and the tools' previews."""
        self.overlay.set_colour(colour.red(), colour.green(), colour.blue())
        self.band.setBrush(QColor(colour.red(), colour.green(), colour.blue(), 90))
        self._lasso.colour = QColor(colour)

    def _sync_overlay(self) -> None:
        self.overlay.setVisible(self._overlay_on and not self._comparing and not self._splitting)

    def _update_cursor_shape(self) -> None:
        if self._panning is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._splitting:
            shape = Qt.CursorShape.SizeHorCursor
        elif not self._editable or self.doc is None or self._comparing:
            shape = Qt.CursorShape.ArrowCursor
        else:
            shape = Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)
        if not self._shows_brush():
            self.cursor_item.setVisible(False)

    def _shows_brush(self) -> bool:
        return (
            self._tool.shows_brush
            and self._editable
            and self.doc is not None
            and not self._space
            and not self._splitting
            and not self._comparing
        )

    # ------------------------------------------------------------------ compare
    @property
    def comparing(self) -> bool:
        return self._comparing

    def set_comparing(self, on: bool) -> None:
        """Show the photo as it was opened instead of the current one (and hide the mask)."""
        if not on:
            self._compare_held = False
            self._resume_split = False
        if on == self._comparing:
            return
        if on:
            self.finish_held_drag()  # a stroke in progress becomes its undo step first
            self.set_split(False)
        self._comparing = on
        self.photo.show_original(on)
        self._sync_overlay()
        self._update_cursor_shape()  # no cross and no brush outline: a press does not paint
        self.compare_changed.emit(on)

    def _end_held_compare(self) -> None:
        resume = self._resume_split
        self.set_comparing(False)
        if resume:
            self.set_split(True)

    # ------------------------------------------------------------------ split before/after
    @property
    def splitting(self) -> bool:
        return self._splitting

    @property
    def split_fraction(self) -> float:
        """Where the divider is, as a fraction of the photo width (0 left edge, 1 right edge)."""
        return self._split_fraction

    def set_split_fraction(self, fraction: float) -> None:
        self._split_fraction = min(max(float(fraction), 0.0), 1.0)
        if self._splitting and self.doc is not None:
            self.photo.set_split(self._split_fraction * self.doc.width)

    def set_split(self, on: bool) -> None:
        """Show the original left of a divider and the current photo right of it (the mask
        hidden, no painting: a left drag moves the divider). Needs a photo; ends compare."""
        if on == self._splitting or (on and self.doc is None):
            return
        if on:
            self.finish_held_drag()  # a stroke in progress becomes its undo step first
            self.set_comparing(False)
        self._splitting = on
        self._split_dragging = False
        self.photo.set_split(self._split_fraction * self.doc.width if on and self.doc is not None else None)
        self._sync_overlay()
        self._update_cursor_shape()
        self.split_changed.emit(on)

    def _move_divider(self, pos: QPointF) -> None:
        assert self.doc is not None
        self.set_split_fraction(self.to_image(pos).x() / self.doc.width)

    # ------------------------------------------------------------------ zoom (see ZoomView)
    def content_rect(self) -> QRectF | None:
        return None if self.doc is None else QRectF(0, 0, self.doc.width, self.doc.height)

    def photo_moved(self, pointer: QPointF) -> None:
        self._pointer = QPointF(pointer)
        self._follow_pointer()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._follow_pointer()  # keys, scroll bars and panning move the photo too
        if self._splitting and dy:
            # the split's labels stay at the top of the view: drawn again there, and wiped where
            # the scroll moved the old ones (two bands, not the whole view)
            band = self.photo.label_band()
            width = self.viewport().width()
            self.viewport().update(QRect(0, 0, width, band))
            self.viewport().update(QRect(0, dy, width, band))

    def _follow_pointer(self) -> None:
        """The photo moved under a pointer that did not (zoom, scroll, Fit after a resize,
        another photo): the brush outline goes back under the pointer."""
        if self._pointer is not None and self.cursor_item.isVisible():
            self.cursor_item.setPos(self.pointed_at(self._pointer))

    # ------------------------------------------------------------------ mouse
    def _start_pan(self, pos: QPointF) -> None:
        self._panning = self.to_image(pos)
        self._update_cursor_shape()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        eraser_end = self._pressed_with_eraser_end(event)
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._start_pan(event.position())
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._splitting and self.doc is not None:
            self._split_dragging = True
            self._move_divider(event.position())
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._comparing and self.doc is not None:
            self.notice.emit(COMPARE_NOTICE)  # it painted nothing, without a word
            event.accept()
            return
        if (
            button == Qt.MouseButton.LeftButton
            and self.doc is not None
            and self._editable
            and not self._comparing
            and not self._splitting
        ):
            if self._dragging:
                self.finish_drag()  # a press without a release (the release went elsewhere)
            if eraser_end:
                self._start_pen_eraser()
            p = self.pointed_at(event.position())
            self._dragging = True
            self._tool.press(self.doc, p.x(), p.y(), Modifiers.of(event.modifiers()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """Closes a pending polygon; otherwise the second press of a double-click is a press
        (which neither compare nor split paints with: the polygon waits for them to end)."""
        if (
            event.button() == Qt.MouseButton.LeftButton
            and self._tool.pending
            and self.doc is not None
            and not self._comparing
            and not self._splitting
        ):
            self._emit_edit(self._tool.close(self.doc))
            event.accept()
            return
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._pointer = QPointF(pos)
        self._end_drags_released_elsewhere(event.buttons())
        if self._panning is not None:
            # the grabbed image point goes back under the pointer: no rounding adds up (on a
            # scaled screen the pointer moves by fractions of a pixel, which rounded one by one
            # stood still at 2x and ran ahead at 1.5x)
            ahead = self.from_image(self._panning.x(), self._panning.y()) - pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(ahead.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(ahead.y()))
            # where a scroll bar stopped at its end, the hand lets go of the point it grabbed:
            # the way back moves the photo at once (it waited for the pointer to return)
            left = self.from_image(self._panning.x(), self._panning.y()) - pos
            here = self.to_image(pos)
            if abs(left.x()) > 0.5 + 1e-6:
                self._panning.setX(here.x())
            if abs(left.y()) > 0.5 + 1e-6:
                self._panning.setY(here.y())
            event.accept()
            return
        p = self.pointed_at(pos)
        if self._split_dragging and self.doc is not None:
            self._move_divider(pos)
            event.accept()
            return
        if self._shows_brush():
            self.cursor_item.setPos(p)
            self.cursor_item.setVisible(True)
        if self._dragging and self.doc is not None:
            self._tool.move(self.doc, p.x(), p.y())
        elif self._tool.pending and self.doc is not None:
            self._tool.hover(self.doc, p.x(), p.y())
        event.accept()

    def _end_drags_released_elsewhere(self, buttons: Qt.MouseButton) -> None:
        """End the drags whose button is no longer held: its release went elsewhere (Qt drops
        it while a modal dialog is up: one opened by a shortcut mid-stroke left the stroke open,
        and the pointer then painted hole with no button down)."""
        left = bool(buttons & Qt.MouseButton.LeftButton)
        if self._dragging and not left:
            self.finish_drag()
        if self._split_dragging and not left:
            self._split_dragging = False
        if self._panning is not None and not (left or buttons & Qt.MouseButton.MiddleButton):
            self._panning = None
            self._update_cursor_shape()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._panning = None
            self._update_cursor_shape()
            event.accept()
            return
        if self._split_dragging and event.button() == Qt.MouseButton.LeftButton:
            self._split_dragging = False
            if self.doc is not None:
                self._move_divider(event.position())
            event.accept()
            return
        if self._dragging and event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            self._dragging = False
            doc = self.doc
            p = self.pointed_at(event.position())
            self._emit_edit(self._tool.release(doc, p.x(), p.y()))
            self._end_pen_eraser()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self.cursor_item.setVisible(False)
        self._pointer = None
        super().leaveEvent(event)

    # ------------------------------------------------------------------ keys
    def event(self, event: QEvent) -> bool:
        # While a polygon is being clicked, Enter, Esc and Backspace are its keys, not shortcuts.
        if event.type() == QEvent.Type.ShortcutOverride and self._pending_key(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def _pending_key(self, event: QKeyEvent) -> str | None:
        """The pending tool's command for this key (see ``TOOL_KEYS``; the Undo keys take the
        last corner back too, whether or not the history has a step to undo; Ctrl+Enter still
        fills)."""
        if not self._tool.pending or self.doc is None:
            return None
        if event.matches(QKeySequence.StandardKey.Undo):
            return UNDO_COMMAND
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        return TOOL_KEYS.get(Qt.Key(event.key())) if plain else None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        command = self._pending_key(event)
        if command is not None and self.doc is not None:
            self._emit_edit(self._tool.command(self.doc, command))
            event.accept()
            return
        if event.key() == PAN_KEY:
            if not event.isAutoRepeat():
                self._space = True
                self._update_cursor_shape()
            event.accept()
            return
        if event.key() == COMPARE_KEY:
            if not event.isAutoRepeat() and self.doc is not None and not self._comparing:
                self.finish_held_drag()
                resume = self._splitting  # held compare shows the whole original, then the split again
                self.set_comparing(True)
                self._compare_held = True
                self._resume_split = resume
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == PAN_KEY:
            if not event.isAutoRepeat():
                self._space = False
                self._update_cursor_shape()
            event.accept()
            return
        if event.key() == COMPARE_KEY:
            if not event.isAutoRepeat() and self._compare_held:
                self._end_held_compare()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A key released elsewhere must not leave the view stuck in pan or compare mode.
        self._space = False
        if self._compare_held:
            self._end_held_compare()
        self._update_cursor_shape()
        super().focusOutEvent(event)

    # ------------------------------------------------------------------ empty state
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.doc is not None:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(190, 190, 195))
        painter.drawText(
            self.viewport().rect(),
            Qt.AlignmentFlag.AlignCenter,
            "Open a photo (Ctrl+O), drop one here, or paste one (Ctrl+V)",
        )
        painter.restore()
