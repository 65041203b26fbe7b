"""`fer-edge data info|prepare` on the real data, and its error path."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fer_edge.cli.main import main


def _run(*args):
    return CliRunner().invoke(main, ["data", *map(str, args)])


def test_info_json_fer2013(fer2013_csv):
    res = _run("info", fer2013_csv, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["kind"] == "fer2013" and info["samples"] == 35887
    assert {s: sum(c.values()) for s, c in info["counts"].items()} == {
        "Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert info["counts"]["PrivateTest"]["disgust"] == 55
    exact = info["leakage"]["exact"]
    assert (exact["groups"], exact["rows"], exact["cross_split_groups"], exact["conflicting_label_groups"]) == (
        1516, 3369, 557, 56)
    assert info["leakage"]["near_blank"]["rows"] == 13
    assert info["bad"] == {"count": 0, "items": []}
    print(f"\nfer-edge data info: FER2013 loaded in {info['load_seconds']} s")


def test_info_text_and_near_dups_ckplus(ckplus_dir):
    res = _run("info", ckplus_dir, "--near-dups")
    assert res.exit_code == 0, res.output
    assert "kind: ckplus48   samples: 981" in res.output
    assert "subjects: 118, 327 sequences" in res.output
    assert "near duplicates" in res.output


def test_info_json_jaffe_subjects(jaffe_dir, face_weights):
    res = _run("info", jaffe_dir, "--json", "--size", "64")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["kind"], info["samples"], info["subjects"], info["image_shape"]) == ("jaffe", 213, 10, [64, 64])


def test_prepare_then_info_reads_cache(tmp_path, ckplus_dir):
    out = tmp_path / "ck.npz"
    res = _run("prepare", ckplus_dir, "--out", out)
    assert res.exit_code == 0, res.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "981 samples" in res.output
    res = _run("info", out, "--json")
    info = json.loads(res.output)
    assert info["kind"] == "ckplus48" and info["samples"] == 981 and info["subjects"] == 118
    res = _run("prepare", ckplus_dir, "--out", out)
    assert res.exit_code == 2 and "already exists" in res.output


def test_errors_are_one_line_without_traceback(tmp_path):
    res = _run("info", tmp_path / "missing")
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {tmp_path / 'missing'}: no such file or folder"
    (tmp_path / "faces" / "happy").mkdir(parents=True)
    (tmp_path / "faces" / "happy" / "a.png").write_bytes(b"garbage")
    res = _run("info", tmp_path / "faces")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "a.png: not a readable image" in res.output and len(res.output.strip().splitlines()) == 1
    res = _run("info", tmp_path / "faces", "--mode", "soft")
    assert res.exit_code == 2 and "does not take option(s) ['mode']" in res.output


def test_skip_bad_lists_what_was_skipped(tmp_path, ckplus_dir):
    import shutil

    root = tmp_path / "ck"
    shutil.copytree(ckplus_dir / "fear", root / "fear")
    (root / "fear" / "S999_001_00000001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    res = _run("info", root, "--skip-bad", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["samples"] == 75 and info["bad"]["count"] == 1
    assert info["bad"]["items"][0]["source"].endswith("S999_001_00000001.png")
    text = _run("info", root, "--skip-bad").output
    assert "bad/skipped files: 1" in text and "S999_001_00000001.png: truncated PNG" in text
