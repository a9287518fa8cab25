"""How the training defaults do on a small image folder, the dataset a user brings on day one. Several seeds.

    python benchmarks/small_data.py --seeds 3

Writes four folder datasets into a temporary folder, each read with `--dataset folder:PATH` (split 70/10/20 by the
seed): `shapes-2` (60 circles and 60 squares, 64x64 colour, drawn with OpenCV at random places, sizes and colours
on noise), `shapes-3` (40 each of circles, squares and triangles), and `digits-20` and `digits-50` (the first 20 or
50 of each class of scikit-learn's handwritten digits, as PNG files). Trains the default model on each, seeds
0 .. N-1, with the defaults as they were (20 epochs, patience 5) and as they are (epochs and patience settled for
the dataset's optimizer steps, `TrainConfig.settled`), and reports test accuracy per run and its median.
Writes benchmarks/results/small_data.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from sklearn.datasets import load_digits

from edgecnn.deploy.bench import accuracy_percent
from edgecnn.runtime.manifest import tool_versions
from edgecnn.workstation.image_folders import load_image_folder
from edgecnn.workstation.training import TrainConfig, train

RESULTS = Path(__file__).parent / "results"
CONFIGS = {"before": TrainConfig(epochs=20, patience=5), "now": TrainConfig()}


def write_shapes(folder: Path, shapes: list[str], per_class: int, seed: int) -> None:
    """``per_class`` 64x64 colour images of each shape, filled, at a random place, size and colour, on noise."""
    rng = np.random.default_rng(seed)
    for shape in shapes:
        (folder / shape).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 80, (64, 64, 3), dtype=np.uint8)
            colour = tuple(int(v) for v in rng.integers(120, 256, 3))
            x, y, r = (int(v) for v in (*rng.integers(20, 44, 2), rng.integers(8, 18)))
            if shape == "circle":
                cv2.circle(image, (x, y), r, colour, -1)
            elif shape == "square":
                cv2.rectangle(image, (x - r, y - r), (x + r, y + r), colour, -1)
            else:
                cv2.fillPoly(image, [np.array([[x, y - r], [x - r, y + r], [x + r, y + r]], np.int32)], colour)
            cv2.imwrite(str(folder / shape / f"{i}.png"), image)


def write_digits(folder: Path, per_class: int) -> None:
    """The first ``per_class`` images of each digit, 8x8 grey levels 0-16 scaled to 0-255."""
    digits = load_digits()
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:per_class]):
            cv2.imwrite(str(folder / str(label) / f"{i}.png"), (image * 255 / 16).astype(np.uint8))


def one_run(name: str, path: Path, config_name: str, seed: int) -> dict:
    ds = load_image_folder(path, seed=seed)
    result = train(ds, replace(CONFIGS[config_name], seed=seed))
    probs = result.model.predict(ds.inputs("test"), verbose=0)
    return {"dataset": name, "defaults": config_name, "seed": seed, "train_images": len(ds.split("train").labels),
            "test_images": len(ds.split("test").labels), "epochs": result.config.epochs,
            "patience": result.config.patience, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "val_accuracy": round(100 * result.val_accuracy, 2),
            "test_accuracy": round(accuracy_percent(ds.split("test").labels, probs), 2),
            "seconds": round(result.seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: Path(tmp) / name for name in ("shapes-2", "shapes-3", "digits-20", "digits-50")}
        write_shapes(folders["shapes-2"], ["circle", "square"], 60, seed=0)
        write_shapes(folders["shapes-3"], ["circle", "square", "triangle"], 40, seed=1)
        write_digits(folders["digits-20"], 20)
        write_digits(folders["digits-50"], 50)
        runs = [one_run(name, path, config, seed) for name, path in folders.items()
                for seed in range(args.seeds) for config in CONFIGS]
    medians = {f"{name} {config}": float(np.median([r["test_accuracy"] for r in runs
                                                    if r["dataset"] == name and r["defaults"] == config]))
               for name in folders for config in CONFIGS}
    RESULTS.mkdir(exist_ok=True)
    document = {"seeds": args.seeds, "runs": runs, "median_test_accuracy": medians, "versions": tool_versions()}
    (RESULTS / "small_data.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["| dataset | train images | defaults | seed | epochs, patience | best epoch | epochs run | val % "
             "| test % | train s |", "|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['dataset']} | {r['train_images']} | {r['defaults']} | {r['seed']} | {r['epochs']}, "
              f"{r['patience']} | {r['best_epoch']} | {r['epochs_run']} | {r['val_accuracy']:.2f} | "
              f"{r['test_accuracy']:.2f} | {r['seconds']} |" for r in runs]
    summary = ["| dataset | defaults | median test % |", "|---|---|---:|"]
    summary += [f"| {' | '.join(key.rsplit(' ', 1))} | {value:.2f} |" for key, value in medians.items()]
    (RESULTS / "small_data.md").write_text(
        "# The training defaults on small image folders, default model\n\n"
        f"Command: `python benchmarks/small_data.py --seeds {args.seeds}`\n\n"
        "Before: 20 epochs, patience 5, whatever the dataset. Now: those, or as many epochs as 300 optimizer steps "
        "take and a patience of 75 steps' worth, where an epoch is fewer than 15 steps (`TrainConfig.settled`).\n\n"
        + "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
