"""Dataset readers, splits and leakage checks (numpy + OpenCV only)."""

from .dataset import BadItem, FaceDataset, select, stratified_holdout

__all__ = ["BadItem", "FaceDataset", "select", "stratified_holdout"]
