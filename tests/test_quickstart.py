"""`fer-edge quickstart`: the no-data path (fast), data discovery, output safety, and a tiny end-to-end run (slow)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge import quickstart as qs
from fer_edge.cli.main import main as cli
from fer_edge.errors import ConfigError, DataError, FerEdgeError
from fer_edge.shipped import shipped_bundles


@pytest.fixture()
def no_data(monkeypatch, tmp_path):
    """An environment without FER2013 (the shared weights stay, as on a machine with only weights)."""
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("FER_EDGE_DATA", str(empty))
    return empty


def test_quickstart_without_data_runs_the_shipped_part(no_data, tmp_path):
    out = tmp_path / "qs"
    result = CliRunner().invoke(cli, ["quickstart", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["data"] is None and doc["training"] is None
    assert "kaggle competitions download" in result.stderr  # says exactly how to get FER2013
    faces = doc["sample"]["faces"]
    assert len(faces) == 1 and faces[0]["label"] == "happy"
    assert (out / "sample" / "astronaut.jpg").is_file()
    timed = {r["format"]: r for r in doc["shipped_latency"]}
    assert set(timed) == set(shipped_bundles())
    assert 0 < timed["tflite"]["latency"]["p50_ms"] < 1000 and timed["tflite"]["latency"]["runs"] == 100
    report = Path(doc["report"]).read_text()
    assert "## 2. Shipped model latency" in report and "fer2013.csv" in report
    assert "![annotated sample](sample/astronaut.jpg)" in report
    assert qs.load_result(out)["report"] == doc["report"]
    # A second run replaces the first quickstart's folder.
    again = CliRunner().invoke(cli, ["quickstart", "--out", str(out)])
    assert again.exit_code == 0 and again.stdout.strip() == f"report: {out / 'report.md'}"


def test_find_fer2013(tmp_path, monkeypatch, no_data):
    assert qs.find_fer2013() is None
    with pytest.raises(DataError, match="no such file"):
        qs.find_fer2013(tmp_path / "missing.csv")
    folder = tmp_path / "somewhere"
    folder.mkdir()
    with pytest.raises(DataError, match="fer2013.csv.gz or fer2013.csv"):
        qs.find_fer2013(folder)
    (folder / "fer2013").mkdir()
    csv = folder / "fer2013" / "fer2013.csv.gz"
    with gzip.open(csv, "wt") as fh:
        fh.write("emotion,pixels,Usage\n")
    assert qs.find_fer2013(folder) == csv
    assert qs.find_fer2013(csv) == csv
    monkeypatch.setenv("FER_EDGE_DATA", str(folder))
    assert qs.find_fer2013() == csv


def test_output_folder_safety(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(FerEdgeError, match="not an earlier quickstart"):
        qs.run_quickstart(out=foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / qs.MARKER).write_text('{"status": "running"}')
    (interrupted / "half-written").write_text("x")
    with pytest.raises(FerEdgeError, match="not a finished quickstart"):
        qs.load_result(interrupted)
    qs._prepare_out(interrupted)  # an interrupted quickstart is replaced, not refused
    assert not (interrupted / "half-written").exists()
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(FerEdgeError, match="not a folder"):
        qs.run_quickstart(out=afile)


def test_budget(monkeypatch):
    with pytest.raises(ConfigError, match="--minutes"):
        qs.Budget.from_minutes(0)
    ten = {}
    for bf16 in (True, False):
        monkeypatch.setattr(qs, "trains_in_bf16", lambda: bf16)
        small, big = qs.Budget.from_minutes(2), qs.Budget.from_minutes(10)
        assert 500 <= small.limit < big.limit <= 28709 and big.epochs == 2
        assert qs.Budget.from_minutes(1000).limit == 28709
        ten[bf16] = big.limit
    assert ten[False] < ten[True]  # float32 (no native bfloat16) trains slower: the same minutes buy fewer images


@pytest.mark.parametrize("bf16, limit, precision", [(True, 24000, None), (False, 9600, "float32")])
def test_budget_and_training_follow_the_cpus_bfloat16(monkeypatch, tmp_path, bf16, limit, precision):
    # one decision: the budget's assumed speed and the precision quickstart trains in
    from fer_edge.training import trainer

    monkeypatch.setattr(qs, "trains_in_bf16", lambda: bf16)
    budget = qs.Budget.from_minutes(10)
    assert budget.limit == limit
    seen = {}
    monkeypatch.setattr(trainer, "train", lambda recipe, data, out, log, limit: seen.update(
        precision=recipe.data["train"].get("precision"), limit=limit) or {})
    qs.train_quick(tmp_path / "fer.csv", tmp_path / "run", budget, lambda m: None)
    assert seen == {"precision": precision or "mixed_bfloat16", "limit": limit}


def test_cli_bad_data_path(tmp_path):
    result = CliRunner().invoke(cli, ["quickstart", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "error:" in result.stderr and "nope" in result.stderr


@pytest.mark.slow
def test_quickstart_end_to_end_tiny_budget(fer2013_csv, tmp_path):
    """Train (300 faces, 1 epoch) -> int8 in every format -> bench vs float and shipped -> report."""
    budget = qs.Budget(limit=300, epochs=1, calib_size=50, eval_limit=200, bench_runs=20)
    res = qs.run_quickstart(out=tmp_path / "qs", data=fer2013_csv, budget=budget)
    assert res.training["epochs_run"] == 1 and 0.0 < res.training["test_accuracy"] < 1.0
    from fer_edge.bundle import read_bundle
    from fer_edge.doctor.probes import cpuinfo
    from fer_edge.training.trainer import native_bf16

    trained = read_bundle(res.out / "model").manifest.provenance["recipe_data"]["train"]["precision"]
    assert trained == ("mixed_bfloat16" if native_bf16(cpuinfo()) else "float32")  # emulated bf16 would blow the budget
    arts = {a["format"]: a for a in res.conversion["artifacts"]}
    assert set(arts) == {"tflite", "onnx", "openvino"}
    assert all(a["status"] == "ok" and a["retention"]["n"] > 0 for a in arts.values()), arts
    rows = res.bench
    kinds = {(r["format"], r["precision"], "assets" in Path(r["bundle"]).parts) for r in rows if r["status"] == "ok"}
    assert ("keras", "fp32", False) in kinds and ("tflite", "int8", True) in kinds
    assert {("tflite", "int8", False), ("onnx", "int8", False), ("openvino", "int8", False)} <= kinds
    assert all(r["eval_n"] == 200 for r in rows if r["status"] == "ok")
    report = res.report.read_text()
    for section in ("## 2. Training", "## 3. Conversion to int8", "## 4. Benchmark", "![accuracy vs latency](bench.png)"):
        assert section in report
    assert (res.out / "bench.png").is_file() and (res.out / "model" / "plots" / "curves.png").is_file()
