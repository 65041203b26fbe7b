"""`fer-edge convert`: export a float Keras model to each requested format at one precision,
then measure every artifact's accuracy retention through the runtime.

Each artifact is built in a temporary folder and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..atomic import atomic_dir, write_json
from ..bundle import Manifest, write_bundle
from ..data import provenance_dataset
from ..errors import ConfigError, FerEdgeError, require_extras
from ..evaluation import select_faces
from ..formats import EXPORT_FORMATS, check_precision, extras_to_convert, get_format
from ..quantization import get_quant
from .calibration import build_calibration
from .context import ExportContext
from .profiles import load_profile
from .retention import Reference, evaluate_bundle, summary
from .source import int8_risk, load_source

DEFAULT_CALIB_SIZE = 300


@dataclass
class ArtifactReport:
    format: str
    precision: str
    int8_io: bool
    path: Path
    status: str  # "ok" | "failed_validation" | "failed"
    size_bytes: int = 0
    convert_seconds: float = 0.0
    retention: dict[str, Any] | None = None
    error: str | None = None
    qat: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("format", "precision", "int8_io", "qat", "status", "size_bytes", "convert_seconds", "error")}
        d["path"] = str(self.path)
        d["retention"] = summary(self.retention) if self.retention else None
        return d


@dataclass
class ConvertReport:
    source: str
    source_size_bytes: int
    float32_weights_bytes: int  # parameter count x 4 bytes: the size a float32 artifact needs
    reference: dict[str, Any] | None
    artifacts: list[ArtifactReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_drop_pp: float | None = None
    # the float model's test outputs (not serialized): convert(..., reference=) reuses them
    float_reference: Reference | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(a.status == "ok" for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_size_bytes": self.source_size_bytes,
            "float32_weights_bytes": self.float32_weights_bytes,
            "reference": self.reference,
            "max_drop_pp": self.max_drop_pp,
            "warnings": self.warnings,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "ok": self.ok,
        }


def resolve_formats(fmt: str) -> list[str]:
    if fmt == "all":
        return list(EXPORT_FORMATS)
    spec = get_format(fmt)
    if not spec.exporter:
        raise ConfigError(f"cannot convert to {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)} or all")
    return [fmt]


def artifact_dirname(fmt: str, precision: str, int8_io: bool, qat: bool = False) -> str:
    return f"{fmt}-{precision}" + ("-qat" if qat else "") + ("-io" if int8_io else "")


def check_options(formats: list[str], precision: str, int8_io: bool, qat: bool = False) -> None:
    """Reject impossible combinations before any work is done."""
    get_quant(precision)
    for fmt in formats:
        check_precision(fmt, precision)
    if int8_io and precision != "int8":
        raise ConfigError("--int8-io needs --int8 (it makes the int8 model's input and output int8)")
    if int8_io and formats != ["tflite"]:
        raise ConfigError("--int8-io applies to --format tflite only (ONNX and OpenVINO int8 keep float I/O)")
    if qat and (precision != "int8" or formats != ["tflite"]):
        raise ConfigError("--qat makes an int8 TFLite model: use it with --format tflite --int8")


def convert(
    model: str | os.PathLike,
    fmt: str = "tflite",
    precision: str = "fp32",
    calib: str | os.PathLike | None = None,
    calib_size: int | None = None,
    int8_io: bool = False,
    max_drop: float | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    evaluate: bool = True,
    progress: Callable[[str], None] | None = None,
    workdir: str | os.PathLike | None = None,
    qat: bool | dict[str, Any] = False,
    reference: Reference | None = None,
) -> ConvertReport:
    """Convert MODEL (a .keras file or a `fer-edge train` run folder); see `fer-edge convert --help`.

    ``qat``: quantization-aware fine-tuning before int8 TFLite conversion (True, or options
    epochs / learning_rate / batch_size / train_size; see fer_edge.export.qat.DEFAULTS).
    ``workdir``: keep the intermediates (SavedModel, float32 ONNX) there, keyed by the source
    model's sha256, so converting the same model to several precisions builds them once.
    ``reference``: an earlier report's ``float_reference`` for the same model and data, so the
    float model is not scored again.
    """
    say = progress or (lambda msg: None)
    formats = resolve_formats(fmt)
    check_options(formats, precision, int8_io, bool(qat))
    if max_drop is not None and max_drop < 0:
        raise ConfigError(f"--max-drop must be >= 0 percentage points, got {max_drop}")
    if calib_size is not None and calib_size < 1:
        raise ConfigError(f"--calib-size must be >= 1, got {calib_size}")
    if calib is not None and not get_quant(precision).needs_calibration:
        raise ConfigError(f"--calib is only used by --int8, not --{precision}")
    profiles = {f: load_profile(f, precision) for f in formats}
    # before any work, so a runtime-only install gets one clear line
    require_extras(extras_to_convert(formats, evaluate), f"fer-edge convert --format {fmt}")

    say(f"loading {model}")
    source = load_source(model)
    if source.data is None and (max_drop is not None):
        raise ConfigError(f"{model}: --max-drop needs test data; convert a `fer-edge train` run folder (its manifest names the data)")
    out_root = Path(out) if out else source.default_out
    finals = {f: out_root / artifact_dirname(f, precision, int8_io, bool(qat)) for f in formats}
    for f, final in finals.items():
        if final.exists() and not overwrite:
            raise FerEdgeError(f"{final} already exists; choose another --out or pass --overwrite")

    report = ConvertReport(str(source.path), source.path.stat().st_size, 4 * int(source.model.count_params()), None,
                           max_drop_pp=max_drop)
    if precision == "int8" and (risk := int8_risk(source.model)):
        report.warnings.append(risk)
        say(f"warning: {risk}")

    ref = None
    if evaluate and source.data is not None:
        if reference is not None and not reference.matches(source):
            raise ConfigError(f"{model}: the given float reference was computed for another model or test data")
        ref = reference
        if ref is None:
            say("evaluating the float Keras model on the test selection")
            ref = Reference.from_keras(source, select_faces(provenance_dataset(source.data, source.run_dir), "test",
                                                            source.data), source.data)
        report.float_reference = ref
        report.reference = {"accuracy": ref.metrics["accuracy"], "macro_f1": ref.metrics["macro_f1"], "n": ref.metrics["n"]}
    elif evaluate:
        report.warnings.append("the model names no test data (a bare Keras file): retention not measured")
        say(f"warning: {report.warnings[-1]}")

    size = calib_size or int(next((p["calibration_size"] for p in profiles.values() if "calibration_size" in p), DEFAULT_CALIB_SIZE))
    with contextlib.ExitStack() as stack:
        if workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fer-edge-convert-")))
        else:
            work = Path(workdir) / source.sha256[:16]
            work.mkdir(parents=True, exist_ok=True)
        shared: dict[str, Any] = {}  # per-run intermediates the format contexts share (ExportContext.shared)

        def calibration():
            if "calib" not in shared:
                say(f"building the calibration set ({size} images)")
                shared["calib"] = build_calibration(source, calib, size)
            return shared["calib"]

        if get_quant(precision).needs_calibration:
            calibration()  # fail early (e.g. an empty --calib folder) before any export
        for f in formats:
            ctx = ExportContext(source, precision, profiles[f], Path(work), int8_io=int8_io,
                                calibration_factory=calibration, shared=shared,
                                qat=(dict(qat) if isinstance(qat, dict) else {}) if qat else None)
            art, error = _convert_one(ctx, f, finals[f], ref, max_drop, overwrite, say)
            report.artifacts.append(art)
            if error is not None and len(formats) == 1:
                raise error
    return report


def _convert_one(
    ctx: ExportContext, fmt: str, final: Path, ref: Reference | None, max_drop, overwrite, say
) -> tuple[ArtifactReport, FerEdgeError | None]:
    """Build one bundle; a user-level failure is reported (and returned), never half-written."""
    spec = get_format(fmt)
    module, attr = spec.exporter.split(":")
    art = ArtifactReport(fmt, ctx.precision, ctx.int8_io, final, "ok", qat=ctx.qat is not None)
    say(f"converting to {fmt} {ctx.precision}{' with QAT' if ctx.qat is not None else ''}{' (int8 I/O)' if ctx.int8_io else ''}")
    try:
        with atomic_dir(final, overwrite=overwrite) as tmp:
            t0 = time.perf_counter()
            if ctx.qat is not None:
                module, attr = "fer_edge.export.qat", "export_tflite_qat"
            exporter = getattr(importlib.import_module(module), attr)
            result = exporter(ctx, tmp)
            art.convert_seconds = time.perf_counter() - t0
            quant = dict(result.quantization)
            quant["output_kind"] = ctx.output_kind()
            quant["profile"] = result.settings
            if ctx.precision == "int8":
                quant["calibration"] = ctx.calibration().description
            src = ctx.source
            manifest = Manifest(
                name=src.name,
                format=fmt,
                precision=ctx.precision,
                model_file=spec.model_file,
                labels=list(src.labels),
                input=src.input,
                quantization=quant,
                provenance={
                    **src.provenance,
                    "source_model": {"path": str(src.path), "sha256": src.sha256, "format": "keras"},
                    "converted_by": "fer-edge convert",
                    "graph_rewrites": ctx.rewrites,
                    "convert_seconds": round(art.convert_seconds, 3),
                },
                versions=result.versions,
            )
            if src.face is not None:
                manifest.face = src.face
            write_bundle(tmp, manifest, result.model_files)
            art.size_bytes = sum((tmp / name).stat().st_size for name in result.model_files)
            if ref is not None:
                say(f"  evaluating {fmt}-{ctx.precision} through the runtime on {len(ref.faces)} test faces")
                ret = evaluate_bundle(tmp, ref)
                art.retention = ret
                drop = -ret["accuracy_delta_pp"]
                status = "ok"
                if max_drop is not None and drop > max_drop:
                    status = "failed_validation"
                manifest.metrics = {
                    "status": status,
                    "max_drop_pp": max_drop,
                    "retention": summary(ret),
                    "size_bytes": art.size_bytes,
                }
                write_bundle(tmp, manifest, result.model_files)
                write_json(tmp / "retention.json", ret)
                art.status = status
    except FerEdgeError as exc:
        art.status, art.error = "failed", str(exc)
        say(f"  failed: {exc}")
        return art, exc
    return art, None


def next_commands(report: ConvertReport) -> list[str]:
    done = [a for a in report.artifacts if a.status != "failed"]
    if not done:
        return []
    paths = " ".join(str(a.path) for a in done)
    first = done[0].path
    return [f"fer-edge bench {paths} --device cpu", f"fer-edge live --model {first} --source 0"]
