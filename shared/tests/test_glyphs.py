"""Tests of text_recognizer.glyphs: fonts, coverage, rendering in the EMNIST look, the character bank."""
import shutil

import numpy as np
import pytest

from text_recognizer import glyphs
from text_recognizer.emnist import load_emnist
from text_recognizer.metadata import CHARSET, CHAR_TO_INDEX, PUNCTUATION, project_root


def test_font_splits_are_disjoint_and_installed():
    train, test = glyphs.handwriting_fonts("train"), glyphs.handwriting_fonts("test")
    assert len(train) >= 5 and len(test) >= 2 and not set(train) & set(test)
    assert all(p.exists() for p in train + test)
    with pytest.raises(ValueError, match="split"):
        glyphs.handwriting_fonts("dev")


def test_missing_fonts_say_run_bootstrap(monkeypatch):
    with pytest.raises(FileNotFoundError, match="setup/bootstrap"):
        glyphs.find_font("NoSuchHand.ttf")
    monkeypatch.setattr(glyphs, "_font_index", lambda: {})
    with pytest.raises(FileNotFoundError, match="setup/bootstrap"):
        glyphs.handwriting_fonts("train")


def test_coverage_detects_missing_glyphs_and_small_capitals():
    humor, comic = glyphs.find_font("Humor-Sans.ttf"), glyphs.find_font("ComicNeue-Regular.otf")
    # two different characters that no font has render as the same "missing glyph"
    assert np.array_equal(glyphs.master(comic, "\ue000")[0], glyphs.master(comic, "\ue001")[0])
    assert set(PUNCTUATION) <= set(glyphs.font_report(comic)["covered"])
    assert not glyphs.font_report(comic)["small_caps"] and "a" in glyphs.font_report(comic)["covered"]
    assert glyphs.font_report(humor)["small_caps"] and "a" not in glyphs.font_report(humor)["covered"]
    assert all("a" in glyphs.font_report(f)["covered"] for f in glyphs._fonts_for("a", "test")["a"])


def test_render_contract_and_determinism():
    x, y = glyphs.render_glyphs("a,?", 4, seed=3)
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert [CHARSET[i] for i in y] == list("aaaa,,,,????")
    assert np.array_equal(x, glyphs.render_glyphs("a,?", 4, seed=3)[0])
    assert not np.array_equal(x, glyphs.render_glyphs("a,?", 4, seed=4)[0])
    assert glyphs.render_glyphs("", 4)[0].shape == (0, 28, 28)


def test_emnist_look():
    x, _ = glyphs.render_glyphs("0Aa!?", 6, seed=1)
    assert x.max(axis=(1, 2)).min() >= 200                       # white ink ...
    assert np.mean(x == 0) > 0.5 and np.mean(x[:, [0, -1]] > 0) < 0.01 and np.mean(x[:, :, [0, -1]] > 0) < 0.01
    ink = x > 127
    height = 28 - ink.any(2)[:, ::-1].argmax(1) - ink.any(2).argmax(1)
    width = 28 - ink.any(1)[:, ::-1].argmax(1) - ink.any(1).argmax(1)
    assert 18 <= np.median(np.maximum(height, width)) <= 25       # fitted like EMNIST (about 22 px)
    centre = np.array([np.average(np.indices((28, 28))[0], weights=g) for g in x.astype(float)])
    assert np.all(np.abs(centre - 13.5) < 3)


def test_line_layout_keeps_position():
    x, y = glyphs.render_glyphs(",'", 8, seed=2, layout="line", augment=False)
    weight_row = lambda g: np.average(np.arange(28), weights=g.sum(1))
    assert min(weight_row(g) for g in x[:8]) > max(weight_row(g) for g in x[8:]) + 8  # comma low, apostrophe high
    fitted, _ = glyphs.render_glyphs(",", 1, augment=False)
    assert (fitted > 127).sum() > (x[0] > 127).sum()  # the EMNIST layout blows a comma up to the full frame


def test_bad_requests():
    with pytest.raises(ValueError, match="é"):
        glyphs.render_glyphs("é", 1)
    with pytest.raises(ValueError, match="layout"):
        glyphs.render_glyphs("a", 1, layout="page")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    (tmp_path / "emnist").mkdir()
    for name in ("emnist.json", "emnist-byclass-100k.npz"):
        shutil.copy(project_root() / "data" / "emnist" / name, tmp_path / "emnist")
    monkeypatch.setenv("TR_DATA_DIR", str(tmp_path))
    return tmp_path


def test_char_bank_uses_its_split_only_and_is_cached(data_dir):
    train = glyphs.char_bank("train", rendered_per_char=3)
    test = glyphs.char_bank("test", rendered_per_char=3, letter_variants=1)
    assert set(train) == set(CHARSET[2:]) == set(test)
    assert all(g.dtype == np.uint8 and g.shape[1:] == (28, 28) and len(g) for g in test.values())
    assert len(train["?"]) == 3 and len(test["a"]) == np.sum(load_emnist("test")[1] == CHAR_TO_INDEX["a"]) + 1
    x, y = load_emnist("test")
    assert np.array_equal(test["Q"][:-1], x[y == CHAR_TO_INDEX["Q"]])
    train_images = {g.tobytes() for g in train["e"]}
    assert not any(g.tobytes() in train_images for g in test["e"])        # no image shared across splits
    cached = list((data_dir / "processed").glob("char_bank-*.npz"))
    assert len(cached) == 2
    again = glyphs.char_bank("train", rendered_per_char=3)
    assert all(np.array_equal(again[c], train[c]) for c in train)


def test_damaged_char_bank_is_rebuilt(data_dir):
    bank = glyphs.char_bank("val", rendered_per_char=2)
    (path,) = (data_dir / "processed").glob("char_bank-*.npz")
    path.write_bytes(b"garbage")
    rebuilt = glyphs.char_bank("val", rendered_per_char=2)
    assert all(np.array_equal(rebuilt[c], bank[c]) for c in bank)
    assert path.stat().st_size > 1000
