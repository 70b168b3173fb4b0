"""What ships must agree with itself: the bundled damage detector, its evaluation report in
docs/ and the README's tables are the same measurement (``retoucher-train damage evaluate
--json docs/damage_evaluation.json``). They fail when a new detector ships without re-running
the evaluation and updating the README."""

import json
from pathlib import Path

import pytest

from engine.damage import default_damage_weights_path, read_damage_info
from trainer.damage_eval import DetectionScores, format_kind_table, format_table

ROOT = Path(__file__).resolve().parent.parent
EVALUATION = ROOT / "docs" / "damage_evaluation.json"
README = ROOT / "README.md"

pytestmark = pytest.mark.skipif(
    not default_damage_weights_path().is_file(), reason="no bundled damage detector in resources/weights"
)


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(EVALUATION.read_text(encoding="utf-8"))


def _rows(report: dict) -> list[DetectionScores]:
    return [DetectionScores(**r) for r in report["rows"]]


def test_report_is_of_the_bundled_detector(report) -> None:
    info = read_damage_info(default_damage_weights_path())
    assert report["detector"] == info.name
    ours = [r for r in report["rows"] if r["method"] == "ours"]
    assert len(ours) == 1 and ours[0]["threshold"] == info.threshold
    assert report["split"] == "val"  # the test split of the inpainting data is never used for it


def test_readme_tables_are_the_report(report) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Finding damage", 1)[1].split("\n## ", 1)[0]
    assert f"**{report['detector']}**" in section
    for line in format_table(_rows(report)) + format_kind_table(_rows(report)):
        assert line in section, line
