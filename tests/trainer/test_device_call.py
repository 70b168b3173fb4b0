"""scripts/device_call.sh, the one line a GPU session's calls run, with a stand-in for the
python it calls (no training here: what is checked is the script's own logic, which a 15-minute
session cannot afford to find wrong): tunables checked before any work, one export packaged, no
second export after a failed one, a retried last call resuming its run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Stands in for the python the script calls: the real one for its inline snippets, a record of
# every other call, a trainer that logs a rate and leaves a checkpoint, an export of a given size.
FAKE = r"""#!/usr/bin/env bash
if [ "$1" = -c ] || [ "$1" = - ]; then exec "$REAL_PYTHON" "$@"; fi
echo "$*" >> "$CALLS"
if [ "$1" = scripts/device_kit.py ]; then exit 0; fi
if [ "$1" = -m ] && [ "$3" = train ]; then
  shift 3; while [ $# -gt 0 ]; do case $1 in --out) out=$2; shift;; --stop-after) stop=1;; esac; shift; done
  mkdir -p "$out"; echo '{"step": 300, "images_per_s": 320.0}' >> "$out/log.jsonl"; echo ckpt > "$out/ckpt.pt"
  [ -n "${stop:-}" ] && exit 3; exit 0
fi
if [ "$1" = -m ] && [ "$3" = export ]; then
  [ -n "${EXPORT_FAILS:-}" ] && exit 2
  head -c $(( ${EXPORT_MIB:-1} * 1048576 )) /dev/zero > "$5"; exit 0
fi
exit 9
"""


@pytest.fixture
def call(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    part = tmp_path / "part2"
    part.mkdir()
    (part / "part.json").write_text(json.dumps({"part": 2, "parts": 2}))

    def run(**env: str) -> tuple[int, list[str], Path]:
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        for f in out.iterdir():
            f.unlink()
        calls = tmp_path / "calls.txt"
        calls.write_text("")
        full = {
            **os.environ, "PYTHON": str(fake), "REAL_PYTHON": sys.executable, "CALLS": str(calls),
            "KIT": str(tmp_path / "kit"), "OUT": str(out), "DEVICE": "cpu", "MINUTES": "3", **env,
        }  # fmt: skip
        proc = subprocess.run(
            ["bash", "scripts/device_call.sh", str(part)], cwd=ROOT, env=full, capture_output=True, text=True
        )
        return proc.returncode, calls.read_text().splitlines(), out

    return run


def test_the_last_call_trains_and_exports_once_in_pieces_with_a_checksum(call):
    rc, calls, out = call(EXPORT_MIB="16")
    assert rc == 0
    trains = [c for c in calls if " train " in f" {c} "]
    assert len(trains) == 2 and "--stop-after" in trains[0] and "--resume" in trains[1]
    assert sum(" export " in f" {c} " for c in calls) == 1
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("device")) == [
        "device.safetensors.part00", "device.safetensors.part01", "device.sha256",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "bad", [{"MINUTES": "2.5"}, {"MINUTES": "9"}, {"BATCH": "0"}, {"OUT": "/nonexistent/out"}]
)
def test_a_bad_tunable_stops_the_call_before_any_work(call, bad):
    rc, calls, _ = call(**bad)
    assert rc == 2 and calls == []


def test_a_failed_export_is_not_tried_again_on_the_way_out(call):
    rc, calls, _ = call(EXPORT_FAILS="1")
    assert rc != 0
    assert sum(" export " in f" {c} " for c in calls) == 1


def test_the_last_call_sent_again_continues_its_run(call):
    assert call()[0] == 0
    rc, calls, out = call()
    trains = [c for c in calls if " train " in f" {c} "]
    assert rc == 0 and len(trains) == 1 and "--resume" in trains[0] and "--stop-after" not in trains[0]
    assert (out / "device.sha256").is_file()
    assert "--warmup-steps 200" in trains[0]
    # sent again with another probe: the run's own warm-up (it cannot change on a resume)
    rc, calls, _ = call(PROBE_STEPS="500")
    trains = [c for c in calls if " train " in f" {c} "]
    assert rc == 0 and "--resume" in trains[0] and "--warmup-steps 200" in trains[0]
    rc, calls, _ = call(RETRAIN="1")  # afresh: the probe again
    assert rc == 0 and "--stop-after" in [c for c in calls if " train " in f" {c} "][0]
