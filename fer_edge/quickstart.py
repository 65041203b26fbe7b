"""`fer-edge quickstart`: the whole toolchain on real data in about ten minutes on a small CPU.

Always: the shipped int8 model labels the shipped sample photo and its latency is timed.
With FER2013 (``--data``, ``$FER_EDGE_DATA`` or ``../shared/data``): train the edge recipe on a
budget, convert the result to int8 in every format, benchmark those against the float model and
the shipped model, and write one Markdown report (plus plots) whose path is returned.

Every step calls the library of that step (training, export, bench, live); nothing is re-done here.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import paths
from .atomic import atomic_file, write_json
from .errors import ConfigError, DataError, FerEdgeError, MissingExtraError, require_extras
from .shipped import sample_image, shipped_bundles

# The shipped model's network and recipe (v4 adds class weights and teachers, which a first run does not have).
RECIPE = "edge_plain44"
MARKER = "quickstart.json"  # written last: a folder holding it is a finished quickstart
FER2013_NAMES = ("fer2013.csv.gz", "fer2013.csv")
# Training throughput assumed for the budget (images/s, augmentation and validation included), below what was
# measured so that the budget errs on the short side. With native bfloat16 (mixed_bfloat16): edge_plain44 trained
# at 330-350 img/s on a free 2-core AVX512-BF16 x86 CPU (benchmarks/results/edge_study.md). Without it (float32):
# 88-98 img/s in quickstart's own two-epoch runs on a free 2-core AVX2 AMD EPYC (2026-12-02), where the bfloat16
# assumption made a 10-minute quickstart take 14.2.
ASSUMED_IMAGES_PER_SECOND = {True: 200.0, False: 80.0}  # by native bfloat16
TRAIN_SHARE = 0.4  # of --minutes; conversion, benchmarks and start-up take the rest
QUICK_EPOCHS = 2  # the recipe's one warm-up epoch, then one cosine-decayed epoch: the short run ends at a low rate

HOW_TO_GET_FER2013 = (
    "FER2013 is not bundled (its Kaggle terms allow research use, not redistribution). To get it: sign in to "
    "Kaggle, accept the rules of the 'Challenges in Representation Learning: Facial Expression Recognition "
    "Challenge' and download its data (https://www.kaggle.com/c/challenges-in-representation-learning-facial-"
    "expression-recognition-challenge/data, or `kaggle competitions download -c challenges-in-representation-"
    "learning-facial-expression-recognition-challenge`); unpack fer2013.tar.gz to get fer2013/fer2013.csv "
    "(columns emotion,pixels,Usage; gzip it or not). Then run `fer-edge quickstart --data PATH/fer2013.csv`, "
    "or set FER_EDGE_DATA to a folder holding fer2013/fer2013.csv."
)


@dataclass
class Budget:
    """How much quickstart trains: derived from --minutes unless given (tests pass tiny ones)."""

    limit: int  # cap on each split (fer_edge.training's ``limit``)
    epochs: int
    calib_size: int = 200
    # Test faces each benchmark row is scored on; None: the whole test split, the same faces the
    # conversion table scores (two tables of one model must not disagree on different subsets).
    eval_limit: int | None = None
    bench_runs: int = 100

    @classmethod
    def from_minutes(cls, minutes: float) -> "Budget":
        if minutes <= 0:
            raise ConfigError(f"--minutes must be > 0, got {minutes}")
        seconds = minutes * 60 * TRAIN_SHARE
        speed = ASSUMED_IMAGES_PER_SECOND[trains_in_bf16()]  # the precision train_quick will use
        limit = int(seconds * speed / QUICK_EPOCHS)
        return cls(limit=max(500, min(limit, 28709)), epochs=QUICK_EPOCHS)


@dataclass
class QuickstartResult:
    out: Path
    report: Path
    data: str | None
    seconds: float
    sample: dict[str, Any]  # the shipped model's prediction on the sample photo
    shipped_latency: list[dict[str, Any]]  # no-data path: per shipped bundle, in-process timing
    training: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None
    bench: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["report"] = str(self.out), str(self.report)
        return d


def find_fer2013(data: str | os.PathLike | None = None) -> Path | None:
    """FER2013's csv from ``data`` (a file or a folder), else $FER_EDGE_DATA / ../shared/data; None if absent.

    A ``data`` that is given but holds no FER2013 is an error (never silently ignored).
    """
    if data is not None:
        p = Path(data)
        if not p.exists():
            raise DataError(f"{p}: no such file or folder (--data)")
        if p.is_file():
            return p
        found = _fer2013_in(p)
        if found is None:
            raise DataError(f"{p}: no {' or '.join(FER2013_NAMES)} in this folder or in its fer2013/ subfolder")
        return found
    root = paths.data_root()
    return _fer2013_in(root) if root is not None and root.is_dir() else None


def _fer2013_in(folder: Path) -> Path | None:
    for sub in (folder / "fer2013", folder):
        for name in FER2013_NAMES:
            if (sub / name).is_file():
                return sub / name
    return None


def run_quickstart(
    out: str | os.PathLike = "runs/quickstart",
    data: str | os.PathLike | None = None,
    minutes: float = 10.0,
    budget: Budget | None = None,
    progress: Callable[[str], None] | None = None,
) -> QuickstartResult:
    """Run quickstart into ``out`` (replacing an earlier quickstart there); returns where the report is."""
    say = progress or (lambda msg: None)
    budget = budget or Budget.from_minutes(minutes)
    t0 = time.perf_counter()
    data_path = find_fer2013(data)
    if data_path is not None:  # training, conversion to every format and the bench need them all
        from .formats import extras_to_convert

        require_extras(extras_to_convert(_export_formats()), "fer-edge quickstart (train, convert, bench)")
    out = _prepare_out(Path(out))
    notes: list[str] = []

    steps = 4 if data_path is not None else 2
    say(f"1/{steps} shipped model: labelling the sample photo")
    sample = predict_sample(out / "sample")
    result = QuickstartResult(out, out / "report.md", str(data_path) if data_path else None, 0.0, sample, [], notes=notes)
    if data_path is None:
        say("no FER2013 found: " + HOW_TO_GET_FER2013)
        say("2/2 shipped model: timing every shipped format on this machine")
        result.shipped_latency = time_shipped(budget.bench_runs)
        notes.append("FER2013 not found, so no training, conversion or accuracy benchmark. " + HOW_TO_GET_FER2013)
    else:
        say(f"2/4 training {RECIPE} on {data_path}: ~{budget.limit} images per split, {budget.epochs} epochs")
        run_dir = out / "model"
        result.training = train_quick(data_path, run_dir, budget, say)
        say("3/4 converting to int8: " + ", ".join(_export_formats()))
        result.conversion = convert_int8(run_dir, budget, say)
        say("4/4 benchmarking float, int8 and shipped models")
        report = bench_all(run_dir, data_path, budget, out, say)
        result.bench = [r.to_dict() for r in report.results]
    result.seconds = round(time.perf_counter() - t0, 1)
    from .quickstart_report import write_report

    write_report(result)
    write_json(out / MARKER, {"status": "finished", **result.to_dict()})
    say(f"done in {result.seconds / 60:.1f} min")
    return result


def _prepare_out(out: Path) -> Path:
    """An empty output folder; an earlier quickstart there is replaced, anything else is refused."""
    if out.exists():
        if not out.is_dir():
            raise FerEdgeError(f"{out}: exists and is not a folder; choose another --out")
        if any(out.iterdir()):
            if not (out / MARKER).is_file():
                raise FerEdgeError(f"{out}: exists and is not an earlier quickstart output; choose another --out")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    # Marked from the start, so a run that was interrupted is replaced by the next one too.
    write_json(out / MARKER, {"status": "running"})
    return out


def _export_formats() -> list[str]:
    from .formats import EXPORT_FORMATS

    return list(EXPORT_FORMATS)


def predict_sample(annotate_dir: Path) -> dict[str, Any]:
    """The shipped TFLite int8 model on the shipped sample photo (face detector: auto)."""
    from .face import create_detector
    from .live import load_classifier, predict_paths

    clf = load_classifier(None)
    det = create_detector("auto")
    rep = predict_paths([sample_image()], clf, det, annotate_dir=annotate_dir)
    faces = rep.images[0].faces if rep.images else []
    return {
        "image": str(sample_image()),
        "model": str(clf.bundle.folder),
        "detector": det.name,
        "faces": faces,
        "annotated": rep.annotated[0] if rep.annotated else None,
    }


def time_shipped(runs: int) -> list[dict[str, Any]]:
    """Single-face latency of each shipped bundle whose runtime is installed (fer_edge.bench.measure)."""
    import numpy as np

    from .bench import measure
    from .live.predict import read_rgb
    from .runtime import load

    face = read_rgb(sample_image())
    rows = []
    for fmt, folder in shipped_bundles().items():
        row: dict[str, Any] = {"format": fmt, "path": str(folder)}
        try:
            clf = load(folder, threads=1)
        except MissingExtraError as exc:
            row["error"] = str(exc)
            rows.append(row)
            continue
        x = clf.preprocess([face])
        row["backend"] = clf.backend_name
        row["size_bytes"] = sum((folder / n).stat().st_size for n in clf.manifest.files)
        row["latency"] = measure.time_calls(lambda: clf.run(x), warmup=10, runs=runs)
        row["latency_e2e"] = measure.time_calls(lambda: clf.predict_proba(np.asarray(face)[None]), warmup=5, runs=runs)
        row["threads"] = 1
        rows.append(row)
    return rows


def trains_in_bf16() -> bool:
    """The recipe's bfloat16 only where the CPU has it natively (else emulated, slower than float32); unknown
    flags (no /proc/cpuinfo) count as without."""
    from .doctor.probes import cpuinfo, native_bf16

    return bool(native_bf16(cpuinfo()))


def train_quick(data_path: Path, run_dir: Path, budget: Budget, say) -> dict[str, Any]:
    from .training.recipes import load_recipe, with_overrides
    from .training.trainer import train

    precision = None if trains_in_bf16() else "float32"  # the recipe's own is mixed_bfloat16
    recipe = with_overrides(load_recipe(RECIPE), epochs=budget.epochs, precision=precision)
    summary = train(recipe, data_path, run_dir, log=lambda m: say("  " + m), limit=budget.limit)
    return {"recipe": RECIPE, "limit": budget.limit, "epochs": budget.epochs, "run": str(run_dir), **summary}


def convert_int8(run_dir: Path, budget: Budget, say) -> dict[str, Any]:
    from .export.pipeline import convert

    report = convert(run_dir, fmt="all", precision="int8", calib_size=budget.calib_size,
                     progress=lambda m: say("  " + m))
    return report.to_dict()


def bench_all(run_dir: Path, data_path: Path, budget: Budget, out: Path, say):
    """Float run + its int8 bundles + the shipped bundles, one table, same test data (1 thread)."""
    from .bench import report as bench_report
    from .bench.core import BenchOptions, run_bench

    exported = sorted(p for p in (run_dir / "export").iterdir() if (p / "manifest.json").is_file())
    targets = [str(run_dir), *map(str, exported), *map(str, shipped_bundles().values())]
    options = BenchOptions(threads=1, runs=budget.bench_runs, warmup=10, batch=16, data=str(data_path),
                           limit=budget.eval_limit)
    report = run_bench(targets, options, progress=lambda m: say("  " + m))
    bench_report.write(report, out / "bench.json", "json")
    bench_report.write(report, out / "bench.md", "md")
    try:
        from .bench.plot import pareto_png

        pareto_png(report, out / "bench.png", title="quickstart: accuracy vs latency (1 thread)")
    except MissingExtraError as exc:
        say(f"  no plot: {exc}")
    return report


def write_text(path: Path, text: str) -> Path:
    with atomic_file(path) as fh:
        fh.write(text)
    return path


def load_result(out: str | os.PathLike) -> dict[str, Any]:
    """The JSON summary of a finished quickstart folder."""
    path = Path(out) / MARKER
    doc = json.loads(path.read_text()) if path.is_file() else {}
    if doc.get("status") != "finished":
        raise FerEdgeError(f"{out}: not a finished quickstart (no finished {MARKER})")
    return doc
