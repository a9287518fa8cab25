"""Issue #3's accuracy targets: int8 TFLite test accuracy and size per dataset, with the training cost.

    python benchmarks/accuracy.py models/mnist models/fashion_mnist --data-dir DIR

Each run directory is made by the project's own commands (its manifest records them; see models/README.md).
Writes benchmarks/results/accuracy.{json,md}. Targets (int8 .tflite, test split): MNIST >= 99.5% at <= 60 KB,
Fashion-MNIST >= 93% at <= 120 KB, CIFAR-10 >= 87% at <= 120 KB, float-to-int8 drop <= 0.3 points. A model
exported with test-time augmentation (``edgecnn export --tta flip``) is scored, Keras reference included, as exported.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.common.native_logs import native_output_muted
from edgecnn.deploy.bench import accuracy_percent, load_test_split
from edgecnn.runtime import Classifier
from edgecnn.runtime.manifest import Manifest, tool_versions
from edgecnn.workstation.models import load_model, with_tta

RESULTS = Path(__file__).parent / "results"
TARGETS = {"mnist": (99.5, 60), "fashion_mnist": (93.0, 120), "cifar10": (87.0, 120)}  # accuracy %, KB
MAX_DROP = 0.3


def measure(run_dir: Path, data_dir) -> dict:
    """Test accuracy of every artifact, its drop from the Keras model and its top-1 agreement with it."""
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


def check(run_dir: Path, data_dir) -> dict:
    manifest, measured = Manifest.load(run_dir), measure(run_dir, data_dir)
    int8 = next(r for r in measured["rows"] if r["artifact"] == "model_int8.tflite")
    accuracy_target, kb_target = TARGETS.get(measured["dataset"], (None, None))
    source = manifest.source
    return {
        "dataset": measured["dataset"], "arch": source["arch"], "tta": manifest.tta, "params": source["params"],
        "epochs": source["epochs_run"], "best_epoch": source.get("best_epoch"),
        "train_seconds": source["train_seconds"], "keras_accuracy": measured["keras_accuracy"],
        "int8_accuracy": int8["accuracy"], "int8_kb": int8["kb"], "drop": int8["drop"],
        "agreement": int8["agreement"], "n": measured["n"],
        "target": {"accuracy": accuracy_target, "kb": kb_target, "drop": MAX_DROP},
        "met": {"accuracy": accuracy_target is not None and int8["accuracy"] >= accuracy_target,
                "kb": kb_target is not None and int8["kb"] <= kb_target, "drop": int8["drop"] <= MAX_DROP},
        "trained_by": source.get("command", ""), "exported_by": manifest.command,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    rows = [check(run_dir, args.data_dir) for run_dir in args.run_dirs]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps({"rows": rows, "versions": tool_versions()}, indent=2) + "\n")
    yes = {True: "yes", False: "**no**"}
    lines = ["# Accuracy targets (int8 TFLite, test split)", "",
             "Command: `python benchmarks/accuracy.py models/mnist models/fashion_mnist --data-dir DIR`", "",
             "| dataset | arch | test-time aug. | params | epochs (best) | train s | Keras % | int8 % | int8 KB | drop "
             "| agreement % | target | met (acc / KB / drop) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        t, m = r["target"], r["met"]
        lines.append(
            f"| {r['dataset']} | {r['arch']} | {r['tta']} | {r['params']:,} | {r['epochs']} ({r['best_epoch']}) | "
            f"{r['train_seconds']:.0f} | {r['keras_accuracy']} | {r['int8_accuracy']} | {r['int8_kb']} | "
            f"{r['drop']} | {r['agreement']} | >= {t['accuracy']}% at <= {t['kb']} KB | "
            f"{yes[m['accuracy']]} / {yes[m['kb']]} / {yes[m['drop']]} |")
    lines += ["", "Commands that made each model:", ""]
    lines += [f"- {r['dataset']}: `{r['trained_by']}`, then `{r['exported_by']}`" for r in rows]
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
