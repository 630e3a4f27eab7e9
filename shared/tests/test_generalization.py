"""The generalization benchmark (shared/benchmarks/evaluate_generalization.py): a tiny run's table, its independent
renderers, the evaluation-only real handwriting, and that the package never imports the benchmark's code."""
import ast, json, re, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS, PACKAGE = ROOT / "shared" / "benchmarks", ROOT / "shared" / "text_recognizer"
REAL = ROOT / "data" / "real_handwriting"
sys.path.insert(0, str(BENCHMARKS))
import evaluate_generalization as eg  # noqa: E402
import independent_renderer as ir  # noqa: E402

from text_recognizer.data.lines import sample_texts  # noqa: E402
from text_recognizer.inference.character import is_dark_on_light  # noqa: E402

ROWS = ("CharacterPredictor (chars)", "LinePredictor (lines)", "ParagraphTextRecognizer (pages)", "service (lines)",
        "service (pages)", "Tesseract 5 (lines)", "Tesseract 5 (pages)")
CELL = re.compile(r"^(\d+\.\d+) \(n=(\d+)\)$")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "The printed report and the written file of `--size tiny --write` (written to a temporary folder)."
    folder = tmp_path_factory.mktemp("generalization")
    here, eg.HERE = eg.HERE, folder
    try:
        from contextlib import redirect_stdout
        from io import StringIO
        out = StringIO()
        with redirect_stdout(out):
            assert eg.main(["--size", "tiny", "--write"]) == 0
    finally:
        eg.HERE = here
    return out.getvalue(), (folder / "evaluate_generalization.txt").read_text()


def parse_table(report: str) -> dict[str, dict[str, str]]:
    "{row label: {column: cell}} of the markdown table in the report."
    lines = [l for l in report.splitlines() if l.startswith("| ")]
    columns = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(columns, cells)) for cells in
            ([c.strip() for c in l.strip("|").split("|")] for l in lines[1:])}


def test_tiny_run_has_every_row_and_column(tiny_run):
    printed, written = tiny_run
    assert written.strip() in printed
    table = parse_table(written)
    assert set(table) == set(ROWS)
    tesseract = shutil.which("tesseract") is not None
    for label, cells in table.items():
        assert set(eg.SUITES) <= set(cells), f"{label}: columns {list(cells)}"
        for suite in eg.SUITES:
            cell = cells[suite]
            if cell == "-":
                continue
            if label.startswith("Tesseract") and not tesseract:
                assert cell == "not installed"
                continue
            m = CELL.match(cell)
            assert m, f"{label} / {suite}: {cell!r} is neither '-' nor 'CER (n=k)'"
            assert 0 <= float(m[1]) < np.inf and int(m[2]) > 0
    for label in ROWS[1:] if tesseract else ROWS[1:5]:
        assert CELL.match(table[label][eg.REAL]), f"{label} has no real-handwriting figure"
    assert table["CharacterPredictor (chars)"][eg.REAL] == "-"
    assert "ratio project/Tesseract on real handwriting" in written


def test_suites_are_fixed_by_the_seed():
    a, b = (eg.build_suites(eg.SIZES["tiny"], seed=3) for _ in range(2))
    for suite in eg.SUITES:
        for unit, (images, truths) in a[suite].items():
            assert truths == b[suite][unit][1] and len(images) == len(truths) > 0
            assert all(np.array_equal(x, y) for x, y in zip(images, b[suite][unit][0]))


def test_micro_cer_squashes_whitespace():
    assert eg.micro_cer(["a  b\n c "], ["a b c"]) == 0
    assert eg.micro_cer(["ab", ""], ["abcd", "ef"]) == pytest.approx(4 / 6)


# ------------------------------------------------------------------------------ the package never imports the benchmark
def imported_modules(path: Path) -> set[str]:
    "Every module name an import statement of `path` names (`from x import y` gives x and x.y)."
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return names


def test_package_never_imports_the_benchmarks():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    for path in files:
        bad = {n for n in imported_modules(path)
               if re.search(r"independent_renderer|benchmarks|evaluate_generalization", n)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_training_modules_do_not_load_the_renderer():
    code = ("import sys, text_recognizer.models.line, text_recognizer.data.lines, text_recognizer.data.paragraphs, "
            "text_recognizer.training.train; print(sorted(m for m in sys.modules if 'independent_renderer' in m "
            "or 'benchmarks' in m or 'evaluate_generalization' in m))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------------------------- renderers
@pytest.fixture(scope="module")
def texts():
    return sample_texts(40, "test", 32, np.random.default_rng(11))


def test_independent_lines_heights_and_polarities(texts):
    images = ir.render_lines(texts, np.random.default_rng(0))
    heights = [im.shape[0] for im in images]
    assert all(im.dtype == np.uint8 and im.ndim == 2 for im in images)
    assert min(heights) >= ir.MIN_HEIGHT and max(heights) <= ir.MAX_HEIGHT
    assert min(heights) <= 30 and max(heights) >= 54, "line heights should span 24-60 px"
    polarity = [is_dark_on_light(im) for im in images]
    assert 0 < sum(polarity) < len(images), "both ink polarities"
    assert all(np.ptp(im) > 60 for im in images), "every line has visible ink"


def test_independent_glyph_sizes_stay_in_range():
    style = ir._line_style(np.random.default_rng(2), 40)
    rng = np.random.default_rng(3)
    heights = [ir._glyph_patch("H", style, rng)[0].shape[0] for _ in range(200)]
    assert 0.7 * style["cap"] - 1 <= min(heights) and max(heights) <= 1.2 * style["cap"] + 1


def test_independent_pages_polarities_and_lines():
    pages = [[f"line {i} of page {p}" for i in range(3)] for p in range(4)]
    images = ir.render_pages(pages, np.random.default_rng(1))
    assert {is_dark_on_light(im) for im in images} == {True, False}
    assert all(im.dtype == np.uint8 and im.shape[0] >= 3 * ir.MIN_HEIGHT for im in images)


def test_reference_layout_format():
    rng = np.random.default_rng(4)
    lines = ir.reference_lines([ir.alnum_text(t) for t in sample_texts(10, "test", 34, rng)], rng)
    assert all(im.shape == (28, 952) and im.dtype == np.uint8 for im in lines)
    line = ir.reference_line("W", np.random.default_rng(5), overlap=0.0)
    glyph = ir.pick_glyph("W", np.random.default_rng(5))[1]
    assert np.array_equal(line[:, :28], glyph) and not line[:, 28:].any(), "a glyph fills exactly one 28-px cell"
    spaced = ir.reference_line("M M", np.random.default_rng(6), overlap=0.0)
    assert spaced[:, :28].any() and not spaced[:, 28:56].any() and spaced[:, 56:84].any(), "a space is an empty cell"
    tight = ir.reference_line("MMM", np.random.default_rng(7), overlap=1 / 3)
    assert not tight[:, 2 * 19 + 28:].any(), "neighbours overlap by a third of a cell"
    with pytest.raises(ValueError):
        ir.reference_line("x" * 35, rng)


def test_zhang_suen_thins_to_one_pixel():
    bar = np.zeros((20, 40), bool)
    bar[5:13, 4:36] = True
    bone = ir.zhang_suen(bar)
    assert bone.any() and (bone <= bar).all() and ndimage.label(bone, np.ones((3, 3)))[1] == 1
    blocks = bone[:-1, :-1] & bone[1:, :-1] & bone[:-1, 1:] & bone[1:, 1:]
    assert not blocks.any(), "no 2×2 block is left"
    assert bone.sum(0)[8:32].max() == 1, "one pixel across the bar"


def test_pen_lines_have_constant_stroke_width():
    rng, radius = np.random.default_rng(8), ir.PEN_WIDTH / 2
    for size in ir.PEN_SIZES:
        for image in ir.pen_lines(["Hello World 42", "HELLO"], rng, size):
            assert image.dtype == np.uint8 and is_dark_on_light(image) and image.max() == 255
            ink = image < 128
            depth = ndimage.distance_transform_edt(ink)
            ridge = depth[ir.zhang_suen(ink)]  # distance to the paper along the middle of the strokes
            assert radius <= np.median(ridge) <= radius + 1, f"pen {size}: median half-width {np.median(ridge)}"
            if size != "S":  # small letters: a 7-px pen fills their loops, as on the web page
                assert np.percentile(ridge, 90) <= radius + 2
            if size == "L":  # letters far apart: only crossings and corners are wider than the pen
                assert depth.max() <= 2 * radius


def test_pen_writing_sizes():
    rng = np.random.default_rng(9)
    tall = {s: np.ptp(np.flatnonzero((ir.pen_line("HELLO", rng, s) < 128).any(1))) for s in ir.PEN_SIZES}
    for s, cap in ir.PEN_SIZES.items():
        assert 0.8 * cap <= tall[s] <= 1.3 * cap + ir.PEN_WIDTH, (s, tall[s])


def test_font_lines_are_dark_on_light_in_held_out_fonts(texts):
    images, written = ir.font_lines(texts[:10], np.random.default_rng(10))
    assert len(images) == len(written) == 10
    assert all(is_dark_on_light(im) and np.ptp(im) > 100 for im in images)
    assert all(w in (t, t.upper()) for w, t in zip(written, texts))


# ------------------------------------------------------------------------------------------------ real handwriting
@pytest.mark.parametrize("kind, count", [("lines", 107), ("paragraphs", 3)])
def test_real_handwriting_copy(kind, count):
    truth = json.loads((REAL / kind / "ground_truth.json").read_text())
    images = {p.name for p in (REAL / kind).glob("*.png")}
    assert len(images) == count and set(truth) == images
    assert all(isinstance(t, str) and t.strip() for t in truth.values())


def test_real_handwriting_keeps_its_attribution():
    readme = " ".join((REAL / "README.md").read_text().split())
    for words in ("CC-BY 4.0", "Ingrid Guimarães", "Perrine Maurel", "Yagmur Ozturk", "Alix Chagué",
                  "Stanford University Archives", "10.5281/zenodo.6126625", "evaluation only"):
        assert words in readme, words


def test_tesseract_is_listed_for_setup():
    packages = (ROOT / "setup" / "apt-packages.txt").read_text().split()
    assert {"tesseract-ocr", "tesseract-ocr-eng"} <= set(packages)
