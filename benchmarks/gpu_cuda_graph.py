"""ONNX Runtime's CUDA provider at small batches: where the time goes, and what can be taken off it.

    python benchmarks/gpu_cuda_graph.py models/mnist models/fashion_mnist --runs 2000   # on a CUDA machine

At batch 1 these models are a few dozen small kernels, so a call is launch and copy overhead, not arithmetic
(benchmarks/results/gpu.md: 0.2 ms on an H100, slower than the same machine's CPU). Ways to call the same file,
each in a session of its own, at a fixed batch:

- ``run``: ``session.run`` with a numpy array, as ``edgecnn.runtime.classifier.Classifier`` calls it;
- ``run_folded``: the same with QDQ fusion off (``session.disable_quant_qdq``), so that the weights'
  DequantizeLinear nodes fold into float constants: ONNX Runtime otherwise runs them on the CPU at every call
  and copies their output to the GPU (the ``memcpy`` columns count those copies in the optimized graph);
- ``iobinding``: that session with the input copied into a GPU buffer bound once (``OrtValue.update_inplace``)
  and the output bound to a GPU buffer and copied back;
- ``cuda_graph``: the same binding in a session with ``enable_cuda_graph``, which records the kernel launches on
  its first run and replays them as one graph after that; every node must then run on the GPU.

The calls alternate one by one, the order rotating, after 200 warm-up rounds; p50 is the median of ``runs`` rounds
(``runs // 10`` at batch 256). Each way's output is checked against ``run``'s (``max_abs_diff``). Writes
benchmarks/results/gpu_cuda_graph.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from runtime_overhead import interleaved_times  # same folder

from edgecnn.deploy.targets import cuda_device_count
from edgecnn.runtime.classifier import _load_pip_cuda_libraries, _open_session
from edgecnn.runtime.manifest import tool_versions

RESULTS = Path(__file__).parent / "results"


def session(ort, path: Path, graph: bool = False, fold_weights: bool = False, options=None):
    """A CUDA session, opened as edgecnn.runtime.classifier opens one (``fold_weights``: its QDQ-fusion-off folding)."""
    cuda = ("CUDAExecutionProvider", {"enable_cuda_graph": "1"} if graph else {})
    return _open_session(ort, path, options or ort.SessionOptions(), [cuda, "CPUExecutionProvider"], fold_weights)


def bound_call(ort, sess, x: np.ndarray, y: np.ndarray):
    """A call that copies ``x`` into a GPU input bound once, runs, and returns the output (shaped like ``y``) as
    numpy. Only bound buffers reach ``sess``: with a CUDA graph, its first run records the buffers' addresses."""
    x_gpu = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    y_gpu = ort.OrtValue.ortvalue_from_shape_and_type(y.shape, y.dtype, "cuda", 0)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(sess.get_inputs()[0].name, x_gpu)
    binding.bind_ortvalue_output(sess.get_outputs()[0].name, y_gpu)

    def call():
        x_gpu.update_inplace(x)
        sess.run_with_iobinding(binding)
        return y_gpu.numpy()

    return call


def memcpy_nodes(ort, path: Path, fold_weights: bool) -> int:
    """How many copies between host and GPU ONNX Runtime adds to the graph (after nodes it left on the CPU), read
    from the optimized graph it saves."""
    options = ort.SessionOptions()
    with tempfile.TemporaryDirectory() as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        session(ort, path, fold_weights=fold_weights, options=options)
        graph = onnx.load(options.optimized_model_filepath).graph
    return sum(node.op_type.startswith("Memcpy") for node in graph.node)


def rows_for(ort, path: Path, batch: int, runs: int) -> dict:
    plain = session(ort, path)
    name = plain.get_inputs()[0].name
    x = np.random.default_rng(0).random([batch, *plain.get_inputs()[0].shape[1:]], dtype=np.float32)
    reference = plain.run(None, {name: x})[0]
    folded = session(ort, path, fold_weights=True)
    calls = {"run": lambda: plain.run(None, {name: x})[0],
             "run_folded": lambda: folded.run(None, {name: x})[0],
             "iobinding": bound_call(ort, session(ort, path, fold_weights=True), x, reference)}
    row = {"model": str(path), "batch": batch, "providers": plain.get_providers(),
           "memcpy_nodes": memcpy_nodes(ort, path, False), "memcpy_nodes_folded": memcpy_nodes(ort, path, True)}
    try:
        calls["cuda_graph"] = bound_call(ort, session(ort, path, graph=True, fold_weights=True), x, reference)
        calls["cuda_graph"]()  # the first run records the graph
    except Exception as exc:  # a node left on the CPU makes the recording fail
        calls.pop("cuda_graph", None)
        row["cuda_graph_error"] = str(exc).splitlines()[0][:300]
    row["max_abs_diff"] = {way: float(np.abs(call() - reference).max()) for way, call in calls.items()}
    times = np.median(interleaved_times(list(calls.values()), runs, warmup=200), axis=0) * 1e3  # microseconds
    row.update({f"{way}_p50_us": round(float(t), 1) for way, t in zip(calls, times, strict=True)})
    for way in calls:
        row[f"{way}_speedup"] = round(row["run_p50_us"] / row[f"{way}_p50_us"], 2)
    return row


def _cell(row: dict, way: str) -> str:
    return f"{row[f'{way}_p50_us']} ({row[f'{way}_speedup']}x)" if f"{way}_p50_us" in row else "-"


def markdown(document: dict) -> str:
    lines = [f"# ONNX Runtime {document['versions']['onnxruntime']} CUDA provider: run, folded weights, IO binding, "
             "CUDA graph", "", f"Command: `{document['command']}`. GPU: {document['gpu']}. p50 in microseconds per "
             "call (speed-up against `session.run`, what `edgecnn.runtime.classifier` calls); memcpy: host-GPU copies in the "
             "optimized graph, as exported / with the weights folded; max diff: the largest difference from "
             "`session.run`'s output over the ways.", "",
             "| Model | Batch | memcpy | run | run, weights folded | IO binding | CUDA graph | max diff | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in document["rows"]:
        run_folded, iobinding, cuda_graph = (_cell(r, way) for way in ("run_folded", "iobinding", "cuda_graph"))
        lines.append(f"| {r['model']} | {r['batch']} | {r['memcpy_nodes']} / {r['memcpy_nodes_folded']} | "
                     f"{r['run_p50_us']} | {run_folded} | {iobinding} | {cuda_graph} | "
                     f"{max(r['max_abs_diff'].values()):.1e} | {r.get('cuda_graph_error', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="run directories with exported ONNX files")
    parser.add_argument("--runs", type=int, default=2000, help="timed rounds at batch 1")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for gpu_cuda_graph.{json,md}")
    args = parser.parse_args()
    if "CUDAExecutionProvider" not in ort.get_available_providers() or cuda_device_count() == 0:
        sys.exit("needs an NVIDIA GPU and onnxruntime-gpu (CUDAExecutionProvider)")
    _load_pip_cuda_libraries(ort)
    rows = []
    for run_dir in args.run_dirs:
        for precision in ("fp32", "int8"):
            for batch in (1, 256):
                rows.append(rows_for(ort, run_dir / f"model_{precision}.onnx", batch,
                                     args.runs if batch == 1 else max(args.runs // 10, 50)))
                print(f"{run_dir} {precision} batch {batch}: done", flush=True)
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                         text=True).stdout.strip()
    document = {"command": shlex.join(["python", "benchmarks/gpu_cuda_graph.py", *sys.argv[1:]]), "gpu": gpu,
                "rows": rows, "versions": {**tool_versions(), "onnxruntime": ort.__version__}}
    args.out.mkdir(exist_ok=True)
    (args.out / "gpu_cuda_graph.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "gpu_cuda_graph.md").write_text(markdown(document))
    print(markdown(document))


if __name__ == "__main__":
    main()
