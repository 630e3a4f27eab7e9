"""The web page end to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright): upload or draw →
the text and the line boxes appear; also through jupyter-server-proxy, as on the JupyterHub (/user/<name>/proxy/8000/)."""
import os, re, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from text_recognizer.paragraphs import make_paragraphs
from text_recognizer.predict import read_image
from text_recognizer.service import create_app, start_dev_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGE = make_paragraphs(1, split="test", seed=5, max_lines=3)
LINES = PAGE["texts"][0].split("\n")


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


def test_drawing_with_the_mouse_is_read(page, server):
    page.goto(server.url + "/")
    box = page.locator("#pad").bounding_box()
    strokes = [[(0.10, 0.3), (0.10, 0.7)], [(0.10, 0.5), (0.18, 0.5)], [(0.18, 0.3), (0.18, 0.7)],  # H
               [(0.26, 0.3), (0.26, 0.7)],                                                          # I
               [(0.40, 0.3), (0.34, 0.5), (0.40, 0.7), (0.46, 0.5), (0.40, 0.3)]]                   # O
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()
    ink = page.eval_on_selector("#pad", """pad => {
        const d = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }""")
    assert ink > 500, "the strokes did not reach the canvas"
    with page.expect_response("**/v1/predict") as answered:
        page.click("#read")
    answer = answered.value.json()
    assert answered.value.status == 200, answer
    status = wait_for_result(page)
    assert status.startswith(f"Read {len(answer['lines'])} line"), status
    assert page.text_content("#text") == answer["text"]
    assert answer["lines"], "the drawn line was not detected"
    assert page.get_attribute("#result", "data-boxes") == str(len(answer["lines"]))


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
