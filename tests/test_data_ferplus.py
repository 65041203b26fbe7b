"""FER+ votes: majority and soft-label modes, row alignment with fer2013.csv."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data.ferplus import read_ferplus, votes_to_labels
from fer_edge.errors import DataError
from fer_edge.labels import LABEL_SETS


@pytest.fixture(scope="module")
def ferplus_majority(fer2013, ferplus_csv):
    return read_ferplus(None, ferplus_csv, mode="majority", fer2013=fer2013)


def test_majority_drops_unknown_nf_and_ties(ferplus_majority, fer2013):
    ds = ferplus_majority
    assert ds.label_names == LABEL_SETS["ferplus8"]
    # measured on the shared fer2013new.csv (35,887 rows): 689 unknown/not-a-face,
    # 3,786 without a >50% majority after removing single-vote outliers
    assert ds.info["dropped"] == {
        "no votes after outlier removal": 0,
        "unknown or not-a-face": 689,
        "no majority (top class <= half the votes)": 3786,
    }
    assert len(ds) == 35887 - 689 - 3786 == 31412
    sizes = {s: sum(c.values()) for s, c in ds.counts().items()}
    assert sizes == {"Training": 25060, "PublicTest": 3199, "PrivateTest": 3153}
    assert ds.counts()["Training"]["contempt"] == 119
    assert (ds.labels >= 0).all() and ds.soft_labels is None
    # images are the fer2013 pixels of the same row
    row = int(ds.sources[100].rsplit("row ", 1)[1])
    np.testing.assert_array_equal(ds.images[100], fer2013.images[row])
    assert ds.splits[100] == fer2013.splits[row]


def test_soft_mode_vote_distributions(fer2013, ferplus_csv, ferplus_majority):
    ds = read_ferplus(None, ferplus_csv, mode="soft", fer2013=fer2013)
    assert len(ds) == 35887 - 689
    assert ds.soft_labels.shape == (len(ds), 8)
    np.testing.assert_allclose(ds.soft_labels.sum(1), 1.0, atol=1e-5)
    no_majority = ds.labels == -1
    assert no_majority.sum() == 3786
    # where there is a majority label it is the soft argmax
    hard = ~no_majority
    assert (ds.soft_labels[hard].argmax(1) == ds.labels[hard]).all()


def test_vote_rules_follow_reference():
    # columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
    votes = np.array([
        [6, 0, 1, 1, 0, 0, 0, 0, 2, 0],   # single votes removed -> neutral 6/8 -> neutral
        [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],   # 4/9 after outliers: no majority
        [0, 0, 0, 0, 0, 0, 0, 0, 3, 7],   # not a face
        [0, 0, 0, 0, 0, 0, 0, 5, 5, 0],   # contempt ties unknown -> dropped
    ])
    labels, soft, keep, _ = votes_to_labels(votes, "majority")
    names = LABEL_SETS["ferplus8"]
    assert keep.tolist() == [True, False, False, False]
    assert names[labels[0]] == "neutral"
    labels, soft, keep, _ = votes_to_labels(votes, "soft")
    assert keep.tolist() == [True, True, False, False]
    assert labels[1] == -1
    assert soft[1][names.index("neutral")] == pytest.approx(4 / 9)


def test_misaligned_files_are_refused(tmp_path, fer2013, ferplus_csv):
    lines = ferplus_csv.read_text().splitlines()
    short = tmp_path / "fer2013new.csv"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="row-aligned"):
        read_ferplus(None, short, fer2013=fer2013)
    swapped = tmp_path / "swapped.csv"
    body = lines[1:]
    body[0] = body[0].replace("Training", "PublicTest", 1)
    swapped.write_text("\n".join([lines[0], *body]) + "\n")
    with pytest.raises(DataError, match=r"row 0: Usage 'PublicTest'"):
        read_ferplus(None, swapped, fer2013=fer2013)


def test_unknown_mode():
    with pytest.raises(DataError, match="majority, soft"):
        read_ferplus(None, "x.csv", mode="vote")
