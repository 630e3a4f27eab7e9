"""The web page end to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright): upload or draw →
the text and the line boxes appear; also through jupyter-server-proxy, as on the JupyterHub (/user/<name>/proxy/8000/).
TR_SCREENSHOTS=<folder> keeps a screenshot of the page after each drawn word is read."""
import math, os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from text_recognizer.data.paragraphs import make_paragraphs
from text_recognizer.inference.character import read_image
from text_recognizer.serving.app import create_app, start_dev_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGE = make_paragraphs(1, split="test", seed=5, max_lines=3)
LINES = PAGE["texts"][0].split("\n")


def _arc(cx, cy, rx, ry, start, end, n=14):
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in (start + (end - start) * i / (n - 1) for i in range(n))]


# Capitals as pen strokes: (advance width, polylines), in units of the capital height (y 0 at the top, 1 on the line)
PEN_LETTERS = {
    "A": (0.7, [[(0, 1), (0.35, 0), (0.7, 1)], [(0.14, 0.6), (0.56, 0.6)]]),
    "C": (0.6, [_arc(0.35, 0.5, 0.35, 0.5, -50, -310, 20)]),
    "D": (0.6, [[(0, 0), (0, 1)], [(0, 0), *_arc(0.1, 0.5, 0.5, 0.5, -90, 90, 16), (0, 1)]]),
    "E": (0.5, [[(0.5, 0), (0, 0), (0, 1), (0.5, 1)], [(0, 0.5), (0.4, 0.5)]]),
    "H": (0.6, [[(0, 0), (0, 1)], [(0.6, 0), (0.6, 1)], [(0, 0.5), (0.6, 0.5)]]),
    "I": (0.1, [[(0.05, 0), (0.05, 1)]]),
    "L": (0.5, [[(0, 0), (0, 1), (0.5, 1)]]),
    "O": (0.7, [_arc(0.35, 0.5, 0.35, 0.5, 0, 360, 24)]),
    "R": (0.55, [[(0, 1), (0, 0), *_arc(0.25, 0.25, 0.3, 0.25, -90, 90, 10), (0, 0.5), (0.55, 1)]]),
    "T": (0.6, [[(0, 0), (0.6, 0)], [(0.3, 0), (0.3, 1)]]),
}


def word_strokes(word: str, cap: float, left: float = 0.06, aspect: float = 900 / 320) -> list:
    "The strokes of `word` in pad fractions (0-1 across and down), capitals `cap` × the pad's height, centred."
    strokes, x, top, cap_x = [], left, 0.5 - cap / 2, cap / aspect
    for char in word:
        advance, lines = PEN_LETTERS[char]
        strokes += [[(x + px * cap_x, top + py * cap) for px, py in line] for line in lines]
        x += (advance + 0.25) * cap_x
    return strokes


def draw(page, strokes):
    "Draw polylines (pad fractions) on the pad with the mouse, as a person would."
    box = page.locator("#pad").bounding_box()
    for (x, y), *rest in strokes:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        page.mouse.up()


def pad_ink(page) -> int:
    return page.eval_on_selector("#pad", """pad => {
        const d = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }""")


def keep_screenshot(page, name: str, tmp_path: Path) -> Path:
    "A full-page screenshot, also copied to $TR_SCREENSHOTS when set."
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("TR_SCREENSHOTS"):
        Path(os.environ["TR_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["TR_SCREENSHOTS"]) / name)
    return path


class SlowRecognizer:
    "A stand-in model that takes `delay` seconds and answers `lines` (one line, or none)."
    def __init__(self):
        self.delay, self.lines = 1.0, [{"box": [10, 10, 200, 60], "text": "stand-in", "confidence": 0.9}]

    def predict(self, gray):
        time.sleep(self.delay)
        return {"text": "\n".join(line["text"] for line in self.lines), "lines": list(self.lines)}


def paragraph_png(path: Path) -> Path:
    "A synthetic handwritten page (light ink on dark) saved as PNG."
    Image.fromarray(PAGE["images"][0]).save(path)
    return path


@pytest.fixture(scope="module")
def server(recognizer):
    app = create_app(recognizer)
    server = start_dev_server(app)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def slow_server():
    "The app with a stand-in model that answers after a second."
    model = SlowRecognizer()
    server = start_dev_server(create_app(model))
    server.model = model
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def lazy_server():
    "The default app (model loaded on the first prediction), for pages that never get that far."
    server = start_dev_server(create_app())
    yield server
    server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args[:3]} exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing answered {url} within {seconds} s")


@pytest.fixture(scope="module")
def hub_proxy(tmp_path_factory):
    "The app started by setup/serving/run, behind a real Jupyter server's jupyter-server-proxy (token login)."
    tmp = tmp_path_factory.mktemp("jupyter")
    app_port, jupyter_port, token = free_port(), free_port(), "browser-test-token"
    env = {**os.environ, "PORT": str(app_port), "WORKERS": "1", "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    jupyter = Path(sys.executable).with_name("jupyter-server")
    with open(tmp / "app.log", "w") as app_log, open(tmp / "jupyter.log", "w") as jupyter_log:
        app = subprocess.Popen(["bash", str(ROOT / "setup" / "serving" / "run")], env=env, stdout=app_log,
                               stderr=subprocess.STDOUT)
        server = subprocess.Popen([str(jupyter), "--no-browser", "--allow-root", f"--port={jupyter_port}",
                                   "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}"],
                                  env=env, stdout=jupyter_log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"http://127.0.0.1:{app_port}/healthz", app)
            base = f"http://127.0.0.1:{jupyter_port}/proxy/{app_port}"
            wait_for(f"{base}/healthz?token={token}", server)
            yield base, token
        finally:
            for process in (app, server):
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"Debian chromium is missing at {CHROMIUM}: run `bash setup/bootstrap` (it installs the Debian "
                    f"packages in setup/apt-packages.txt) or `sudo apt-get install chromium`")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS)
        context.set_default_timeout(30_000)
        yield context
        context.close()


@pytest.fixture()
def page(browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def wait_for_result(page) -> str:
    "The status line once the page has shown an answer or an error."
    expect(page.locator("#status")).to_have_text(re.compile(r"^(Read \d+ line|Error: )"))
    return page.text_content("#status")


def test_upload_shows_the_text_and_boxes(page, server, recognizer, tmp_path):
    path = paragraph_png(tmp_path / "page.png")
    expected = recognizer.predict(read_image(path))  # what the server computes from the same file
    page.goto(server.url + "/")
    with page.expect_response("**/v1/predict") as answered:
        page.set_input_files("#file", str(path))
    assert answered.value.status == 200
    status = wait_for_result(page)
    assert status.startswith(f"Read {len(expected['lines'])} line"), status
    assert page.text_content("#text") == expected["text"]
    assert page.locator("#lines li").count() == len(expected["lines"]) == len(LINES)
    assert page.get_attribute("#result", "data-boxes") == str(len(LINES))
    assert page.eval_on_selector("#result", "c => [c.width, c.height]") == list(Image.open(path).size)


def test_a_word_drawn_with_the_mouse_is_read(page, server, tmp_path):
    "Write RED on the pad with the mouse (capitals 48 px tall, the web page's pen), press Read: the page says RED."
    page.goto(server.url + "/")
    draw(page, word_strokes("RED", cap=0.15))
    assert pad_ink(page) > 500, "the strokes did not reach the canvas"
    with page.expect_response("**/v1/predict") as answered:
        page.click("#read")
    answer = answered.value.json()
    assert answered.value.status == 200, answer
    status = wait_for_result(page)
    keep_screenshot(page, "drawn_word_RED.png", tmp_path)
    assert status.startswith("Read 1 line"), status
    assert answer["text"] == page.text_content("#text") == "RED", answer
    assert page.get_attribute("#result", "data-boxes") == "1"


def test_tall_letters_are_one_line(page, server, tmp_path):
    "HELLO written across the pad in capitals 144 px tall (the pen stays 7 px): one line, read as HELLO."
    page.goto(server.url + "/")
    draw(page, word_strokes("HELLO", cap=0.45))
    with page.expect_response("**/v1/predict") as answered:
        page.click("#read")
    answer = answered.value.json()
    wait_for_result(page)
    keep_screenshot(page, "drawn_word_HELLO_tall.png", tmp_path)
    assert len(answer["lines"]) == 1, answer
    assert answer["text"].upper() == "HELLO", answer


def test_read_is_disabled_while_a_request_runs(page, slow_server):
    page.goto(slow_server.url + "/")
    draw(page, word_strokes("HI", cap=0.2))
    page.click("#read")
    expect(page.locator("#read")).to_be_disabled()
    expect(page.locator("#file")).to_be_disabled()
    assert page.text_content("#status") == "Reading…"
    wait_for_result(page)
    expect(page.locator("#read")).to_be_enabled()
    assert page.text_content("#text") == "stand-in"


def test_clear_and_errors_remove_the_old_answer(page, slow_server, tmp_path):
    page.goto(slow_server.url + "/")
    draw(page, word_strokes("HI", cap=0.2))
    page.click("#read")
    wait_for_result(page)
    assert page.text_content("#text") == "stand-in" and page.get_attribute("#result", "data-boxes") == "1"
    page.click("#clear")
    assert page.text_content("#text") == "" and page.locator("#lines li").count() == 0
    assert page.get_attribute("#result", "data-boxes") == "0" and pad_ink(page) == 0
    assert page.text_content("#status") == "Nothing read yet."
    draw(page, word_strokes("HI", cap=0.2))
    page.click("#read")
    wait_for_result(page)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not an image")
    page.set_input_files("#file", str(not_an_image))
    expect(page.locator("#status")).to_have_class("error")
    assert page.text_content("#text") == "" and page.locator("#lines li").count() == 0
    assert page.get_attribute("#result", "data-boxes") == "0"


def test_an_empty_pad_or_no_lines_gets_a_hint(page, slow_server):
    requests = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/v1/predict") else None)
    page.goto(slow_server.url + "/")
    page.click("#read")
    assert "The pad is empty" in page.text_content("#status") and requests == []
    slow_server.model.lines, slow_server.model.delay = [], 0.1
    try:
        draw(page, word_strokes("HI", cap=0.2))
        page.click("#read")
        expect(page.locator("#status")).to_have_text(re.compile(r"^Read 0 lines .*Hint: "))
        assert page.get_attribute("#status", "class") == "hint" and len(requests) == 1
    finally:
        slow_server.model.__init__()


def test_the_same_file_chosen_twice_is_read_twice(page, slow_server, tmp_path):
    path = paragraph_png(tmp_path / "page.png")
    slow_server.model.delay = 0.1
    try:
        page.goto(slow_server.url + "/")
        for _ in range(2):
            with page.expect_response("**/v1/predict") as answered:
                page.set_input_files("#file", str(path))
            assert answered.value.status == 200
            wait_for_result(page)
    finally:
        slow_server.model.__init__()


def test_the_page_loads_without_a_404(page, lazy_server):
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    page.goto(lazy_server.url + "/")
    page.wait_for_load_state("networkidle")
    icon = page.request.get(lazy_server.url + "/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
    assert failed == [], failed


def test_a_bad_upload_shows_the_error(page, lazy_server, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not an image")
    page.goto(lazy_server.url + "/")
    page.set_input_files("#file", str(not_an_image))
    status = wait_for_result(page)
    assert page.get_attribute("#status", "class") == "error" and "not an image" in status, status


def test_the_page_works_through_jupyter_server_proxy(page, hub_proxy, tmp_path):
    "As on the hub: <server>/proxy/<port>/ forwards to the app, which sees paths without that prefix."
    base, token = hub_proxy
    page.goto(f"{base}/?token={token}")  # logs in (a cookie), like a student already signed in to the hub
    assert page.title() == "Text Recognizer"
    page.goto(f"{base}/")
    with page.expect_response("**/v1/predict") as answered:
        page.set_input_files("#file", str(paragraph_png(tmp_path / "page.png")))
    assert answered.value.url == f"{base}/v1/predict" and answered.value.status == 200
    status = wait_for_result(page)
    assert status.startswith(f"Read {len(LINES)} lines"), status
    assert page.text_content("#text") == answered.value.json()["text"]
