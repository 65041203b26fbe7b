"""`fer-edge bench` on this CPU: results schema and sanity, honest evaluation, statuses,
peers, reports (JSON/CSV/Markdown/PNG), the GPU path reporting what is missing, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.atomic import atomic_dir
from fer_edge.bench import measure, report as rep, schema
from fer_edge.bench.core import BenchOptions, run_bench, thread_counts
from fer_edge.bench.plot import pareto_front, pareto_png
from fer_edge.bundle import read_bundle, write_bundle
from fer_edge.cli.main import main as cli


LIMIT = 300


def _variant(src: Path, dst: Path, metrics=None, model_bytes: bytes | None = None) -> Path:
    """A copy of a bundle with other metrics or another (hash-consistent) model file."""
    b = read_bundle(src)
    with atomic_dir(dst) as tmp:
        model = tmp / b.manifest.model_file
        if model_bytes is None:
            shutil.copyfile(b.model_path, model)
        else:
            model.write_bytes(model_bytes)
        if metrics is not None:
            b.manifest.metrics = metrics
        write_bundle(tmp, b.manifest, [b.manifest.model_file])
    return dst


@pytest.fixture(scope="module")
def cpu_report(tflite_bundles, tmp_path_factory):
    d = tmp_path_factory.mktemp("variants")
    failed_val = _variant(tflite_bundles["int8"], d / "int8-failed-validation",
                          metrics={"status": "failed_validation", "max_drop_pp": 1.0,  # as convert writes it
                                   "retention": {"accuracy_delta_pp": -3.25}})
    garbage = _variant(tflite_bundles["fp32"], d / "garbage", model_bytes=b"\x00" * 512)
    paths = [str(tflite_bundles["fp32"]), str(tflite_bundles["int8"]), str(failed_val), str(garbage)]
    opts = BenchOptions(threads=1, warmup=3, runs=30, batch=8, limit=LIMIT, baselines=("mini-xception",),
                        peer_float=False)  # the Keras original costs a TensorFlow start; bench_cpu.py runs it
    return run_bench(paths, opts), paths


def _rows(report, bundle):
    return [r for r in report.results if r.bundle == str(bundle)]


def test_schema_roundtrip_and_sane_values(cpu_report, peer_dir):
    report, paths = cpu_report
    d = json.loads(json.dumps(report.to_dict()))
    assert d["schema"] == schema.SCHEMA
    again = schema.BenchReport.from_dict(d)
    assert again.to_dict() == report.to_dict()
    ok = [r for r in report.results if r.status == schema.OK]
    assert len(ok) == 3  # fp32, int8, the peer
    for r in ok:
        lat = r.latency
        assert lat.runs == 30
        assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
        assert lat.mean_ms > 0 and r.latency_e2e.p50_ms > 0
        assert 0.0 <= r.accuracy <= 1.0 and 0.0 <= r.macro_f1 <= 1.0 and r.eval_n == LIMIT
        assert r.throughput_ips > 0 and r.batch == 8
        assert r.first_inference_ms > 0 and r.peak_rss_mb >= r.rss_before_load_mb > 0
        assert r.backend_version and r.timing == schema.MEASURED and r.threads == 1
        if r.role == "model":
            b = read_bundle(r.bundle)
            assert r.size_bytes == sum((b.folder / f).stat().st_size for f in b.manifest.files)
        else:
            assert r.bundle == "peer:mini-xception-tflite-dynamic"
            assert r.size_bytes == (peer_dir / "emotion_model_quantized.tflite").stat().st_size
    env = report.environments["host"]
    assert env["cores"] >= 1 and env["cpu_model"] and env["python"] and "ai-edge-litert" in env["packages"]


def test_accuracy_matches_the_runtime_and_deltas(cpu_report, tflite_bundles, fer2013):
    """The bench's accuracy is what fer_edge.runtime gives on the same fixed test subset, computed here
    by hand: the bench's seeded --limit sample of PrivateTest, argmax, mean."""
    from fer_edge.runtime import load

    report, _ = cpu_report
    test = fer2013.split("test")
    pick = np.sort(np.random.default_rng(0).permutation(len(test))[:LIMIT])  # bench --limit's sample
    clf = load(tflite_bundles["int8"], threads=1)
    acc = float((clf.predict_proba(test.images[pick]).argmax(1) == test.labels[pick]).mean())
    (int8,) = _rows(report, tflite_bundles["int8"])
    (fp32,) = _rows(report, tflite_bundles["fp32"])
    assert int8.eval_n == LIMIT and int8.accuracy == pytest.approx(acc, abs=1e-12)
    assert fp32.accuracy_delta == 0.0 and fp32.reference.startswith("tflite-fp32")
    assert int8.accuracy_delta == pytest.approx(int8.accuracy - fp32.accuracy)
    assert int8.eval_set == fp32.eval_set == f"fer2013.csv.gz {{'split': 'test'}} n={LIMIT}"


def test_statuses_failed_validation_and_failures(cpu_report):
    report, paths = cpu_report
    (fv,) = _rows(report, paths[2])
    assert fv.status == schema.FAILED_VALIDATION and "drops 3.25 pp > --max-drop 1.0 pp" in fv.error
    assert fv.latency is not None  # still measured, so the table shows what it would cost
    (garbage,) = _rows(report, paths[3])
    assert garbage.status == schema.FAILED and "cannot load" in garbage.error


def test_peer_on_the_same_test_set(cpu_report, tflite_bundles):
    report, _ = cpu_report
    peers = [r for r in report.results if r.role == "baseline"]
    assert {(r.format, r.precision) for r in peers} >= {("tflite", "dynamic")}
    (ours,) = _rows(report, tflite_bundles["int8"])
    for r in peers:
        assert r.status == schema.OK and r.eval_set == ours.eval_set
        assert r.accuracy > 0.5  # the published mini-Xception scores ~0.6 on FER2013


def test_memory_is_per_process(cpu_report, tflite_bundles):
    """Each row's peak RSS is its own fresh process, not this test process (which holds FER2013)."""
    report, _ = cpu_report
    (row,) = _rows(report, tflite_bundles["int8"])
    assert row.peak_rss_mb < measure.peak_rss_mb()
    assert row.peak_rss_mb < 400


def test_reports_csv_markdown_png(cpu_report, tmp_path):
    report, _ = cpu_report
    text = rep.text_table(report)
    assert "p50 ms" in text and "exported-but-failed-validation" in text and "host:" in text
    csv_text = rep.write(report, tmp_path / "r.csv", "csv").read_text()
    lines = csv_text.strip().splitlines()
    assert len(lines) == 1 + len(report.results) and "latency_p99_ms" in lines[0]
    md = rep.write(report, tmp_path / "r.md", "md").read_text()
    assert md.count("\n| ") >= len(report.results) and "## Environment" in md
    png = pareto_png(report, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gpu_path_reports_what_is_missing(tflite_bundles):
    from fer_edge.bench.gpu import nvidia_present, probe

    if nvidia_present()[0]:
        pytest.skip("this machine has an NVIDIA GPU")
    paths = probe(include_tensorflow=False)
    assert paths and not any(p.available for p in paths)
    cuda = next(p for p in paths if p.key == "onnxruntime-cuda")
    assert "CUDAExecutionProvider" in cuda.detail and "onnxruntime-gpu" in cuda.detail
    report = run_bench([str(tflite_bundles["int8"])], BenchOptions(devices=("gpu",)))
    assert report.results and all(r.status == schema.NOT_MEASURED for r in report.results)
    assert all(r.error and r.latency is None and r.accuracy is None for r in report.results)
    assert {p["key"] for p in report.gpu_probe} >= {"onnxruntime-cuda", "onnxruntime-tensorrt", "openvino-gpu"}


def test_timing_helpers():
    stats = measure.latency_stats(np.arange(1, 101) * 1_000_000)  # 1..100 ms
    assert stats["runs"] == 100 and stats["p50_ms"] == pytest.approx(50.5) and stats["max_ms"] == 100
    assert stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    calls = []
    timed = measure.time_calls(lambda: calls.append(1), warmup=5, runs=7)
    assert len(calls) == 12 and timed["runs"] == 7  # warm-up calls are not timed
    assert thread_counts(None, 8) == [1, 8] and thread_counts(None, 1) == [1] and thread_counts(3, 8) == [3]
    assert pareto_front([(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (0.5, 0.4)]) == [3, 0, 1]


def test_interleaved_timing_pairs_rounds():
    import time

    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.0005)

    out = measure.interleaved({"fast": fast, "slow": slow}, rounds=4, calls=10, warmup=3)
    assert calls == {"fast": 43, "slow": 43}  # 3 warm-up + 4 rounds x 10, each
    assert out["latency"]["slow"]["runs"] == 40 and out["rounds"] == 4
    r = out["ratios"]["slow/fast"]
    assert r["min"] <= r["median"] <= r["max"] and r["min"] > 1  # sleeping is slower in every round
    assert out["latency"]["slow"]["p50_ms"] >= 0.5


def test_cli_json_and_outputs(tflite_bundles, tmp_path, ckplus_dir):
    runner = CliRunner()
    args = ["bench", str(tflite_bundles["int8"]), "--runs", "10", "--warmup", "2", "--batch", "4", "--limit", "100",
            "--json", str(tmp_path / "b.json"), "--md", str(tmp_path / "b.md"), "--csv", str(tmp_path / "b.csv")]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["schema"] == schema.SCHEMA and data["device"] == "cpu"
    rows = data["results"]
    assert sorted(r["threads"] for r in rows) == thread_counts(None, data["environments"]["host"]["cores"])
    assert all(r["status"] == "ok" and r["latency"]["p50_ms"] > 0 for r in rows)
    assert "tflite-int8" in res.stdout and "[1/" in res.stderr  # table on stdout, progress on stderr
    # what accuracy was measured on, and why Δacc is '-' (no float row; convert's float number is for all 3,589)
    assert "evaluation: fer2013.csv.gz {'split': 'test'} n=100" in res.stdout
    assert "Δacc pt '-': no float model of that bundle was measured here" in res.stdout
    res = runner.invoke(cli, ["bench", str(tflite_bundles["int8"]), "--threads", "1", "--runs", "5", "--warmup", "1",
                              "--limit", "50", "--json", "-"])
    assert res.exit_code == 0 and json.loads(res.stdout)["results"][0]["eval_n"] == 50
    # convert's recorded float accuracy is the reference for the bundle's whole test split only: not on another
    # dataset (CK+ here, scored whole)
    recorded = _variant(tflite_bundles["int8"], tmp_path / "with-reference",
                        metrics={"retention": {"reference_accuracy": 0.5, "reference_macro_f1": 0.4}})
    for data, n in ((None, 3589), (ckplus_dir, 927)):
        res = runner.invoke(cli, ["bench", str(recorded), "--threads", "1", "--runs", "5", "--warmup", "1", "--json", "-",
                                  *(["--data", str(data)] if data else [])])
        (row,) = json.loads(res.stdout)["results"]
        assert res.exit_code == 0 and row["eval_n"] == n and row["accuracy"] > 0
        if data is None:
            assert row["accuracy_delta"] == pytest.approx(row["accuracy"] - 0.5)
        else:
            assert row["accuracy_delta"] is None


def test_cli_user_errors(tflite_bundles):
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", str(tflite_bundles["int8"]), "--device", "rpi"])
    assert res.exit_code == 2 and "needs --host" in res.stderr
    res = runner.invoke(cli, ["bench"])
    assert res.exit_code == 2 and "at least one BUNDLE" in res.stderr
    res = runner.invoke(cli, ["bench", str(tflite_bundles["int8"]), "--runs", "0"])
    assert res.exit_code == 2 and "--runs must be >= 1" in res.stderr
    res = runner.invoke(cli, ["bench", str(tflite_bundles["int8"]), "--limit", "0"])
    assert res.exit_code == 2 and "--limit must be >= 1, got 0" in res.stderr
    res = runner.invoke(cli, ["bench", str(tflite_bundles["int8"]), "--kind", "fer2013"])
    assert res.exit_code == 2 and "--kind names the reader of --data" in res.stderr
    res = runner.invoke(cli, ["bench", "--setup", "--device", "rpi", "--profile", "rpi5"])
    assert res.exit_code == 0 and "pip install numpy ai-edge-litert" in res.stdout and "Raspberry Pi 5" in res.stdout


def test_cli_refuses_what_it_cannot_measure_before_writing_anything(tflite_bundles, tmp_path):
    """A typo in a path, unreadable --data, an output that is a folder, or nothing but non-bundles: one
    error line, exit 2, no report files (the measurement never starts)."""
    runner = CliRunner()
    outs = ["--json", str(tmp_path / "r.json"), "--md", str(tmp_path / "r.md")]
    bundle = str(tflite_bundles["int8"])
    text = tmp_path / "data.txt"
    text.write_text("not a dataset\n")
    (tmp_path / "not-a-bundle").mkdir()
    (tmp_path / "a-folder").mkdir()
    cases = [
        ([bundle, str(tmp_path / "nope")], f"error: {tmp_path / 'nope'}: no such bundle or folder"),
        ([bundle, "--data", str(tmp_path / "nope.csv")], f"error: --data {tmp_path / 'nope.csv'}: no such file or folder"),
        ([bundle, "--data", str(text), "--runs", "2", "--warmup", "0"], f"--data {text}: cannot tell the dataset kind"),
        ([str(tmp_path / "not-a-bundle")], "not-a-bundle"),
        ([bundle, "--csv", str(tmp_path / "a-folder")], f"error: --csv {tmp_path / 'a-folder'}: is a folder; give the file"),
    ]
    for args, message in cases:
        res = runner.invoke(cli, ["bench", *args, *outs])
        assert res.exit_code == 2, (args, res.output, res.stderr)
        assert message in res.stderr and "Traceback" not in res.output + res.stderr, (args, res.stderr)
        assert res.stderr.strip().splitlines()[-1].startswith("error: "), res.stderr
        assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.md").exists(), args
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["data.txt"]


def test_a_missing_runtime_is_not_measured_rather_than_failed(monkeypatch, tmp_path):
    """A bundle whose runtime is not installed here (e.g. ONNX on a Pi's TFLite-only install) is not a broken
    model: its row says `not measured` and what to install; the table says why accuracy cells are '-'."""
    import sys

    from fer_edge import shipped
    from fer_edge.bench import core, worker

    onnx = shipped.shipped_bundle("onnx")
    np.save(tmp_path / "sample.npy", np.zeros((2, 48, 48), np.uint8))
    spec = {"bundle": str(onnx), "backend": "onnxruntime", "threads": 1, "warmup": 0, "runs": 1, "batch": 2,
            "sample": str(tmp_path / "sample.npy"), "device": "cpu"}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert worker.main([str(tmp_path / "spec.json"), str(tmp_path / "out.json")]) == 1
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["not_installed"] and "pip install 'fer-edge[onnx]'" in res["error"]
    monkeypatch.setattr(core, "_run_worker", lambda *a, **k: res)
    report = run_bench([str(onnx)], BenchOptions(threads=1, warmup=0, runs=1, batch=2, limit=5))
    rows = [r for r in report.results if r.backend == "onnxruntime"]
    assert rows and all(r.status == schema.NOT_MEASURED and "onnxruntime" in r.error for r in rows)
    table = rep.text_table(report)
    assert "not measured: " in table and "evaluation: " not in table  # no row measured accuracy
