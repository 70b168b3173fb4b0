"""What ships must agree with itself: the bundled weight file's test metrics, the evaluation
report in docs/ and the quality table of the README are the same measurement.

These fail when a new model is exported without re-running ``retoucher-train evaluate`` and
updating the README, which is exactly the mistake they are here to catch.
"""

import json
import math
from pathlib import Path

import pytest

from engine.weights import default_weights_path, read_weights_info

ROOT = Path(__file__).resolve().parent.parent
EVALUATION = ROOT / "docs" / "evaluation.json"
README = ROOT / "README.md"

pytestmark = pytest.mark.skipif(
    not default_weights_path().is_file(), reason="no bundled model in resources/weights"
)

METHODS = {"OpenCV Telea": "telea", "OpenCV Navier-Stokes": "ns", "Retoucher": "ours"}
TASKS = {"centre 64x64": ("center", "centre"), "irregular, all bands": ("irregular", "all")}


@pytest.fixture(scope="module")
def evaluation() -> dict:
    return json.loads(EVALUATION.read_text(encoding="utf-8"))


def _row(evaluation: dict, task: str, band: str, method: str) -> dict:
    rows = [r for r in evaluation["rows"] if (r["task"], r["band"], r["method"]) == (task, band, method)]
    assert len(rows) == 1, f"docs/evaluation.json has {len(rows)} rows for {task}/{band}/{method}"
    return rows[0]


def _same_measurement(a: list[dict], b: list[dict]) -> bool:
    """The same rows (task, band, method, images) with the same figures up to a relative 1e-6:
    two runs of ``evaluate`` on one machine differ in the ninth digit of an SSIM (threads)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.keys() != y.keys():
            return False
        for k in x:
            if isinstance(x[k], float) or isinstance(y[k], float):
                if not math.isclose(x[k], y[k], rel_tol=1e-6):
                    return False
            elif x[k] != y[k]:
                return False
    return True


def test_weight_file_carries_the_published_evaluation(evaluation):
    info = read_weights_info(default_weights_path())
    assert info.name == evaluation["model"]
    published = info.provenance["metrics"]["test"]["rows"]
    assert _same_measurement(published, evaluation["rows"])
    moved = [dict(r, psnr=r["psnr"] + 0.001) if i == 5 else r for i, r in enumerate(published)]
    assert not _same_measurement(moved, evaluation["rows"])  # a thousandth of a dB is another one
    assert info.dtype == "float16" and default_weights_path().stat().st_size < 30e6
    # the app fills at the file's own texture strength: the published figures are measured at it
    assert info.texture == evaluation["texture_strength"]


def test_the_published_evaluation_measured_the_shipped_weights(evaluation):
    """The table names the fingerprint of the weights it measured (export refuses a table of
    other weights): it is the bundled file's, and its own copy of the table says the same."""
    from engine.weights import load_weights
    from trainer.export import weights_fingerprint

    model, info = load_weights(default_weights_path())
    assert evaluation["weights"] == weights_fingerprint(model)
    assert info.provenance["metrics"]["test"]["weights"] == evaluation["weights"]


def test_readme_quality_table_is_the_evaluation(evaluation):
    text = README.read_text(encoding="utf-8")
    section = text.split("## The bundled model and its measured quality", 1)[1].split("\n## ", 1)[0]
    assert f"**{evaluation['model']}**" in section
    found = 0
    for line in section.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] not in TASKS or cells[1] not in METHODS:
            continue
        task, band = TASKS[cells[0]]
        row = _row(evaluation, task, band, METHODS[cells[1]])
        assert cells[2:] == [f"{row['hole_l1']:.4f}", f"{row['psnr']:.2f}", f"{row['ssim']:.4f}"], line
        found += 1
    assert found == 6, "the README table should list 3 methods x 2 tasks"
    # and the gains quoted in the text are the report's
    for task in ("center", "irregular"):
        gain = evaluation["vs_navier_stokes"][task]["psnr_gain_db"]
        assert f"{gain:+.2f} dB" in section, f"{task} PSNR gain {gain:+.2f} dB not quoted"


def test_evaluation_markdown_is_the_same_run(evaluation):
    md = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert f"## Evaluation of {evaluation['model']}" in md
    ours = _row(evaluation, "irregular", "all", "ours")
    assert f"| all | Retoucher U-Net | {ours['images']} | {ours['hole_l1']:.4f} | {ours['psnr']:.2f} |" in md


PHOTO_TASKS = {
    "brush strokes 12-48 px": "strokes",
    "thin scratches 2-6 px": "scratches",
    "one object blob, 4-12%": "object",
}
PHOTO_METHODS = ("telea", "ns", "patchmatch", "ours")


def test_readme_photos_table_is_the_evaluation(evaluation):
    """The photos rows of the README (hole PSNR / texture per method) are the report's."""
    tasks = evaluation["photos"]["tasks"]
    text = README.read_text(encoding="utf-8")
    section = text.split("## The bundled model and its measured quality", 1)[1].split("\n## ", 1)[0]
    found = 0
    for line in section.splitlines():
        cells = [c.strip().strip("*").replace("*", "") for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] not in PHOTO_TASKS:
            continue
        rows = {r["method"]: r for r in tasks[PHOTO_TASKS[cells[0]]]["rows"]}
        expected = [f"{rows[m]['hole_psnr']:.2f} / {rows[m]['texture']:.2f}" for m in PHOTO_METHODS]
        assert cells[1:] == expected, line
        found += 1
    assert found == 3, "the README should list the three photo tasks"
    gain = tasks["strokes"]["vs_navier_stokes"]["hole_psnr_gain_db"]
    assert f"{gain:+.2f} dB" in section


def test_the_published_figures_were_measured_as_the_inpainter_fills_by_default(evaluation):
    """The report says whether ours averaged in the mirrored pass; the Inpainter's default (what
    the app, `retoucher batch` and `evaluate` use) must be the same, or the figures are not
    the default fill's."""
    import inspect

    from engine.inpainter import Inpainter

    default = inspect.signature(Inpainter).parameters["mirror"].default
    assert evaluation.get("mirror", False) is default
    assert ("mirror image" in (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")) is default
