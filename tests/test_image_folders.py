"""``--dataset folder:PATH``: the user's own class folders, with every bad-input class."""

import _thread
import io
import json
import time

import cv2
import numpy as np
import pytest
from rich.console import Console
from rich.text import Text

from edgecnn.common.errors import EdgecnnError
from edgecnn.workstation.data import load_dataset
from edgecnn.workstation.image_folders import load_image_folder
from tests.conftest import run_cli


def _images(folder, count, colour, size=(20, 24), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        shape = (*size, 3) if colour else size
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, shape, dtype=np.uint8))


def test_class_folders_with_a_seeded_split(tmp_path):
    for name in ("cat", "dog", "emu"):
        _images(tmp_path / name, 20, colour=False)
    ds = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert ds.labels == ["cat", "dog", "emu"]
    assert {s: len(ds.split(s).labels) for s in ("train", "val", "test")} == {"train": 42, "val": 6, "test": 12}
    assert ds.inputs("train").shape == (42, 16, 16, 1) and ds.augmentation == "none"
    again = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert np.array_equal(again.split("test").images, ds.split("test").images)


def test_mixed_colour_gray_and_sizes_become_colour(tmp_path):
    _images(tmp_path / "a", 8, colour=True, size=(40, 30))
    _images(tmp_path / "b", 8, colour=False, size=(10, 12))
    ds = load_dataset(f"folder:{tmp_path}", image_size=32)
    assert ds.preprocessing.channels == 3 and ds.augmentation == "flip-shift"
    assert ds.split("train").images.shape[1:] == (32, 32, 3)


def test_given_val_and_test_folders_are_used(tmp_path, capsys):
    for split, count in (("train", 12), ("val", 3), ("test", 4)):
        for name in ("x", "y"):
            _images(tmp_path / split / name, count, colour=False)
    _images(tmp_path / "test" / "z", 2, colour=False)  # a class that training never saw
    ds = load_dataset(f"folder:{tmp_path}")
    assert [len(ds.split(s).labels) for s in ("train", "val", "test")] == [24, 6, 8]
    assert ds.labels == ["x", "y"]
    assert capsys.readouterr().err.strip() == (f"warning: ignored {tmp_path / 'test' / 'z'}: z is not a class folder "
                                               f"of {tmp_path / 'train'}")


def test_images_decoded_in_parallel_keep_their_split_class_and_order(tmp_path):
    """Each image is filled with a value that names its split, class and file: read on several threads, every one
    must come back beside its own label, in its split, in name order, with a bar on a terminal."""
    for s, split in enumerate(("train", "val", "test")):
        for c, name in enumerate(("a", "b")):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(12 if split == "train" else 4):
                value = 100 * s + 20 * c + i
                cv2.imwrite(str(tmp_path / split / name / f"{i:02d}.png"), np.full((8, 8), value, np.uint8))
    (tmp_path / "train" / "b" / "05b.png").write_bytes(b"junk")  # unreadable, between 05.png and 06.png
    screen = Console(file=io.StringIO(), force_terminal=True, width=100)
    ds = load_image_folder(tmp_path, image_size=8, console=screen)
    for s, split in enumerate(("train", "val", "test")):
        images, labels = ds.split(split).images, ds.split(split).labels
        values = images.reshape(len(images), -1).max(axis=1).astype(int)
        assert (images.reshape(len(images), -1).min(axis=1) == values).all()  # one value per image
        expected = [100 * s + 20 * c + i for c in (0, 1) for i in range(12 if split == "train" else 4)]
        assert sorted(values.tolist()) == expected  # each file once, in its own split
        assert ((values - 100 * s) // 20 == labels).all()  # beside its own class
    assert ds.record["skipped"] == 1
    shown = Text.from_ansi(screen.file.getvalue()).plain
    assert "reading images" in shown and "41/41" in shown  # 2 x (12 + 4 + 4) images and the unreadable file


def test_ctrl_c_while_reading_drops_the_images_still_queued(tmp_path, monkeypatch):
    from edgecnn.workstation import image_folders

    for name in ("a", "b"):
        _images(tmp_path / name, 100, colour=False)
    decoded = []

    def slow_read(path, size):
        decoded.append(path)
        time.sleep(0.01)
        if len(decoded) == 3:
            _thread.interrupt_main()  # Ctrl-C, which the main thread gets while it waits for results
        return np.zeros((size, size), np.uint8)

    monkeypatch.setattr(image_folders, "_read", slow_read)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(tmp_path, image_size=8)
    # not all 200: leaving the loop over the pool's results cancels the images still queued
    assert len(decoded) < 20


def test_unreadable_images_are_skipped_counted_and_reported(tmp_path, capsys):
    for name in ("a", "b"):
        _images(tmp_path / name, 10, colour=False)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "b" / "notes.txt").write_text("hello")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.record["skipped"] == 2 and sum(len(ds.split(s).labels) for s in ("train", "val", "test")) == 20
    assert "skipped 2 unreadable files" in capsys.readouterr().err


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "needs at least 2 class sub-folders"),
    (lambda root: _images(root / "only", 10, colour=False), "at least 2 class sub-folders with images, found 1: only"),
    (lambda root: [(root / n).mkdir() or (root / n / "x.png").write_bytes(b"junk") for n in ("a", "b")],
     "no readable images"),
    (lambda root: [_images(root / "a", 10, colour=False), (root / "b").mkdir()], "without readable images: b"),
    (lambda root: [_images(root / n, 2, colour=False) for n in ("a", "b")], "at least 10 are needed"),
], ids=["empty", "one-class", "all-unreadable", "empty-class", "too-few"])
def test_bad_folders_fail_in_one_line(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(EdgecnnError, match=message):
        load_dataset(f"folder:{tmp_path}")


def test_missing_folder_and_unknown_name():
    with pytest.raises(EdgecnnError, match="image folder not found"):
        load_dataset("folder:/nonexistent/photos")
    with pytest.raises(EdgecnnError, match="choose from: digits, mnist, fashion_mnist, cifar10, folder:PATH"):
        load_dataset("imagenet")


@pytest.mark.slow
def test_pipeline_on_folders_reads_them_once_and_shows_bracketed_names_as_they_are(tmp_path, capsys):
    """Train, export and bench each need the folder's splits; the pipeline reads the images (and warns of the
    unreadable one) once, and benches every artifact on the same test split it trained against. Names with
    brackets are the user's text, not rich markup: "[/]" once ended a finished run in a MarkupError."""
    root = tmp_path / "my[/]photos"  # a folder "my[" holding "]photos"
    for name in ("[bold]x", "y"):
        _images(root / name, 15, colour=True)
    (root / "y" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "run[/]"
    code = run_cli(["pipeline", "--dataset", f"folder:{root}", "--epochs", "1", "--out", str(out), "--runs", "3",
                    "--warmup", "0"])
    shown = capsys.readouterr()
    assert code == 0
    assert shown.err.count("warning: skipped 1 unreadable file") == 1
    assert f"train edge-cnn on folder:{root}" in shown.out and f"report: {out / 'report.json'}" in shown.out
    test_size = json.loads((out / "manifest.json").read_text())["dataset"]["sizes"]["test"]
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert len(rows) == 5 and {r["n"] for r in rows} == {test_size} and test_size == 6
    image = root / "[bold]x" / "0.png"
    assert run_cli(["predict", str(out / "model_int8.tflite"), str(image), "--top-k", "2"]) == 0
    shown = capsys.readouterr().out
    assert str(image) in shown and "[bold]x (" in shown


@pytest.mark.parametrize("colour", [False, True])
def test_training_sees_each_image_as_the_runtime_will(tmp_path, colour):
    """A model must learn from the pixels it will be served: each file of a folder dataset (8 or 16 bits, with or
    without alpha, larger or smaller than the model, or both, a phone's JPEG turned by its EXIF orientation) becomes
    the same model input in the dataset as when edgecnn.runtime reads the file (read_image, then the manifest's
    preprocessing)."""
    from PIL import Image

    from edgecnn.runtime.preprocess import read_image

    rng = np.random.default_rng(0)
    shapes = [(40, 20, np.uint8, 1), (30, 30, np.uint16, 1), (13, 50, np.uint16, 4 if colour else 1),
              (28, 28, np.uint8, 3 if colour else 1), (9, 9, np.uint8, 1)]
    test_files = []
    for split in ("train", "val", "test"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i, (h, w, depth, channels) in enumerate(shapes):
                image = rng.integers(0, np.iinfo(depth).max, (h, w, channels), endpoint=True).astype(depth)
                image[: h // 2] //= 4  # a darker half: 16-bit pixels with a maximum far from 65535
                path = folder / f"{i}.png"
                assert cv2.imwrite(str(path), image)
                if split == "test":
                    test_files.append(path)
            turned = Image.fromarray(rng.integers(0, 256, (20, 40, 3 if colour else 1), np.uint8).squeeze())
            exif = turned.getexif()
            exif[0x0112] = 6  # orientation: shown turned 90 degrees clockwise
            turned.save(folder / "turned.jpg", exif=exif.tobytes())
            if split == "test":
                test_files.append(folder / "turned.jpg")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.preprocessing.channels == (3 if colour else 1)
    served = ds.preprocessing([read_image(path) for path in test_files])
    np.testing.assert_array_equal(ds.inputs("test"), served)
