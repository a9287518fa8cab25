"""A complete app that embeds edgecnn's runtime: classify every image in a folder (no TensorFlow needed).

    python tools/embed_example.py runs/demo/model_int8.tflite path/to/images
"""

import sys
from pathlib import Path

import cv2

from edgecnn.runtime.classifier import Classifier


def main(model: str, folder: str) -> None:
    with Classifier(model) as clf:  # checks the model's sha256 against manifest.json
        for path in sorted(Path(folder).iterdir()):
            image = cv2.imread(str(path))  # BGR, any size: the manifest says how to preprocess
            if image is None:
                continue  # not an image
            label, score = clf.predict(image, top_k=1)[0]
            print(f"{path.name}\t{label}\t{score:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tools/embed_example.py MODEL IMAGE_FOLDER")
    main(*sys.argv[1:])
