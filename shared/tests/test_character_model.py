"""Tests of text_recognizer.models.character: input formatting, a quick fit, prediction, save/load, the dataset function."""
import numpy as np
import pytest

import text_recognizer.metadata as metadata

from text_recognizer.models import character as cm
from text_recognizer.models.character import CharacterModel, emnist_data, format_images, make_dataset
from text_recognizer.data.emnist import load_emnist
from text_recognizer.metadata import CHARSET
from text_recognizer.networks.character import lenet, mlp


@pytest.fixture(scope="module")
def small_train():
    x, y = load_emnist("train")
    keep = np.random.default_rng(0).choice(len(x), 768, replace=False)
    return x[keep], y[keep]


def test_format_images_scales_and_checks():
    x = np.full((2, 28, 28), 255, np.uint8)
    assert format_images(x).dtype == np.float32 and format_images(x).max() == 1.0
    assert format_images(x[0]).shape == (1, 28, 28)
    with pytest.raises(ValueError, match="shape"):
        format_images(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        format_images(np.full((1, 28, 28), 200.0))
    with pytest.raises(TypeError, match="dtype"):
        format_images(np.zeros((1, 28, 28), np.int32))


def test_make_dataset_batches_floats(small_train):
    x, y = small_train
    batches = list(make_dataset(x[:100], y[:100], batch_size=32, augment=cm.augmenter()))
    assert [len(b[0]) for b in batches] == [32, 32, 32, 4]
    images, labels = batches[0]
    assert images.shape == (32, 28, 28) and float(images.numpy().max()) <= 1.0 and labels.dtype.name == "int64"
    assert np.array_equal(labels.numpy(), y[:32])  # not shuffled unless asked


def test_quick_fit_reduces_loss_and_predicts(small_train):
    x, y = small_train
    model = CharacterModel(mlp(layer_sizes=(64,)), augment=False)
    history = model.fit((x, y), (x[:200], y[:200]), epochs=3, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] * 0.8
    characters, confidences = model.predict(x[:5])
    assert len(characters) == 5 and set(characters) <= set(CHARSET) and np.all((0 < confidences) & (confidences <= 1))
    character, confidence = model.predict(x[0])
    assert (character, pytest.approx(confidence, abs=1e-5)) == (characters[0], confidences[0])
    metrics = model.evaluate((x[:200], y[:200]))
    assert metrics.keys() == {"loss", "accuracy"} and metrics["accuracy"] > 0.1  # chance is 1/62


def test_save_load_round_trip(tmp_path, monkeypatch, small_train):
    monkeypatch.setattr(metadata, "WEIGHTS_DIR", tmp_path)
    monkeypatch.delenv("TR_WEIGHTS_DIR", raising=False)
    model = CharacterModel(lenet(widths=(4, 8), dense_size=16))
    path = model.save("tiny")
    assert path == tmp_path / "tiny.keras" and path.stat().st_size > 0 and list(tmp_path.iterdir()) == [path]
    loaded = CharacterModel.load("tiny")
    x = small_train[0][:20]
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="text_recognizer.training.train"):
        CharacterModel.load("missing")
    with pytest.raises(ValueError, match="file stem"):
        model.save("../escape")


def test_onnx_export_outputs_probabilities(tmp_path, small_train):
    import onnxruntime as ort
    model = CharacterModel(lenet(widths=(4, 8), dense_size=16))
    path = model.export_onnx(tmp_path / "tiny.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = small_train[0][:7]
    probs = session.run(None, {session.get_inputs()[0].name: format_images(x)})[0]
    assert probs.shape == (7, 80) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(probs, model.predict_proba(x), atol=1e-5)


def test_emnist_data_for_the_trainer():
    data = emnist_data({"dataset_args": {"limit": 500}, "seed": 1})
    assert len(data["train"][0]) == 500 and len(data["val"][0]) == len(data["test"][0]) == 100
    assert data["network_args"] == {"input_shape": (28, 28), "num_classes": 80} and data["model"] == "character"
    with pytest.raises(ValueError, match="unknown dataset_args"):
        emnist_data({"dataset_args": {"limt": 5}})
