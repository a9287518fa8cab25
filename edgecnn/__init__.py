"""edgecnn: train a compact CNN, quantize it to int8, export TFLite and ONNX, benchmark it and run it live.

    import edgecnn

    edgecnn.pipeline(out="runs/demo")                      # train, export, bench on the built-in digits
    with edgecnn.Classifier("runs/demo/model_int8.tflite") as clf:
        print(clf.predict("digit.png"))

The public API is this module's ``__all__``: one function per CLI verb (:mod:`edgecnn.api`) and the runtime's
``Classifier``. Nothing heavy is imported until a name is used. The package is split by where code runs:

- ``edgecnn.runtime``: what a device embeds (model loading, backends, preprocessing, manifest checks);
- ``edgecnn.workstation``: data, models, training and export (TensorFlow, scikit-learn);
- ``edgecnn.deploy``: benchmarks and their targets, SSH fleets, the live loop, inspection;
- ``edgecnn.common``: errors, atomic files, progress, below all three; ``edgecnn.cli`` on top.
"""

from importlib import import_module

from edgecnn.common.version import __version__

_PUBLIC = {
    "train": "edgecnn.api", "export": "edgecnn.api", "bench": "edgecnn.api", "predict": "edgecnn.api",
    "inspect": "edgecnn.api", "live": "edgecnn.api", "pipeline": "edgecnn.api", "keygen": "edgecnn.api",
    "sign": "edgecnn.api", "verify": "edgecnn.api", "check": "edgecnn.api", "doctor": "edgecnn.api",
    "capture": "edgecnn.api",
    "Classifier": "edgecnn.runtime.classifier", "EdgecnnError": "edgecnn.common.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
