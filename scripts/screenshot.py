"""Render the main window with the sample photo, a fill result and a painted mask to a PNG.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot.py docs/screenshot.png

The signpost in the meadow is masked and filled by the model through the app's own worker;
then the power pole is brushed over, so the picture shows the mask overlay too. Uses the
bundled model (resources/weights/default.safetensors) or ``--weights FILE``; without either it
falls back to an untrained tiny network and says so (the fill then looks like noise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="docs/screenshot.png", type=Path)
    parser.add_argument("--photo", type=Path, help="photo to show (default: resources/sample.jpg)")
    parser.add_argument("--weights", type=Path, help="weights file (default: the bundled model)")
    parser.add_argument("--size", default="1280x820", help="window size WxH")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication, QMessageBox

    import engine
    from retoucher.document import Rect
    from retoucher.qt.app import sample_photo
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow
    from retoucher.qt.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Retoucher")
    photo = args.photo or sample_photo()
    if not photo.is_file():
        print(f"screenshot: no photo at {photo}", file=sys.stderr)
        return 2

    weights = args.weights or engine.default_weights_path()
    cache = InpainterCache(str(weights), "cpu")
    if not weights.is_file():
        print(
            f"screenshot: {weights} is missing; using an UNTRAINED tiny model (the fill will look wrong)",
            file=sys.stderr,
        )
        import torch

        torch.manual_seed(0)
        cache.set(engine.Inpainter.from_model(engine.create_model("tiny"), name="untrained tiny model"))

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_file(Path(tmp) / "settings.ini")
        settings.weights = str(weights)
        settings.device = "cpu"
        window = MainWindow(settings, cache)
        w, h = (int(v) for v in args.size.lower().split("x"))
        window.resize(w, h)
        window.show()
        if not window.open_path(photo):
            print(f"screenshot: cannot open {photo}: {window.last_error}", file=sys.stderr)
            return 1
        doc = window.doc
        sx, sy = doc.width / 1024, doc.height / 768  # the recipe is drawn for the sample's layout

        def rect(x0: float, y0: float, x1: float, y1: float) -> Rect:
            return Rect(round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))

        # 1. the signpost: a rectangle, filled by the model in the worker thread
        window._push_edit(doc.set_rect(rect(782, 594, 878, 696)))
        job = window.fill()
        deadline = time.monotonic() + 300
        while window.busy and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.01)
        if window.last_error:
            print(f"screenshot: fill failed: {window.last_error}", file=sys.stderr)
            return 1
        assert job is not None

        # 2. the power pole: brushed over, left as a mask waiting for Fill
        window.set_brush_size(max(4, round(22 * sx)))
        doc.begin_stroke(True)
        for y in range(166, 646, 6):
            doc.stroke_to(250 * sx, y * sy, window.canvas.brush_size / 2)
        window._push_edit(doc.end_stroke())
        window._push_edit(doc.set_rect(rect(198, 192, 302, 209)))
        window.canvas.fit()
        cursor = window.canvas.from_image(250 * sx, 420 * sy)
        window.canvas.cursor_item.setPos(window.canvas.to_image(cursor))
        window.canvas.cursor_item.setVisible(True)
        window.statusBar().showMessage(
            "Signpost filled; power pole painted \u2014 press Ctrl+Enter to fill it"
        )
        for _ in range(5):
            QCoreApplication.processEvents()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        image = window.grab().toImage()
        from engine.atomic import atomic_path

        with atomic_path(args.output) as tmp_png:
            if not image.save(str(tmp_png), "PNG"):
                print(f"screenshot: could not write {args.output}", file=sys.stderr)
                return 1
        window.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
        window.close()
    print(f"wrote {args.output} ({image.width()}x{image.height()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
