"""Size and accuracy of every precision against fp32, per run directory (issue #4's targets).

    python benchmarks/quantization.py runs/demo models/mnist models/fashion_mnist --data-dir DIR

Make the run directories with `edgecnn pipeline --dataset NAME --out runs/NAME` (see README). For each format,
int8 size / fp32 size; for each artifact, test accuracy, its drop from the Keras model and top-1 agreement
with it on the whole test split. Writes benchmarks/results/quantization.{json,md}.
Targets: size ratio <= 0.30 (TFLite), <= 0.35 (ONNX); drop <= 0.3 points; agreement >= 99.5% on MNIST.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import accuracy_percent, load_test_split
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, tool_versions
from edgecnn.workstation.models import load_model, with_tta

RESULTS = Path(__file__).parent / "results"


def measure(run_dir: Path, data_dir) -> dict:
    manifest = Manifest.load(run_dir)
    images, labels = load_test_split(manifest.dataset, data_dir)
    model = with_tta(load_model(run_dir / "model.keras"), manifest.tta)  # what the artifacts compute
    reference = model.predict(manifest.preprocessing(images), batch_size=256, verbose=0)
    float_accuracy = accuracy_percent(labels, reference)
    rows, sizes = [], {a.file: a.bytes for a in manifest.artifacts}
    for entry in manifest.artifacts:
        with native_output_muted():
            probs = Classifier(run_dir / entry.file).predict_proba(images)
        accuracy = accuracy_percent(labels, probs)
        fp32 = sizes.get(f"model_fp32.{entry.format}")
        rows.append({"artifact": entry.file, "format": entry.format, "precision": entry.precision,
                     "kb": round(entry.bytes / 1024, 1), "size_vs_fp32": round(entry.bytes / fp32, 4) if fp32 else None,
                     "accuracy": round(accuracy, 2), "drop": round(float_accuracy - accuracy, 2),
                     "agreement": round(accuracy_percent(reference.argmax(1), probs), 2)})
    return {"run": run_dir.name, "dataset": manifest.dataset["name"], "n": len(labels),
            "keras_accuracy": round(float_accuracy, 2), "trained_by": manifest.source.get("command", ""),
            "exported_by": manifest.command, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    runs = [measure(run_dir, args.data_dir) for run_dir in args.run_dirs]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quantization.json").write_text(json.dumps({"runs": runs, "versions": tool_versions()}, indent=2) + "\n")
    lines = ["# Quantization: size and accuracy against fp32 (test splits)", "",
             f"Command: `python benchmarks/quantization.py {' '.join(map(str, args.run_dirs))} --data-dir DIR`", ""]
    for run in runs:
        lines += [f"## {run['dataset']} (n = {run['n']}, Keras {run['keras_accuracy']}%)", "",
                  f"Trained by `{run['trained_by'] or 'see the run directory'}`; exported by `{run['exported_by']}`",
                  "",
                  "| artifact | KB | size / fp32 | accuracy (%) | drop (points) | agreement (%) |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['artifact']} | {r['kb']} | {r['size_vs_fp32']} | {r['accuracy']} | {r['drop']} | "
                  f"{r['agreement']} |" for r in run["rows"]]
        lines.append("")
    (RESULTS / "quantization.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
