"""How long a folder dataset of photos takes to read: decoded on every core (as `--dataset folder:PATH` does) against
one file after another, on the same files.

    python benchmarks/folder_decode.py --images 600 --rounds 3

Writes IMAGES JPEG photos of 1024x768 (smooth random colour fields, quality 90) into three class folders of a
temporary folder, then alternates ROUNDS times: `load_image_folder` (each file read as the runtime reads it, on as
many threads as there are cores) and the same reader called on each file in turn. Reports each round and the
medians. Writes benchmarks/results/folder_decode.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console

from edgecnn.runtime.manifest import tool_versions
from edgecnn.workstation.image_folders import _read, load_image_folder

RESULTS = Path(__file__).parent / "results"
SIZE = 32  # the model input each image is resized to


def write_photos(folder: Path, count: int) -> list[Path]:
    """``count`` 1024x768 JPEGs over three class folders: upscaled, blurred noise, so JPEG has real work."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"c{i % 3}" / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        small = rng.integers(0, 256, (48, 64, 3), np.uint8)
        image = cv2.GaussianBlur(cv2.resize(small, (1024, 768), interpolation=cv2.INTER_CUBIC), (5, 5), 0)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:
        quiet = Console(file=sink)  # no bar in the timing
        paths = write_photos(Path(tmp), args.images)
        parallel, serial = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            load_image_folder(tmp, SIZE, console=quiet)
            parallel.append(time.perf_counter() - start)
            start = time.perf_counter()
            for path in paths:
                _read(path, SIZE)
            serial.append(time.perf_counter() - start)
    result = {
        "images": args.images, "size": "1024x768 JPEG", "cores": os.cpu_count(),
        "parallel_s": [round(s, 3) for s in parallel], "serial_s": [round(s, 3) for s in serial],
        "parallel_median_s": round(statistics.median(parallel), 3),
        "serial_median_s": round(statistics.median(serial), 3),
        "versions": tool_versions(),
    }
    result["speedup"] = round(result["serial_median_s"] / result["parallel_median_s"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "folder_decode.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "folder_decode.md").write_text(
        f"# Reading a folder dataset: {args.images} JPEG photos of 1024x768\n\n"
        f"Command: `python benchmarks/folder_decode.py --images {args.images} --rounds {args.rounds}` "
        f"({result['cores']} cores)\n\n"
        "| reader | rounds (s) | median (s) |\n|---|---|---:|\n"
        f"| `load_image_folder` (every core) | {', '.join(map(str, result['parallel_s']))} | "
        f"{result['parallel_median_s']} |\n"
        f"| one file after another | {', '.join(map(str, result['serial_s']))} | {result['serial_median_s']} |\n\n"
        f"Speed-up of the medians: {result['speedup']}x.\n")
    print(json.dumps({k: v for k, v in result.items() if k != "versions"}))


if __name__ == "__main__":
    main()
