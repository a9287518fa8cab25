"""The user's own images as a dataset: ``--dataset folder:PATH``, one sub-folder per class.

    ds = load_image_folder("photos", image_size=32)   # photos/cat/*.jpg, photos/dog/*.png, ...
    ds.labels                                           # ['cat', 'dog'] (sorted folder names)

``PATH/train/``, ``PATH/val/`` and ``PATH/test/`` (each with the same class folders) are used as given when
``train/`` exists; a missing ``val/`` or ``test/`` is drawn from the training images with the seed. Any image
OpenCV reads counts; grayscale, colour and alpha mix freely (colour wins: grayscale images are converted),
sizes are resized to the model input. Each file is decoded and resized exactly as ``edgecnn.runtime`` will treat
it when the model serves (EXIF orientation, 16-bit samples, alpha), so training sees the pixels the app will give
the model. Unreadable files are skipped, counted and reported; class folders under
``val/`` or ``test/`` that ``train/`` lacks are ignored with a warning.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rich.console import Console

from edgecnn.common.errors import EdgecnnError, ImageReadError, counted
from edgecnn.common.progress import map_on_cores
from edgecnn.runtime.preprocess import Preprocessing, read_image, resized
from edgecnn.workstation.dataset import Dataset, Split, seeded_split

SPLIT_FOLDERS = ("train", "val", "test")


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _unknown_classes(root: Path, classes: list[str]) -> list[str]:
    """The class folders of a val/ or test/ folder that training has no class for."""
    return [p.name for p in _class_folders(root) if p.name not in classes]


def _read(path: Path, size: int) -> np.ndarray | None:
    """An image as uint8 gray (H, W) where its channels are equal, else BGR (H, W, 3), at ``size`` x ``size``; None
    when it cannot be read. Decoded and resized as :mod:`edgecnn.runtime.classifier` will do it when serving the model
    (:func:`~edgecnn.runtime.preprocess.read_image`: EXIF orientation applied, 16-bit samples to 8, alpha dropped)."""
    try:
        image = read_image(path)
    except ImageReadError:
        return None
    if (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all():
        image = image[..., 0]
    return resized(image, size, size)


def _files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """Every file of ``root``'s class folders with its class index, in class then name order."""
    return [(path, index) for index, name in enumerate(classes) if (root / name).is_dir()
            for path in sorted((root / name).iterdir()) if path.is_file() and not path.name.startswith(".")]


def _read_splits(roots: dict[str, Path], classes: list[str], size: int, console: Console) -> dict:
    """Each split's (images, labels, unreadable paths). Images are decoded on as many threads as there are cores,
    as OpenCV releases the GIL (docs/training.md, "Datasets"). A terminal shows a bar."""
    files = [(split, path, index) for split, folder in roots.items() for path, index in _files(folder, classes)]
    decoded = map_on_cores(lambda file: _read(file[1], size), files, "reading images", console)
    read = {split: ([], [], []) for split in roots}
    for (split, path, index), image in zip(files, decoded, strict=True):
        images, labels, skipped = read[split]
        if image is None:
            skipped.append(path)
        else:
            images.append(image)
            labels.append(index)
    return read


def _stack(images: list[np.ndarray], colour: bool) -> np.ndarray:
    if colour:
        images = [cv2.cvtColor(i, cv2.COLOR_GRAY2BGR) if i.ndim == 2 else i for i in images]
    return np.stack(images).astype(np.uint8)


def load_image_folder(path: str | Path, image_size: int = 28, seed: int = 0, console: Console | None = None):
    """Read ``path``'s class folders (see the module doc) into a :class:`~edgecnn.workstation.data.Dataset`."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise EdgecnnError(f"image folder not found: {root}")
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in _class_folders(train_root) if p.name not in SPLIT_FOLDERS]
    if len(classes) < 2:
        raise EdgecnnError(f"{train_root} needs at least 2 class sub-folders with images, found {len(classes)}"
                           f"{': ' + classes[0] if classes else ''}")
    roots = {"train": train_root} | {s: root / s for s in ("val", "test") if train_root != root and (root / s).is_dir()}
    out = console or Console(stderr=True)
    read = _read_splits(roots, classes, image_size, out)
    skipped = [p for _, _, s in read.values() for p in s]
    train_images, train_labels, _ = read["train"]
    if not train_images:
        raise EdgecnnError(f"no readable images in the class folders of {train_root} "
                           f"({counted(len(skipped), 'unreadable file')} skipped)")
    counts = np.bincount(train_labels, minlength=len(classes))
    if (counts == 0).any():
        raise EdgecnnError(f"class folder(s) without readable images: "
                           f"{', '.join(c for c, n in zip(classes, counts, strict=True) if n == 0)}")
    warnings = []
    if skipped:
        warnings.append(f"skipped {counted(len(skipped), 'unreadable file')} in {root}, e.g. {skipped[0].name}")
    warnings += [f"ignored {roots[s] / name}: {name} is not a class folder of {train_root}"
                 for s in ("val", "test") if s in roots for name in _unknown_classes(roots[s], classes)]
    for warning in warnings:  # warned only when training goes on: a failure above is one line
        out.print(f"warning: {warning}", markup=False, soft_wrap=True)
    colour = any(i.ndim == 3 for imgs, _, _ in read.values() for i in imgs)
    arrays = {s: (_stack(imgs, colour), np.asarray(lbls, np.int64)) for s, (imgs, lbls, _) in read.items() if imgs}
    splits = _splits(arrays, seed)
    return Dataset(
        name=f"folder:{root}",
        labels=classes,
        preprocessing=Preprocessing(height=image_size, width=image_size, channels=3 if colour else 1),
        splits=splits,
        record={"name": f"folder:{root.resolve()}", "source": "image folders, one per class", "image_size": image_size,
                "seed": seed, "skipped": len(skipped), "sizes": {k: len(v.labels) for k, v in splits.items()}},
        augmentation="flip-shift" if colour else "none",
    )


def _splits(arrays: dict, seed: int) -> dict:
    """Use the given val/test folders; draw the missing ones from train with the seed."""
    from sklearn.model_selection import train_test_split

    x, y = arrays["train"]
    if "val" in arrays and "test" in arrays:
        return {s: Split(*arrays[s]) for s in SPLIT_FOLDERS}
    if len(y) < 10:
        raise EdgecnnError(f"only {len(y)} readable training images: at least 10 are needed to split them")
    if "val" not in arrays and "test" not in arrays:
        return seeded_split(x, y, seed, val_fraction=0.1, test_fraction=0.2)
    missing, present = ("val", "test") if "val" not in arrays else ("test", "val")
    stratify = y if np.bincount(y).min() >= 2 else None
    train_x, other_x, train_y, other_y = train_test_split(x, y, test_size=0.15, stratify=stratify, random_state=seed)
    return {"train": Split(train_x, train_y), missing: Split(other_x, other_y), present: Split(*arrays[present])}
