"Tests of text_recognizer.models.line: batching by width, training step, decoding, the committed model and its ONNX twin."
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from text_recognizer.models.line import LineModel, ink_widths, line_batches, width_batches
from text_recognizer.networks.line import line_lstm_ctc
from text_recognizer.metadata import CHARSET, WEIGHTS_DIR, encode
from text_recognizer.metadata import sha256_file
from text_recognizer.inference.line import LinePredictor, prepare_line
from test_line_predictor import fixture_line

has_model = (WEIGHTS_DIR / "line_model.keras").exists() and (WEIGHTS_DIR / "line_model.onnx").exists()
needs_model = pytest.mark.skipif(not has_model, reason="no committed line model")


def tiny_lines(texts=("ab 12", "Hello", "x", "The end"), width=256):
    images = np.zeros((len(texts), 28, width), np.uint8)
    labels = np.zeros((len(texts), 8), np.int32)
    for i, t in enumerate(texts):
        line = fixture_line(t, seed=i)
        images[i, :, :line.shape[1]] = line
        labels[i, :len(t)] = encode(t)
    return images, labels


def test_ink_widths_and_width_batches():
    images, _ = tiny_lines()
    widths = ink_widths(images)
    assert (widths % 32 == 0).all() and (widths <= 256).all()
    for img, w in zip(images, widths):
        assert not img[:, w:].any()
    assert ink_widths(np.zeros((1, 28, 100), np.uint8))[0] == 32  # an empty line keeps a minimal width
    batches = width_batches(np.array([32, 256, 64, 32, 256, 64]), 2, rng=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len({[32, 256, 64, 32, 256, 64][i] for i in b}) == 1 for b in batches)


def test_line_batches_crop_to_the_ink():
    images, labels = tiny_lines()
    x, y = next(iter(line_batches(images, labels, batch_size=4)))
    assert x.shape[0] == 4 and x.shape[2] == ink_widths(images).max() and x.dtype == "float32"
    assert float(np.max(x)) <= 1.0 and y.shape == (4, 8)


def test_fit_lowers_the_ctc_loss_and_evaluates(tmp_path):
    keras.utils.set_random_seed(0)
    images, labels = tiny_lines()
    model = LineModel(line_lstm_ctc(widths=(8, 8, 8), features=16, lstm_units=16), checkpoint_dir=tmp_path / "ckpt")
    history = model.fit((images, labels), (images, labels), epochs=2, batch_size=4, learning_rate=1e-2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert {"val_cer", "val_loss"} <= history.history.keys()
    assert (tmp_path / "ckpt" / "best.keras").exists()
    metrics = model.evaluate((images, labels), beam_width=4)
    assert {"loss", "cer", "cer_casefold", "cer_beam", "cer_beam_casefold"} == metrics.keys()
    assert all(np.isfinite(v) and v >= 0 for v in metrics.values())
    with pytest.raises(ValueError, match="uint8"):
        model.predict_proba(images.astype(np.float32))


def test_unknown_schedule_is_refused():
    images, labels = tiny_lines()
    model = LineModel(line_lstm_ctc(widths=(8, 8, 8), features=16, lstm_units=8))
    with pytest.raises(ValueError, match="lr_schedule"):
        model.fit((images, labels), epochs=1, lr_schedule="step", verbose=0)


def test_load_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved network"):
        LineModel.load(str(tmp_path / "nothing.keras"))


@needs_model
def test_committed_metadata_matches_the_weights():
    info = json.loads((WEIGHTS_DIR / "line_model.json").read_text())
    assert info["charset"] == CHARSET
    assert info["keras_sha256"] == sha256_file(WEIGHTS_DIR / "line_model.keras")
    assert 0 <= info["test_cer_beam"] <= info["test_cer_greedy"] + 0.01


@needs_model
def test_onnx_matches_keras_on_fixtures():
    model, predictor = LineModel.load("line_model"), LinePredictor(lm=None)  # both decode without a language model
    for i, text in enumerate(["Hello world", "abc 123", "The END", "q"]):
        line = fixture_line(text, seed=10 + i)
        for image in (line, 255 - line):
            prepared = prepare_line(image)
            keras_probs = keras.ops.convert_to_numpy(keras.ops.softmax(
                model.network.predict_on_batch(prepared[None].astype(np.float32) / 255)))[0]
            onnx_probs = predictor.predict_proba(image)
            assert onnx_probs.shape == keras_probs.shape
            assert np.abs(onnx_probs - keras_probs).max() < 1e-4
            assert predictor.predict(image)[0] == model.predict(image)[0]
