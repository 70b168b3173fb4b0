"""Run by test_gui_hidpi.py in a process of its own (the display scale is fixed when Qt starts):
on a scaled display, at odd scroll positions, does the hole overlay tint the photo pixels it
marks, and does a click of the 1 px brush mark the pixel shown under the pointer? Prints one
JSON line. The photo's colours encode each pixel's coordinates."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

app = QApplication(sys.argv[:1])

from retoucher.document import Document  # noqa: E402 - after the QApplication
from retoucher.qt.fill_worker import InpainterCache  # noqa: E402
from retoucher.qt.main_window import MainWindow  # noqa: E402
from retoucher.qt.settings import Settings  # noqa: E402

H, W = 1200, 1600  # larger than the view at 100%: every grabbed pixel is the photo
yy, xx = np.mgrid[0:H, 0:W]
rgb = np.stack([xx % 256, yy % 256, (xx // 256) * 16 + (yy // 256)], -1).astype(np.uint8)
w = MainWindow(Settings.from_file(os.path.join(tempfile.mkdtemp(), "s.ini")), InpainterCache())
w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
w.resize(900, 650)
w.show()
w.set_document(Document(rgb))
c = w.canvas
w.set_brush_size(1)
ratio = c.devicePixelRatioF()


def grab() -> np.ndarray:
    """The viewport as grabbed alone (drawn at its own origin)."""
    c.cursor_item.setVisible(False)
    app.processEvents()
    img = c.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, : img.width(), 2::-1].astype(int).copy()  # RGB


def on_screen() -> tuple[np.ndarray, int, int]:
    """What the window shows (its backing store: the viewport drawn where it sits in the window,
    at half a device pixel when a bar above it is an odd number of logical pixels high), and the
    first whole device pixel of the viewport in it (x, y). A grab of the viewport alone draws it
    at its own origin, where it was right while the window was one device pixel off."""
    c.cursor_item.setVisible(False)
    c.viewport().repaint()
    app.processEvents()
    img = w.screen().grabWindow(w.winId()).toImage().convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    tl = c.viewport().mapTo(w, c.viewport().rect().topLeft())
    return a[:, : img.width(), 2::-1].astype(int).copy(), math.ceil(tl.x() * ratio), math.ceil(tl.y() * ratio)


def shown(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a[..., 1] + 256 * (a[..., 2] % 16), a[..., 0] + 256 * (a[..., 2] // 16)  # rows, cols


mask = np.random.default_rng(0).random((H, W)) < 0.3
w.doc.set_mask(mask, "test")
results = []
origin = c.viewport().mapTo(w, c.viewport().rect().topLeft())  # logical, in the window
for zoom in (1.0, 1.25, 2.0, 2.5):
    c.set_zoom(zoom * c.actual_zoom)
    c.centerOn(W / 2, H / 2)
    for _step in range(2):  # an odd scroll position puts the offset on half a device pixel
        c.horizontalScrollBar().setValue(c.horizontalScrollBar().value() + 1)
        c.verticalScrollBar().setValue(c.verticalScrollBar().value() + 1)
        c.set_overlay_visible(False)
        shot, x0, y0 = on_screen()
        inside = (slice(y0 + 40, y0 + 440), slice(x0 + 40, x0 + 640))
        photo = shot[inside]
        c.set_overlay_visible(True)
        tinted = np.abs(on_screen()[0][inside] - photo).max(axis=2) > 10
        rows, cols = shown(photo)
        off = float(np.mean(tinted != mask[rows, cols]))
        clicks = []
        c.set_overlay_visible(False)
        for dx, dy in ((300, 250), (301, 251), (302, 252), (303, 253)):
            w.doc.set_mask(np.zeros((H, W), bool))
            X, Y = x0 + dx, y0 + dy  # a whole device pixel of the window, as a mouse reports it
            pos = QPointF(X / ratio - origin.x(), Y / ratio - origin.y())
            vp = c.viewport()
            for kind, buttons in ((QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton),
                                  (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):  # fmt: skip
                ev = QMouseEvent(kind, pos, QPointF(vp.mapToGlobal(pos)), Qt.MouseButton.LeftButton, buttons,
                                 Qt.KeyboardModifier.NoModifier)  # fmt: skip
                QApplication.sendEvent(vp, ev)
            marked = [[int(v) for v in p] for p in np.argwhere(w.doc.mask)]
            r, q = shown(shot[Y : Y + 1, X : X + 1])
            clicks.append({"shown": [int(r[0, 0]), int(q[0, 0])], "marked": marked})
        w.doc.set_mask(mask, "test")
        results.append(
            {"zoom": zoom, "overlay_off": off, "clicks": clicks, "origin": [origin.x(), origin.y()]}
        )


def backing_store() -> np.ndarray:
    """What the window shows now: after a scroll, the pixels Qt copied and the strip it drew."""
    app.processEvents()
    img = w.screen().grabWindow(w.winId()).toImage().convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    tl = c.viewport().mapTo(w, c.viewport().rect().topLeft())
    x0, y0 = round(tl.x() * ratio), round(tl.y() * ratio)
    return a[y0 + 20 : y0 + 400, x0 + 20 : x0 + 600, 2::-1].astype(int).copy()


c.set_zoom(c.actual_zoom)
c.centerOn(W / 2, H / 2)
bar = c.horizontalScrollBar()
base = bar.value()
scrolls = []
for start, delta in ((1, 2), (2, 2), (1, 4)):  # whole device pixels at 150%: Qt copies them
    bar.setValue(base + start)
    c.viewport().repaint()
    backing_store()
    bar.setValue(base + start + delta)
    copied = backing_store()
    c.viewport().repaint()
    scrolls.append(float(np.mean(np.any(copied != backing_store(), axis=2))))
before = grab()[300]
w.split_action.trigger()  # the split divider: one dark and one light device pixel side by side
c.set_split_fraction(0.5)
after = grab()[300]
changed = np.any(after != before, axis=1)  # nothing else differs: no pixel was edited
divider = [
    int(np.count_nonzero(changed & (after.max(axis=1) < 60))),
    int(np.count_nonzero(changed & (after.min(axis=1) > 200))),
]
print(json.dumps({"ratio": ratio, "results": results, "scrolls": scrolls, "divider": divider}))
w.close()
