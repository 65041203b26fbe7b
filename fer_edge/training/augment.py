"""Image augmentation from a recipe's ``[augment]`` table, as Keras preprocessing layers.

The layers run in the tf.data pipeline (not inside the model), so the saved model has
no augmentation layers and exports cleanly. Inputs are float pixels 0..255, NHWC.

Keys (all optional): hflip (bool), rotation (degrees), shift (fraction of width/height),
zoom (fraction, aspect kept), stretch (fraction, height and width zoomed independently),
shear (fraction, Keras 3 RandomShear), brightness (fraction: x * U(1-b, 1+b)),
contrast (fraction), fill ("nearest" | "reflect" | "constant").
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError

KNOWN = {"hflip", "rotation", "shift", "zoom", "stretch", "shear", "brightness", "contrast", "fill"}


def describe(cfg: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) or "none"


def build_augmenter(cfg: dict[str, Any], seed: int) -> Callable | None:
    """A function batch -> augmented batch (TF tensors), or None when nothing is enabled."""
    unknown = set(cfg) - KNOWN
    if unknown:
        raise ConfigError(f"unknown augment keys {sorted(unknown)}; known: {sorted(KNOWN)}")
    import keras
    import tensorflow as tf

    L = keras.layers
    fill = cfg.get("fill", "nearest")
    layers = []
    if cfg.get("hflip"):
        layers.append(L.RandomFlip("horizontal", seed=seed))
    if cfg.get("rotation"):
        layers.append(L.RandomRotation(float(cfg["rotation"]) / 360.0, fill_mode=fill, seed=seed + 1))
    if cfg.get("shift"):
        s = float(cfg["shift"])
        layers.append(L.RandomTranslation(s, s, fill_mode=fill, seed=seed + 2))
    if cfg.get("zoom"):
        z = float(cfg["zoom"])
        layers.append(L.RandomZoom((-z, z), fill_mode=fill, seed=seed + 3))
    if cfg.get("stretch"):
        z = float(cfg["stretch"])
        layers.append(L.RandomZoom((-z, z), (-z, z), fill_mode=fill, seed=seed + 4))
    if cfg.get("shear"):
        s = float(cfg["shear"])
        layers.append(L.RandomShear(x_factor=s, y_factor=0.0, fill_mode=fill, seed=seed + 5))
    brightness = float(cfg.get("brightness", 0.0))
    contrast = float(cfg.get("contrast", 0.0))
    if not layers and not brightness and not contrast:
        return None
    gen = tf.random.Generator.from_seed(seed + 6)

    def apply(x):
        for layer in layers:
            x = layer(x, training=True)
        if brightness:
            f = gen.uniform((tf.shape(x)[0], 1, 1, 1), 1.0 - brightness, 1.0 + brightness)
            x = x * f
        if contrast:
            f = gen.uniform((tf.shape(x)[0], 1, 1, 1), 1.0 - contrast, 1.0 + contrast)
            mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
            x = (x - mean) * f + mean
        return tf.clip_by_value(x, 0.0, 255.0)

    return apply


def augment_copies(x, cfg: dict[str, Any], copies: int, seed: int, batch: int = 256):
    """Offline augmentation (the JAFFE paper's way): ``copies`` augmented versions of each
    uint8 image, returned as uint8 (N*copies, h, w, c) with the source index of each copy."""
    import numpy as np
    import tensorflow as tf

    fn = build_augmenter(cfg, seed)
    if fn is None:
        raise ConfigError("offline augmentation needs at least one augment key")
    src = np.repeat(np.arange(len(x)), copies)
    out = np.empty((len(src),) + x.shape[1:], dtype=np.uint8)
    for i in range(0, len(src), batch):
        xb = tf.convert_to_tensor(x[src[i : i + batch]].astype(np.float32))
        out[i : i + batch] = np.clip(np.rint(fn(xb).numpy()), 0, 255).astype(np.uint8)
    return out, src
