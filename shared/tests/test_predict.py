"""Tests of text_recognizer.inference.character: image reading, polarity, EMNIST-style preparation, the committed ONNX predictor
(fixtures of both polarities at other sizes, bad inputs, a quality gate) and serving without TensorFlow or Keras."""
import io, subprocess, sys

import numpy as np
import pytest
from PIL import Image

from text_recognizer.data.emnist import load_emnist
from text_recognizer.metadata import CHARSET, WEIGHTS_DIR
from text_recognizer.inference.character import (CharacterPredictor, OnnxModel, is_dark_on_light, light_on_dark, read_image, to_emnist)

UNAMBIGUOUS = set("23456789ABDEFGHMNQRTabdefhnqrt")


@pytest.fixture(scope="module")
def predictor():
    return CharacterPredictor()


@pytest.fixture(scope="module")
def test_split():
    return load_emnist("test")


@pytest.fixture(scope="module")
def confident(predictor, test_split):
    "Test images of unambiguous classes that the model reads correctly and confidently in their EMNIST form."
    x, y = test_split
    probs = predictor.classify(x[:600])
    keep = [i for i in range(600) if CHARSET[y[i]] in UNAMBIGUOUS and probs[i].argmax() == y[i] and probs[i].max() > 0.95]
    assert len(keep) >= 40
    return x[keep[:40]], [CHARSET[y[i]] for i in keep[:40]]


def enlarge(image: np.ndarray, width: int, height: int, margin: int = 0) -> np.ndarray:
    big = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
    return np.pad(big, margin)


def test_predicts_enlarged_dark_on_light_files(tmp_path, predictor, confident):
    right = 0
    for i, (image, truth) in enumerate(zip(*confident)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(255 - enlarge(image, 120, 96, margin=20)).save(path)
        character, confidence = predictor.predict(path)
        right += character == truth
        assert 0 < confidence <= 1
    assert right >= 38, f"{right}/40"


def test_predicts_enlarged_light_on_dark_arrays_pil_images_and_bytes(predictor, confident):
    images, truths = confident
    assert sum(predictor.predict(enlarge(im, 64, 64))[0] == t for im, t in zip(images, truths)) >= 38
    assert sum(predictor.predict(Image.fromarray(enlarge(im, 200, 150, 7)).convert("RGB"))[0] == t
               for im, t in zip(images, truths)) >= 38
    buffer = io.BytesIO()
    Image.fromarray(255 - enlarge(images[0], 90, 90)).save(buffer, format="JPEG", quality=90)
    assert predictor.predict(buffer.getvalue())[0] == truths[0]


def test_transparent_drawing_is_read_on_white(predictor, confident):
    image, truth = confident[0][1], confident[1][1]
    rgba = np.zeros((112, 112, 4), np.uint8)  # black strokes on a fully transparent background (a web canvas)
    rgba[..., 3] = enlarge(image, 112, 112)
    assert read_image(rgba).max() == 255 and is_dark_on_light(read_image(rgba))
    assert predictor.predict(rgba)[0] == truth


def test_top_k_and_probabilities(predictor, confident):
    image, truth = confident[0][2], confident[1][2]
    top = predictor.top_k(image, k=5)
    assert len(top) == 5 and top[0][0] == truth and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert predictor.predict_proba(image).shape == (80,) and abs(predictor.predict_proba(image).sum() - 1) < 1e-4


def test_polarity_and_preparation(test_split):
    x = test_split[0][5]
    assert not is_dark_on_light(x) and is_dark_on_light(255 - x)
    assert np.array_equal(light_on_dark(255 - x), x)
    prepared = to_emnist(enlarge(255 - x, 140, 140))
    assert prepared.shape == (28, 28) and prepared.dtype == np.uint8 and prepared.max() == 255
    assert np.abs(prepared.astype(int) - x).mean() < 25
    rows, cols = np.nonzero(prepared > 50)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (23, 24, 25)  # EMNIST's 24-px glyphs


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((2, 28, 28), np.uint8), ValueError, "shape"),
    (np.zeros((28, 28, 5), np.uint8), ValueError, "shape"),
    (np.zeros((28, 28), np.int32), TypeError, "dtype"),
    (np.zeros((28, 28), np.float32) + 2, ValueError, r"\[0, 1\]"),
    (np.zeros((0, 28), np.uint8), ValueError, "empty"),
    (b"", ValueError, "empty"),
    (b"GIF89a not really", ValueError, "not an image"),
    (np.full((40, 40), 255, np.uint8), ValueError, "no ink"),
    ([[0, 1], [1, 0]], TypeError, "NumPy array"),
])
def test_bad_inputs_raise_clear_errors(predictor, bad, error, match):
    with pytest.raises(error, match=match):
        predictor.predict(bad)


def test_bad_files(tmp_path, predictor):
    with pytest.raises(FileNotFoundError, match="no image file"):
        predictor.predict(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    with pytest.raises(ValueError, match="not an image"):
        predictor.predict(text)
    truncated = tmp_path / "truncated.png"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ValueError, match="decoded|not an image"):
        predictor.predict(truncated)
    with pytest.raises(FileNotFoundError, match="ONNX"):
        OnnxModel(tmp_path / "none.onnx")
    with pytest.raises(ValueError, match="classify expects"):
        predictor.classify(np.zeros((28, 28), np.uint8))


def test_quality_gate_committed_model(predictor, test_split):
    x, y = test_split
    probs = predictor.classify(x[:2000])
    assert probs.shape == (2000, 80) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert (probs.argmax(1) == y[:2000]).mean() >= 0.82
    assert (WEIGHTS_DIR / "character_lenet.json").exists() and (WEIGHTS_DIR / "character_lenet.keras").exists()


def test_serving_imports_no_tensorflow_or_keras():
    code = ("import sys\n"
            "sys.modules['tensorflow'] = sys.modules['keras'] = None  # importing them now fails\n"
            "import numpy as np\n"
            "from text_recognizer import CharacterPredictor\n"
            "image = np.full((60, 40), 255, np.uint8); image[10:50, 18:23] = 0\n"
            "character, confidence = CharacterPredictor().predict(image)\n"
            "training = [m for m in sys.modules if m.startswith(('text_recognizer.training.train', 'text_recognizer.models.character', 'text_recognizer.networks.character', 'tensorflow', 'keras')) and sys.modules[m] is not None]\n"
            "assert not training, training\n"
            "print(character, confidence)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    character, confidence = out.stdout.split()
    assert character in CHARSET and 0 < float(confidence) <= 1
