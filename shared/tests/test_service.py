"""The prediction service (text_recognizer.serving.app): good requests in every wrapper and polarity, a corpus of bad
inputs that must each get a 4xx JSON answer with a message (never a 500, never a crash), images that used to read
wrong, and gunicorn with the served settings under idle and slow clients."""
import base64, http.client, importlib.util, io, json, logging, os, re, socket, subprocess, sys, threading, time, zlib
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from text_recognizer.data.paragraphs import make_paragraphs
from text_recognizer.inference.character import read_image
from text_recognizer.serving.app import (HEADER_TIMEOUT, MAX_BODY_BYTES, MAX_FORM_PARTS, MAX_IMAGE_PIXELS, create_app, start_dev_server)

ROOT = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def page():
    "A synthetic handwritten page (light ink on dark, as generated) with its true text and line count."
    data = make_paragraphs(1, split="test", seed=4, max_lines=3)
    return {"gray": data["images"][0], "text": data["texts"][0], "lines": len(data["boxes"][0])}


def encode(array_or_image, format="PNG", **options) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def data_url(data: bytes, kind="image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def png_bomb(path, side=20000) -> bytes:
    "A valid 1-bit PNG of side×side blank pixels, compressed to a small file (written row by row, never in memory)."
    def chunk(kind, body):
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    row = b"\x00" * (1 + side // 8)  # filter byte + packed 1-bit pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path.read_bytes()


def animated_gif(gray) -> bytes:
    "A two-frame GIF: the page, then the page inverted."
    frames = [Image.fromarray(gray), Image.fromarray(255 - gray)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=500, loop=0)
    return buffer.getvalue()


def multipart(fields: int, boundary: str = "XyZ") -> tuple[bytes, str]:
    "A multipart/form-data body with `fields` one-byte text fields, and its content type."
    body = b"".join(b'--%s\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % (boundary.encode(), i)
                    for i in range(fields)) + b"--%s--\r\n" % boundary.encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture()
def lazy_app():
    "The default app, whose model loads on the first prediction: bad input must be refused before that."
    app = create_app()
    yield app
    assert app.extensions["text_recognizer"]["model"]["recognizer"] is None, "bad input reached the model"


@pytest.fixture()
def lazy_client(lazy_app):
    return lazy_app.test_client()


@pytest.fixture(scope="module")
def app(recognizer):
    return create_app(recognizer)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


@pytest.fixture(scope="module")
def page_png(page):
    return encode(page["gray"])


def check_answer(answer, shape):
    "A prediction answer: text, and per line an integer box inside the image, a text and a confidence."
    assert set(answer) == {"text", "lines"}
    assert isinstance(answer["text"], str) and isinstance(answer["lines"], list)
    height, width = shape
    for line in answer["lines"]:
        x0, y0, x1, y1 = line["box"]
        assert all(isinstance(v, int) for v in line["box"])
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, line["box"]
        assert isinstance(line["text"], str) and 0.0 <= line["confidence"] <= 1.0
    assert answer["text"] == "\n".join(line["text"] for line in answer["lines"])


def test_predict_reads_a_data_url(client, page, page_png):
    response = client.post("/v1/predict", json={"image": data_url(page_png)})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    check_answer(answer, page["gray"].shape)
    assert len(answer["lines"]) == page["lines"]
    assert Levenshtein.normalized_distance(answer["text"], page["text"]) < 0.25, (answer["text"], page["text"])


def test_the_answer_is_the_recognizers_own(client, recognizer, page, page_png):
    "The service adds nothing and loses nothing: its JSON is the recognizer's result on the decoded image."
    direct = recognizer.predict(page["gray"])
    answer = client.post("/v1/predict", json={"image": data_url(page_png)}).get_json()
    assert answer["text"] == direct["text"] and len(answer["lines"]) == len(direct["lines"])
    for served, line in zip(answer["lines"], direct["lines"]):
        assert served["box"] == [int(v) for v in line["box"]] and served["text"] == line["text"]
        assert served["confidence"] == pytest.approx(float(line["confidence"]), abs=1e-4)


def test_every_wrapper_gives_the_same_answer(client, page_png):
    expected = client.post("/v1/predict", json={"image": data_url(page_png)}).get_json()
    requests = {
        "raw base64": dict(json={"image": base64.b64encode(page_png).decode()}),
        "PNG labelled as JPEG": dict(json={"image": data_url(page_png, "image/jpeg")}),
        "base64 with line breaks": dict(json={"image": base64.encodebytes(page_png).decode()}),
        "multipart upload": dict(data={"image": (io.BytesIO(page_png), "page.png")}),
        "raw image body": dict(data=page_png, content_type="image/png"),
        "JSON without content type": dict(data=json.dumps({"image": data_url(page_png)}), content_type=""),
    }
    for name, kwargs in requests.items():
        response = client.post("/v1/predict", **kwargs)
        assert response.status_code == 200, (name, response.get_json())
        assert response.get_json() == expected, name


def test_either_ink_polarity_is_read(client, page):
    answers = []
    for gray in (page["gray"], 255 - page["gray"]):  # light ink on dark, dark ink on light paper
        response = client.post("/v1/predict", json={"image": data_url(encode(gray))})
        assert response.status_code == 200, response.get_json()
        check_answer(response.get_json(), gray.shape)
        answers.append(response.get_json())
    assert len(answers[0]["lines"]) == len(answers[1]["lines"]) == page["lines"]
    assert Levenshtein.normalized_distance(answers[0]["text"], answers[1]["text"]) < 0.1, answers


def test_other_formats_and_modes_are_read(client, page):
    gray = page["gray"]
    rgba = Image.fromarray(gray).convert("RGBA")
    for name, data in {"JPEG": encode(gray, "JPEG", quality=90), "RGBA PNG": encode(rgba),
                       "WEBP": encode(gray, "WEBP"), "BMP": encode(gray, "BMP"), "GIF": encode(gray, "GIF")}.items():
        response = client.post("/v1/predict", json={"image": data_url(data)})
        assert response.status_code == 200, (name, response.get_json())
        check_answer(response.get_json(), gray.shape)
        assert len(response.get_json()["lines"]) == page["lines"], name


def bad_inputs(page, page_png, bomb):
    "name → (request keyword arguments, expected status, a fragment of the expected message)."
    text = b"this is not an image"
    return {
        "empty body": (dict(data=b""), 400, "empty"),
        "empty JSON body": (dict(data=b"", content_type="application/json"), 400, "empty"),
        "whitespace body": (dict(data=b"  \n", content_type="application/json"), 400, "empty"),
        "non-JSON body": (dict(data=b"image=abc", content_type="application/json"), 400, "not valid JSON"),
        "invalid UTF-8 body": (dict(data=b"\xff\xfe\x00", content_type="application/json"), 400, "not valid JSON"),
        "deeply nested JSON": (dict(data=b"[" * 100_000, content_type="application/json"), 400, "nested"),
        "JSON array": (dict(json=[data_url(page_png)]), 400, "JSON object"),
        "JSON string": (dict(json=data_url(page_png)), 400, "JSON object"),
        "JSON null": (dict(data=b"null", content_type="application/json"), 400, "JSON object"),
        "missing key": (dict(json={"img": data_url(page_png)}), 400, "missing key 'image'"),
        "image is a number": (dict(json={"image": 42}), 400, "must be a string"),
        "image is null": (dict(json={"image": None}), 400, "must be a string"),
        "image is a list": (dict(json={"image": [1, 2]}), 400, "must be a string"),
        "image is an object": (dict(json={"image": {"data": "x"}}), 400, "must be a string"),
        "image is a boolean": (dict(json={"image": True}), 400, "must be a string"),
        "image is empty": (dict(json={"image": ""}), 400, "empty"),
        "bad base64": (dict(json={"image": "data:image/png;base64,@@not*base64@@"}), 400, "not valid base64"),
        "base64 of the wrong length": (dict(json={"image": "QUJDR"}), 400, "not valid base64"),
        "data URL without base64": (dict(json={"image": "data:image/png,abc"}), 400, "not base64-encoded"),
        "data URL without comma": (dict(json={"image": "data:image/png;base64"}), 400, "no comma"),
        "image_url refused": (dict(json={"image_url": "http://169.254.169.254/latest"}), 400, "never fetches"),
        "text in base64": (dict(json={"image": data_url(text)}), 415, "not an image"),
        "PDF": (dict(json={"image": data_url(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj")}), 415, "not an image"),
        "TIFF (unsupported format)": (dict(json={"image": data_url(encode(page["gray"], "TIFF"))}), 415,
                                      "supported: PNG"),
        "0-byte file upload": (dict(data={"image": (io.BytesIO(b""), "empty.png")}), 400, "0 bytes"),
        "0-byte raw body": (dict(data=b"", content_type="image/png"), 400, "empty"),
        "form without image": (dict(data={"picture": (io.BytesIO(page_png), "page.png")}), 400, "no field 'image'"),
        "truncated PNG": (dict(json={"image": data_url(page_png[: len(page_png) // 2])}), 400, "truncated"),
        "PNG header only": (dict(json={"image": data_url(page_png[:40])}), 400, "truncated"),
        "truncated JPEG": (dict(json={"image": data_url(encode(page["gray"], "JPEG")[:1500])}), 400,
                           "truncated"),
        "20000×20000 PNG bomb": (dict(json={"image": data_url(bomb)}), 413, "pixels"),
        "6000×6000 PNG (over the pixel limit)": (dict(data=encode(Image.new("1", (6000, 6000))),
                                                      content_type="image/png"), 413, "limit"),
        "oversized body": (dict(data=b"{" + b" " * MAX_BODY_BYTES + b"}", content_type="application/json"), 413,
                           "larger than the limit"),
        "oversized upload": (dict(data={"image": (io.BytesIO(b"\0" * (MAX_BODY_BYTES + 1)), "big.png")}), 413,
                             "larger than the limit"),
        "unsupported content type": (dict(data=b"<image/>", content_type="application/xml"), 415,
                                     "unsupported content type"),
        "HTML form post": (dict(data=b"<p>hi</p>", content_type="text/html"), 415, "unsupported content type"),
        "JSON NaN": (dict(data=b'{"image": NaN}', content_type="application/json"), 400, "NaN is not a JSON value"),
        "JSON Infinity": (dict(data=b'{"image": "x", "n": -Infinity}', content_type="application/json"), 400,
                          "-Infinity is not a JSON value"),
        "multipart with 20,000 fields": (dict(zip(("data", "content_type"), multipart(20_000))), 413,
                                         f"more than {MAX_FORM_PARTS:,} parts"),
        "animated GIF": (dict(json={"image": data_url(animated_gif(page["gray"]))}), 422, "animated"),
        "text is described in words": (dict(json={"image": data_url(text)}), 415, 'text ("this is not an image")'),
        "HEIC photo": (dict(data=b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", content_type="image/heic"),
                       415, "HEIC"),
        "base64 encoded twice": (dict(json={"image": data_url(base64.b64encode(page_png))}), 415, "encoded twice"),
        "binary garbage": (dict(data=bytes(range(200, 256)), content_type="image/png"), 415, "first bytes, in hex"),
    }


def test_bad_input_corpus_gets_4xx_json_with_a_message(lazy_client, page, page_png, bomb):
    corpus = bad_inputs(page, page_png, bomb)
    for name, (kwargs, status, fragment) in corpus.items():
        response = lazy_client.post("/v1/predict", **kwargs)
        answer = response.get_json(silent=True)
        assert response.status_code == status, (name, response.status_code, answer)
        assert isinstance(answer, dict) and set(answer) == {"error"}, (name, response.data[:200])
        assert fragment in answer["error"], (name, answer["error"])
        assert not re.search(r"\bb['\"]", answer["error"]), f"{name}: a Python bytes repr in {answer['error']!r}"
    assert len(corpus) >= 40


def test_the_bomb_is_small_on_disk_and_refused_from_its_header(lazy_client, bomb):
    assert len(bomb) < 1_000_000 and bomb[16:24] == (20000).to_bytes(4, "big") * 2
    response = lazy_client.post("/v1/predict", data={"image": (io.BytesIO(bomb), "bomb.png")})
    error = response.get_json()["error"]
    assert response.status_code == 413 and "20000×20000 = 400,000,000 pixels" in error, error
    assert f"{MAX_IMAGE_PIXELS:,}" in error and str(2 * Image.MAX_IMAGE_PIXELS) not in error, "one limit, ours"
    assert MAX_IMAGE_PIXELS < 20000 * 20000 and error.count("limit") == 1


def test_the_header_size_message_is_the_same_below_and_above_pillows_limit(lazy_client):
    "A 6000×6000 image is refused by our check, a 20000×20000 one first by Pillow's: the client sees one message."
    small = lazy_client.post("/v1/predict", data=encode(Image.new("1", (6000, 6000))), content_type="image/png")
    assert small.status_code == 413
    assert small.get_json()["error"] == ("the image is 6000×6000 = 36,000,000 pixels; the limit is 25,000,000 pixels: "
                                         "scale it down (2,000 pixels across is plenty for handwriting)")


def test_random_bytes_never_give_a_server_error(client, page_png):
    rng = np.random.default_rng(0)
    blobs = [rng.bytes(n) for n in (1, 7, 64, 1000)]
    blobs += [page_png[:8] + rng.bytes(200), page_png[:33] + rng.bytes(500)]  # PNG signature, garbage after
    for i in range(20):  # flip bytes inside a real PNG
        corrupt = np.frombuffer(page_png, np.uint8).copy()
        corrupt[rng.integers(8, corrupt.size, 5)] = rng.integers(0, 256, 5)
        blobs.append(corrupt.tobytes())
    for blob in blobs:
        for kwargs in (dict(json={"image": data_url(blob)}), dict(data=blob, content_type="image/png"), dict(data=blob)):
            response = client.post("/v1/predict", **kwargs)
            assert response.status_code < 500, (blob[:16], response.get_json())
            assert response.is_json


def test_odd_images_get_an_answer_not_a_crash(client):
    for shape in [(1, 1), (1, 3000), (3000, 1), (5, 5)]:
        for value in (0, 255):
            response = client.post("/v1/predict", json={"image": data_url(encode(np.full(shape, value, np.uint8)))})
            assert response.status_code in (200, 422), (shape, response.get_json())
            if response.status_code == 200:
                check_answer(response.get_json(), shape)
            else:
                assert response.get_json()["error"]


def test_unknown_paths_and_methods_answer_json(lazy_client):
    for method, path, status in [("GET", "/v1/predict", 405), ("PUT", "/v1/predict", 405), ("GET", "/nope", 404),
                                 ("POST", "/healthz", 405), ("DELETE", "/", 405)]:
        response = lazy_client.open(path, method=method)
        assert response.status_code == status and response.get_json()["error"], (method, path)
    assert "POST" in lazy_client.get("/v1/predict").headers["Allow"]


def test_health_page_and_static_files(lazy_client):
    health = lazy_client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    page = lazy_client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'id="pad"' in page.data and b'src="static/app.js"' in page.data  # relative: works behind a proxy prefix
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("static/app.js", "static/style.css"):
        assert lazy_client.get(f"/{asset}").status_code == 200, asset
    assert b'fetch("v1/predict"' in lazy_client.get("/static/app.js").data


def test_refused_requests_are_counted_and_logged(lazy_client, caplog):
    with caplog.at_level(logging.INFO, logger="text_recognizer.serving.app"):
        lazy_client.post("/v1/predict", json={"image": "@@"})
        lazy_client.post("/v1/predict", data=b"<x/>", content_type="application/xml")
        lazy_client.get("/nope")
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "text_recognizer.serving.app"]
    assert [(r["status"], r["path"]) for r in records] == [(400, "/v1/predict"), (415, "/v1/predict"), (404, "/nope")]
    assert all(r["latency_ms"] >= 0 and r["error"] for r in records) and records[0]["bytes_in"] == 15
    metrics = lazy_client.get("/metrics").get_json()
    assert metrics["by_status"] == {"400": 1, "404": 1, "415": 1} and metrics["client_errors"] == 3
    assert metrics["predictions"] == 0 and metrics["server_errors"] == 0 and metrics["latency_ms"] == {"window": 0}


def test_metrics_count_requests_and_report_latency(recognizer, page, page_png):
    client = create_app(recognizer).test_client()
    for _ in range(3):
        assert client.post("/v1/predict", json={"image": data_url(page_png)}).status_code == 200
    assert client.post("/v1/predict", json={"image": 1}).status_code == 400
    metrics = client.get("/metrics").get_json()
    assert metrics["predictions"] == 3 and metrics["by_status"] == {"200": 3, "400": 1}
    assert metrics["client_errors"] == 1 and metrics["server_errors"] == 0 and metrics["requests"] == 4
    assert metrics["lines"] == 3 * page["lines"] and 0 <= metrics["mean_confidence"] <= 1
    latency = metrics["latency_ms"]
    assert latency["window"] == 3 and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


def test_each_request_logs_one_json_line(client, page, page_png, caplog):
    with caplog.at_level(logging.INFO, logger="text_recognizer.serving.app"):
        client.post("/v1/predict", json={"image": data_url(page_png)})
        client.post("/v1/predict", json={"image": "@@"})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "text_recognizer.serving.app"]
    good, bad = records[-2:]
    assert good["status"] == 200 and good["path"] == "/v1/predict" and good["latency_ms"] > 0
    assert (good["image_height"], good["image_width"]) == page["gray"].shape
    assert good["lines"] == page["lines"] and 0 <= good["mean_confidence"] <= 1
    assert bad["status"] == 400 and "base64" in bad["error"]


def test_a_model_that_cannot_load_gives_503_and_the_reason(page_png):
    def missing_weights():
        raise FileNotFoundError("no ONNX model at line_detector.onnx")
    client = create_app(load_recognizer=missing_weights).test_client()
    assert client.get("/healthz").get_json()["model_loaded"] is False
    response = client.post("/v1/predict", json={"image": data_url(page_png)})
    assert response.status_code == 503 and "line_detector.onnx" in response.get_json()["error"]
    assert client.get("/healthz").get_json()["model_error"].startswith("FileNotFoundError")


def test_the_default_app_serves_without_tensorflow(page, page_png, tmp_path):
    "create_app() loads the production model lazily and serves with tensorflow and keras made unimportable."
    (tmp_path / "page.png").write_bytes(page_png)
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from text_recognizer.serving.app import create_app
app = create_app()
client = app.test_client()
assert client.get("/healthz").get_json()["model_loaded"] is False
import base64
png = open({str(tmp_path / "page.png")!r}, "rb").read()
response = client.post("/v1/predict", json={{"image": base64.b64encode(png).decode()}})
assert response.status_code == 200, response.get_json()
assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")]
print(len(response.get_json()["lines"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == str(page["lines"])


# ---- bodies sent chunked, through a real HTTP server ------------------------------------------------------------

def post_chunked(host: str, port: int, body: bytes, content_type="application/json", chunk=65536):
    "POST `body` with Transfer-Encoding: chunked (no Content-Length); returns (status, parsed JSON answer)."
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.putrequest("POST", "/v1/predict")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for i in range(0, len(body), chunk):
            part = body[i:i + chunk]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
    except OSError:  # the server may answer 413 and close before the whole body is sent
        pass
    response = conn.getresponse()
    status, answer = response.status, json.loads(response.read())
    conn.close()
    return status, answer


@pytest.fixture(scope="module")
def live_server(recognizer):
    server = start_dev_server(create_app(recognizer))
    yield server.server_address
    server.shutdown()


def test_a_chunked_body_over_the_limit_is_413_not_bad_json(live_server):
    host, port = live_server
    status, answer = post_chunked(host, port, b'{"image": "' + b"A" * (MAX_BODY_BYTES + 1000) + b'"}')
    assert status == 413 and "larger than the limit" in answer["error"], (status, answer)
    body, kind = multipart(10)
    status, answer = post_chunked(host, port, body + b"\0" * (MAX_BODY_BYTES + 1000), kind)
    assert status == 413 and "larger than the limit" in answer["error"], (status, answer)


def test_a_chunked_body_within_the_limit_is_read(live_server, page_png):
    host, port = live_server
    status, answer = post_chunked(host, port, json.dumps({"image": data_url(page_png)}).encode(), chunk=1000)
    assert status == 200 and answer["lines"], answer
    status, answer = post_chunked(host, port, page_png, "image/png")
    assert status == 200 and answer["lines"], answer


def test_a_form_with_too_many_parts_says_so(lazy_client):
    body, kind = multipart(MAX_FORM_PARTS + 1)
    error = lazy_client.post("/v1/predict", data=body, content_type=kind).get_json()["error"]
    assert f"more than {MAX_FORM_PARTS} parts" in error and "larger than" not in error, error
    body, kind = multipart(3)
    assert "no field 'image'" in lazy_client.post("/v1/predict", data=body, content_type=kind).get_json()["error"]


# ---- images that used to read wrong ----------------------------------------------------------------------------

def test_a_16_bit_png_with_mid_grey_ink_is_read(client, page):
    "Paper 65535, ink down to 32768 (mid-grey): clipping at 255 made the page blank; scaled, it reads as in 8 bits."
    scan = (65535 - page["gray"].astype(np.uint32) * 128).astype(np.uint16)
    png16 = encode(scan)
    assert Image.open(io.BytesIO(png16)).mode == "I;16"
    gray = read_image(png16)
    assert gray.min() <= 130 and gray.max() >= 240, "the ink must survive the conversion to 8 bits"
    eight_bit = np.round(scan / 257).astype(np.uint8)
    response = client.post("/v1/predict", data=png16, content_type="image/png")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer == client.post("/v1/predict", data=encode(eight_bit), content_type="image/png").get_json()
    assert len(answer["lines"]) == page["lines"]
    assert Levenshtein.normalized_distance(answer["text"], page["text"]) < 0.25, (answer["text"], page["text"])
    assert np.array_equal(read_image(scan), eight_bit)  # a uint16 array too


def test_an_animated_gif_is_refused_not_read_from_frame_0(lazy_client, page):
    gif = animated_gif(page["gray"])
    response = lazy_client.post("/v1/predict", data={"image": (io.BytesIO(gif), "page.gif")})
    assert response.status_code == 422 and "animated" in response.get_json()["error"], response.get_json()
    with pytest.raises(ValueError, match="animated"):
        read_image(gif)
    with Image.open(io.BytesIO(gif)) as image:
        image.seek(1)  # a frame chosen on purpose is read
        assert np.abs(read_image(image).astype(int) - (255 - page["gray"].astype(int))).mean() < 1


def phone_photo(gray: np.ndarray, writing_scale: float, seed: int = 0, size=(4000, 3000)) -> bytes:
    """A 4000×3000 RGB JPEG like a phone's photo of a page: the page's writing (light on dark, as generated)
    enlarged `writing_scale` times, in dark ink on paper lit unevenly, with sensor noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    ink = np.asarray(Image.fromarray(gray).resize((round(gray.shape[1] * writing_scale),
                                                   round(gray.shape[0] * writing_scale)), Image.BICUBIC), np.float32)
    sheet = np.zeros((height, width), np.float32)
    y0, x0 = int(0.12 * height), int(0.08 * width)
    h, w = min(ink.shape[0], height - y0), min(ink.shape[1], width - x0)
    sheet[y0:y0 + h, x0:x0 + w] = ink[:h, :w] / 255
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paper = 225 + 20 * xx / width - 25 * yy / height
    value = paper * (1 - 0.8 * sheet) + rng.normal(0, 5, (height, width))
    rgb = np.clip(np.stack([value, value * 0.97, value * 0.9], axis=-1), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_4000x3000_photo_of_a_page_is_read(client):
    "Three lines written about twice the training size, photographed at 4000×3000: the writing is 4-8 px tall at 640."
    page = make_paragraphs(1, split="test", seed=4, max_lines=3, noise=False)
    photo = phone_photo(page["images"][0], 2.0)
    response = client.post("/v1/predict", data=photo, content_type="image/jpeg")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert len(answer["lines"]) == 3, answer["text"]
    assert Levenshtein.normalized_distance(answer["text"], page["texts"][0]) < 0.25, (answer["text"], page["texts"][0])


# ---- the app's own pieces ---------------------------------------------------------------------------------------

def test_the_favicon_is_served(lazy_client):
    icon = lazy_client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon"
    assert Image.open(io.BytesIO(icon.data)).format == "ICO"
    assert b'rel="icon"' in lazy_client.get("/").data


def test_predictions_run_one_at_a_time_per_process(page_png):
    "Threads of one worker share its cores: max_predictions (1) bounds the pages read at once, not /healthz."
    state = {"running": 0, "most": 0}
    lock = threading.Lock()

    class Slow:
        def predict(self, gray):
            with lock:
                state["running"] += 1
                state["most"] = max(state["most"], state["running"])
            time.sleep(0.3)
            with lock:
                state["running"] -= 1
            return {"text": "", "lines": []}

    server = start_dev_server(create_app(Slow()))
    try:
        def post():
            urllib.request.urlopen(urllib.request.Request(server.url + "/v1/predict", data=page_png,
                                                          headers={"Content-Type": "image/png"}), timeout=30).read()
        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        start = time.perf_counter()
        urllib.request.urlopen(server.url + "/healthz", timeout=5).read()
        health_s = time.perf_counter() - start
        for t in threads:
            t.join()
    finally:
        server.shutdown()
    assert state["most"] == 1 and health_s < 0.2, (state, health_s)


# ---- gunicorn as served: idle and slow clients -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_seconds(url: str, timeout: float = 2.0):
    "Seconds /healthz took to answer 200, or None when it did not answer within `timeout`."
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:
            return time.perf_counter() - start if response.status == 200 else None
    except OSError:
        return None


@pytest.fixture()
def gunicorn_service(tmp_path):
    "The service as `bash setup/serving/run` starts it (2 workers, the served settings), on a free port; its log."
    port, log_path = free_port(), tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", str(ROOT / "setup" / "serving" / "run")], env={**os.environ, "PORT": str(port)},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while health_seconds(url) is None:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        yield url, port, log_path
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_idle_and_slow_clients_do_not_stop_the_service(gunicorn_service, page_png):
    "4 idle connections and 2 clients sending a header line every 3 s: /healthz and predictions still answer."
    url, port, log_path = gunicorn_service
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    stop = threading.Event()

    def dribble(sock):
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\n")
        for i in range(100):
            if stop.wait(3):
                return
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:  # cut off by the server
                return

    feeders = [threading.Thread(target=dribble, args=(s,), daemon=True) for s in slow]
    try:
        for t in feeders:
            t.start()
        time.sleep(1)
        latencies = []
        for _ in range(5):
            latencies.append(health_seconds(url, timeout=2.0))
            time.sleep(0.5)
        prediction = urllib.request.urlopen(urllib.request.Request(
            url + "/v1/predict", data=page_png, headers={"Content-Type": "image/png"}), timeout=60)
        answer = json.loads(prediction.read())
        assert None not in latencies and max(latencies) < 2.0, latencies
        assert prediction.status == 200 and answer["lines"], answer
        print(f"\n/healthz under 4 idle + 2 slow connections: {', '.join(f'{1000 * s:.0f}' for s in latencies)} ms")
        # the slow clients are answered 408 when their headers are HEADER_TIMEOUT late; the idle ones are closed
        for sock in slow + idle:
            sock.settimeout(HEADER_TIMEOUT + 10)
        answers = [s.recv(4096) for s in slow]
        assert all(a.startswith(b"HTTP/1.1 408 ") and b"did not arrive within" in a for a in answers), answers
        assert all(s.recv(4096) == b"" for s in idle), "idle connections must be closed after the keep-alive time"
    finally:
        stop.set()
        for sock in idle + slow:
            sock.close()
    status, answer = post_chunked("127.0.0.1", port, b'{"image": "' + b"A" * (MAX_BODY_BYTES + 10) + b'"}')
    assert status == 413 and "larger than the limit" in answer["error"], (status, answer)
    log = log_path.read_text()
    assert "WORKER TIMEOUT" not in log and "out of memory" not in log and "Traceback" not in log, log[-3000:]
    assert log.count("Booting worker") == 2, "no worker was restarted"


def test_the_image_run_script_and_hub_launcher_use_the_same_gunicorn_settings():
    spec = importlib.util.spec_from_file_location("serve_app", ROOT / "setup" / "hub" / "serve_app.py")
    serve_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_app)
    settings = serve_app.gunicorn_defaults()
    assert settings[:2] == ["--worker-class", "text_recognizer.serving.app.GuardedThreadWorker"], settings
    assert {"--threads", "--keep-alive", "--timeout"} <= set(settings)
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "setup" / "serving" / "Dockerfile").read_text())
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert " ".join(settings) in " ".join(command.split()), (settings, command)
    assert re.search(r"^ENV .*\bMALLOC_ARENA_MAX=2\b", dockerfile, re.M) and os.environ["MALLOC_ARENA_MAX"] == "2"
    run = (ROOT / "setup" / "serving" / "run").read_text()
    assert "setup/hub/serve_app.py" in run and "--worker-class" not in run.split("exec ", 1)[1]  # no override
