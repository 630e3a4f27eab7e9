"ParagraphTextRecognizer: end to end on synthetic pages, bad inputs, compiled vs Keras, no TensorFlow in serving."
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

import text_recognizer.inference.paragraph as pr
import text_recognizer.inference.weights as weights
import text_recognizer.training.paragraph_lines as paragraph_lines
from text_recognizer.inference.ctc import character_error_rate
from text_recognizer.metadata import CHARSET, WEIGHTS_DIR
from text_recognizer.inference.paragraph import ParagraphTextRecognizer
from text_recognizer.inference.weights import build_manifest, verify_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def page():
    from text_recognizer.data.paragraphs import make_paragraphs
    pages = make_paragraphs(1, "test", seed=11, max_lines=4)
    return pages["images"][0], pages["texts"][0], pages["boxes"][0]


def test_reads_a_page_in_either_polarity_and_any_input_form(page, recognizer, tmp_path):
    image, truth, boxes = page
    result = recognizer.predict(image)
    assert set(result) == {"text", "lines"} and len(result["lines"]) == len(boxes)
    assert result["text"] == "\n".join(line["text"] for line in result["lines"])
    assert character_error_rate(result["text"], truth) < 0.25, (result["text"], truth)
    for line in result["lines"]:
        x0, y0, x1, y1 = line["box"]
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert isinstance(line["text"], str) and 0 <= line["confidence"] <= 1
    json.dumps(result)                                                   # plain JSON types only
    paper = 255 - (image * 0.75).astype(np.uint8)                       # dark ink on light paper
    on_paper = recognizer.predict(paper)
    # the same lines; at most one doubtful character per line may read differently at 3/4 of the contrast
    assert len(on_paper["lines"]) == len(boxes)
    assert Levenshtein.distance(on_paper["text"], result["text"]) <= len(boxes), (on_paper["text"], result["text"])
    path = tmp_path / "page.png"
    Image.fromarray(paper).save(path)
    assert recognizer.predict(path) == on_paper                          # a file, its bytes, a PIL image: the same
    assert recognizer.predict(path.read_bytes()) == on_paper
    assert recognizer.predict(Image.open(io.BytesIO(path.read_bytes()))) == on_paper


def test_page_line_strips_pair_detected_lines_with_their_texts(page, recognizer):
    image, truth, boxes = page
    strips, texts = paragraph_lines.page_line_strips(recognizer, [image], [truth], [boxes])
    assert len(strips) == len(texts) == len(boxes) and texts == truth.split("\n")
    assert all(s.dtype == np.uint8 and s.shape[0] == 28 and s.shape[1] >= 32 for s in strips)
    assert character_error_rate(recognizer.line_predictor.predict_lines(strips)[0][0], texts[0]) < 0.3
    stacked = paragraph_lines.stack_lines(strips, 900)
    assert stacked.shape == (len(strips), 28, 900) and np.array_equal(stacked[0, :, :strips[0].shape[1]], strips[0])
    with pytest.raises(ValueError, match="wide"):
        paragraph_lines.stack_lines(strips, 10)


def test_paragraph_lines_data_for_the_trainer():
    from text_recognizer.metadata import decode
    config = {"seed": 3, "dataset_args": {"train_pages": 3, "val_pages": 2, "test_pages": 2, "n_lines": 5}}
    data = paragraph_lines.paragraph_lines_data(config)
    for split in ("train", "val", "test"):
        images, labels = data[split]
        assert images.dtype == np.uint8 and images.shape[1] == 28 and len(images) == len(labels) > 0
        assert all(decode(label) for label in labels)                    # every strip has its line's text
    assert len(data["train"][0]) >= 5 + 3 and data["model"] == "line"
    with pytest.raises(ValueError, match="unknown dataset_args"):
        paragraph_lines.paragraph_lines_data({"dataset_args": {"pages": 3}})


def test_blank_images_have_no_lines(recognizer):
    assert recognizer.predict(np.zeros((120, 300), np.uint8)) == {"text": "", "lines": []}
    assert recognizer.predict(np.full((120, 300), 255, np.uint8)) == {"text": "", "lines": []}


def test_bad_inputs_get_clear_errors(recognizer, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        recognizer.predict(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        recognizer.predict(b"")
    with pytest.raises(ValueError, match="not an image"):
        recognizer.predict(b"definitely not a PNG")
    with pytest.raises(TypeError, match="expected a file path"):
        recognizer.predict(3.5)
    with pytest.raises(FileNotFoundError):
        recognizer.predict(tmp_path / "missing.png")
    monkeypatch.setattr(pr, "MAX_PIXELS", 1000)
    with pytest.raises(ValueError, match="at most 1,000"):
        recognizer.predict(np.zeros((100, 100), np.uint8))


def test_missing_detector_file_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        ParagraphTextRecognizer(detector_path=tmp_path / "nothing.onnx")


def test_compiled_models_match_keras(page, recognizer):
    pytest.importorskip("tensorflow")
    from text_recognizer.models.detector import LineDetectorModel
    from text_recognizer.inference.detector import detect_lines, ink_image
    from text_recognizer.models.line import LineModel
    from text_recognizer.inference.ctc import beam_search_decode
    image = page[0]
    detector = LineDetectorModel.load("line_detector")
    x = detector.inputs(image[None])
    assert np.abs(detector.body_probs(x) - recognizer.detector(x)).max() < 1e-4
    ink = ink_image(image)
    boxes = detect_lines(ink, recognizer.detector)
    assert np.array_equal(boxes, detect_lines(ink, lambda b: detector.body_probs(b, 1)))
    line_model = LineModel.load("line_model")
    for strip in recognizer.strips(ink)[1]:
        line = recognizer.line_predictor.preprocess(strip, paper=False)
        compiled = recognizer.line_predictor.model(line[None].astype(np.float32) / 255)[0]
        logits = np.asarray(line_model.network(line[None].astype(np.float32) / 255, training=False))[0]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        assert np.abs(compiled - probs).max() < 1e-3
        assert beam_search_decode(compiled, 10)[0] == beam_search_decode(probs, 10)[0]


def test_serving_path_imports_no_tensorflow_or_keras(page, tmp_path):
    np.save(tmp_path / "page.npy", page[0])
    code = ("import sys, json, numpy as np\n"
            "sys.modules['tensorflow'] = None; sys.modules['keras'] = None; sys.modules['tf2onnx'] = None\n"
            "from text_recognizer.inference.paragraph import ParagraphTextRecognizer\n"
            f"result = ParagraphTextRecognizer().predict(np.load({str(tmp_path / 'page.npy')!r}))\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'scipy')"
            " and sys.modules[m] is not None)\n"
            "print(json.dumps({'lines': len(result['lines']), 'heavy': heavy}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"lines": len(page[2]), "heavy": []}


def test_manifest_describes_the_committed_models():
    assert verify_manifest() == []
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    assert manifest["charset"] == list(CHARSET)
    assert {"line_detector", "line_model"} <= manifest["models"].keys()
    detector = manifest["models"]["line_detector"]
    assert detector["inputs"][0]["shape"] == [None, None, None, 1] and detector["metrics"]["f1"] >= 0.98
    assert detector["source"]["file"] == "line_detector.keras"


def test_verify_manifest_notices_changes(tmp_path):
    for name in ("line_detector.onnx", "line_detector.json"):
        (tmp_path / name).write_bytes((WEIGHTS_DIR / name).read_bytes())
    assert verify_manifest(tmp_path) == ["no manifest.json in the weights folder"]
    weights.write_json(tmp_path / "manifest.json", build_manifest(tmp_path))
    assert verify_manifest(tmp_path) == []
    with open(tmp_path / "line_detector.onnx", "ab") as f:
        f.write(b"\0")
    assert verify_manifest(tmp_path) == ["line_detector.onnx changed since manifest.json was written (sha256 differs)"]


def test_a_line_reads_the_same_alone_and_inside_a_page(recognizer):
    "LinePredictor and ParagraphTextRecognizer share one line normalization: the same line reaches the network alike."
    from text_recognizer.data.lines import make_lines
    from text_recognizer.inference.ctc import character_error_rate
    lines = make_lines(4, "test", seed=21, max_length=24)
    page, y, alone = np.zeros((480, 640), np.uint8), 30, []
    for image, scale in zip(lines["images"], (1.5, 2.0, 2.5, 1.8)):
        image = image[:, :np.flatnonzero(image.any(0))[-1] + 3]
        big = np.asarray(Image.fromarray(image).resize((round(image.shape[1] * scale), round(28 * scale)), Image.BILINEAR))
        big = big[:, :600]
        page[y:y + big.shape[0], 20:20 + big.shape[1]] = big
        alone.append(255 - big)   # the line by itself, dark on light
        y += big.shape[0] + 45
    _, strips = recognizer.strips(recognizer.ink(255 - page))
    assert len(strips) == len(alone)
    for by_itself, strip in zip(alone, strips):   # the network's inputs: same size, the ink on the same rows
        a = recognizer.line_predictor.preprocess(by_itself) / 255.0
        b = recognizer.line_predictor.preprocess(strip, paper=False) / 255.0   # as the page path prepares it
        assert a.shape[0] == b.shape[0] == 28 and abs(a.shape[1] - b.shape[1]) <= 0.05 * a.shape[1]
        assert np.abs(a.mean(1) - b.mean(1)).max() < 0.08, "the two paths put the line's body on different rows"
    read_alone = [recognizer.line_predictor.predict(image)[0] for image in alone]
    on_page = [line["text"] for line in recognizer.predict(255 - page)["lines"]]
    assert len(on_page) == len(read_alone)
    # the texts agree up to a letter the network reads near a tie (one in ~50 here)
    assert character_error_rate(on_page, read_alone) <= 0.05, (on_page, read_alone)


def _stroked_page(pen: int, cap: int = 120) -> np.ndarray:
    "uint8 page of three 'H'-like letters `cap` px tall drawn with a round pen `pen` px wide, light on dark."
    from PIL import ImageDraw
    page = Image.new("L", (4 * cap, 2 * cap))
    draw = ImageDraw.Draw(page)
    for k in range(3):
        x, y = cap // 4 + k * cap, cap // 2
        for line in ([(x, y), (x, y + cap)], [(x + cap // 2, y), (x + cap // 2, y + cap)], [(x, y + cap // 2), (x + cap // 2, y + cap // 2)]):
            draw.line(line, fill=255, width=pen, joint="curve")
    return np.asarray(page)


@pytest.mark.parametrize("pen, thickened", [(12, False), (3, True)])
def test_only_a_far_thinner_pen_is_thickened_before_reading(recognizer, monkeypatch, pen, thickened):
    "Writing 10x its stroke width (the line model trained on such pens) reaches the line model as cut; 40x is thickened."
    image, seen = _stroked_page(pen), []
    height, width = recognizer.locate(recognizer.ink(image))["writing"]  # the detector's measurement, used for both
    assert (height / width > pr.STRIP_THIN_PEN) == thickened, (height, width)
    preprocess = recognizer.line_predictor.preprocess
    monkeypatch.setattr(recognizer.line_predictor, "preprocess", lambda strip, paper=True: seen.append(strip) or preprocess(strip, paper))
    recognizer.predict(image)
    cut = recognizer.strips(recognizer.ink(image))[1]
    assert len(seen) == len(cut) >= 1
    ink_seen, ink_cut = sum(int(s.astype(np.int64).sum()) for s in seen), sum(int(s.astype(np.int64).sum()) for s in cut)
    assert (ink_seen > 1.5 * ink_cut) if thickened else all(np.array_equal(a, b) for a, b in zip(seen, cut))


def test_the_strips_of_a_page_are_not_cleaned_of_paper_again(page, recognizer, monkeypatch):
    "The page's remove_paper is the only one: its strips reach the line model as they were cut, ink on black."
    from text_recognizer.inference import character, line_normalization
    calls = []
    counted = lambda gray: calls.append(np.shape(gray)) or character.remove_paper(gray)
    monkeypatch.setattr(pr, "remove_paper", counted)
    monkeypatch.setattr(line_normalization, "remove_paper", counted)
    result = recognizer.predict(page[0])
    assert len(result["lines"]) == len(page[2]) >= 1 and calls == [page[0].shape]
