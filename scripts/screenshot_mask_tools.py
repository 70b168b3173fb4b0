"""Render the main window showing the mask tools on the sample photo to a PNG.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_mask_tools.py docs/mask_tools.png

The top wire is painted with a 3 px brush and grown by 2 px (Mask > Grow), and the
signpost is being outlined with the lasso (four corners placed, the pointer on the fifth), in
a cyan overlay chosen in Preferences. Everything goes through the app's own actions and mouse
events; no model runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="docs/mask_tools.png", type=Path)
    parser.add_argument("--size", default="1280x820", help="window size WxH")
    args = parser.parse_args(argv)

    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QMouseEvent
    from PySide6.QtWidgets import QApplication, QMessageBox

    from retoucher.qt.app import sample_photo
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow
    from retoucher.qt.settings import Settings
    from retoucher.qt.tools import ToolKind

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_file(Path(tmp) / "settings.ini")
        settings.overlay_colour = QColor("#00c8e0")
        w = MainWindow(settings, InpainterCache())  # the engine is never asked for
        width, height = (int(v) for v in args.size.lower().split("x"))
        w.resize(width, height)
        w.show()
        w.open_path(sample_photo(), remember=False)
        app.processEvents()
        doc = w.doc
        # the top wire, brushed thin along its course (followed column by column from its
        # darkest point), then grown by the mask step (2 px)
        sky = doc.image.astype(int).sum(axis=2)
        x0, x1 = int(doc.width * 0.50), int(doc.width * 0.85)
        y = min(range(int(doc.height * 0.22), int(doc.height * 0.36)), key=lambda r: sky[r, x0])
        doc.begin_stroke(True)
        for x in range(x0, x1):
            y = min(range(y - 1, y + 2), key=lambda r, x=x: sky[r, x])
            if (x - x0) % 6 == 0 or x == x1 - 1:
                doc.stroke_to(x + 0.5, y + 0.5, 1.5)
        w._push_edit(doc.end_stroke())
        w.masks.grow()
        # the lasso around the signpost: four corners placed, the pointer on the fifth
        w.set_tool(ToolKind.LASSO)
        view = w.canvas.viewport()

        def mouse(kind: QMouseEvent.Type, fx: float, fy: float) -> None:
            pos = w.canvas.from_image(doc.width * fx, doc.height * fy)
            move = kind == QMouseEvent.Type.MouseMove
            button = Qt.MouseButton.NoButton if move else Qt.MouseButton.LeftButton
            buttons = (
                Qt.MouseButton.LeftButton
                if kind == QMouseEvent.Type.MouseButtonPress
                else Qt.MouseButton.NoButton
            )
            event = QMouseEvent(
                kind, pos, view.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
            )
            QApplication.sendEvent(view, event)

        for fx, fy in ((0.755, 0.77), (0.86, 0.762), (0.885, 0.83), (0.865, 0.93)):
            mouse(QMouseEvent.Type.MouseButtonPress, fx, fy)
            mouse(QMouseEvent.Type.MouseButtonRelease, fx, fy)
        mouse(QMouseEvent.Type.MouseMove, 0.765, 0.925)
        w.statusBar().showMessage(
            "Top wire brushed at 3 px and grown by 2 px; signpost being outlined with the lasso (L)"
        )
        app.processEvents()
        app.processEvents()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(args.output))
        print(f"wrote {args.output} ({w.width()}x{w.height()})")
        w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard  # the hole is not filled
        w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
