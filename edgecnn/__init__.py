"""edgecnn: train a compact CNN, quantize it to int8, export TFLite and ONNX, benchmark it and run it live.

The package is split by stage, data flowing one way::

    data -> models -> train -> export -> runtime -> bench (targets) -> live

``edgecnn.runtime`` is what devices embed; it imports neither TensorFlow nor scikit-learn.
"""

__version__ = "0.1.0"
