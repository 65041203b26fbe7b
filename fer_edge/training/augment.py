"""Image augmentation from a recipe's ``[augment]`` table, as Keras preprocessing layers.

The layers run in the tf.data pipeline (not inside the model), so the saved model has
no augmentation layers and exports cleanly. Inputs are float pixels 0..255, NHWC.

Keys (all optional): hflip (bool), rotation (degrees), shift (fraction of width/height),
zoom (fraction, aspect kept), stretch (fraction, height and width zoomed independently),
shear (fraction, Keras 3 RandomShear), brightness (fraction: x * U(1-b, 1+b)),
contrast (fraction), fill ("nearest" | "reflect" | "constant"),
random_crop (bool: with ``[input] crop``, a uniformly placed crop of the resized face instead
of the centre one), erasing (probability of random erasing, Zhong et al. 2020: one rectangle
of 2-25% of the image, aspect 0.3-3.3, filled with uniform noise).

When the recipe's input has a ``crop``, the augmenter's last step cuts it (randomly or at the
centre), so geometric augmentation sees the whole resized face first.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError

KNOWN = {"hflip", "rotation", "shift", "zoom", "stretch", "shear", "brightness", "contrast", "fill",
         "random_crop", "erasing"}


def describe(cfg: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) or "none"


def build_augmenter(cfg: dict[str, Any], seed: int, crop: tuple[int, int] | None = None) -> Callable | None:
    """A function batch -> augmented batch (TF tensors), or None when nothing is enabled.

    ``crop`` (h, w): the model input cut from each resized face (the recipe's ``[input] crop``).
    """
    unknown = set(cfg) - KNOWN
    if unknown:
        raise ConfigError(f"unknown augment keys {sorted(unknown)}; known: {sorted(KNOWN)}")
    import keras
    import tensorflow as tf

    L = keras.layers
    F32 = "float32"  # pixels stay float32 under a mixed-precision policy: augmentation is not the model
    fill = cfg.get("fill", "nearest")
    layers = []
    if cfg.get("hflip"):
        layers.append(L.RandomFlip("horizontal", seed=seed, dtype=F32))
    if cfg.get("rotation"):
        layers.append(L.RandomRotation(float(cfg["rotation"]) / 360.0, fill_mode=fill, seed=seed + 1, dtype=F32))
    if cfg.get("shift"):
        s = float(cfg["shift"])
        layers.append(L.RandomTranslation(s, s, fill_mode=fill, seed=seed + 2, dtype=F32))
    if cfg.get("zoom"):
        z = float(cfg["zoom"])
        layers.append(L.RandomZoom((-z, z), fill_mode=fill, seed=seed + 3, dtype=F32))
    if cfg.get("stretch"):
        z = float(cfg["stretch"])
        layers.append(L.RandomZoom((-z, z), (-z, z), fill_mode=fill, seed=seed + 4, dtype=F32))
    if cfg.get("shear"):
        s = float(cfg["shear"])
        layers.append(L.RandomShear(x_factor=s, y_factor=0.0, fill_mode=fill, seed=seed + 5, dtype=F32))
    brightness = float(cfg.get("brightness", 0.0))
    contrast = float(cfg.get("contrast", 0.0))
    erasing = float(cfg.get("erasing", 0.0))
    if not 0.0 <= erasing <= 1.0:
        raise ConfigError(f"augment erasing is a probability in [0, 1], not {erasing}")
    random_crop = bool(cfg.get("random_crop", False))
    if random_crop and not crop:
        raise ConfigError("augment random_crop needs [input] crop (the model input cut from the resized face)")
    if not layers and not brightness and not contrast and not erasing and not crop:
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
        x = tf.clip_by_value(x, 0.0, 255.0)
        if crop:
            x = _crop(x, crop, gen if random_crop else None)
        if erasing:
            x = _erase(x, erasing, gen)
        return x

    return apply


def _crop(x, crop: tuple[int, int], gen):
    """(N,H,W,C) -> (N,h,w,C): the centre crop (``gen`` None) or one uniformly placed crop per
    image. Nearest-neighbour crop_and_resize at integer-aligned boxes copies pixels exactly."""
    import tensorflow as tf

    h, w = int(crop[0]), int(crop[1])
    n = tf.shape(x)[0]
    H, W = x.shape[1], x.shape[2]
    if gen is None:
        top = tf.fill([n], float((H - h) // 2))
        left = tf.fill([n], float((W - w) // 2))
    else:
        top = tf.floor(gen.uniform([n], 0.0, float(H - h + 1)))
        left = tf.floor(gen.uniform([n], 0.0, float(W - w + 1)))
    boxes = tf.stack([top / (H - 1), left / (W - 1), (top + h - 1) / (H - 1), (left + w - 1) / (W - 1)], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(n), (h, w), method="nearest")


def _erase(x, prob: float, gen, area=(0.02, 0.25), aspect=(0.3, 3.3)):
    """Random erasing on a batch: with probability ``prob`` one rectangle per image gets noise."""
    import math

    import tensorflow as tf

    n = tf.shape(x)[0]
    H, W = x.shape[1], x.shape[2]
    frac = gen.uniform([n], *area)
    ratio = tf.exp(gen.uniform([n], math.log(aspect[0]), math.log(aspect[1])))
    eh = tf.minimum(tf.round(tf.sqrt(frac * H * W * ratio)), H)
    ew = tf.minimum(tf.round(tf.sqrt(frac * H * W / ratio)), W)
    top = tf.floor(gen.uniform([n]) * (H - eh + 1))
    left = tf.floor(gen.uniform([n]) * (W - ew + 1))
    on = tf.cast(gen.uniform([n]) < prob, tf.float32)
    rows = tf.range(H, dtype=tf.float32)[None, :, None]
    cols = tf.range(W, dtype=tf.float32)[None, None, :]
    t, le = top[:, None, None], left[:, None, None]
    inside = ((rows >= t) & (rows < t + eh[:, None, None]) & (cols >= le) & (cols < le + ew[:, None, None]))
    mask = (tf.cast(inside, tf.float32) * on[:, None, None])[..., None]
    noise = gen.uniform(tf.shape(x), 0.0, 255.0)
    return x * (1.0 - mask) + noise * mask


def augment_copies(x, cfg: dict[str, Any], copies: int, seed: int, batch: int = 256, cache=None):
    """Offline augmentation (the JAFFE paper's way): ``copies`` augmented versions of each
    uint8 image, returned as uint8 (N*copies, h, w, c) with the source index of each copy.

    ``cache``: a folder (the run's) keeping the copies, so ``--resume`` does not redo them: the
    paper's 79,449 copies at 224 px take a few minutes on 2 cores (6,390 took ~13 s in the jaffe_dev rows' logs)
    and about 4 GB."""
    import numpy as np
    import tensorflow as tf

    from .array_cache import array_key, cached_array

    fn = build_augmenter(cfg, seed)
    if fn is None:
        raise ConfigError("offline augmentation needs at least one augment key")
    src = np.repeat(np.arange(len(x)), copies)

    def compute():
        out = np.empty((len(src),) + x.shape[1:], dtype=np.uint8)
        for i in range(0, len(src), batch):
            xb = tf.convert_to_tensor(x[src[i : i + batch]].astype(np.float32))
            out[i : i + batch] = np.clip(np.rint(fn(xb).numpy()), 0, 255).astype(np.uint8)
        return out

    return cached_array(cache, f"copies-{array_key(x, cfg, copies, seed)}", compute), src
