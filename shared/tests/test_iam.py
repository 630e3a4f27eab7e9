"""Tests of text_recognizer.data.iam on a tiny IAM-like fixture written here in the real layout (xml/ + forms*/)."""
import tarfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from text_recognizer.data import iam
from text_recognizer.data import lines
from text_recognizer.metadata import decode

# form id -> (writer, [(line text, [word boxes x, y, w, h])]); writers 000 -> train, 008 -> val, 010 -> test
FORMS = {
    "a01-000u": ("000", [("A MOVE to stop", [(100, 300, 60, 50), (180, 300, 200, 55), (400, 305, 50, 45), (470, 300, 120, 60)]),
                         ("Mr. Gaitskell", [(100, 420, 90, 50), (210, 415, 300, 70)])]),
    "a01-003": ("000", [("said &amp;quot;no&amp;quot; twice", [(120, 300, 90, 50), (230, 300, 120, 50), (370, 302, 130, 48)])]),
    "b02-017": ("008", [("It rained.", [(100, 300, 50, 50), (170, 300, 180, 60)]),
                        ("caf\u00e9 au lait", [(100, 420, 100, 50), (220, 420, 60, 50), (300, 420, 100, 50)])]),
    "c03-084": ("010", [("Those who write", [(100, 300, 120, 50), (240, 300, 100, 50), (360, 300, 130, 55)]),
                        ("by hand.", [(100, 420, 60, 60), (180, 420, 120, 50)]),
                        ("no components here", [])]),
}


def write_iam(root, forms=FORMS, scale=1.0, suffix=".png", forms_dir="formsA-D"):
    (root / "xml").mkdir(parents=True), (root / forms_dir).mkdir()
    for form_id, (writer, rows) in forms.items():
        W, H = 800, 600
        page = Image.new("L", (W, H), 245)
        draw = ImageDraw.Draw(page)
        xml_lines = []
        for i, (text, words) in enumerate(rows):
            cmps = ""
            for j, (x, y, w, h) in enumerate(words):
                draw.rectangle((x + 3, y + h // 3, x + w - 3, y + 2 * h // 3), fill=20)  # a dark "word"
                cmps += f'<word id="{form_id}-{i:02d}-{j:02d}" tag="NN" text="w"><cmp x="{x}" y="{y}" width="{w}" height="{h}"/></word>'
            xml_lines.append(f'<line id="{form_id}-{i:02d}" text="{text}" segmentation="ok">{cmps}</line>')
        (root / "xml" / f"{form_id}.xml").write_text(
            f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<form created="2000-01-01" height="{H}" id="{form_id}" '
            f'width="{W}" writer-id="{writer}"><machine-printed-part><machine-print-line text="x"/></machine-printed-part>'
            f'<handwritten-part>{"".join(xml_lines)}</handwritten-part></form>', encoding="latin-1")
        page.resize((round(W * scale), round(H * scale))).convert("L").save(root / forms_dir / f"{form_id}{suffix}")
    return root


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("TR_DATA_DIR", str(tmp_path / "data"))  # caches and extractions stay in tmp_path
    return write_iam(tmp_path / "iam")


def test_parse_form(root):
    form = iam.parse_form(root / "xml" / "a01-000u.xml")
    assert (form["id"], form["writer"], form["width"], form["height"]) == ("a01-000u", "000", 800, 600)
    assert [l["text"] for l in form["lines"]] == ["A MOVE to stop", "Mr. Gaitskell"]
    assert form["lines"][0]["box"] == (100, 300, 590, 360) and form["lines"][1]["box"] == (100, 415, 510, 485)
    assert iam.parse_form(root / "xml" / "a01-003.xml")["lines"][0]["text"] == 'said "no" twice'  # twice escaped
    assert len(iam.parse_form(root / "xml" / "c03-084.xml")["lines"]) == 2  # the line without components is skipped
    (root / "xml" / "broken.xml").write_text("<form id='x'><handwritten-part><line")
    with pytest.raises(ValueError, match="broken.xml"):
        iam.parse_form(root / "xml" / "broken.xml")


def test_writer_independent_split(root):
    forms = iam.load_iam(root)
    assert {f["id"]: f["split"] for f in forms} == {"a01-000u": "train", "a01-003": "train", "b02-017": "val",
                                                     "c03-084": "test"}
    splits = {}
    for w in (f"{i:03d}" for i in range(700)):
        splits.setdefault(iam.writer_split(w), []).append(w)
    assert set(splits) == {"train", "val", "test"} and 0.05 < len(splits["test"]) / 700 < 0.15


def test_iam_lines_format_and_filtering(root, capsys):
    got = {s: iam.iam_lines(s, root, max_length=20) for s in iam.SPLITS}
    assert got["train"]["texts"] == ["A MOVE to stop", "Mr. Gaitskell", 'said "no" twice']
    assert got["val"]["texts"] == ["It rained."]  # "café au lait" has a character outside the set
    assert "1 lines left out" in capsys.readouterr().out
    assert got["test"]["texts"] == ["Those who write", "by hand."]
    d = got["train"]
    assert d["images"].shape == (3, 28, lines.line_width(20)) and d["images"].dtype == np.uint8
    assert d["labels"].shape == (3, 20) and [decode(l) for l in d["labels"]] == d["texts"]
    img = d["images"][0]
    assert img[10:17, 5:24].mean() > 150 > 5 > img[:, 200:].mean()  # light ink on black, zero padding on the right
    assert iam.iam_lines("train", root, max_length=14)["texts"] == ["A MOVE to stop", "Mr. Gaitskell"]


def test_smaller_page_images_are_scaled(tmp_path, root):
    half = write_iam(tmp_path / "half", scale=0.5, suffix=".jpg", forms_dir="forms")
    a, b = iam.iam_lines("test", root, 20), iam.iam_lines("test", half, 20)
    assert a["texts"] == b["texts"]
    ink = lambda img: np.flatnonzero(img.max(0) > 100)
    for x, y in zip(a["images"], b["images"]):
        assert abs(ink(x)[-1] - ink(y)[-1]) <= 3  # the same crop, from a page of half the size


def test_iam_paragraphs(root):
    d = iam.iam_paragraphs("test", root, height=200, width=300)
    assert d["images"].shape == d["masks"].shape == (1, 200, 300) and d["texts"] == ["Those who write\nby hand."]
    boxes, mask = d["boxes"][0], d["masks"][0]
    assert boxes.shape == (2, 4) and set(np.unique(mask)) == {0, 1, 2} and (np.diff(boxes[:, 1]) > 0).all()
    for k, (x0, y0, x1, y1) in enumerate(boxes, 1):
        ys, xs = np.nonzero(mask == k)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
        assert d["images"][0, y0:y1, x0:x1].max() > 150


def test_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TR_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match="registration"):
        iam.load_iam(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="does not look like IAM"):
        iam.load_iam(tmp_path / "empty")
    root = write_iam(tmp_path / "noforms")
    for p in (root / "formsA-D").iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no page images"):
        iam.load_iam(root)
    with pytest.raises(ValueError, match="split"):
        iam.iam_lines("dev", root)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "xml.tgz").write_bytes(b"this is not a tar file")
    with pytest.raises(ValueError, match="not a readable archive"):
        iam.load_iam(tmp_path / "bad")


def test_archives_are_extracted(tmp_path, monkeypatch):
    monkeypatch.setenv("TR_DATA_DIR", str(tmp_path / "data"))
    src = write_iam(tmp_path / "src")
    (tmp_path / "downloads").mkdir()
    for name, folder in (("xml.tgz", "xml"), ("formsA-D.tgz", "formsA-D")):
        with tarfile.open(tmp_path / "downloads" / name, "w:gz") as t:
            t.add(src / folder, arcname=folder)
    forms = iam.load_iam(tmp_path / "downloads")
    assert len(forms) == 4 and all(f["image"] and f["image"].exists() for f in forms)
    assert (tmp_path / "data" / "processed" / "iam" / "xml" / "a01-000u.xml").exists()


def test_iam_datasets_are_cached(root, tmp_path, capsys):
    first = iam.iam_lines_dataset("train", root, max_length=20, cache_dir=tmp_path / "c")
    (path,) = (tmp_path / "c").iterdir()
    again = iam.iam_lines_dataset("train", root, max_length=20, cache_dir=tmp_path / "c")
    assert again["texts"] == first["texts"] and np.array_equal(again["images"], first["images"])
    path.write_bytes(b"garbage")
    rebuilt = iam.iam_lines_dataset("train", root, max_length=20, cache_dir=tmp_path / "c")
    assert "damaged" in capsys.readouterr().out and rebuilt["texts"] == first["texts"]
    p = iam.iam_paragraphs_dataset("train", root, 200, 300, cache_dir=tmp_path / "c")
    q = iam.iam_paragraphs_dataset("train", root, 200, 300, cache_dir=tmp_path / "c")
    assert q["texts"] == p["texts"] and all(np.array_equal(a, b) for a, b in zip(p["boxes"], q["boxes"]))
