"""The canvas on a scaled display (125% and 150%: a common laptop setting), in a process of its
own (tests/retoucher/hidpi_check.py; the scale is fixed when Qt starts). At every other scroll
position the view's offset fell on half a device pixel: the hole overlay was drawn one device
pixel right of and below the pixels it marks (42% of a random mask's device pixels), and at 200%
a click marked the neighbour of the pixel shown under the pointer. Rounded within the viewport
alone, the viewport's own place in the window (1 px frame, 51 px of bars above: half a device
pixel at 150%) did the same on screen while a grab of the viewport alone looked right: the check
reads the window's backing store. Drawn on whole device pixels, a scroll Qt makes by copying
pixels must move them as a repaint would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scale", ["1.5", "1.25"])
def test_the_overlay_and_the_brush_meet_the_photo_pixels_shown_on_a_scaled_display(scale):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": scale, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("hidpi_check.py"))],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ratio"] == float(scale)
    for r in report["results"]:
        assert r["overlay_off"] < 0.01, r  # edge pixels of the grab's decoding: about 0.1%
        for click in r["clicks"]:
            assert click["marked"] == [click["shown"]], r
    # a scroll that Qt makes by copying the pixels on screen moves the photo as a repaint would
    # (rounding half to even put offsets 4.5 and 7.5 on 4 and 8: every pixel one off after it)
    assert max(report["scrolls"]) < 0.01, report["scrolls"]
    assert report["divider"] == [1, 1]  # drawn in logical pixels it was 1-2 device px each
