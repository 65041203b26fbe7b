"""The quickstart report: every accuracy table states how many test faces it scored, and the benchmark
scores the same faces as the conversion table by default (a report of one model must not show two
accuracies from two different subsets without saying so)."""

from __future__ import annotations

from pathlib import Path

from fer_edge import quickstart as qs
from fer_edge.quickstart_report import write_report
from fer_edge.shipped import bundle_dir


def _bench_row(bundle, fmt, acc, n):
    return {"bundle": str(bundle), "name": "m", "format": fmt, "precision": "int8", "backend": "litert",
            "size_bytes": 2_000_000, "accuracy": acc, "macro_f1": 0.4, "eval_n": n, "status": "ok", "error": "",
            "latency": {"p50_ms": 0.35}, "latency_e2e": {"p50_ms": 0.5}}


def _result(tmp_path: Path, bench_n: int) -> qs.QuickstartResult:
    run = tmp_path / "model"
    res = qs.QuickstartResult(out=tmp_path, report=tmp_path / "report.md", data="fer2013.csv.gz", seconds=240.0,
                              sample={"image": "a.jpg", "model": "m", "detector": "yunet", "faces": []},
                              shipped_latency=[])
    res.training = {"recipe": qs.RECIPE, "limit": 13200, "epochs": 2, "run": str(run), "train_seconds": 100.0,
                    "test_accuracy": 0.4831, "test_macro_f1": 0.41, "val_accuracy": 0.47}
    res.conversion = {"reference": {"accuracy": 0.4831, "macro_f1": 0.41, "n": 3589}, "warnings": [], "artifacts": [
        {"format": "tflite", "precision": "int8", "path": str(run / "export/tflite-int8"), "status": "ok",
         "size_bytes": 2_700_000, "convert_seconds": 20.0,
         "retention": {"accuracy": 0.4810, "accuracy_delta_pp": -0.21, "top1_agreement": 0.97}}]}
    res.bench = [_bench_row(run / "export/tflite-int8", "tflite", 0.4810, bench_n),
                 _bench_row(bundle_dir("tflite"), "tflite", 0.6606, bench_n)]
    return res


def test_tables_state_their_n_and_share_the_faces(tmp_path):
    text = write_report(_result(tmp_path, 3589)).read_text()
    assert "test accuracy 48.31%, macro-F1 0.410 on n=3,589 test faces" in text
    # a short-budget model says how to get a better one
    assert f"`fer-edge train --recipe {qs.RECIPE} --data fer2013.csv.gz --out runs/{qs.RECIPE}`" in text
    assert "(n=3,589 test faces)" in text  # the conversion table
    assert "scored on the same 3,589 FER2013 test faces as the conversion table" in text
    assert "| model | format | backend | size KB | n |" in text
    assert "| shipped | tflite-int8 | litert | 1953 | 3,589 | 66.06% |" in text


def test_the_full_schedule_command_keeps_quickstarts_precision_and_quotes_the_path():
    from fer_edge.quickstart_report import full_schedule_command

    t = {"recipe": qs.RECIPE, "precision": "float32"}
    assert full_schedule_command(t, "my data/fer.csv") == (
        f"fer-edge train --recipe {qs.RECIPE} --data 'my data/fer.csv' --out runs/{qs.RECIPE} --precision float32")
    assert "--precision" not in full_schedule_command({**t, "precision": "mixed_bfloat16"}, "f.csv")


def test_a_subset_is_said_so(tmp_path):
    text = write_report(_result(tmp_path, 1000)).read_text()
    assert "n per row (the conversion table scored n=3,589" in text
    assert "| 1,000 | 48.10% |" in text


def test_default_budget_scores_the_whole_test_split():
    assert qs.Budget.from_minutes(10).eval_limit is None
