"""Tests of text_recognizer.data.paragraphs: synthetic pages with line boxes and masks, line crops, and the cache."""
import numpy as np
import pytest

from text_recognizer.data import lines
from text_recognizer.data import paragraphs


@pytest.fixture(scope="module")
def pages():
    return paragraphs.make_paragraphs(6, "test", seed=3, height=320, width=480, max_lines=6, max_length=28)


def test_contract(pages):
    assert pages["images"].shape == pages["masks"].shape == (6, 320, 480)
    assert pages["images"].dtype == pages["masks"].dtype == np.uint8 and len(pages["texts"]) == len(pages["boxes"]) == 6
    for text, boxes, mask in zip(pages["texts"], pages["boxes"], pages["masks"]):
        rows = text.split("\n")
        assert boxes.shape == (len(rows), 4) and 1 <= len(rows) <= 6 and all(0 < len(r) <= 28 for r in rows)
        assert set(np.unique(mask)) == set(range(len(rows) + 1))  # 0 = background, 1..k = the lines


def test_boxes_are_in_the_page_in_reading_order_and_hold_their_mask_and_ink(pages):
    for img, boxes, mask in zip(pages["images"], pages["boxes"], pages["masks"]):
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 480).all() and (boxes[:, 3] <= 320).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (np.diff(boxes[:, 1]) > 0).all()  # top to bottom
        for k, (x0, y0, x1, y1) in enumerate(boxes, 1):
            ys, xs = np.nonzero(mask == k)
            assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
            assert img[y0:y1, x0:x1].max() > 150  # ink inside
        outside = mask == 0
        assert img[outside].mean() < img[~outside].mean()  # the lines are where the ink is


def test_page_texts_come_from_the_split(pages):
    test_text = " ".join(lines.load_sentences("test"))
    assert all(row in test_text for t in pages["texts"] for row in t.split("\n"))


def test_deterministic_and_font_pages(pages):
    again = paragraphs.make_paragraphs(6, "test", seed=3, height=320, width=480, max_lines=6, max_length=28)
    assert np.array_equal(again["images"], pages["images"]) and again["texts"] == pages["texts"]
    fonted = paragraphs.make_paragraphs(2, "train", seed=0, height=320, width=480, font_rate=1.0, noise=False)
    assert fonted["images"].max() > 150 and all(len(b) for b in fonted["boxes"])


def test_bad_sizes_are_errors():
    with pytest.raises(ValueError, match="too small"):
        paragraphs.make_paragraphs(1, height=40, width=400)
    with pytest.raises(ValueError, match="max_lines"):
        paragraphs.make_paragraphs(1, max_lines=0)


def test_line_crops_give_the_line_format(pages):
    crops = paragraphs.line_crops(pages["images"][0], pages["boxes"][0], max_length=28)
    assert crops.shape == (len(pages["boxes"][0]), 28, lines.line_width(28)) and crops.dtype == np.uint8
    assert all(c.max() > 150 for c in crops)
    x0, y0, x1, y1 = pages["boxes"][0][0]
    expected_width = round((x1 - x0) * 28 / (y1 - y0))
    assert abs(np.flatnonzero(crops[0].any(0))[-1] + 1 - expected_width) <= 1  # aspect ratio kept


def test_page_noise_is_seeded_and_lifts_the_background():
    blank = np.zeros((3, 60, 80), np.uint8)
    a = paragraphs.page_noise(blank, np.random.default_rng(0))
    assert a.shape == blank.shape and a.dtype == np.uint8 and 3 < a.mean() < 60
    assert np.array_equal(a, paragraphs.page_noise(blank, np.random.default_rng(0)))


def test_paragraphs_dataset_cache(tmp_path, capsys):
    d = paragraphs.paragraphs_dataset("val", 5, seed=1, height=256, width=384, max_lines=4, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    loaded = paragraphs.paragraphs_dataset("val", 5, seed=1, height=256, width=384, max_lines=4, cache_dir=tmp_path)
    assert loaded["texts"] == d["texts"] and np.array_equal(loaded["masks"], d["masks"])
    assert all(np.array_equal(a, b) for a, b in zip(loaded["boxes"], d["boxes"]))
    path.write_bytes(b"not an npz")
    rebuilt = paragraphs.paragraphs_dataset("val", 5, seed=1, height=256, width=384, max_lines=4, cache_dir=tmp_path)
    assert "damaged" in capsys.readouterr().out and np.array_equal(rebuilt["images"], d["images"])
