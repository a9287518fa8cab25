"""Choose the int8 calibration draw on the validation split: one full-int8 TFLite export per seed, each scored.

    python benchmarks/calibration.py models/fashion_mnist --seeds 8 --calib-samples 1000 --data-dir DIR

For each seed, the run's model.keras is exported to full-int8 TFLite in a scratch folder (the run directory is
left as it is), calibrated on --calib-samples training images drawn with that seed, and verified on the
validation split by the export itself (accuracy and top-1 agreement with the float model). The test split is
never read, so the pick stays honest. The best seed (ties: the lowest) is the one to give
`edgecnn export RUN --calib-samples N --seed S`. With ``--tta flip`` each export averages the predictions on
each image and its mirror, as `edgecnn export --tta flip` does. Writes results/calibration_<run>[_flip].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgecnn.runtime.manifest import TTA, Manifest, tool_versions
from edgecnn.workstation.data import load_dataset
from edgecnn.workstation.export import ExportOptions, export_artifacts
from edgecnn.workstation.models import load_model

RESULTS = Path(__file__).parent / "results"


def sweep(run_dir: Path, seeds: int, calib_samples: int, data_dir, tta: str = "none") -> list[dict]:
    """Validation accuracy and agreement of the int8 TFLite model for calibration seeds 0 .. seeds-1."""
    record = Manifest.load(run_dir).dataset
    ds = load_dataset(record["name"], image_size=record["image_size"], seed=record["seed"], data_dir=data_dir)
    model = load_model(run_dir / "model.keras")
    validation = (ds.inputs("val"), ds.split("val").labels)
    rows = []
    for seed in range(seeds):
        manifest = Manifest.load(run_dir)
        manifest.artifacts = []  # the scratch export stands alone
        with tempfile.TemporaryDirectory() as scratch:
            entry, = export_artifacts(model, scratch, manifest, ds.calibration(calib_samples, seed=seed), validation,
                                      formats=("tflite",), precisions=("int8",), options=ExportOptions(tta=tta))
        check = entry.verification
        rows.append({"seed": seed, "val_accuracy": check["accuracy"], "agreement": check["agreement"], "n": check["n"]})
        print(f"seed {seed}: validation accuracy {check['accuracy']:.2f}%, agreement {check['agreement']:.2f}%")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--calib-samples", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--tta", choices=tuple(TTA), default="none")
    args = parser.parse_args()
    rows = sweep(args.run_dir, args.seeds, args.calib_samples, args.data_dir, args.tta)
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["seed"]))
    document = {"run": str(args.run_dir), "calib_samples": args.calib_samples, "tta": args.tta, "split": "val",
                "rows": rows, "best_seed": best["seed"], "versions": tool_versions()}
    RESULTS.mkdir(exist_ok=True)
    tta, suffix = ("", "") if args.tta == "none" else (f" --tta {args.tta}", f"_{args.tta}")  # flag, file suffix
    stem = RESULTS / f"calibration_{args.run_dir.name}{suffix}"
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [f"# int8 calibration draws of {args.run_dir} on the validation split (n = {rows[0]['n']})", "",
             f"Command: `python benchmarks/calibration.py {args.run_dir} --seeds {args.seeds} "
             f"--calib-samples {args.calib_samples}{tta} --data-dir DIR`", "",
             "| seed | validation accuracy (%) | agreement with float (%) |", "|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['val_accuracy']:.2f} | {r['agreement']:.2f} |" for r in rows]
    lines += ["", f"Best: seed {best['seed']} ({best['val_accuracy']:.2f}%): "
              f"`edgecnn export {args.run_dir} --calib-samples {args.calib_samples} --seed {best['seed']}{tta}`", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
