"""Tests of text_recognizer.data.emnist: the embedded sample, its split, and the full-download path on a tiny fixture."""
import json, shutil, zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from text_recognizer.data import emnist
from text_recognizer.metadata import CHARSET, EMNIST_CLASSES, EMNIST_OFFSET, project_root

REAL_EMNIST = project_root() / "data" / "emnist"


# ---- the embedded sample -------------------------------------------------------------------------------------------

def test_embedded_splits_are_disjoint_stratified_and_fixed():
    _, y = emnist.embedded_arrays()
    parts = emnist.split_indices(y)
    assert sum(map(len, parts.values())) == len(y) == 100_000
    assert len(np.unique(np.concatenate(list(parts.values())))) == len(y)
    assert len(parts["test"]) >= 0.1 * len(y) - 62
    for name, idx in parts.items():
        assert len(np.unique(y[idx])) == 62, name
    share = np.bincount(y[parts["test"]], minlength=80)[2:64] / np.bincount(y, minlength=80)[2:64]
    assert np.all(np.abs(share - 0.1) < 0.02)  # every class cut in the same proportion
    again = emnist.split_indices(y)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)


def test_load_emnist_contract():
    x, y = emnist.load_emnist("val")
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and y.dtype == np.int64 and len(x) == len(y)
    assert y.min() == EMNIST_OFFSET and y.max() == EMNIST_OFFSET + 61
    assert x.mean() < 80 and np.mean(x == 0) > 0.5  # white ink on black
    x[0] = 7  # the caller owns its copy: the arrays shared by all callers are not touched
    assert not np.all(emnist.load_emnist("val")[0][0] == 7)
    with pytest.raises(ValueError, match="split"):
        emnist.load_emnist("dev")
    with pytest.raises(ValueError, match="source"):
        emnist.load_emnist("train", source="web")


def test_orientation_is_upright():
    x, y = emnist.load_emnist("test")
    ones = x[y == CHARSET.index("1")].mean(0)
    minus = x[y == CHARSET.index("7")].mean(0)
    assert ones[:, 12:16].mean() > 2 * ones[12:16, :].mean()  # a "1" is a vertical stroke
    assert minus[4:8].mean() > minus[20:24].mean()             # a "7" is heavier at the top


def test_balance_gives_equal_classes():
    x, y = emnist.load_emnist("train", balance=True)
    counts = set(emnist.class_counts(y).values())
    assert len(counts) == 1 and len(emnist.class_counts(y)) == 62 and len(x) == len(y)


def test_class_counts():
    assert emnist.class_counts(np.array([3, 2, 3, 64])) == {"0": 1, "1": 2, "!": 1}
    assert list(emnist.class_counts([5, 2])) == ["0", "3"]


def _data_dir(tmp_path, monkeypatch, embedded=True) -> Path:
    d = tmp_path / "data"
    (d / "emnist").mkdir(parents=True)
    shutil.copy(REAL_EMNIST / "emnist.json", d / "emnist")
    if embedded:
        shutil.copy(REAL_EMNIST / "emnist-byclass-100k.npz", d / "emnist")
    monkeypatch.setenv("TR_DATA_DIR", str(d))
    return d


def test_missing_embedded_sample_says_what_to_do(tmp_path, monkeypatch):
    _data_dir(tmp_path, monkeypatch, embedded=False)
    with pytest.raises(FileNotFoundError, match="git checkout data/emnist"):
        emnist.load_emnist()


def test_corrupt_embedded_sample_is_refused(tmp_path, monkeypatch):
    d = _data_dir(tmp_path, monkeypatch)
    path = d / "emnist" / "emnist-byclass-100k.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt.*git checkout"):
        emnist.load_emnist()


# ---- the full download, on a tiny archive in NIST's structure -----------------------------------------------------

def _upright_glyphs(n, rng):
    "Asymmetric images: a bar in the top rows and a bar in the left columns of varying length."
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        x[i, 2:4, 4:4 + 5 + i % 15] = 255
        x[i, 4:24, 2:4] = rng.integers(100, 256)
    return x


def _nist_mat(path, x_train, y_train, x_test, y_test):
    "A .mat like NIST's emnist-byclass.mat: images transposed and flattened (N, 784), labels (N, 1), mapping."
    nist = lambda x, y: {"images": x.transpose(0, 2, 1).reshape(len(x), 784), "labels": y[:, None].astype(np.float64)}
    mapping = np.array([[i, ord(c)] for i, c in enumerate(EMNIST_CLASSES)])
    scipy.io.savemat(path, {"dataset": {"train": nist(x_train, y_train), "test": nist(x_test, y_test),
                                        "mapping": mapping}})


@pytest.fixture
def fixture_zip(tmp_path, monkeypatch):
    "A tiny matlab.zip served from a file:// url, with the spec in TR_DATA_DIR pointing at it."
    rng = np.random.default_rng(0)
    arrays = {"x_train": _upright_glyphs(124, rng), "y_train": np.arange(124) % 62,
              "x_test": _upright_glyphs(62, rng), "y_test": rng.permutation(62)}
    src = tmp_path / "server"
    src.mkdir()
    _nist_mat(src / "emnist-byclass.mat", *arrays.values())
    with zipfile.ZipFile(src / "matlab.zip", "w") as z:
        z.write(src / "emnist-byclass.mat", "matlab/emnist-byclass.mat")
    d = _data_dir(tmp_path, monkeypatch, embedded=False)
    specs = json.loads((d / "emnist" / "emnist.json").read_text())
    specs["full"].update(url=(src / "matlab.zip").as_uri(), sha256=emnist.sha256_file(src / "matlab.zip"))
    (d / "emnist" / "emnist.json").write_text(json.dumps(specs))
    return d, src / "matlab.zip", arrays


def test_download_parse_and_orientation(fixture_zip):
    d, _, a = fixture_zip
    cache = emnist.download_emnist()
    assert cache == d / "processed" / "emnist-byclass.npz" and (d / "downloads" / "matlab.zip").exists()
    assert not list((d / "downloads").glob("*.part"))
    x, y = emnist.load_emnist("test", source="full")
    assert np.array_equal(x, a["x_test"])                      # transposed back: upright
    assert np.array_equal(y, a["y_test"] + EMNIST_OFFSET) and y.dtype == np.int64
    xt, yt = emnist.load_emnist("train", source="full")
    xv, yv = emnist.load_emnist("val", source="full")
    assert len(xt) + len(xv) == 124 and len(xv) == 62 * round(2 * 0.1)
    assert x[:, 2:4].sum() > 0 and x[:, 24:].sum() == 0         # the top bar is at the top


def test_checksum_mismatch_is_refused_and_nothing_kept(fixture_zip):
    d, _, _ = fixture_zip
    specs = json.loads((d / "emnist" / "emnist.json").read_text())
    specs["full"]["sha256"] = "0" * 64
    (d / "emnist" / "emnist.json").write_text(json.dumps(specs))
    with pytest.raises(ValueError, match="checksum mismatch"):
        emnist.download_emnist()
    assert not (d / "downloads" / "matlab.zip").exists() and not list((d / "downloads").iterdir())


def test_wrong_file_placed_by_hand_is_refused(fixture_zip):
    d, _, _ = fixture_zip
    (d / "downloads").mkdir()
    (d / "downloads" / "matlab.zip").write_bytes(b"not the archive")
    with pytest.raises(ValueError, match="not EMNIST's matlab.zip"):
        emnist.download_emnist()
    assert (d / "downloads" / "matlab.zip").read_bytes() == b"not the archive"  # the user's file is kept


def test_archive_without_the_mat_file(tmp_path):
    with zipfile.ZipFile(tmp_path / "matlab.zip", "w") as z:
        z.writestr("matlab/emnist-letters.mat", b"x")
    with pytest.raises(ValueError, match="has no emnist-byclass.mat"):
        emnist.process_emnist_zip(tmp_path / "matlab.zip", tmp_path / "cache.npz")
    (tmp_path / "bad.zip").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a zip"):
        emnist.process_emnist_zip(tmp_path / "bad.zip", tmp_path / "cache.npz")


def test_unreachable_url_says_where_to_put_the_file(fixture_zip):
    d, src, _ = fixture_zip
    src.unlink()
    with pytest.raises(ConnectionError, match="by hand.*downloads"):
        emnist.download_emnist()


def test_missing_full_download_says_what_to_do(fixture_zip):
    with pytest.raises(FileNotFoundError, match="download_emnist"):
        emnist.load_emnist("train", source="full")


def test_corrupt_cache_is_rebuilt(fixture_zip):
    d, _, a = fixture_zip
    cache = emnist.download_emnist()
    cache.write_bytes(cache.read_bytes()[:1000])  # a truncated cache
    assert emnist._read_cache(cache) is None
    x, _ = emnist.load_emnist("test", source="full")
    assert np.array_equal(x, a["x_test"]) and emnist._read_cache(cache) is not None
    cache.with_suffix(".json").unlink()            # a cache without its checksum is not trusted either
    assert emnist.download_emnist() == cache and emnist._read_cache(cache) is not None
