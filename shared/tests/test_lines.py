"""Tests of text_recognizer.data.lines: the sentence corpus, synthetic EMNIST / font lines, and their disk cache."""

import numpy as np
import pytest
from scipy import ndimage

from text_recognizer.data import lines
from text_recognizer.inference.detector import writing_size
from text_recognizer.metadata import CHARSET, decode, encode


# ---- corpus --------------------------------------------------------------------------------------------------------

def test_split_sentences_cleans_and_filters():
    fortune = "Is it \u201cclassified\u201d?  Yes.  Ok, go on;\nsaid `he'.\n\t\t-- Somebody, 1999\n"
    assert lines.split_sentences(fortune) == ['Is it "classified"?', "Ok, go on; said 'he'."]
    assert lines.split_sentences("  <<<<< $$$ >>>>> | ~ |  ") == []  # art and symbols: nothing left


def test_missing_corpus_says_which_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="fortunes.*bootstrap"):
        lines.corpus_files(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="fortunes-min"):
        lines.load_sentences(folder=tmp_path)  # a folder without fortune files


def test_corpus_from_a_tiny_folder(tmp_path):
    (tmp_path / "tiny").write_text("One small sentence here.  And 2 more!\n%\nA third one, quoted: \"yes\".\n%\n"
                                   "One small sentence here.\n%\n")
    (tmp_path / "tiny.dat").write_bytes(b"\x00\x01")  # the strfile index beside it is not text
    got = lines.load_sentences(folder=tmp_path)
    assert got == ["One small sentence here.", "And 2 more!", 'A third one, quoted: "yes".']  # de-duplicated
    assert sorted(sum((lines.load_sentences(s, folder=tmp_path) for s in lines.TEXT_SPLITS), [])) == sorted(got)


def test_real_corpus_splits_are_disjoint_and_in_charset():
    every = lines.load_sentences()
    parts = {s: lines.load_sentences(s) for s in lines.TEXT_SPLITS}
    assert len(every) > 10_000 and sum(map(len, parts.values())) == len(every) == len(set(every))
    assert not set(parts["train"]) & set(parts["test"]) and len(parts["test"]) > 0.05 * len(every)
    assert all(set(s) <= set(CHARSET[1:]) for s in every[:2000])
    with pytest.raises(ValueError, match="split"):
        lines.load_sentences("dev")


def test_sample_texts_lengths_and_seed():
    texts = lines.sample_texts(500, "train", max_length=20, rng=3)
    assert all(1 <= len(t) <= 20 and t == t.strip() and "  " not in t for t in texts)
    assert len({len(t) for t in texts}) > 10  # all sorts of lengths
    assert lines.sample_texts(500, "train", 20, rng=3) == texts != lines.sample_texts(500, "train", 20, rng=4)
    with pytest.raises(ValueError, match="max_length"):
        lines.sample_texts(1, "train", 0)


# ---- lines ---------------------------------------------------------------------------------------------------------

def test_make_lines_contract_and_determinism():
    d = lines.make_lines(40, "val", max_length=24, seed=5, font_rate=0.3)
    assert d["images"].shape == (40, 28, lines.line_width(24)) == (40, 28, 672) and d["images"].dtype == np.uint8
    assert d["labels"].shape == (40, 24) and d["labels"].dtype == np.int32
    assert [decode(l) for l in d["labels"]] == d["texts"] and all(1 <= len(t) <= 24 for t in d["texts"])
    for t, l in zip(d["texts"], d["labels"]):
        assert list(l[:len(t)]) == encode(t) and not l[len(t):].any()  # padded with the blank
    assert (d["images"].reshape(40, -1).max(1) > 100).all()  # every line has ink
    again = lines.make_lines(40, "val", max_length=24, seed=5, font_rate=0.3)
    assert np.array_equal(again["images"], d["images"]) and again["texts"] == d["texts"]
    other = lines.make_lines(40, "val", max_length=24, seed=6, font_rate=0.3)
    assert other["texts"] != d["texts"]
    with pytest.raises(ValueError, match="font_rate"):
        lines.make_lines(2, font_rate=1.5)


def test_ink_grows_with_text_length_and_stays_left():
    texts = ["a", "ab cd", "a much longer line of text here"]
    for realism in (False, True):
        img = lines.draw_lines(texts, "train", 896, rng=0, realism=realism)
        ends = [np.flatnonzero(l.any(0))[-1] for l in img]
        assert ends[0] < ends[1] < ends[2] < 896
        assert all(np.flatnonzero(l.any(0))[0] < 12 for l in img)  # left-aligned


def test_reference_layout_pastes_unchanged_glyphs_of_the_split():
    test_bank, train_bank = lines.glyph_bank("test"), lines.glyph_bank("train")
    img = lines.draw_lines(["A"] * 20, "test", 56, rng=0, realism=False)
    a = lines.CHAR_TO_INDEX["A"]
    for split_bank, expect in ((test_bank, True), (train_bank, False)):
        glyphs = split_bank["glyphs"][split_bank["start"][a]:split_bank["start"][a] + split_bank["count"][a]]
        found = [any(np.array_equal(cell, g) for g in glyphs) for cell in img[:, :, :28]]
        assert all(found) if expect else not any(found)


def test_realism_changes_the_look_not_the_format():
    plain = lines.draw_lines(["Hello world"] * 8, "train", 400, rng=1, realism=False)
    real = lines.draw_lines(["Hello world"] * 8, "train", 400, rng=1, realism=True)
    assert plain.shape == real.shape == (8, 28, 400)
    widths = lambda img: [np.flatnonzero(l.any(0))[-1] for l in img]
    assert np.mean(widths(real)) < np.mean(widths(plain))  # ink boxes and margins instead of full 28-px cells
    assert len({w for w in widths(real)}) > 1  # sizes and spacing vary from line to line


def test_font_lines_use_only_fonts_that_have_the_characters():
    img = lines.draw_font_lines(["Quick, brown fox?", "x"], "test", 500, rng=0)
    assert img.shape == (2, 28, 500) and img[0].max() > 100 and img[1].max() > 100
    used = [np.flatnonzero(l.any(0)) for l in img]
    assert used[1][-1] - used[1][0] < used[0][-1] - used[0][0]


def test_too_long_label_is_an_error():
    with pytest.raises(ValueError, match="max_length"):
        lines.encode_labels(["abcdef"], 5)


# ---- varied lines --------------------------------------------------------------------------------------------------

def _components(line: np.ndarray) -> int:
    return ndimage.label(line > 64)[1]


def test_a_thin_pen_draws_thinner_strokes_that_stay_connected():
    for line in lines.draw_lines(["understand how the broken", "quick brown fox jumps"], "train", 400, rng=0):
        thick = lines.pen_redraw(line, np.random.default_rng(1), radius=(2, 2))
        thin = lines.pen_redraw(line, np.random.default_rng(1), radius=(0.5, 0.5), slack=0.5)
        broken = lines.pen_redraw(line, np.random.default_rng(1), radius=(0.5, 0.5))  # no slack: ridges break apart
        assert (thin > 64).sum() < 0.9 * (line > 64).sum() < 0.5 * (thick > 64).sum()
        assert _components(thin) <= 1.2 * _components(line) < 0.7 * _components(broken)


def test_distort_spacing_sets_how_wide_the_writing_is():
    line = lines.draw_lines(["very much and for you"], "train", 400, rng=0)[0]
    width = lambda a: np.ptp(np.flatnonzero(a.max(0) > 64))
    narrow, wide = (lines.distort(line, np.random.default_rng(2), spacing=(k, k)) for k in (0.7, 1.8))
    assert 0.6 < width(narrow) / width(line) < 0.8 and 1.6 < width(wide) / width(line) < 2.0


def test_a_varied_line_whose_effects_leave_no_ink_is_the_line_as_drawn(monkeypatch):
    line = lines.draw_lines(["a."], "train", 64, rng=0)[0]
    monkeypatch.setattr(lines, "pen_redraw", lambda l, rng, **kwargs: np.zeros_like(l))  # a pen that draws nothing
    monkeypatch.setattr(lines, "scan", lambda l, rng: np.full((40, l.shape[1]), 200, np.uint8))  # blank paper
    out = lines.vary_line(line, np.random.default_rng(0), pen_rate=1.0, distort_rate=0.0, scan_rate=1.0)
    assert np.array_equal(out, lines.normalize_line(line[:, :lines._ink_end(line)]))


def test_vary_arguments_reach_the_lines_and_their_cache_name(tmp_path):
    plain = lines.lines_dataset("val", 40, max_length=16, seed=1, varied=True, cache_dir=tmp_path, vary={"pen_rate": 0.0})
    thin = lines.lines_dataset("val", 40, max_length=16, seed=1, varied=True, cache_dir=tmp_path,
                               vary={"pen_rate": 1.0, "thin_rate": 1.0, "spacing": (1.5, 1.9)})
    assert plain["texts"] == thin["texts"] and len(list(tmp_path.iterdir())) == 2
    assert any("pen_rate1-spacing1.5_1.9-thin_rate1" in f.name for f in tmp_path.iterdir())
    stroke = lambda d: np.array([writing_size(x / 255.0)[1] for x in d["images"]])  # (height, stroke width)
    assert np.median(stroke(thin) / stroke(plain)) < 0.9  # the same lines, redrawn with a thin pen (seen: 0.81-0.83)
    with pytest.raises(ValueError, match="unknown vary_line arguments.*thinrate"):
        lines.lines_dataset("val", 20, varied=True, vary={"thinrate": 1.0}, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="needs varied=True"):
        lines.lines_dataset("val", 20, vary={"thin_rate": 1.0}, cache_dir=tmp_path)


# ---- cache ---------------------------------------------------------------------------------------------------------

def test_lines_dataset_cache_roundtrip_and_rebuild(tmp_path, capsys):
    d = lines.lines_dataset("test", 30, max_length=16, seed=2, font_rate=0.2, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    files[0].write_bytes(files[0].read_bytes()[:500])  # truncate: a damaged cache
    again = lines.lines_dataset("test", 30, max_length=16, seed=2, font_rate=0.2, cache_dir=tmp_path)
    assert "damaged" in capsys.readouterr().out
    assert np.array_equal(again["images"], d["images"]) and again["texts"] == d["texts"]
    loaded = lines.lines_dataset("test", 30, max_length=16, seed=2, font_rate=0.2, cache_dir=tmp_path)
    assert np.array_equal(loaded["labels"], d["labels"]) and loaded["texts"] == d["texts"]
    assert d["images"].shape == (30, 28, lines.line_width(16))


def test_a_changed_font_list_makes_a_new_cache(tmp_path, monkeypatch):
    "Caches are keyed by the handwriting fonts drawn from: a font installed or removed is not read from an old file."
    first = lines.lines_dataset("val", 6, max_length=12, seed=4, font_rate=1.0, cache_dir=tmp_path)
    fonts = lines.handwriting_fonts("val")
    assert len(fonts) >= 2 and lines.font_tag("val", 1.0).startswith(f"-fonts{len(fonts)}.")
    monkeypatch.setattr(lines, "handwriting_fonts", lambda split="train": fonts[:1])  # every font but one removed
    fewer = lines.lines_dataset("val", 6, max_length=12, seed=4, font_rate=1.0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("lines-*.npz"))) == 2 and fewer["texts"] == first["texts"]
    assert lines.font_tag("val", 0.0) == "" and lines.font_tag("val", 1.0) != ""
