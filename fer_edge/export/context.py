"""What every exporter gets: the source model, the settings, and shared intermediates.

Intermediates (the SavedModel from ``model.export()``, the float32 ONNX graph) are
built once per `convert` run in a work folder and reused across precisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..bundle import SCHEMA
from ..errors import ModelError, first_line
from ..runtime.keras_backend import output_kind
from .calibration import CalibrationSet
from .source import SourceModel


@dataclass
class ExportResult:
    model_files: list[str]
    quantization: dict[str, Any] = field(default_factory=dict)  # input/output int8 params
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # the tool settings actually used


@dataclass
class ExportContext:
    source: SourceModel
    precision: str
    profile: dict[str, Any]
    workdir: Path
    int8_io: bool = False
    calibration_factory: Callable[[], CalibrationSet] | None = None
    qat: dict[str, Any] | None = None  # quantization-aware training options (int8 TFLite only)
    # Built once per `convert` run and shared by its per-format contexts (same source model):
    # the calibration set, the export graph and its rewrites.
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def input_name(self) -> str:
        return "input"

    def calibration(self) -> CalibrationSet:
        if "calib" not in self.shared:
            if self.calibration_factory is None:
                raise ModelError("int8 conversion needs a calibration set")
            self.shared["calib"] = self.calibration_factory()
        return self.shared["calib"]

    def output_kind(self) -> str:
        return output_kind(self.source.model)

    @property
    def deploy_model(self):
        """The model every exporter converts: the source after exact rewrites (export/simplify.py)."""
        if "deploy" not in self.shared:
            from .simplify import simplify_for_export

            self.shared["deploy"], self.shared["rewrites"] = simplify_for_export(self.source.model)
        return self.shared["deploy"]

    @property
    def rewrites(self) -> list[dict[str, Any]]:
        """The rewrites ``deploy_model`` applied (recorded in each bundle's provenance)."""
        if "rewrites" not in self.shared:
            _ = self.deploy_model  # builds both
        return self.shared["rewrites"]

    def saved_model(self) -> Path:
        """``model.export()`` SavedModel (weights as constants after conversion; see the TFLite pitfall)."""
        path = self.workdir / "saved_model_deploy"
        if not path.exists():
            try:
                self.deploy_model.export(str(path), format="tf_saved_model", verbose=False)
            except Exception as exc:
                raise ModelError(f"{self.source.path}: cannot export a SavedModel ({first_line(exc)})") from exc
        return path

    def onnx_fp32(self) -> Path:
        """Float32 ONNX via tf2onnx.convert.from_keras, asserted to have exactly one input."""
        path = self.workdir / "fp32_deploy.onnx"
        if not path.exists():
            from .keras_onnx import keras_to_onnx

            keras_to_onnx(self.deploy_model, self.source.input.shape, self.input_name, path,
                          int(self.profile.get("opset", 17)))
        return path

    def embedded_metadata(self, fmt: str, quantization: dict[str, Any]) -> dict[str, Any]:
        """The manifest essentials embedded inside the model file itself."""
        return {
            "schema": SCHEMA,
            "name": self.source.name,
            "format": fmt,
            "precision": self.precision,
            "labels": list(self.source.labels),
            "input": self.source.input.to_dict(),
            "quantization": quantization,
            "source_sha256": self.source.sha256,
        }

    @staticmethod
    def metadata_json(meta: dict[str, Any]) -> str:
        return json.dumps(meta, sort_keys=True)
