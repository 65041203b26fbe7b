"""Model builders named by recipes (``[model] builder = "..."``).

Conventions that the trainer and the exporters rely on:
- The model input is float pixels 0..255 in the bundle's colour (gray = 1 channel);
  normalization and gray->3-channel expansion are layers inside the model (``pre_*``),
  so the runtime only resizes.
- Head layers are named ``head_*``; everything else except ``pre_*`` and the input is the
  backbone, which stages freeze or unfreeze (see ``set_trainable``).
- Backbones from keras.applications are built on our input tensor (``input_tensor=``), so
  the resulting model is flat (no nested backbone model): tf_keras / QAT rebuilds see
  plain layers. The EfficientNet-Lite0 file is a saved Model and stays nested.
- Only ReLU/ReLU6 (LeakyReLU in the paper's custom CNN) and no squeeze-excite in the
  edge builder, so int8 quantization behaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from .. import paths

PREFIX_PRE = "pre_"
PREFIX_HEAD = "head_"


def build_model(model_cfg: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int):
    """(keras model, info dict: what weights were loaded, substitutions made)."""
    builder = model_cfg.get("builder")
    fn = BUILDERS.get(builder)
    if fn is None:
        raise ConfigError(f"unknown model builder {builder!r}; choose one of {', '.join(BUILDERS)}")
    model, info = fn(model_cfg, input_shape, num_classes)
    if model_cfg.get("substitution"):  # a recipe that deliberately swaps the paper's backbone
        info["substitution"] = str(model_cfg["substitution"])
    return model, info


# ---------------------------------------------------------------- shared pieces


def _keras():
    import keras

    return keras


def _pre(x, cfg: dict[str, Any], want_rgb: bool):
    """Gray->3 channels and the recipe's normalization, as named layers."""
    keras = _keras()
    if want_rgb and x.shape[-1] == 1:
        x = keras.layers.Concatenate(name=f"{PREFIX_PRE}gray_to_rgb")([x, x, x])
    norm = cfg.get("normalize", "none")
    if norm == "none":
        return x
    if norm == "unit":  # x / 255
        return keras.layers.Rescaling(1 / 255.0, name=f"{PREFIX_PRE}unit")(x)
    if norm == "tanh":  # [-1, 1], MobileNet/Inception style
        return keras.layers.Rescaling(1 / 127.5, -1.0, name=f"{PREFIX_PRE}tanh")(x)
    if norm == "caffe":  # ResNet50's ImageNet preprocessing: per-channel mean removal (BGR means)
        mean = [103.939, 116.779, 123.68][: x.shape[-1]]
        return keras.layers.Normalization(mean=mean, variance=[1.0] * len(mean), name=f"{PREFIX_PRE}caffe")(x)
    raise ConfigError(f"unknown normalize {norm!r}; choose none, unit, tanh or caffe")


def _weights_file(spec: str) -> Path:
    """A weights path: absolute, relative to the cwd, or relative to the shared weights root."""
    p = Path(spec)
    if p.is_file():
        return p
    return paths.weights_path(*Path(spec).parts)


def _head(x, cfg: dict[str, Any], num_classes: int):
    keras = _keras()
    L = keras.layers
    kind = cfg.get("head", "linear")
    drop = float(cfg.get("dropout", 0.0))
    if kind == "linear":  # GAP -> (dropout) -> softmax
        x = L.GlobalAveragePooling2D(name=f"{PREFIX_HEAD}gap")(x)
        if drop:
            x = L.Dropout(drop, name=f"{PREFIX_HEAD}dropout")(x)
    elif kind == "dense":  # GAP -> [Dense -> ReLU -> Dropout] x n -> softmax (EfficientNet paper)
        x = L.GlobalAveragePooling2D(name=f"{PREFIX_HEAD}gap")(x)
        for i, units in enumerate(cfg.get("units", [256, 128])):
            x = L.Dense(int(units), activation="relu", name=f"{PREFIX_HEAD}dense{i + 1}")(x)
            if drop:
                x = L.Dropout(drop, name=f"{PREFIX_HEAD}dropout{i + 1}")(x)
    elif kind == "resnet_mlp":
        # As the ResNet paper describes: Dropout(0.5) -> Flatten -> BN -> Dense 32 ->
        # [BN -> ReLU -> Dropout -> Dense 32] x2 -> BN -> ReLU -> Dropout -> Dense K softmax.
        x = L.Dropout(0.5, name=f"{PREFIX_HEAD}dropout0")(x)
        x = L.Flatten(name=f"{PREFIX_HEAD}flatten")(x)
        x = L.BatchNormalization(name=f"{PREFIX_HEAD}bn0")(x)
        x = L.Dense(32, name=f"{PREFIX_HEAD}dense1")(x)
        for i in (2, 3):
            x = L.BatchNormalization(name=f"{PREFIX_HEAD}bn{i - 1}")(x)
            x = L.ReLU(name=f"{PREFIX_HEAD}relu{i - 1}")(x)
            x = L.Dropout(drop or 0.5, name=f"{PREFIX_HEAD}dropout{i - 1}")(x)
            x = L.Dense(32, name=f"{PREFIX_HEAD}dense{i}")(x)
        x = L.BatchNormalization(name=f"{PREFIX_HEAD}bn3")(x)
        x = L.ReLU(name=f"{PREFIX_HEAD}relu3")(x)
        x = L.Dropout(drop or 0.5, name=f"{PREFIX_HEAD}dropout3")(x)
    else:
        raise ConfigError(f"unknown head {kind!r}; choose linear, dense or resnet_mlp")
    return L.Dense(num_classes, activation="softmax", dtype="float32", name=f"{PREFIX_HEAD}logits")(x)


def _freeze_bn(model) -> None:
    """Keep BatchNorm layers in inference mode (Keras 3: trainable=False does that)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.name.startswith(PREFIX_HEAD):
            layer.trainable = False


# ---------------------------------------------------------------- builders


def mobilenetv2(cfg, input_shape, num_classes):
    keras = _keras()
    alpha = float(cfg.get("alpha", 1.0))
    weights = cfg.get("weights", "backbones/mobilenet_v2_1.0_224_no_top.h5")
    inp = keras.Input(input_shape, name="image")
    x = _pre(inp, cfg, want_rgb=True)
    h, w = input_shape[:2]
    wfile = None
    if weights not in (None, "none", "imagenet"):
        wfile = _weights_file(weights)
    try:
        base = keras.applications.MobileNetV2(
            input_shape=(h, w, 3), alpha=alpha, include_top=False,
            weights=str(wfile) if wfile else (None if weights in (None, "none") else weights), input_tensor=x,
        )
    except (ValueError, OSError) as exc:
        raise ModelError(f"cannot load MobileNetV2 weights {weights!r} ({exc})") from exc
    out = _head(base.output, cfg, num_classes)
    model = keras.Model(inp, out, name=cfg.get("name", "mobilenetv2"))
    if cfg.get("freeze_bn", True):
        _freeze_bn(model)
    return model, {"backbone": f"MobileNetV2 alpha {alpha}", "backbone_weights": str(wfile or weights)}


def efficientnet(cfg, input_shape, num_classes):
    """EfficientNet-B0 (``weights = "imagenet"``, needs internet) or the offline Lite0 file."""
    keras = _keras()
    variant = cfg.get("variant", "lite0")
    inp = keras.Input(input_shape, name="image")
    x = _pre(inp, cfg, want_rgb=True)
    if variant == "b0":
        weights = cfg.get("weights", "imagenet")
        try:
            # B0 has its own Rescaling/Normalization layers: input is float RGB 0..255.
            base = keras.applications.EfficientNetB0(
                include_top=False, weights=weights, input_tensor=x, input_shape=(*input_shape[:2], 3)
            )
        except Exception as exc:  # urllib/OSError offline, ValueError for bad files
            raise ModelError(
                f"cannot load EfficientNetB0 weights {weights!r}: {exc}. Offline, use the recipe "
                "efficientnet_fer2013 with variant = \"lite0\" (the shared EfficientNet-Lite0 backbone)"
            ) from exc
        feats, desc = base.output, f"EfficientNetB0 ({weights})"
    elif variant == "lite0":
        wfile = _weights_file(cfg.get("weights", "backbones/efficientnet_lite0_imagenet_notop.keras"))
        try:
            base = keras.models.load_model(wfile, compile=False)
        except Exception as exc:
            raise ModelError(f"{wfile}: cannot load the EfficientNet-Lite0 backbone ({exc})") from exc
        base.name = "backbone_efficientnet_lite0"
        feats, desc = base(x), f"EfficientNet-Lite0 ({wfile})"
    else:
        raise ConfigError(f"efficientnet variant must be b0 or lite0, not {variant!r}")
    out = _head(feats, cfg, num_classes)
    model = keras.Model(inp, out, name=cfg.get("name", "efficientnet"))
    return model, {"backbone": f"EfficientNet-{variant}", "backbone_weights": desc}


def resnet50(cfg, input_shape, num_classes):
    """ResNet50 (``weights = "imagenet"`` or a local file); ``substitute`` names a builder
    used instead when the weights cannot be loaded and the recipe allows it."""
    keras = _keras()
    weights = cfg.get("weights", "imagenet")
    inp = keras.Input(input_shape, name="image")
    x = _pre(inp, cfg, want_rgb=True)
    try:
        wf = weights if weights in ("imagenet", None, "none") else str(_weights_file(weights))
        base = keras.applications.ResNet50(
            include_top=False, weights=None if wf == "none" else wf, input_tensor=x,
            input_shape=(*input_shape[:2], 3),
        )
    except Exception as exc:
        sub = cfg.get("substitute")
        msg = (
            f"cannot load ResNet50 weights {weights!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            "offline, pass a local file: --weights /path/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5, "
            "or use the recipe resnet50_fer2013_substitute"
        )
        if not sub:
            raise ModelError(msg) from exc
        sub_cfg = {**cfg, **sub, "substitute": None}
        model, info = build_model(sub_cfg, input_shape, num_classes)
        info["substitution"] = f"ResNet50 unavailable -> {info['backbone']} ({msg})"
        return model, info
    out = _head(base.output, cfg, num_classes)
    model = keras.Model(inp, out, name=cfg.get("name", "resnet50"))
    return model, {"backbone": "ResNet50", "backbone_weights": str(weights)}


def custom_cnn(cfg, input_shape, num_classes):
    """The custom CNNs of "Deep Learning: Facial Emotion Detection" (Models 1-3).

    Each conv block: Conv -> BatchNorm -> LeakyReLU -> MaxPool -> Dropout; dense layers
    Dense -> BatchNorm -> LeakyReLU -> Dropout. The paper does not list filter counts:
    ours are in the recipe (``filters``, ``dense``) and the parameter count is reported.
    """
    keras = _keras()
    L = keras.layers
    k = int(cfg.get("kernel", 3))
    drop = float(cfg.get("dropout", 0.25))
    inp = keras.Input(input_shape, name="image")
    x = _pre(inp, cfg, want_rgb=False)
    for i, f in enumerate(cfg.get("filters", [64, 128, 256, 512, 512])):
        x = L.Conv2D(int(f), k, padding="same", name=f"conv{i + 1}")(x)
        x = L.BatchNormalization(name=f"conv{i + 1}_bn")(x)
        x = L.LeakyReLU(0.1, name=f"conv{i + 1}_lrelu")(x)
        x = L.MaxPooling2D(2, padding="same", name=f"conv{i + 1}_pool")(x)
        x = L.Dropout(drop, name=f"conv{i + 1}_dropout")(x)
    x = L.Flatten(name=f"{PREFIX_HEAD}flatten")(x)
    for i, units in enumerate(cfg.get("dense", [256, 512])):
        x = L.Dense(int(units), name=f"{PREFIX_HEAD}dense{i + 1}")(x)
        x = L.BatchNormalization(name=f"{PREFIX_HEAD}bn{i + 1}")(x)
        x = L.LeakyReLU(0.1, name=f"{PREFIX_HEAD}lrelu{i + 1}")(x)
        x = L.Dropout(float(cfg.get("dense_dropout", 0.3)), name=f"{PREFIX_HEAD}dropout{i + 1}")(x)
    out = L.Dense(num_classes, activation="softmax", dtype="float32", name=f"{PREFIX_HEAD}logits")(x)
    model = keras.Model(inp, out, name=cfg.get("name", "custom_cnn"))
    return model, {"backbone": f"custom CNN ({cfg.get('variant', 'model3')}, {k}x{k})", "backbone_weights": "none (from scratch)"}


def plain_cnn(cfg, input_shape, num_classes):
    """Our edge net: plain 3x3 Conv-BN-ReLU blocks, trained from scratch at 40-48 px.

    ``widths`` gives one stage per entry (``convs`` convolutions each, then 2x2 max-pool
    between stages). Dense 3x3 convolutions are what oneDNN trains fastest in bfloat16 on a
    CPU and what XNNPACK speeds up most in int8 (its depthwise kernels are slower in int8
    than in fp32 on x86: DEPTHWISE_CONV_2D 1.52x in v1's op profile,
    `git show a89dcae^:benchmarks/results/tflite_op_profile.md`). No bias before BN, ReLU only:
    the exporters fold BN into the convolution and quantize cleanly.
    """
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="image")
    x = _pre(inp, cfg, want_rgb=False)
    widths = [int(w) for w in cfg.get("widths", [32, 64, 128, 256])]
    convs = int(cfg.get("convs", 2))
    for s, width in enumerate(widths):
        for j in range(convs):
            name = f"stage{s + 1}_conv{j + 1}"
            x = L.Conv2D(width, 3, padding="same", use_bias=False, name=name)(x)
            x = L.BatchNormalization(name=f"{name}_bn")(x)
            x = L.ReLU(name=f"{name}_relu")(x)
        if s < len(widths) - 1:
            x = L.MaxPooling2D(2, name=f"stage{s + 1}_pool")(x)
    out = _head(x, cfg, num_classes)
    model = keras.Model(inp, out, name=cfg.get("name", "plain_cnn"))
    desc = f"plain CNN {'-'.join(map(str, widths))} x{convs} conv per stage"
    return model, {"backbone": desc, "backbone_weights": "none (from scratch)"}


BUILDERS = {
    "mobilenetv2": mobilenetv2,
    "plain_cnn": plain_cnn,
    "efficientnet": efficientnet,
    "resnet50": resnet50,
    "custom_cnn": custom_cnn,
}


# ---------------------------------------------------------------- stage helpers


def is_backbone(layer) -> bool:
    name = layer.name
    return not (name.startswith(PREFIX_HEAD) or name.startswith(PREFIX_PRE) or name == "image")


def set_trainable(model, trainable: str, freeze_bn: bool = True) -> None:
    """``"all"``, ``"head"`` (backbone frozen) or ``"last:N"`` (head + last N backbone layers)."""
    import keras

    backbone = [layer for layer in model.layers if is_backbone(layer)]
    if trainable == "all":
        keep = set(id(layer) for layer in backbone)
    elif trainable == "head":
        keep = set()
    elif trainable.startswith("last:"):
        n = int(trainable.split(":", 1)[1])
        keep = set(id(layer) for layer in backbone[-n:]) if n > 0 else set()
    else:
        raise ConfigError(f"stage trainable must be all, head or last:N, not {trainable!r}")
    for layer in backbone:
        on = id(layer) in keep
        if on and freeze_bn and isinstance(layer, keras.layers.BatchNormalization):
            on = False
        layer.trainable = on
    for layer in model.layers:
        if not is_backbone(layer):
            layer.trainable = True


def recalibrate_bn(model, x, batch: int = 128) -> int:
    """Give folded BatchNorm layers real statistics without changing the model's output.

    The shared MobileNetV2 1.0 weights have BN folded (gamma 1, beta = bias, mean 0, var 1),
    so BN can only run in inference mode. Here each backbone BN gets the mean/variance of
    its input on ``x`` (float model input) and gamma/beta are rescaled so that inference
    computes exactly the same function; training mode then normalizes with batch statistics
    close to those, so BN can be trained like an ordinary one. Returns the layers changed.
    """
    import keras
    import numpy as np

    bns = [layer for layer in model.layers
           if isinstance(layer, keras.layers.BatchNormalization) and is_backbone(layer)]
    if not bns:
        return 0
    probe = keras.Model(model.inputs, [bn.input for bn in bns])
    sums = None
    for i in range(0, len(x), batch):
        outs = probe(x[i : i + batch], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        stats = [(np.asarray(o, np.float64).reshape(-1, o.shape[-1])) for o in outs]
        part = [(a.sum(0), (a * a).sum(0), a.shape[0]) for a in stats]
        sums = part if sums is None else [(s0 + p0, s1 + p1, c + pc) for (s0, s1, c), (p0, p1, pc) in zip(sums, part)]
    for bn, (s0, s1, c) in zip(bns, sums):
        mu = s0 / c
        var = np.maximum(s1 / c - mu * mu, 0.0)
        gamma, beta, mm, mv = [np.asarray(w, np.float64) for w in bn.get_weights()]
        eps = bn.epsilon
        old = gamma / np.sqrt(mv + eps)
        new_gamma = old * np.sqrt(var + eps)
        new_beta = beta + old * (mu - mm)
        bn.set_weights([w.astype(np.float32) for w in (new_gamma, new_beta, mu, var)])
    return len(bns)


def penultimate(model):
    """A model from the input to the features that feed the final classifier."""
    import keras

    last = model.layers[-1]
    return keras.Model(model.inputs, last.input)
