"""Dataset readers, splits and leakage checks (numpy + OpenCV only).

    from fer_edge.data import load_dataset
    ds = load_dataset("../shared/data/fer2013/fer2013.csv.gz")   # kind detected
    train = ds.split("train")
"""

from .dataset import BadItem, FaceDataset, select, stratified_holdout
from .loader import KINDS, detect_kind, load_dataset

__all__ = ["BadItem", "FaceDataset", "KINDS", "detect_kind", "load_dataset", "select", "stratified_holdout"]
