"""Where the default model's int8 time goes: its stem against the rest, fp32 and int8, LiteRT + XNNPACK, batch 1.

    python benchmarks/int8_stem.py --runs 3000

The default `edge-cnn` at 28x28x1 is cut after its first block (conv 1 -> 16 channels, BatchNorm, ReLU, max-pool):
"stem" is that block alone, "rest" the model from the 14x14x16 pooled map on, "whole" the model itself. Two
smaller stems show what a cheaper first layer could save: the same conv without the pool, and a stride-2 conv
that replaces conv and pool. Each is converted to fp32 and full-int8 TFLite (as `int8_speed.py` does; random
weights and calibration: timing depends on shapes, not values) and timed on 1 and 2 threads. Writes
benchmarks/results/int8_stem.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from int8_speed import RESULTS, litert_call, p50_us, tflite_bytes  # same folder

THREADS = (1, 2)


def parts() -> dict:
    """The default model, its stem and its rest, and two alternative stems, as Keras models."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from edgecnn.workstation.models import build_model

    whole = build_model("edge-cnn", (28, 28, 1), 10)
    stem = keras.Model(whole.input, whole.get_layer("pool1").output)
    rest_input = keras.Input(stem.output.shape[1:])
    x, after_stem = rest_input, False
    for layer in whole.layers:
        x = layer(x) if after_stem else x
        after_stem = after_stem or layer.name == "pool1"
    image = keras.Input((28, 28, 1))
    no_pool = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(image)
    stride_2 = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(image)
    return {"whole (edge-cnn)": whole, "stem: conv 3x3 1 -> 16, BN, ReLU, pool": stem,
            "rest: 14x14x16 -> classes": keras.Model(rest_input, x),
            "stem without pool: conv 3x3 1 -> 16, ReLU": keras.Model(image, no_pool),
            "stride-2 stem: conv 3x3 / 2, 1 -> 16, ReLU": keras.Model(image, stride_2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3000, help="timed calls per measurement")
    args = parser.parse_args()
    rows = []
    for name, model in parts().items():
        files = {precision: tflite_bytes(model, precision) for precision in ("fp32", "int8")}
        for threads in THREADS:
            fp32, int8 = (p50_us(litert_call(files[p], threads, 1, True), args.runs) for p in ("fp32", "int8"))
            rows.append({"part": name, "threads": threads, "fp32_p50_us": round(fp32, 1),
                         "int8_p50_us": round(int8, 1), "speedup": round(fp32 / int8, 2)})
            print(f"{name}, {threads} thread(s): fp32 {fp32:.1f} us, int8 {int8:.1f} us", flush=True)
    command = shlex.join(["python", "benchmarks/int8_stem.py", *sys.argv[1:]])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_stem.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")
    lines = ["# The default model's int8 time: stem against rest (LiteRT + XNNPACK, batch 1)", "",
             f"Command: `{command}`. p50 in microseconds; speed-up = fp32 / int8.", "",
             "| Part | Threads | fp32 | int8 | Speed-up |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['part']} | {r['threads']} | {r['fp32_p50_us']} | {r['int8_p50_us']} | {r['speedup']} |"
              for r in rows]
    (RESULTS / "int8_stem.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / "int8_stem.md").read_text())


if __name__ == "__main__":
    main()
