"Tests of text_recognizer.inference.line: line preparation, the committed ONNX line model, clear errors, no TensorFlow."
import subprocess, sys

import numpy as np
import pytest
from PIL import Image

from text_recognizer.data.emnist import load_emnist
from text_recognizer.inference.line import LINE_MODEL, LinePredictor, prepare_line
from text_recognizer.metadata import CHARSET, WEIGHTS_DIR

needs_model = pytest.mark.skipif(not (WEIGHTS_DIR / f"{LINE_MODEL}.onnx").exists(), reason="no committed line model")


def fixture_line(text="Hello world", seed=0):
    "A light-on-dark 28-px line of EMNIST test glyphs for `text` (letters, digits, spaces), sized like handwriting."
    x, y = load_emnist("test")
    rng = np.random.default_rng(seed)
    line, pos, baseline = np.zeros((28, 20 * len(text) + 16), np.uint8), 4, 22
    for c in text:
        if c == " ":
            pos += 10
            continue
        glyph = x[rng.choice(np.flatnonzero(y == CHARSET.index(c)))]
        rows, cols = np.flatnonzero(glyph.max(1) > 40), np.flatnonzero(glyph.max(0) > 40)
        ink = glyph[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        height = 11 if c in "acemnorsuvwxz" else 15 if c in "gpqy" else 17
        width = int(np.clip(round(ink.shape[1] * height / ink.shape[0]), 2, 18))
        small = np.asarray(Image.fromarray(ink).resize((width, height), Image.Resampling.BILINEAR))
        top = baseline - height + (5 if c in "gpqy" else 0)
        np.maximum(line[top:top + height, pos:pos + width], small, out=line[top:top + height, pos:pos + width])
        pos += width + 2
    return line[:, :pos + 8]


@pytest.fixture(scope="module")
def predictor():
    return LinePredictor()


def test_prepare_line_keeps_a_model_line_and_normalises_a_scan():
    line = fixture_line()
    a = prepare_line(line)
    assert a.dtype == np.uint8 and a.shape[0] == 28 and a.max() == 255 and a[:, 0].max() == 0
    scan = 255 - np.asarray(Image.fromarray(line).resize((line.shape[1] * 3, 84), Image.Resampling.BICUBIC))
    b = prepare_line(scan)
    assert b.shape[0] == 28 and abs(b.shape[1] - a.shape[1]) <= 0.08 * a.shape[1]  # one body scale, up to rounding
    same_size = np.asarray(Image.fromarray(b).resize(a.shape[::-1], Image.Resampling.BILINEAR))  # undo the rounding
    assert np.corrcoef(a.ravel(), same_size.ravel())[0, 1] > 0.8


def test_prepare_line_pads_tiny_inputs():
    dot = np.zeros((10, 3), np.uint8)
    dot[4:6, 1] = 200
    assert prepare_line(dot).shape == (28, 32)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((28, 100), np.uint8), ValueError, "no ink"),
    (np.full((28, 100), 255, np.uint8), ValueError, "no ink"),
    (np.zeros((0, 10), np.uint8), ValueError, "empty"),
    (np.zeros((2, 28, 100, 5), np.uint8), ValueError, "2-D"),
    (np.zeros(100, np.uint8), ValueError, "2-D"),
    (np.zeros((28, 100), np.int64), TypeError, "uint8"),
    ("no/such/line.png", FileNotFoundError, "no image file"),
    (b"", ValueError, "empty"),
    (42, TypeError, "file path"),
])
def test_bad_inputs_get_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        prepare_line(bad)


@needs_model
def test_predicts_both_polarities_and_files(predictor, tmp_path):
    line = fixture_line("Hello world")
    text, confidence = predictor.predict(line)
    assert isinstance(text, str) and 0 <= confidence <= 1
    assert predictor.predict(255 - line)[0] == text                   # dark ink on light paper
    Image.fromarray(255 - line).resize((line.shape[1] * 2, 56)).save(tmp_path / "line.png")
    from_file = predictor.predict(tmp_path / "line.png")[0]           # a file, twice the size
    from text_recognizer.inference.ctc import character_error_rate
    assert character_error_rate(from_file, text) <= 0.2
    assert character_error_rate(text, "Hello world", ignore_case=True) <= 0.5


@needs_model
def test_probabilities_have_one_step_per_4_pixels(predictor):
    line = fixture_line("abc 123")
    probs = predictor.predict_proba(line)
    assert probs.shape == (prepare_line(line).shape[1] // 4, len(CHARSET))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)


@needs_model
def test_lines_of_a_page_read_like_one_by_one(predictor):
    "predict_lines (the network in a worker thread) gives predict's texts and probabilities, in order, from a generator too."
    lines = [fixture_line(text, seed) for seed, text in enumerate(["Hello world", "abc", "The 3 owls sing", "Hi"])]
    prepared = [predictor.preprocess(line) for line in lines]
    together = predictor.predict_lines(prepared)
    alone = [predictor.predict(line) for line in lines]
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert np.allclose([c for _, c in together], [c for _, c in alone], rtol=1e-6)
    assert predictor.predict_lines(predictor.preprocess(line) for line in lines) == together
    assert all(0 <= c <= 1 for _, c in together) and predictor.predict_lines([]) == []


@needs_model
def test_greedy_option(tmp_path):
    greedy = LinePredictor(beam_width=None)
    text, confidence = greedy.predict(fixture_line("Text"))
    assert isinstance(text, str) and 0 <= confidence <= 1


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        LinePredictor(tmp_path / "missing.onnx")


def test_serving_imports_no_tensorflow():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import text_recognizer.inference.line\n"
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_model
def test_an_unsure_reading_is_read_again_at_other_sizes(predictor):
    "surest keeps a sure reading as it is and replaces an unsure one by the most probable reading at RESCALES."
    from text_recognizer.inference.line import UNSURE
    from text_recognizer.inference.line_normalization import rescale_line
    once = LinePredictor(rescales=())
    line = predictor.preprocess(fixture_line("Hello world"))
    sure = once.predict_lines([line])[0]
    assert np.log(sure[1]) >= UNSURE * len(sure[0]) and predictor.surest(line, sure) is sure
    shrunk = rescale_line(line, 0.5)                       # letters far smaller than the network was trained on
    first = once.predict_lines([shrunk])[0]
    assert np.log(first[1]) < UNSURE * max(len(first[0]), 1)
    best = predictor.predict_lines([shrunk])[0]
    readings = [first] + [once.predict_lines([rescale_line(shrunk, f)])[0] for f in predictor.rescales]
    assert best == max(readings, key=lambda r: r[1]) and best[1] > first[1]
    assert predictor.surest(shrunk, (first[0], 0.0)) != (first[0], 0.0)   # an improbable reading is always re-read
