"""The canonical emotion label set and the maps between datasets.

Every reader converts its dataset's names to these canonical names; models store
their own ordered label list in their manifest, so indices are never guessed.
"""

from __future__ import annotations

from .errors import DataError

# FER2013's order (emotion column 0..6); contempt exists only in CK+ and FER+.
FER7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CANONICAL: tuple[str, ...] = FER7 + ("contempt",)

ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "ha": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "neutral": "neutral",
    "ne": "neutral",
    "contempt": "contempt",
}

# Named label sets a recipe or protocol can ask for.
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "fer7": FER7,
    # The 4-class subset of the custom-CNN paper ("Deep Learning: Facial Emotion Detection").
    "fer4": ("happy", "sad", "neutral", "surprise"),
    "ferplus8": FER7 + ("contempt",),
}


def canonical(name: str, where: str = "") -> str:
    """Map a dataset's label name to the canonical name, or fail naming the source."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    loc = f" in {where}" if where else ""
    raise DataError(
        f"unknown emotion label {name!r}{loc}; known labels: {', '.join(CANONICAL)} "
        f"(aliases: {', '.join(sorted(k for k in ALIASES if len(k) > 2 and k not in CANONICAL))})"
    )


def label_set(name: str) -> tuple[str, ...]:
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise DataError(f"unknown label set {name!r}; choose one of {', '.join(LABEL_SETS)}") from None
