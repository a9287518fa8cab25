"""int8 that meets a stated accuracy drop: a calibration sweep, then 16-bit activations where no setting does.

    rows, chosen = search("onnx", max_drop=0.5, ...)   # every setting's validation accuracy, agreement, size
    chosen["setting"], chosen["int16_tensors"]         # what export writes and records in the manifest

Settings: TFLite full int8 and 16x8 (int16 activations, int8 weights), each calibrated on 100, 300 and 1,000
training images; ONNX Runtime's MinMax, Entropy and Percentile calibration, per-channel weights on and off, uint8
(U8S8) and int8 (S8S8) activations. Among the settings within ``max_drop`` points of the float model's validation
accuracy the smallest file wins, then 8-bit activations over 16-bit, then the sweep's order. Where none is within
it (ONNX; TFLite's sweep has 16x8 already), the default setting's worst tensors by :mod:`edgecnn.deploy.doctor`'s
ranking get 16-bit activations, one more at a time, until the file is: int8 weights stay, and a layer's activations
keep 65,536 levels where one outlier channel left the others a few of 256. Every step is deterministic: the same
command writes the same bytes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError
from edgecnn.workstation.config import CALIBRATION_METHODS

CALIBRATION_SIZES = (100, 300, 1000)
TFLITE_SETTINGS = tuple({"activations": a, "calibration_images": n} for a in ("int8", "int16")
                        for n in CALIBRATION_SIZES)
ONNX_SETTINGS = tuple({"method": m, "per_channel": pc, "activations": a, "calibration_images": 300}
                      for m in CALIBRATION_METHODS for pc in (True, False) for a in ("uint8", "int8"))
MAX_INT16_TENSORS = 8  # tensors given 16-bit activations before the search gives up


Write = Callable[[dict, Path, tuple[str, ...]], None]  # (setting, path, tensors in 16 bits): one int8 file


def search(fmt: str, *, max_drop: float, write: Write, fp32: Path | None, calibrate: Callable[[int], np.ndarray],
           verify: Callable[[Path], dict], float_accuracy: float, staging: Path, out: Path,
           on_row: Callable[[dict], None] | None = None) -> tuple[list[dict], dict]:
    """Sweep ``fmt``'s settings, write the chosen int8 file to ``out``, and return the sweep's rows and the choice
    (``setting``, ``int16_tensors``, ``validation_drop``). ``write`` makes a finished file of a setting, ``verify``
    gives its check (accuracy, agreement) on the validation split, ``fp32`` is the finished float ONNX file the
    doctor compares with. EdgecnnError, with nothing written to ``out``, where no setting of a TFLite sweep, or
    not even MAX_INT16_TENSORS 16-bit tensors of an ONNX one, meet ``max_drop``."""
    rows = []
    for index, setting in enumerate(TFLITE_SETTINGS if fmt == "tflite" else ONNX_SETTINGS):
        path = staging / f"sweep{index}.{fmt}"
        write(setting, path, ())
        check = verify(path)
        row = {"format": fmt, "setting": setting, "bytes": path.stat().st_size, "accuracy": check["accuracy"],
               "agreement": check["agreement"], "drop": round(float_accuracy - check["accuracy"], 3),
               "path": path, "index": index}
        rows.append(row)
        if on_row:
            on_row(row)
    within = [r for r in rows if r["drop"] <= max_drop]
    if within:
        best = min(within, key=lambda r: (r["bytes"], r["setting"]["activations"] == "int16", r["index"]))
        best["path"].replace(out)
        return _public(rows), {"setting": best["setting"], "int16_tensors": [], "validation_drop": best["drop"]}
    default = rows[0]
    if fmt == "tflite":
        best = min(rows, key=lambda r: r["drop"])
        raise EdgecnnError(f"no TFLite int8 or 16x8 setting is within --max-drop {max_drop} of float on the "
                           f"validation split (best drop {best['drop']:.2f} points): nothing written")
    return _public(rows), _widen(default, max_drop, write, fp32, calibrate, verify, float_accuracy, staging, out)


def _widen(default: dict, max_drop: float, write: Write, fp32: Path, calibrate, verify, float_accuracy: float,
           staging: Path, out: Path) -> dict:
    """Give the default setting's worst tensors (by the doctor's local SNR) 16-bit activations, one more a round."""
    from edgecnn.deploy.doctor import diagnose_onnx

    x = calibrate(100)  # training images: the validation split stays for the verdict
    kept: list[str] = []
    current, drop = default["path"], default["drop"]
    while drop > max_drop:
        if len(kept) >= MAX_INT16_TENSORS:
            raise EdgecnnError(f"int8 ONNX stays {drop:.2f} points below float on the validation split with "
                               f"{len(kept)} tensors in 16 bits, beyond --max-drop {max_drop}: nothing written")
        tensors, _, _ = diagnose_onnx(current, fp32, x)
        worst = next((t["name"] for t in tensors if t["name"] not in kept and t["name"] != "image"), None)
        if worst is None:
            raise EdgecnnError(f"int8 ONNX stays {drop:.2f} points below float with every quantized tensor "
                               f"in 16 bits, beyond --max-drop {max_drop}: nothing written")
        kept.append(worst)
        current = staging / f"int16_{len(kept)}.onnx"
        write(default["setting"], current, tuple(kept))
        drop = round(float_accuracy - verify(current)["accuracy"], 3)
    current.replace(out)
    return {"setting": default["setting"], "int16_tensors": kept, "validation_drop": drop}


def _public(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("path", "index")} for r in rows]


def staging_folder(parent: Path):
    """A temporary folder for the sweep's files, inside the run (so the chosen one moves into place by rename)."""
    return tempfile.TemporaryDirectory(dir=parent, prefix=".export-sweep-")
