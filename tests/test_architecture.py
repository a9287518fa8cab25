"""The package's floor plan: no import cycles, the device side (edgecnn.runtime) imports nothing from the
workstation side, and the light entry points pull in no heavy library."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecnn"
HEAVY = ("tensorflow", "keras", "sklearn", "typer")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, at any depth (lazy imports included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_the_package_has_no_import_cycle():
    graph, state, cycles = imports(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_device_side_imports_only_itself_and_the_common_helpers():
    graph = imports()
    runtime = {m for m in graph if m.startswith("edgecnn.runtime")}
    assert runtime >= {"edgecnn.runtime.classifier", "edgecnn.runtime.backends", "edgecnn.runtime.manifest"}
    for module in runtime:
        outside = {m for m in graph[module] if not m.startswith(("edgecnn.runtime", "edgecnn.common"))}
        assert outside == set(), module
    common = {m for m in graph if m.startswith("edgecnn.common")}
    for module in common:
        assert all(m.startswith("edgecnn.common") for m in graph[module]), module


def heavy_modules_after(code: str) -> list[str]:
    report = f"\nimport sys; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1])


def test_the_runtime_imports_no_tensorflow_keras_sklearn_or_typer(run_dir):
    code = f"""
from edgecnn.runtime import Classifier
import numpy as np
with Classifier({str(run_dir / "model_int8.tflite")!r}) as clf:
    clf.predict(np.zeros((28, 28), np.uint8))
with Classifier({str(run_dir / "model_int8.onnx")!r}) as clf:
    clf.predict(np.zeros((28, 28), np.uint8))
"""
    assert heavy_modules_after(code) == []


def test_import_edgecnn_is_light_and_names_the_public_api():
    code = """
import edgecnn
api = [edgecnn.train, edgecnn.export, edgecnn.bench, edgecnn.predict, edgecnn.inspect, edgecnn.live,
       edgecnn.pipeline, edgecnn.keygen, edgecnn.sign, edgecnn.verify, edgecnn.Classifier]
assert all(callable(f) for f in api)
"""
    assert heavy_modules_after(code) == []
