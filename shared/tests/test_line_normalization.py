"One line normalization (text_recognizer.inference.line_normalization): paper removal, body finding, the resample, serving-safe."
import subprocess, sys

import numpy as np
import pytest
from PIL import Image, ImageFilter

from text_recognizer.inference.line_normalization import (BODY_CENTRE, BODY_HEIGHT, LEFT_MARGIN, LINE_HEIGHT, MIN_WIDTH,
                                                          UPRIGHT_SHARE, lean, line_body, line_ink, normalize_line,
                                                          rescale_line, slant_of)
from text_recognizer.data.lines import make_lines


@pytest.fixture(scope="module")
def line():
    return make_lines(1, "test", seed=4)["images"][0]


def body_of(normal: np.ndarray) -> tuple[float, float]:
    "(centre row, thickness) of a normalized line, measured again."
    b = line_body(normal.astype(np.float32))
    return b["centre"][0], b["thickness"]


def similar(a: np.ndarray, b: np.ndarray) -> float:
    "Correlation of two lines blurred by 2 px (a stroke a pixel or two away still counts as the same)."
    w = min(a.shape[1], b.shape[1])
    soft = lambda x: np.asarray(Image.fromarray(x[:, :w]).filter(ImageFilter.GaussianBlur(2)), np.float32).ravel()
    return float(np.corrcoef(soft(a), soft(b))[0, 1])


def test_a_normalized_line_has_its_body_at_the_trained_place(line):
    out = normalize_line(line)
    centre, thickness = body_of(out)
    assert out.dtype == np.uint8 and out.shape[0] == LINE_HEIGHT and out.max() == 255
    assert abs(centre - BODY_CENTRE) <= 1.5 and abs(thickness - BODY_HEIGHT) <= 2


def test_size_margins_polarity_and_tilt_do_not_change_the_result(line):
    base = normalize_line(line)
    big = 255 - np.pad(np.asarray(Image.fromarray(line).resize((line.shape[1] * 3, 84), Image.BILINEAR)),
                       ((60, 90), (40, 40)))
    tilted = np.asarray(Image.fromarray(big).rotate(3, Image.BILINEAR, expand=True, fillcolor=255))
    for variant, alike in ((big, 0.7), (tilted, 0.35)):  # a tilted line is straightened by a shear: glyphs stay rotated
        out = normalize_line(variant)
        assert abs(out.shape[1] - base.shape[1]) <= 0.1 * base.shape[1]
        centre, thickness = body_of(out)
        assert similar(out, base) > alike and abs(centre - BODY_CENTRE) <= 1.5 and abs(thickness - BODY_HEIGHT) <= 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slant_of_measures_a_known_lean(seed):
    upright = normalize_line(make_lines(1, "test", seed=seed)["images"][0], upright=1)
    assert abs(slant_of(upright)) <= 0.1
    for slant in (-0.4, 0.25, 0.7):
        assert abs(slant_of(lean(upright, slant)) - slant) <= 0.1, slant


def test_slant_of_a_blank_or_a_speck_is_zero():
    speck = np.zeros((LINE_HEIGHT, 40), np.uint8)
    assert slant_of(speck) == 0.0
    speck[14, 20] = 255
    assert slant_of(speck) == 0.0


def test_a_leaning_line_is_normalized_upright_and_whole(line):
    base = normalize_line(line, upright=1)
    to_base = lambda x: np.asarray(Image.fromarray(x).resize(base.shape[::-1], Image.BILINEAR))  # a body a bit off: same size
    for slant in (-0.3, 0.5, 0.9):
        leaning = lean(base, slant, pad=30)
        out, as_drawn = normalize_line(leaning, upright=1), normalize_line(leaning, upright=0)
        default = normalize_line(leaning)                                     # UPRIGHT_SHARE of the slant undone
        assert abs(slant_of(default) - (1 - UPRIGHT_SHARE) * slant) <= 0.1, slant
        cols = np.flatnonzero(out.max(0) > 32)
        assert abs(slant_of(out)) <= 0.1 and similar(to_base(out), base) > 0.8, slant
        assert abs(slant_of(as_drawn) - slant) <= 0.1 and similar(to_base(as_drawn), base) < similar(to_base(out), base)
        assert cols[0] >= LEFT_MARGIN - 2 and cols[-1] < out.shape[1] - 4     # nothing sheared off either end
        assert abs(out.shape[1] - as_drawn.shape[1]) <= 0.05 * as_drawn.shape[1]


def test_very_large_writing_reaches_the_model_size(line):
    huge = np.asarray(Image.fromarray(line).resize((line.shape[1] * 12, LINE_HEIGHT * 12), Image.BILINEAR))
    out = normalize_line(huge)
    assert out.shape[0] == LINE_HEIGHT and abs(out.shape[1] - normalize_line(line).shape[1]) <= 0.1 * out.shape[1]
    assert abs(body_of(out)[1] - BODY_HEIGHT) <= 2


def test_shaded_grainy_paper_is_not_ink():
    rng = np.random.default_rng(0)
    page = np.clip(np.linspace(215, 105, 400)[None, :] + rng.normal(0, 5, (60, 400)), 0, 255).astype(np.uint8)
    page[25:33, 50:350] = 15
    ink = line_ink(page)
    assert (ink[:18] > 0).mean() < 0.01 and (ink[27:31, 60:340] > 0).all()
    body = line_body(ink)
    assert (body["left"], body["right"]) == (50, 350) and abs(body["centre"][0] - 29) <= 1.5


def test_ink_on_black_is_read_as_it_is_without_paper():
    strip = np.full((30, 120), 10, np.uint8)                  # ink on black with a faint haze, as a page's strip can be
    strip[13:17, 10:110] = 200
    kept, cleaned = line_ink(strip, paper=False), line_ink(strip)
    assert kept.dtype == np.float32 and np.array_equal(kept, strip)
    assert cleaned[0, 0] == 0 and cleaned[15, 50] > 150        # remove_paper takes the haze for paper
    with pytest.raises(ValueError, match="no ink"):
        line_ink(np.full((30, 120), 10, np.uint8), paper=False)
    assert normalize_line(strip, paper=False).shape[0] == LINE_HEIGHT


def test_the_centre_line_follows_a_tilted_line():
    band = np.zeros((90, 500), np.float32)
    for x in range(30, 470):
        band[int(20 + 0.08 * x):int(20 + 0.08 * x) + 10, x] = 180
    body = line_body(band)
    assert abs(body["centre"][1] - 0.08) < 0.01 and 8 <= body["thickness"] <= 12


def test_a_speck_gives_the_minimum_width_and_blank_images_are_refused():
    speck = np.zeros((40, 40), np.uint8)
    speck[20, 20] = 200
    assert normalize_line(speck).shape == (LINE_HEIGHT, MIN_WIDTH)
    for blank in (np.zeros((28, 100), np.uint8), np.full((50, 80), 230, np.uint8)):
        with pytest.raises(ValueError, match="no ink"):
            normalize_line(blank)


def test_needs_neither_scipy_nor_tensorflow():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('tensorflow', 'keras', 'scipy'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import numpy as np\n"
            "from text_recognizer.inference.line_normalization import normalize_line\n"
            "a = np.zeros((50, 200), np.uint8); a[20:30, 20:180] = 255\n"
            "assert normalize_line(a).shape[0] == 28\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1])
def test_rescale_line_scales_the_body_about_its_centre_and_keeps_the_margins(line, factor):
    normal = normalize_line(line)
    scaled = rescale_line(normal, factor)
    (c0, t0), (c1, t1) = body_of(normal), body_of(scaled)
    assert scaled.shape[0] == LINE_HEIGHT and scaled.dtype == np.uint8
    assert abs(c1 - BODY_CENTRE) <= 1.0 and abs(c1 - c0) <= 1.0 and abs(t1 - factor * t0) <= 1.5
    ink_cols = lambda x: np.flatnonzero((x > 89).any(0))
    assert abs(ink_cols(scaled)[0] - LEFT_MARGIN) <= 1
    assert abs(scaled.shape[1] - ink_cols(scaled)[-1] - (normal.shape[1] - ink_cols(normal)[-1])) <= 2
    assert np.array_equal(rescale_line(normal, 1.0), normal)
