"""benchmarks/edge_study.py: the study table renders the committed rows, and the throughput probe joins its rounds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD = {"net": "plain 32-256", "params": 1176359, "input": "44x44", "batch": 64, "policy": "float32", "jit": False,
       "images_per_s": 250}


def _study():
    spec = importlib.util.spec_from_file_location("edge_study", REPO / "benchmarks" / "edge_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_speed_rows_show_their_spread_and_old_rows_say_they_have_none():
    md = _study().render([], [OLD, {**OLD, "policy": "mixed_bfloat16", "images_per_s": 380, "passes": [250, 380, 390]}], ["x"])
    assert "| plain 32-256 | 1,176,359 | 44x44 | 64 | float32 | False | 250 | - (1) |" in md
    assert "| mixed_bfloat16 | False | 380 | 250-390 (3) |" in md
    assert "interleaved rounds" in md
    only_old = _study().render([], [OLD], ["x"])
    assert "one pass per case" in only_old and "interleaved rounds" not in only_old


def test_no_speed_rows_no_throughput_section():
    assert "Training throughput" not in _study().render([], None, ["x"])


def test_speed_interleaves_rounds_and_takes_the_median(monkeypatch):
    study = _study()
    monkeypatch.setattr(study, "SPEED_CASES", [("plain 32-256", 44, 64, "float32", False),
                                               ("plain 32-256", 44, 64, "mixed_bfloat16", False)])
    order, passes = [], iter([[100, 110], [300, 310], [120, 400], [320, 330]])

    def fake_run(cmd, **kw):
        case = json.loads(cmd[-1])
        order.append(case[3])
        one = {"net": case[0], "params": 1, "input": "44x44", "batch": case[2], "policy": case[3], "jit": case[4],
               "passes": next(passes)}
        return subprocess.CompletedProcess(cmd, 0, stdout="log line\n" + json.dumps(one) + "\n")

    monkeypatch.setattr(study.subprocess, "run", fake_run)
    rows = study.speed(rounds=2)
    assert order == ["float32", "mixed_bfloat16", "float32", "mixed_bfloat16"]  # round by round, not case by case
    assert [r["passes"] for r in rows] == [[100, 110, 120, 400], [300, 310, 320, 330]]
    assert [r["images_per_s"] for r in rows] == [115, 315]


def test_levers_name_class_weights_and_distillation():
    prov = {"recipe_data": {"model": {"builder": "plain_cnn"}, "input": {"size": [48, 48], "crop": [44, 44]},
                            "train": {"optimizer": "sgd", "class_balance": "sqrt", "precision": "mixed_bfloat16"}},
            "soft_targets": {"distill": {"teachers": [{}, {}], "weight": 0.5, "temperature": 2.0}}}
    levers = _study()._levers(prov)
    assert "44px crops of 48" in levers and "sqrt class weights" in levers
    assert "distilled from 2 teacher(s) w 0.5 T 2.0" in levers
    prov["recipe_data"]["train"]["class_balance"] = "none"
    assert "class weights" not in _study()._levers(prov)


def _bench_row(role, precision, p50, acc=0.7, size=1024 * 100, name="m"):
    return {"status": "ok", "threads": 1, "format": "tflite", "role": role, "precision": precision, "name": name,
            "accuracy": acc, "size_bytes": size, "latency": {"p50_ms": p50}}


def test_architecture_rows_prefer_interleaved_timings_and_keep_the_peer(tmp_path):
    bench = {"created": "2026-12-01T00:00:00", "results": [
        _bench_row("model", "int8", 0.6), _bench_row("model", "fp32", 2.0), _bench_row("baseline", "dynamic", 0.4),
        {**_bench_row("model", "int8", 9.9, acc=0.1, size=1024 * 999), "threads": 2}],  # 2 threads: not this table's
        "paired_tflite_1thread": {"latency": {"int8": {"p50_ms": 0.5}, "fp32": {"p50_ms": 2.0}}}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    study = _study()
    (row, missing) = study.arch_rows({"net": str(path), "gone": "0000000:nothing.json"})
    assert (row["int8_ms"], row["fp32_ms"], row["peer_ms"], row["size_kb"]) == (0.5, 2.0, 0.4, 100)
    assert "error" in missing
    md = "\n".join(study.render_arch([row, missing]))
    assert "| net | m | 70.00 | 100 | 0.500 | 2.000 | 0.25x | 0.400 | 1.25x |" in md
    assert "bench not readable" in md


def test_architecture_rows_fall_back_to_separate_process_timings_and_say_what_is_missing(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"created": "2026-11-24T00:00:00", "results": [_bench_row("model", "int8", 0.6),
                                                                              _bench_row("model", "fp32", 1.2)]}))
    (row,) = _study().arch_rows({"net": str(path)})
    assert (row["int8_ms"], row["fp32_ms"], row["peer_ms"]) == (0.6, 1.2, None)
    path.write_text(json.dumps({"created": "2026-11-24T00:00:00", "results": [_bench_row("model", "fp32", 1.2)]}))
    md = "\n".join(_study().render_arch(_study().arch_rows({"net": str(path)})))
    assert "| net | - | - | - | - | 1.200 | - | - | - |" in md
