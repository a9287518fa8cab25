"""The device side: what an app embeds to run an exported model, with numpy, OpenCV and LiteRT or ONNX Runtime
only (no TensorFlow, Keras, scikit-learn or typer).

    from edgecnn.runtime import Classifier
"""

from edgecnn.runtime.classifier import Classifier

__all__ = ["Classifier"]
