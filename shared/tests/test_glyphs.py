"""Tests of text_recognizer.data.glyphs: fonts (sources, licences, coverage, splits), rendering in the EMNIST look, the
character bank."""
import json, re, shutil, subprocess

import numpy as np
import pytest
from PIL import ImageFont

from text_recognizer.data import glyphs
from text_recognizer.data.emnist import load_emnist
from text_recognizer.metadata import CHARSET, CHAR_TO_INDEX, PUNCTUATION, project_root

ROOT = project_root()
FONTS_DIR = ROOT / "setup" / "fonts"
USED = glyphs.TRAIN_FONTS + glyphs.TEST_FONTS


def family(names):
    return {glyphs.FONTS[n][0] for n in names}


def apt_packages() -> set[str]:
    lines = (ROOT / "setup" / "apt-packages.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def test_font_splits_are_disjoint_and_installed():
    train, test = glyphs.handwriting_fonts("train"), glyphs.handwriting_fonts("test")
    assert len(train) == len(glyphs.TRAIN_FONTS) >= 30 and len(test) == len(glyphs.TEST_FONTS)
    assert not set(train) & set(test) and all(p.exists() for p in train + test)
    with pytest.raises(ValueError, match="split"):
        glyphs.handwriting_fonts("dev")


def test_splits_share_no_family_and_hold_out_five():
    assert not family(glyphs.TRAIN_FONTS) & family(glyphs.TEST_FONTS)
    assert len(family(glyphs.TEST_FONTS) - family(glyphs.CAPS_ONLY)) >= 5  # five with a real lower case, too
    assert len(family(glyphs.TRAIN_FONTS)) >= 30
    assert {"Breip.ttf", "Humor-Sans.ttf", "BecauseWeOrganize-Regular.otf"} <= set(glyphs.TEST_FONTS)  # as before
    assert set(glyphs.CAPS_ONLY) <= set(glyphs.TEST_FONTS)
    assert not set(glyphs.NOT_USED) & set(USED) and set(glyphs.NOT_USED) | set(USED) == set(glyphs.FONTS)
    assert len(set(USED)) == len(USED)


@pytest.mark.parametrize("name", USED)
def test_split_font_is_installed_by_setup_and_covers_the_charset(name):
    _, package, _ = glyphs.FONTS[name]
    path = glyphs._font_index()[name]
    if package.startswith("@fontsource/"):
        assert package in json.loads((FONTS_DIR / "package.json").read_text())["dependencies"]
        assert path == FONTS_DIR / "node_modules" / package / "files" / name
    else:
        assert package in apt_packages()
        if shutil.which("dpkg-query"):
            files = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout
            assert str(path) in files.splitlines()
    assert glyphs.coverage_problem(glyphs.find_font(name), lower_case=name not in glyphs.CAPS_ONLY) == ""
    report = glyphs.font_report(glyphs.find_font(name))
    assert set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") <= set(report["covered"])
    assert sum(c in report["covered"] for c in PUNCTUATION) >= glyphs.MIN_PUNCTUATION
    if name not in glyphs.CAPS_ONLY:
        assert not report["small_caps"] and set("abcdefghijklmnopqrstuvwxyz") <= set(report["covered"])


def test_every_used_font_has_a_free_licence_from_its_package():
    words = {"OFL": "Open Font License", "Apache": "Apache License", "GPL": "General Public License"}
    for name in USED:
        _, package, licence = glyphs.FONTS[name]
        assert any(free in licence for free in glyphs.FREE_LICENCES), name
        if package.startswith("@fontsource/"):
            meta = FONTS_DIR / "node_modules" / package
            assert json.loads((meta / "package.json").read_text())["license"] == licence, name
            assert words[licence.split("-")[0]] in (meta / "LICENSE").read_text(), name
        else:
            copyright = (glyphs.Path("/usr/share/doc") / package / "copyright").read_text()
            kind = next(k for k in words if k in licence)
            assert words[kind] in copyright or kind in copyright, name


def test_fontsource_lock_pins_every_package():
    spec = json.loads((FONTS_DIR / "package.json").read_text())
    lock = json.loads((FONTS_DIR / "package-lock.json").read_text())
    deps = spec["dependencies"]
    assert spec["private"] and all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in deps.values())  # exact versions
    assert lock["packages"][""]["dependencies"] == deps
    for package, version in deps.items():
        entry = lock["packages"][f"node_modules/{package}"]
        assert entry["version"] == version and entry["integrity"].startswith("sha512-")
        installed = json.loads((FONTS_DIR / "node_modules" / package / "package.json").read_text())
        assert installed["version"] == version
    used_packages = {glyphs.FONTS[n][1] for n in USED if glyphs.FONTS[n][1].startswith("@fontsource/")}
    assert used_packages == set(deps)  # every package is used, every used one is installed
    assert "setup/fonts/node_modules/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "npm ci --prefix setup/fonts" in (ROOT / "setup" / "bootstrap").read_text()


def test_fontsource_web_fonts_are_indexed_and_read():
    index = glyphs._font_index()
    assert "caveat-latin-400-normal.woff" in index and "caveat-latin-ext-400-normal.woff" not in index
    assert not any(n.endswith(".woff2") for n in index)
    path = glyphs.find_font("kalam-latin-700-normal.woff")
    assert ImageFont.truetype(str(path), 30).getbbox("Hello")[2] > 30
    assert not glyphs.font_report(path)["small_caps"]  # bold, yet a real lower case


def test_web_font_is_converted_when_freetype_refuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TR_DATA_DIR", str(tmp_path))
    woff = glyphs._font_index()["caveat-latin-400-normal.woff"]
    real = ImageFont.truetype

    def no_woff(font, *args, **kwargs):
        if str(font).endswith((".woff", ".woff2")):
            raise OSError("unknown file format")
        return real(font, *args, **kwargs)

    monkeypatch.setattr(ImageFont, "truetype", no_woff)
    copy = glyphs.freetype_path.__wrapped__(woff)  # bypass the cache of the real FreeType's answers
    assert copy == tmp_path / "processed" / "fonts" / "caveat-latin-400-normal.ttf" and copy.exists()
    assert glyphs.sfnt_copy(woff) == copy  # converted once
    a, b = real(str(woff), 40), real(str(copy), 40)
    assert a.getbbox("Quick 42?") == b.getbbox("Quick 42?")
    assert np.array_equal(np.asarray(a.getmask("Quick")), np.asarray(b.getmask("Quick")))
    with pytest.raises(OSError):
        glyphs.freetype_path.__wrapped__(tmp_path / "broken.ttf")


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
    top, bottom = ink.any(2).argmax(1), 27 - ink.any(2)[:, ::-1].argmax(1)
    assert np.all(np.abs((top + bottom) / 2 - 13.5) <= 1.5)       # the ink box is centred, as in EMNIST
    centre = np.array([np.average(np.indices((28, 28))[0], weights=g) for g in x.astype(float)])
    assert np.all(np.abs(centre - 13.5) < 4.5)  # the ink's mass too, roughly (a '?' with a small dot is top-heavy)


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
