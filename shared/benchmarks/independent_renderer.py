"""Synthetic test suites of the generalization benchmark, drawn independently of the training generators.

For shared/benchmarks/evaluate_generalization.py (and notebooks that show its suites) only: the package
`shared/text_recognizer/` never imports this file, so no training data can come from it. Every renderer takes texts and
a numpy Generator and returns a list of uint8 grayscale images; glyphs come from the EMNIST test split only.

- `reference_lines` / `reference_pages`: EMNIST lines in the 2019 FSDL course format: full 28×28 cells side by side,
  one overlap per line uniform in 0 .. 1/3 of a cell, a space is an empty cell, canvas 28×952 (34 cells), light on dark.
- `render_lines` / `render_pages`: this file's own handwriting-line renderer: line heights 24-60 px, per-glyph ink-box
  scaling in 0.7-1.2, its own vertical placement, spacing, overlap, baseline drift and slant, punctuation drawn as pen
  strokes (`PUNCTUATION_STROKES`), both ink polarities (alternating), blur and noise.
- `font_lines` / `font_pages`: text written with PIL in the held-out fonts of `handwriting_fonts("test")`, dark on light.
- `pen_lines`: EMNIST glyphs thinned to 1-px skeletons (`zhang_suen`) and drawn with a round pen of constant width
  (`PEN_WIDTH`, the web page's pen), dark on white, letters about `PEN_SIZES[size]` px tall.
"""
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from text_recognizer.data.emnist import load_emnist
from text_recognizer.data.glyphs import font_report, handwriting_fonts
from text_recognizer.metadata import CHAR_TO_INDEX, EMNIST_CLASSES

CELL, REFERENCE_CELLS = 28, 34              # the 2019 course's EMNIST lines: 34 cells of 28 px
MIN_HEIGHT, MAX_HEIGHT = 24, 60             # line heights of the independent renderer (px)
PEN_WIDTH = 7                               # px: the web page's pen (static/app.js: lineWidth 7, round caps and joins)
PEN_SIZES = {"S": 20, "M": 45, "L": 90}     # px: capital height of pen-drawn letters
SMALL, DESCENDING = set("acemnorsuvwxz"), set("gpqy")


def _arc(x0: float, bulge: float) -> list[tuple[float, float]]:
    "A bracket-shaped stroke from above the capital height to below the baseline, bulging by `bulge`."
    return [(x0 + bulge * np.sin(np.pi * t), -0.1 + 1.3 * t) for t in np.linspace(0, 1, 9)]


def _dot(x: float, y: float) -> list[tuple[float, float]]:
    return [(x, y), (x, y + 0.03)]


_COMMA = [(0.6, 0.9), (0.55, 1.02), (0.35, 1.2)]
# character -> (width in capital heights, polylines); x in 0..1 of the width, y in capital heights (0 top, 1 baseline)
PUNCTUATION_STROKES = {
    ".": (0.25, [_dot(0.5, 0.94)]), ",": (0.25, [_COMMA]), ":": (0.25, [_dot(0.5, 0.45), _dot(0.5, 0.94)]),
    ";": (0.25, [_dot(0.55, 0.45), _COMMA]), "!": (0.25, [[(0.5, 0.0), (0.5, 0.68)], _dot(0.5, 0.94)]),
    "?": (0.55, [[(0.05, 0.25), (0.25, 0.03), (0.6, 0.0), (0.9, 0.2), (0.8, 0.42), (0.5, 0.55), (0.5, 0.72)],
                 _dot(0.5, 0.94)]),
    "'": (0.2, [[(0.6, 0.0), (0.4, 0.3)]]), '"': (0.4, [[(0.35, 0.0), (0.2, 0.3)], [(0.85, 0.0), (0.7, 0.3)]]),
    "-": (0.55, [[(0.05, 0.6), (0.95, 0.57)]]), "/": (0.6, [[(0.95, -0.05), (0.05, 1.05)]]),
    "(": (0.35, [_arc(0.9, -0.8)]), ")": (0.35, [_arc(0.1, 0.8)]),
    "+": (0.65, [[(0.05, 0.55), (0.95, 0.55)], [(0.5, 0.15), (0.5, 0.95)]]),
    "*": (0.55, [[(0.5, 0.05), (0.5, 0.6)], [(0.05, 0.18), (0.95, 0.47)], [(0.95, 0.18), (0.05, 0.47)]]),
    "#": (0.75, [[(0.4, 0.05), (0.25, 1.0)], [(0.8, 0.05), (0.65, 1.0)], [(0.05, 0.35), (0.95, 0.35)],
                 [(0.0, 0.7), (0.9, 0.7)]]),
    "&": (0.75, [[(0.95, 1.0), (0.3, 0.45), (0.25, 0.15), (0.45, 0.0), (0.65, 0.15), (0.55, 0.38), (0.1, 0.7),
                  (0.2, 0.97), (0.5, 1.0), (0.9, 0.55)]]),
}
DRAWABLE = set(EMNIST_CLASSES) | set(PUNCTUATION_STROKES) | {" "}


# ---------------------------------------------------------------------------------------------------------- glyphs
@lru_cache(maxsize=1)
def test_glyphs() -> dict[str, np.ndarray]:
    "EMNIST test-split glyphs by character: {char: uint8 (k, 28, 28), light on black}."
    x, y = load_emnist("test")
    return {c: x[y == CHAR_TO_INDEX[c]] for c in EMNIST_CLASSES}


def pick_glyph(char: str, rng) -> tuple[int, np.ndarray]:
    "A random test glyph of `char`: its index in `test_glyphs()[char]` and the uint8 28×28 image."
    bank = test_glyphs()[char]
    i = int(rng.integers(len(bank)))
    return i, bank[i]


def alnum_text(text: str) -> str:
    "`text` with letters, digits and single spaces only (other characters dropped)."
    return " ".join("".join(c for c in text if c in EMNIST_CLASSES or c.isspace()).split())


def drawable_text(text: str) -> str:
    "`text` without the characters these renderers cannot draw, whitespace squashed."
    return " ".join("".join(c for c in text if c in DRAWABLE).split())


def size_class(char: str) -> tuple[float, float]:
    "(ink height, depth of its bottom below the baseline), in capital heights, of a letter or digit."
    if char in SMALL:
        return 0.6, 0.0
    if char in DESCENDING:
        return 0.9, 0.3
    return (1.1, 0.3) if char == "j" else (1.0, 0.0)


def _ink_crop(glyph: np.ndarray) -> np.ndarray:
    "The float ink (0..1) of a glyph cropped to its box."
    ink = glyph.astype(np.float32) / max(float(glyph.max()), 1.0)
    rows, cols = np.flatnonzero(ink.max(1) > 0.15), np.flatnonzero(ink.max(0) > 0.15)
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _resize(ink: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(ink, "F").resize((max(1, width), max(1, height)), Image.Resampling.BILINEAR))


def _draw_polylines(draw: ImageDraw.ImageDraw, polylines, width: float, fill) -> None:
    "Draw polylines (lists of (x, y) points) with a round pen `width` px wide."
    r = width / 2
    for line in polylines:
        if len(line) > 1:
            draw.line([tuple(p) for p in line], fill=fill, width=max(1, round(width)))
        for x, y in line:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _stroke_ink(char: str, cap: float, width: float) -> tuple[np.ndarray, int]:
    "Float ink of a punctuation mark drawn as strokes `width` px wide, and the row of its capital line (y = 0)."
    w_rel, lines = PUNCTUATION_STROKES[char]
    pad = int(np.ceil(width)) + 1
    top = pad + int(np.ceil(0.15 * cap))
    w, h = int(np.ceil(w_rel * cap)) + 2 * pad, top + int(np.ceil(1.3 * cap)) + pad
    image = Image.new("L", (w, h), 0)
    _draw_polylines(ImageDraw.Draw(image), [[(pad + x * w_rel * cap, top + y * cap) for x, y in line]
                                            for line in lines], width, 255)
    ink = np.asarray(image, np.float32) / 255
    cols = np.flatnonzero(ink.max(0) > 0)
    return ink[:, cols[0]:cols[-1] + 1], top


def _paste_max(canvas: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    "canvas = max(canvas, patch) where `patch` lands with its corner at (top, left); clipped to the canvas."
    h, w = canvas.shape
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(h, top + patch.shape[0]), min(w, left + patch.shape[1])
    if r1 > r0 and c1 > c0:
        region = canvas[r0:r1, c0:c1]
        np.maximum(region, patch[r0 - top:r1 - top, c0 - left:c1 - left], out=region)


# ------------------------------------------------------------------------------------------ the independent renderer
def _line_style(rng, height: int) -> dict:
    "Random style of one line: capital height, baseline, spacing, drift, slant."
    cap = height * rng.uniform(0.42, 0.56)
    return dict(height=height, cap=cap, baseline=height * rng.uniform(0.64, 0.74), scale=rng.uniform(0.8, 1.1),
                aspect=rng.uniform(0.85, 1.2), gap=cap * rng.uniform(-0.1, 0.15), space=cap * rng.uniform(0.45, 0.9),
                drift=height * rng.uniform(0, 0.07), period=cap * rng.uniform(8, 30), phase=rng.uniform(0, 2 * np.pi),
                slope=rng.uniform(-0.02, 0.02), slant=rng.uniform(-0.15, 0.35), margins=cap * rng.uniform(0.2, 1.2, 2))


def _glyph_patch(char: str, style: dict, rng) -> tuple[np.ndarray, float]:
    "Float ink of one character at this line's size, and how far its top lies above the baseline (px)."
    k = np.clip(style["scale"] * rng.uniform(0.88, 1.12), 0.7, 1.2)  # the ink box's scale, in 0.7-1.2
    cap = style["cap"] * k
    if char in PUNCTUATION_STROKES:
        ink, top = _stroke_ink(char, cap, max(1.0, 0.14 * cap))
        return ink, top + cap
    rel_h, depth = size_class(char)
    ink = _ink_crop(pick_glyph(char, rng)[1])
    h = max(2, round(cap * rel_h))
    w = round(ink.shape[1] * h / ink.shape[0] * style["aspect"] * rng.uniform(0.85, 1.15))
    return _resize(ink, h, w), h - depth * cap


def _line_ink(text: str, rng, height: int) -> np.ndarray:
    "Float ink (height, w) of one line of text in a random style, light on black, before the paper is added."
    s = _line_style(rng, height)
    x, placed = s["margins"][0], []
    for char in text:
        if char == " ":
            x += s["space"]
            continue
        patch, above = _glyph_patch(char, s, rng)
        y = s["baseline"] + s["drift"] * np.sin(x / s["period"] + s["phase"]) + s["slope"] * x
        placed.append((patch, round(y - above + rng.normal(0, 0.03 * s["cap"])), round(x)))
        x += patch.shape[1] + s["gap"] + rng.normal(0, 0.05 * s["cap"])
    pad = int(np.ceil(abs(s["slant"]) * height / 2)) + 1
    width = max([left + p.shape[1] for p, _, left in placed] + [round(x)]) + round(s["margins"][1])
    canvas = np.zeros((height, width + 2 * pad), np.float32)
    for patch, top, left in placed:
        _paste_max(canvas, patch, top, left + pad)
    return _slant(canvas, s["slant"])


def _slant(ink: np.ndarray, shear: float) -> np.ndarray:
    "The ink sheared about its middle row: the top moves right by `shear` × half the height for shear > 0."
    h = ink.shape[0]
    return ndimage.affine_transform(ink, np.array([[1, 0], [shear, 1]]), offset=(0, -shear * h / 2), order=1)


def _paper(ink: np.ndarray, rng, dark_on_light: bool) -> np.ndarray:
    "uint8 image of float ink: blurred, put on paper of either polarity, with a background gradient and noise."
    ink = ndimage.gaussian_filter(np.clip(ink, 0, 1), rng.uniform(0, 1.1))
    paper, pen = (rng.uniform(180, 250), rng.uniform(0, 80)) if dark_on_light else \
        (rng.uniform(0, 70), rng.uniform(170, 255))
    h, w = ink.shape
    gradient = rng.uniform(-15, 15) * np.linspace(-1, 1, w)[None, :] + rng.uniform(-10, 10) * np.linspace(-1, 1, h)[:, None]
    image = paper + gradient + (pen - paper) * ink + rng.normal(0, rng.uniform(0, 10), ink.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _polarities(n: int, rng) -> np.ndarray:
    "Alternating ink polarities (True: dark on light) from a random start: both appear in any two images."
    return (np.arange(n) + rng.integers(2)) % 2 == 0


def render_lines(texts: list[str], rng, heights=None) -> list[np.ndarray]:
    "The independent renderer's lines: uint8 images `heights` px high (default: random in 24-60), both polarities."
    heights = rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1, len(texts)) if heights is None else heights
    return [_paper(_line_ink(drawable_text(t), rng, int(h)), rng, dark)
            for t, h, dark in zip(texts, heights, _polarities(len(texts), rng))]


def _stack(inks: list[np.ndarray], rng, gap: tuple[float, float], margin: tuple[int, int]) -> np.ndarray:
    "Line inks stacked top to bottom on one canvas, random spacing (in line heights) and margins, each line shifted."
    lo, hi = margin
    left = [int(rng.integers(lo, hi)) + int(rng.integers(0, max(1, hi // 3))) for _ in inks]
    width = max(l + ink.shape[1] for l, ink in zip(left, inks)) + int(rng.integers(lo, hi))
    tops, y = [], int(rng.integers(lo, hi))
    for ink in inks:
        tops.append(y)
        y += ink.shape[0] + round(ink.shape[0] * rng.uniform(*gap))
    page = np.zeros((y + int(rng.integers(lo, hi)), width), np.float32)
    for ink, top, l in zip(inks, tops, left):
        _paste_max(page, ink, top, l)
    return page


def render_pages(pages: list[list[str]], rng) -> list[np.ndarray]:
    "Pages of the independent renderer: a few of its lines stacked with random spacing, both polarities."
    out = []
    for lines, dark in zip(pages, _polarities(len(pages), rng)):
        height = rng.uniform(MIN_HEIGHT, MAX_HEIGHT)
        inks = [_line_ink(drawable_text(t), rng, int(np.clip(height * rng.uniform(0.92, 1.08), MIN_HEIGHT, MAX_HEIGHT)))
                for t in lines]
        out.append(_paper(_stack(inks, rng, (0.0, 0.7), (8, 60)), rng, dark))
    return out


# --------------------------------------------------------------------------------------- the 2019 reference layout
def reference_line(text: str, rng, overlap: float | None = None) -> np.ndarray:
    "One 28×952 uint8 line, light on dark: full 28×28 EMNIST cells, neighbours overlapping by `overlap` of a cell."
    text = alnum_text(text)
    if len(text) > REFERENCE_CELLS:
        raise ValueError(f"{text!r} has {len(text)} characters; the reference layout holds {REFERENCE_CELLS}")
    overlap = rng.uniform(0, 1 / 3) if overlap is None else overlap
    step = CELL - int(overlap * CELL)
    canvas = np.zeros((CELL, CELL * REFERENCE_CELLS), np.int32)
    for i, char in enumerate(text):
        if char != " ":
            canvas[:, i * step:i * step + CELL] += pick_glyph(char, rng)[1]
    return np.minimum(canvas, 255).astype(np.uint8)


def reference_lines(texts: list[str], rng) -> list[np.ndarray]:
    "Lines in the 2019 course's EMNIST-lines format (letters, digits and spaces of `texts`; see `reference_line`)."
    return [reference_line(t, rng) for t in texts]


def reference_pages(pages: list[list[str]], rng) -> list[np.ndarray]:
    "Reference-layout lines stacked into pages with random gaps of 0-14 px, light on dark."
    out = []
    for lines in pages:
        inks = [reference_line(t, rng).astype(np.float32) / 255 for t in lines]
        out.append(np.round(_stack(inks, rng, (0.0, 0.5), (6, 30)) * 255).astype(np.uint8))
    return out


# ------------------------------------------------------------------------------------------------- held-out fonts
@lru_cache(maxsize=1)
def test_fonts() -> tuple[tuple[str, frozenset, bool], ...]:
    "(path, characters it draws, small capitals?) of each held-out font (`handwriting_fonts('test')`)."
    return tuple((str(p), frozenset(font_report(p)["covered"]) | {" "}, font_report(p)["small_caps"])
                 for p in handwriting_fonts("test"))


def font_text(text: str, font: tuple) -> str | None:
    "`text` as `font` writes it: as is, upper-cased for a small-capitals font, or None if it cannot."
    path, covered, small_caps = font
    text = text.upper() if small_caps else text
    return text if set(text) <= covered else None


def fonts_for(texts: list[str]) -> list[tuple]:
    "The held-out fonts that can write every one of `texts`."
    return [f for f in test_fonts() if all(font_text(t, f) is not None for t in texts)]


@lru_cache(maxsize=64)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _font_canvas(texts: list[str], font: ImageFont.FreeTypeFont, rng, pitch: float) -> np.ndarray:
    "uint8 dark-on-light image of `texts` written one under the other, `pitch` × the font size apart."
    size, spans = font.size, [font.getbbox(t) for t in texts]
    mx, my = int(rng.integers(4, 40)), int(rng.integers(3, 24))
    width = max(r - l for l, _, r, _ in spans) + 2 * mx + size
    height = spans[0][3] - spans[0][1] + round(pitch * size * (len(texts) - 1)) + 2 * my + size // 2
    paper, ink = int(rng.integers(225, 256)), int(rng.integers(0, 60))
    image = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(image)
    for i, (text, (l, t, _, _)) in enumerate(zip(texts, spans)):
        x = mx - l + (int(rng.integers(0, size)) if len(texts) > 1 else 0)
        draw.text((x, my - spans[0][1] + round(i * pitch * size)), text, font=font, fill=ink)
    return np.asarray(image)


def font_lines(texts: list[str], rng) -> tuple[list[np.ndarray], list[str]]:
    "Lines written with PIL in a random held-out font each (26-60 px), dark on light; also the texts as written."
    images, written = [], []
    for text in texts:
        fonts = fonts_for([text])
        if not fonts:
            raise ValueError(f"no held-out font can write {text!r}")
        font = fonts[rng.integers(len(fonts))]
        written.append(font_text(text, font))
        images.append(_font_canvas([written[-1]], _truetype(font[0], int(rng.integers(26, 61))), rng, 1.0))
    return images, written


def font_pages(pages: list[list[str]], rng) -> tuple[list[np.ndarray], list[str]]:
    "Pages in one held-out font each (20-48 px, line pitch 1.1-1.7 × the size), dark on light; also their texts."
    images, written = [], []
    for lines in pages:
        fonts = fonts_for(lines)
        if not fonts:
            raise ValueError(f"no held-out font can write all of {lines!r}")
        font = fonts[rng.integers(len(fonts))]
        lines = [font_text(t, font) for t in lines]
        images.append(_font_canvas(lines, _truetype(font[0], int(rng.integers(20, 49))), rng, rng.uniform(1.1, 1.7)))
        written.append("\n".join(lines))
    return images, written


# ------------------------------------------------------------------------------------------------------- pen lines
def zhang_suen(mask: np.ndarray) -> np.ndarray:
    "The 1-px skeleton (bool) of a binary image by Zhang-Suen thinning."
    img = np.pad(np.asarray(mask, bool), 1).astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for first in (True, False):
            p = img
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            b = sum(n)  # P2..P9: N, NE, E, SE, S, SW, W, NW
            a = sum((n[i] == 0) & (n[(i + 1) % 8] == 1) for i in range(8))
            n2, n4, n6, n8 = n[0], n[2], n[4], n[6]
            c = (n2 * n4 * n6 == 0) & (n4 * n6 * n8 == 0) if first else (n2 * n4 * n8 == 0) & (n2 * n6 * n8 == 0)
            remove = (p[1:-1, 1:-1] == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
    return img[1:-1, 1:-1].astype(bool)


@lru_cache(maxsize=None)
def skeleton(char: str, index: int) -> np.ndarray:
    "Skeleton pixels (k, 2) as (row, col) of test glyph `index` of `char`, thinned at half its brightest ink."
    glyph = test_glyphs()[char][index]
    return np.argwhere(zhang_suen(glyph > 0.5 * glyph.max()))


def skeleton_segments(points: np.ndarray) -> list[list[tuple[float, float]]]:
    "The stroke paths of a skeleton: a segment between each pair of 8-connected pixels, (x, y) points; lone pixels alone."
    on = {tuple(p) for p in points.tolist()}
    segments = []
    for r, c in on:
        near = [(r + dr, c + dc) for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)) if (r + dr, c + dc) in on]
        segments += [[(c, r), (q[1], q[0])] for q in near]
        if not near and not any((r + dr, c + dc) in on for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc):
            segments.append([(c, r)])
    return segments


def _pen_glyph(char: str, cap: float, rng) -> tuple[list, float, float]:
    "Pen paths of one character scaled to capital height `cap`: (polylines, width, top above the baseline), x from 0."
    if char in PUNCTUATION_STROKES:
        w_rel, lines = PUNCTUATION_STROKES[char]
        return [[(x * w_rel * cap, y * cap) for x, y in line] for line in lines], w_rel * cap, 0.0
    rel_h, depth = size_class(char)
    points = skeleton(char, pick_glyph(char, rng)[0])
    (r0, c0), (r1, c1) = points.min(0), points.max(0)
    k = cap * rel_h * rng.uniform(0.9, 1.1) / max(r1 - r0, 1)
    top = (1 + depth) * cap - (r1 - r0) * k  # y of the skeleton's top row, capital line = 0
    lines = [[((x - c0) * k, top + (y - r0) * k) for x, y in seg] for seg in skeleton_segments(points)]
    return lines, (c1 - c0) * k, top


def pen_line(text: str, rng, size: str = "M", width: float = PEN_WIDTH) -> np.ndarray:
    "One line drawn with a round pen `width` px wide along glyph skeletons, dark on white, capitals ~PEN_SIZES[size] px."
    cap = PEN_SIZES[size] * rng.uniform(0.9, 1.1)
    x, margin, paths = 0.0, width + cap * rng.uniform(0.2, 0.5), []
    for char in drawable_text(text):
        if char == " ":
            x += cap * rng.uniform(0.5, 0.9)
            continue
        lines, w, _ = _pen_glyph(char, cap, rng)
        dy = rng.normal(0, 0.03 * cap)
        paths += [[(px + x, py + dy) for px, py in line] for line in lines]
        x += w + width + cap * rng.uniform(0.05, 0.3)
    height, top = round(1.5 * cap + 2 * margin), margin + 0.1 * cap
    image = Image.new("L", (max(round(x + 2 * margin), 2 * round(margin)), height), 255)
    _draw_polylines(ImageDraw.Draw(image), [[(px + margin, py + top) for px, py in line] for line in paths], width, 0)
    return np.asarray(image)


def pen_lines(texts: list[str], rng, size: str = "M") -> list[np.ndarray]:
    "Pen-drawn lines (`pen_line`) of `texts` at writing size S, M or L."
    if size not in PEN_SIZES:
        raise ValueError(f"size={size!r}; use one of {', '.join(PEN_SIZES)}")
    return [pen_line(t, rng, size) for t in texts]
