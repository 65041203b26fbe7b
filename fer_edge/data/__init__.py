"""Dataset readers, splits and leakage checks (numpy + OpenCV only).

    from fer_edge.data import load_dataset, protocol_selectors, select
    ds = load_dataset("../shared/data/fer2013/fer2013.csv.gz")    # kind detected; ~5 s
    sel = protocol_selectors(ds)                 # {"train": {...}, "val": {...}, "test": {...}}
    train = select(ds, sel["train"])             # selectors go into bundle provenance

    jaffe = load_dataset("../shared/data/jaffe")                    # YuNet face crops, 128x128
    for train_mask, test_mask, name in leave_one_subject_out(jaffe):
        train_sel, test_sel = fold_selectors(jaffe, test_mask)

Readers: fer2013, ferplus, jaffe, ckplus, imagefolder (modules of the same names);
``cache`` (``fer-edge data prepare``), ``leakage`` (duplicates), ``report`` (``data info``).
"""

from .cache import load_npz, save_npz
from .dataset import BadItem, FaceDataset, select, select_role, stratified_holdout
from .leakage import leakage_report
from .loader import KINDS, detect_kind, load_dataset
from .provenance import names_data, provenance_data, provenance_dataset
from .splits import fold_selectors, folds, leave_one_subject_out, protocol_selectors, subject_kfold

__all__ = [
    "BadItem", "FaceDataset", "KINDS", "detect_kind", "fold_selectors", "folds", "leakage_report",
    "leave_one_subject_out", "load_dataset", "load_npz", "names_data", "protocol_selectors", "provenance_data", "provenance_dataset", "save_npz", "select",
    "select_role",
    "stratified_holdout", "subject_kfold",
]
