"""Test-split metrics of a trained model: accuracy, per-class precision/recall/F1 and a confusion-matrix PNG.

    metrics = class_metrics(ds.labels, y_true, probs)   # {"accuracy": 99.1, "classes": [...], "confusion": [[...]]}
    save_confusion_png("runs/demo/confusion_matrix.png", ds.labels, metrics["confusion"])

scikit-learn computes the numbers, matplotlib (headless Agg backend) draws the matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from edgecnn.common.atomic import atomic_output


def class_metrics(labels: list[str], y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy (%), per-class precision/recall/F1 (%) with support, and the confusion matrix (rows: true)."""
    y_pred = np.argmax(probs, axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    classes = [
        {"label": label, "precision": round(100 * float(p), 2), "recall": round(100 * float(r), 2),
         "f1": round(100 * float(f), 2), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    return {
        "accuracy": round(100 * accuracy_score(y_true, probs.argmax(1)), 2),
        "macro_f1": round(100 * float(np.mean(f1)), 2),
        "classes": classes,
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def save_confusion_png(path: str | Path, labels: list[str], confusion: list[list[int]], title: str = "") -> Path:
    """Draw the confusion matrix (counts, true label by row) to a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(5.0, 0.6 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay(np.asarray(confusion), display_labels=labels)
    display.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45 if max(map(len, labels)) > 3 else 0)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
