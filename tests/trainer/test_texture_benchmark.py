"""benchmarks/texture.py and evaluate's --texture: the photos task at several texture strengths."""

import json

import pytest


def test_the_benchmark_judges_each_strength_on_the_same_photos_and_holes(
    benchmark_script, photo_data, tiny_weights, tmp_path, capsys
):
    bench = benchmark_script("texture")
    out = tmp_path / "t.md"
    args = ["--data", str(photo_data), "--weights", str(tiny_weights), "--split", "test"]
    assert bench.main([*args, "--strengths", "0", "1", "--photos-limit", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| holes | Navier-Stokes | texture 0 | texture 1 |" in printed
    text = out.read_text(encoding="utf-8")
    assert "tiny" in text and ", texture 1 |" in text and "Telea" not in text and "PatchMatch" not in text
    for kind in ("strokes", "scratches", "object"):
        assert (tmp_path / f"t-{kind}.jpg").is_file()
        line = next(row for row in printed.splitlines() if row.startswith(f"| {kind} |"))
        assert len(line.split("|")) == 6  # holes, Navier-Stokes, two strengths


def test_the_benchmark_refuses_a_json_out_that_its_figures_would_overwrite(
    benchmark_script, tmp_path, capsys
):
    bench = benchmark_script("texture")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "t.JSON")])
    assert exc.value.code == 2 and "the JSON is written beside it" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_benchmark_writes_the_figures_it_prints_as_json_beside_out(
    benchmark_script, photo_data, tiny_weights, tmp_path, capsys
):
    """The JSON beside --out (same stem) holds evaluate's photos section for the run: every
    printed cell and paired line can be recounted from it, and each model's name and strength."""
    from engine.atomic import leftover_temporaries
    from trainer.paired import PairedDifference
    from trainer.photo_eval import _fmt

    bench = benchmark_script("texture")
    out = tmp_path / "bench" / "t.md"
    args = ["--data", str(photo_data), "--weights", str(tiny_weights), "--split", "test", "--out", str(out)]
    assert bench.main([*args, "--strengths", "0", "1", "--photos-limit", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    figures = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert figures["split"] == "test" and figures["strengths"] == [0.0, 1.0] and figures["photos_limit"] == 2
    assert [(k, m["texture"]) for k, m in figures["models"].items()] == [("ours", 0.0), ("cmp1", 1.0)]
    assert figures["models"]["cmp1"]["name"] == "tiny-random, texture 1"
    tasks = figures["photos"]["tasks"]
    assert figures["photos"]["photos"] == 2 and set(tasks) == {"strokes", "scratches", "object"}
    for kind, task in tasks.items():
        assert [r["method"] for r in task["rows"]] == ["ns", "ours", "cmp1"]
        assert all(r["task"] == kind and r["photos"] == 2 for r in task["rows"])
        cells = [f"{r['hole_psnr']:.2f} / {_fmt(r['texture'])}" for r in task["rows"]]
        assert f"| {kind} | {' | '.join(cells)} |" in printed
        paired = PairedDifference(**task["ours_vs_cmp1"]).describe()
        assert f"{kind}: texture 0 vs tiny-random, texture 1, paired by photo: {paired}" in printed
        assert "hole_psnr_gain_db" in task["vs_navier_stokes"]
    assert not leftover_temporaries([out, out.with_suffix(".json")])


def test_evaluate_texture_sets_every_model_s_strength_and_says_so(photo_data, tiny_weights, tmp_path):
    from trainer.__main__ import main

    args = ["evaluate", "--data", str(photo_data), "--weights", str(tiny_weights), "--task", "photos"]
    args += ["--photos-limit", "2", "--grid-rows", "0", "--device", "cpu", "--no-progress"]
    figures = {}
    for strength in ("0", "1"):
        out = tmp_path / f"e{strength}.md"
        assert main([*args, "--texture", strength, "--out", str(out)]) == 0
        data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        assert data["texture_strength"] == float(strength)
        assert f"strength {strength} for every model" in out.read_text(encoding="utf-8")
        figures[strength] = {
            kind: {r["method"]: r for r in task["rows"]} for kind, task in data["photos"]["tasks"].items()
        }
    for kind in ("strokes", "object"):
        assert figures["0"][kind]["ns"] == figures["1"][kind]["ns"]
        # the fixture's photos are smooth: the grain added is faint, but it is added
        assert figures["1"][kind]["ours"]["texture"] != figures["0"][kind]["ours"]["texture"]
    assert main([*args, "--texture", "-1", "--out", str(tmp_path / "bad.md")]) == 2


def test_evaluate_texture_per_model_compares_strengths_in_one_run(photo_data, tiny_weights, tmp_path):
    """One strength per model (the model, then each --compare): each row is that model at that
    strength, the same figures as a run of it alone at that strength; a count that fits neither
    rule is refused."""
    import shutil

    from trainer.__main__ import main

    other = tmp_path / "other.safetensors"
    shutil.copyfile(tiny_weights, other)
    args = ["evaluate", "--data", str(photo_data), "--weights", str(tiny_weights), "--task", "photos"]
    args += ["--photos-limit", "2", "--grid-rows", "0", "--device", "cpu", "--no-progress"]

    def rows(out):
        data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        return {kind: {r["method"]: r for r in t["rows"]} for kind, t in data["photos"]["tasks"].items()}

    both = tmp_path / "both.md"
    assert main([*args, "--compare", str(other), "--texture", "0", "1", "--out", str(both)]) == 0
    alone = tmp_path / "alone.md"
    assert main([*args, "--texture", "1", "--out", str(alone)]) == 0
    text = both.read_text(encoding="utf-8")
    assert "strength 0 for tiny-random, 1 for tiny-random, texture 1." in text
    mixed, textured = rows(both), rows(alone)
    for kind in ("strokes", "object"):
        assert mixed[kind]["cmp1"]["hole_psnr"] == textured[kind]["ours"]["hole_psnr"]
        assert mixed[kind]["cmp1"]["texture"] == textured[kind]["ours"]["texture"]
        assert mixed[kind]["cmp1"]["texture"] != mixed[kind]["ours"]["texture"]
    bad = [*args, "--compare", str(other), "--texture", "0", "1", "1", "--out", str(tmp_path / "b.md")]
    assert main(bad) == 2


def test_the_benchmark_pairs_other_models_with_the_first_strength(
    benchmark_script, photo_data, tiny_weights, tmp_path, capsys
):
    """--also puts another model (here: the same file at another strength) into the run; the
    printed table has its column and a paired line per task (the candidate-vs-shipped check)."""
    bench = benchmark_script("texture")
    out = tmp_path / "a.md"
    args = ["--data", str(photo_data), "--weights", str(tiny_weights), "--split", "test", "--out", str(out)]
    assert bench.main([*args, "--strengths", "0", "--photos-limit", "3", "--also", f"{tiny_weights}@1"]) == 0
    printed = capsys.readouterr().out
    assert "| holes | Navier-Stokes | texture 0 | tiny-random, texture 1 |" in printed
    for kind in ("strokes", "scratches", "object"):
        line = next(row for row in printed.splitlines() if row.startswith(f"{kind}: texture 0 vs "))
        assert "tiny-random, texture 1, paired by photo: " in line and "of 3 photos" in line
    with pytest.raises(SystemExit):
        bench.main([*args, "--strengths", "0", "--also", str(tiny_weights)])  # no @S
