import numpy as np
import pytest

from edgecnn.errors import EdgecnnError
from edgecnn.models import build_model, keras
from edgecnn.train import load_model, save_model


def test_edge_cnn_outputs_probabilities_and_stays_compact():
    model = build_model("edge-cnn", (28, 28, 1), 10)
    probs = model.predict(np.random.default_rng(0).random((4, 28, 28, 1)), verbose=0)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert 10_000 < model.count_params() < 60_000
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_unknown_architecture():
    with pytest.raises(EdgecnnError, match="unknown architecture 'vgg'"):
        build_model("vgg", (28, 28, 1), 10)


def test_save_and_load_round_trip_safely(tmp_path):
    model = build_model("edge-cnn", (16, 16, 1), 3)
    x = np.random.default_rng(1).random((2, 16, 16, 1)).astype(np.float32)
    path = save_model(model, tmp_path / "model.keras")
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_load_model_refuses_missing_and_garbage_files(tmp_path):
    with pytest.raises(EdgecnnError, match="model not found"):
        load_model(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(EdgecnnError, match="not a loadable Keras model"):
        load_model(tmp_path / "bad.keras")
