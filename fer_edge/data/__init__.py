"""Dataset readers, splits and leakage checks (numpy + OpenCV only)."""

from .dataset import BadItem, FaceDataset

__all__ = ["BadItem", "FaceDataset"]
