"""FER2013 csv.gz reader against the published split x class counts.

The load time of the full csv.gz is measured and printed by test_data_cli (it reads the file anew).
"""

from __future__ import annotations

import numpy as np

from fer_edge.data import detect_kind, select
from fer_edge.labels import FER7

PUBLISHED = {
    "Training": dict(zip(FER7, (3995, 436, 4097, 7215, 4830, 3171, 4965))),
    "PublicTest": dict(zip(FER7, (467, 56, 496, 895, 653, 415, 607))),
    "PrivateTest": dict(zip(FER7, (491, 55, 528, 879, 594, 416, 626))),
}


def test_split_sizes_and_class_counts(fer2013):
    assert len(fer2013) == 35887
    assert fer2013.counts() == PUBLISHED
    assert {s: sum(c.values()) for s, c in fer2013.counts().items()} == {
        "Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert fer2013.images.shape == (35887, 48, 48) and fer2013.images.dtype == np.uint8
    assert fer2013.label_names == FER7
    assert fer2013.skipped == []


def test_roles_and_sources(fer2013):
    assert len(fer2013.split("train")) == 28709
    assert len(select(fer2013, {"split": "test"})) == 3589
    # sources name the 0-based data row, as FER+ and provenance.csv count them
    assert fer2013.sources[0].endswith(":row 0") and fer2013.sources[-1].endswith(":row 35886")


def test_kind_is_detected_from_file_and_folder(fer2013_csv):
    assert detect_kind(fer2013_csv) == "fer2013"
    assert detect_kind(fer2013_csv.parent) == "fer2013"  # load_dataset on the file: see the CLI test
