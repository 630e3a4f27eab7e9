"""The class JupyterHub (setup/hub/): config validation, the student start script, and a local smoke test.

The smoke test runs a real JupyterHub on loopback with setup/hub/jupyterhub_test_config.py and
configurable-http-proxy from setup/hub/node_modules (installed by setup/bootstrap), logs a student in, spawns their
server, runs code in a kernel over the websocket, reaches a gunicorn app through jupyter-server-proxy, and stops
everything it started.
"""
import contextlib
import http.cookiejar
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import entry_points
from pathlib import Path

import psutil
import pytest
import requests
import websocket
import yaml
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[2]
HUB_DIR = ROOT / "setup" / "hub"
CHP = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
VENV_BIN = Path(sys.executable).parent
STUDENT = "student"


def loopback_session(cookies: bool = True) -> requests.Session:
    "A requests session that ignores proxy settings in the environment: every request here goes to 127.0.0.1."
    session = requests.Session()
    session.trust_env = False
    if not cookies:
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


HTTP = loopback_session(cookies=False)  # token-authenticated calls: nothing remembered between requests


def load_config(path: Path, **env):
    "The traitlets config a JupyterHub would load from `path`, with extra environment variables set meanwhile."
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def entry_point(group: str, name: str):
    "The class JupyterHub resolves a short name like 'native' to."
    (ep,) = [ep for ep in entry_points(group=group) if ep.name == name]
    return ep.load()


# ---- config validation ----------------------------------------------------------------------------------------

def test_class_config_uses_real_auth_and_limits(tmp_path):
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path))
    hub = c.JupyterHub
    from nativeauthenticator import NativeAuthenticator
    assert entry_point("jupyterhub.authenticators", hub.authenticator_class) is NativeAuthenticator
    assert c.NativeAuthenticator.open_signup is False, "an instructor must approve each signup"
    assert c.NativeAuthenticator.minimum_password_length >= 8
    assert any(Path(p, "native-login.html").exists() for p in hub.template_paths), "NativeAuthenticator's templates"
    assert hub.spawner_class == "systemdspawner" and c.SystemdSpawner.username_template == "jupyter-{USERNAME}"
    assert c.SystemdSpawner.isolate_devices is False, "students must see /dev/nvidia*"
    assert c.Spawner.mem_limit and c.Spawner.cpu_limit > 0
    assert c.Spawner.environment["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert Path(c.Spawner.cmd[0]) == HUB_DIR / "start-singleuser"
    assert "--allow-root" not in c.Spawner.get("args", [])
    assert Path(c.ConfigurableHTTPProxy.command[0]) == CHP
    assert str(tmp_path) in hub.db_url and Path(hub.cookie_secret_file).parent == tmp_path
    assert hub.cleanup_servers is False, "restarting the hub must not kill the students' servers"


def test_class_config_creates_prefixed_unix_users(tmp_path, monkeypatch):
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path))
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    spawner = type("Spawner", (), {"user": type("User", (), {"name": "ada-nonexistent-x9", "id": 3})()})()
    c.Spawner.pre_spawn_hook(spawner)
    assert commands and commands[0][0] == "useradd" and commands[0][-1] == "jupyter-ada-nonexistent-x9"
    import re
    pattern = re.compile(c.Authenticator.username_pattern)
    assert pattern.match("ada") and pattern.match("student-42")
    assert not any(pattern.match(bad) for bad in ("", "Ada", "../etc", "a b", "x" * 25, "-rf"))


def test_class_config_spreads_students_over_gpus(tmp_path):
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path), TR_HUB_GPUS="2")
    pick = c.Spawner.environment["CUDA_VISIBLE_DEVICES"]
    users = [type("Spawner", (), {"user": type("User", (), {"id": i})()})() for i in range(4)]
    assert [pick(s) for s in users] == ["0", "1", "0", "1"]
    hidden = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path), TR_HUB_GPUS="0")
    assert hidden.Spawner.environment["CUDA_VISIBLE_DEVICES"](users[1]) == ""
    assert "CUDA_VISIBLE_DEVICES" not in load_config(HUB_DIR / "jupyterhub_config.py").Spawner.environment


def test_class_config_spawner_is_installable():
    pytest.importorskip("systemdspawner", reason="jupyterhub-systemdspawner is not in the Pipfile yet")
    assert entry_point("jupyterhub.spawners", "systemdspawner").__name__ == "SystemdSpawner"


def test_test_config_is_loopback_and_dummy(tmp_path):
    c = load_config(HUB_DIR / "jupyterhub_test_config.py", TR_HUB_DIR=str(tmp_path), TR_HUB_PORT="1234")
    hub = c.JupyterHub
    assert hub.bind_url == "http://127.0.0.1:1234"
    for url in (hub.hub_bind_url, c.ConfigurableHTTPProxy.api_url):
        assert url.startswith("http://127.0.0.1:")
    assert entry_point("jupyterhub.authenticators", hub.authenticator_class).__name__ == "DummyAuthenticator"
    assert entry_point("jupyterhub.spawners", hub.spawner_class).__name__ == "SimpleLocalProcessSpawner"
    assert str(tmp_path) in hub.db_url and c.SimpleLocalProcessSpawner.home_dir_template.startswith(str(tmp_path))
    assert os.access(c.Spawner.cmd[0], os.X_OK)


# Keys of the Zero-to-JupyterHub chart (its values.yaml and configuration reference) for the sections we set.
CHART_KEYS = {
    "": {"hub", "proxy", "singleuser", "scheduling", "prePuller", "cull", "ingress", "debug", "rbac", "global"},
    "hub": {"config", "extraConfig", "extraEnv", "image", "resources", "db", "loadRoles", "services", "templatePaths",
            "templateVars", "concurrentSpawnLimit", "activeServerLimit", "allowNamedServers", "nodeSelector"},
    "proxy": {"https", "service", "chp", "traefik", "secretToken"},
    "proxy.https": {"enabled", "type", "hosts", "letsencrypt", "manual", "secret"},
    "proxy.https.letsencrypt": {"contactEmail", "acmeServer"},
    "singleuser": {"image", "cmd", "defaultUrl", "startTimeout", "uid", "fsGid", "storage", "extraEnv", "memory",
                   "cpu", "extraResource", "profileList", "lifecycleHooks", "nodeSelector", "extraTolerations",
                   "networkPolicy", "initContainers", "extraFiles"},
    "singleuser.image": {"name", "tag", "pullPolicy", "pullSecrets"},
    "singleuser.memory": {"limit", "guarantee"},
    "singleuser.cpu": {"limit", "guarantee"},
    "singleuser.storage": {"type", "capacity", "homeMountPath", "dynamic", "static", "extraVolumes",
                           "extraVolumeMounts", "extraLabels"},
    "scheduling": {"userScheduler", "podPriority", "userPlaceholder", "corePods", "userPods"},
    "scheduling.userScheduler": {"enabled", "replicas", "resources"},
    "prePuller": {"hook", "continuous", "pullProfileListImages", "extraImages"},
    "prePuller.hook": {"enabled", "pullOnlyOnChanges"},
    "prePuller.continuous": {"enabled"},
    "cull": {"enabled", "users", "adminUsers", "removeNamedServers", "timeout", "every", "concurrency", "maxAge"},
}


def test_helm_values_use_documented_chart_keys():
    values = yaml.safe_load((HUB_DIR / "values.yaml").read_text())
    for path, keys in CHART_KEYS.items():
        section = values
        for part in filter(None, path.split(".")):
            section = section.get(part, {})
        assert set(section) <= keys, f"{path or 'top level'}: unknown chart keys {sorted(set(section) - keys)}"
    auth = values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert auth in {"nativeauthenticator.NativeAuthenticator", "native", "github", "generic-oauth"}
    assert values["hub"]["config"]["NativeAuthenticator"]["open_signup"] is False
    assert values["proxy"]["https"]["enabled"] is True
    su = values["singleuser"]
    assert su["image"]["name"] and str(su["image"]["tag"])
    assert su["memory"]["limit"] and su["memory"]["guarantee"] and su["cpu"]["limit"] >= su["cpu"]["guarantee"] > 0
    assert su["cmd"][0].endswith("setup/hub/start-singleuser") and su["defaultUrl"] == "/lab"
    profiles = su["profileList"]
    assert sum(bool(p.get("default")) for p in profiles) == 1
    gpu = [p for p in profiles if "nvidia.com/gpu" in p.get("kubespawner_override", {}).get("extra_resource_limits", {})]
    assert gpu, "at least one GPU profile"
    for p in profiles:
        assert p["display_name"] and p["description"] and set(p["kubespawner_override"]) <= {
            "extra_resource_limits", "extra_resource_guarantees", "mem_limit", "mem_guarantee", "cpu_limit",
            "cpu_guarantee", "node_selector", "tolerations", "environment", "image"}
    for p in gpu:
        assert int(p["kubespawner_override"]["extra_resource_limits"]["nvidia.com/gpu"]) >= 1
        assert p["kubespawner_override"]["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] > 0


def test_user_image_installs_the_locked_environment():
    dockerfile = (HUB_DIR / "Dockerfile").read_text()
    assert "Pipfile.lock" in dockerfile and "pipenv" in dockerfile and "sync" in dockerfile
    assert "tensorflow[and-cuda]" in dockerfile
    image = yaml.safe_load((HUB_DIR / "values.yaml").read_text())["singleuser"]["image"]["name"]
    assert image.split("/")[-1] in (HUB_DIR / "README.md").read_text()


def test_proxy_is_pinned_in_the_lockfile():
    lock = json.loads((HUB_DIR / "package-lock.json").read_text())
    want = json.loads((HUB_DIR / "package.json").read_text())["dependencies"]["configurable-http-proxy"]
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == want


# ---- the student start script ----------------------------------------------------------------------------------

def test_start_singleuser_copies_labs_without_overwriting(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "TR_LABS_ROOT": str(ROOT), "TR_SINGLEUSER": "printenv"}
    run = lambda: subprocess.run([HUB_DIR / "start-singleuser", "TR_DATA_DIR"], env=env, capture_output=True,
                                 text=True, check=True, timeout=60)
    assert run().stdout.strip() == str(home / "data")
    notebooks = sorted((home / "lab1").glob("*.ipynb"))
    assert notebooks and len(notebooks) == len(list((ROOT / "lab1").glob("*.ipynb")))
    assert (home / "data" / "emnist").resolve() == (ROOT / "data" / "emnist").resolve()
    notebooks[0].write_text("student work")
    notebooks[1].unlink() if len(notebooks) > 1 else None
    run()
    assert notebooks[0].read_text() == "student work", "a student's notebook must never be replaced"
    assert all(nb.exists() for nb in notebooks), "a deleted notebook comes back at the next start"


def test_serve_app_proxy_url(monkeypatch):
    sys.path.insert(0, str(HUB_DIR))
    try:
        import serve_app
    finally:
        sys.path.remove(str(HUB_DIR))
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    monkeypatch.delenv("JUPYTERHUB_PUBLIC_URL", raising=False)
    assert serve_app.proxy_url(8000) == "/user/ada/proxy/8000/"
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_URL", "https://hub.example.org/user/ada/")
    assert serve_app.proxy_url(8123) == "https://hub.example.org/user/ada/proxy/8123/"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not serve_app.port_is_free(s.getsockname()[1])
    assert serve_app.port_is_free(serve_app.free_port())
    with pytest.raises(SystemExit):
        serve_app.main(["no_colon_here"])


# ---- the smoke test ----------------------------------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    "`n` distinct ports free on 127.0.0.1 right now."
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Hub:
    "A running test hub: its URL, admin token, log, and every process it started (tracked for cleanup)."

    def __init__(self, proc, url, token, log_path):
        self.proc, self.url, self.token, self.log_path = proc, url, token, log_path
        self.started = {}

    def track(self):
        "Remember the hub's descendants (proxy, servers, kernels, their children) so teardown can stop them all."
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            self.started[p.pid] = p

    def log_tail(self, n=40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def api(self, method, path, token=None, **kw):
        headers = {"Authorization": f"token {token or self.token}"}
        return HTTP.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kw)

    def wait_for(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the hub exited ({self.proc.returncode}) waiting for {what}:\n{self.log_tail()}")
            try:
                result = check()
            except (requests.RequestException, ValueError, KeyError):
                result = None
            if result:
                return result
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")


@contextlib.contextmanager
def running_hub(config: Path, state: Path, *args, **env):
    "Start JupyterHub with `config` on free loopback ports, state in `state`; always stop all it started."
    if not os.access(CHP, os.X_OK):
        pytest.fail(f"{CHP.relative_to(ROOT)} is missing: run `bash setup/bootstrap` (npm ci --prefix setup/hub)")
    state.mkdir()
    port, api_port, proxy_api_port = free_ports(3)
    token = secrets.token_hex(32)
    env = {**os.environ, "TR_HUB_DIR": str(state), "TR_HUB_STATE": str(state), "TR_HUB_PORT": str(port),
           "TR_HUB_API_PORT": str(api_port), "TR_PROXY_API_PORT": str(proxy_api_port),
           "TR_HUB_URL": f"http://127.0.0.1:{port}", "TR_HUB_SERVICE_TOKEN": token, **env}
    args = [f"--JupyterHub.hub_bind_url=http://127.0.0.1:{api_port}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_api_port}", *args]
    log_path = state / "hub.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([VENV_BIN / "jupyterhub", "-f", config, *args], cwd=state, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    hub = Hub(proc, f"http://127.0.0.1:{port}", token, log_path)
    try:
        hub.wait_for("the hub API", lambda: HTTP.get(f"{hub.url}/hub/api/", timeout=5).ok, 90)
        hub.track()
        yield hub
    finally:
        if proc.poll() is None:
            hub.track()
            proc.terminate()  # the hub stops the servers it spawned and the proxy (cleanup_servers/cleanup_proxy)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        leftovers = [p for p in hub.started.values() if p.is_running()]
        for p in leftovers:
            p.terminate()
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for p in alive:
            p.kill()
        assert not alive, f"processes that ignored SIGTERM: {[p.pid for p in alive]}"


@pytest.fixture
def hub(tmp_path):
    with running_hub(HUB_DIR / "jupyterhub_test_config.py", tmp_path / "hub") as hub:
        yield hub


def form_post(session: requests.Session, url: str, **data) -> requests.Response:
    "POST a hub form the way a browser does (with the _xsrf cookie's value), without following redirects."
    return session.post(url, data={**data, "_xsrf": session.cookies.get("_xsrf")}, allow_redirects=False, timeout=30)


def browser_on(url: str) -> requests.Session:
    "A cookie-keeping session that has opened the hub's login page (and so holds an _xsrf cookie)."
    session = loopback_session()
    session.get(f"{url}/hub/login", timeout=30).raise_for_status()
    return session


@pytest.mark.timeout(180)
def test_class_config_native_signup_approval_login(tmp_path):
    "The shipped class config, run for real (only the spawner swapped): signup, instructor approval, login."
    config = HUB_DIR / "jupyterhub_config.py"
    with running_hub(config, tmp_path / "hub", "--JupyterHub.spawner_class=simple", TR_HUB_ADMINS="teacher") as hub:
        signup, login = f"{hub.url}/hub/signup", f"{hub.url}/hub/login"
        teacher, student = browser_on(hub.url), browser_on(hub.url)
        assert "signup_password" in HTTP.get(signup, timeout=30).text, "NativeAuthenticator's signup page"
        assert form_post(teacher, signup, username="teacher", signup_password="Teach-labs-2026",
                         signup_password_confirmation="Teach-labs-2026").ok
        assert form_post(student, signup, username="ada", signup_password="Lovelace-1815!",
                         signup_password_confirmation="Lovelace-1815!").ok
        weak = browser_on(hub.url)
        form_post(weak, signup, username="weak", signup_password="password", signup_password_confirmation="password")

        def logs_in(session, user, password):
            r = form_post(session, login, username=user, password=password)
            return r.status_code == 302 and "jupyterhub-hub-login" in session.cookies

        assert not logs_in(student, "ada", "Lovelace-1815!"), "a signup needs an instructor's approval"
        assert not logs_in(weak, "weak", "password"), "a common password is refused at signup"
        assert not logs_in(teacher, "teacher", "wrong-password")
        assert logs_in(teacher, "teacher", "Teach-labs-2026"), "the admin named in TR_HUB_ADMINS is pre-approved"
        assert teacher.get(f"{hub.url}/hub/authorize/ada", timeout=30).ok  # the teacher approves ada
        assert logs_in(student, "ada", "Lovelace-1815!")
        home = student.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200 and "ada" in home.text
        assert "not recognized" not in hub.log_path.read_text(), "a config option JupyterHub does not know"


def run_cell(ws, code: str, timeout: float = 120) -> str:
    "Execute `code` in the kernel behind websocket `ws`; its stdout (not stderr), or a failure with the traceback."
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    header = {"msg_id": msg_id, "session": session, "username": STUDENT, "msg_type": "execute_request",
              "version": "5.3", "date": datetime.now(timezone.utc).isoformat()}
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                                    "allow_stdin": False, "stop_on_error": True}}))
    out, reply, idle, deadline = [], None, False, time.monotonic() + timeout
    while reply is None or not idle:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        raw = ws.recv()
        if not isinstance(raw, str):
            continue  # binary frames carry buffers; our cells produce none
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            pytest.fail(f"cell failed: {content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"]))
        elif kind == "execute_reply":
            reply = content["status"]
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    assert reply == "ok", f"execute_reply status {reply}"
    return "".join(out)


PREDICT_CELL = """
import json, text_recognizer
from text_recognizer import metadata
from text_recognizer.emnist import load_emnist
out = {"data_dir": str(metadata.data_dir())}
x, y = load_emnist("test")
out["test_shape"] = list(x.shape)
try:
    predictor = text_recognizer.CharacterPredictor()
except (ImportError, AttributeError, FileNotFoundError) as e:
    predictor, out["no_predictor"] = None, f"{type(e).__name__}: {e}"
if predictor is None:  # no committed character model yet: exercise the package through metadata instead
    out["mode"], out["decoded"] = "metadata", metadata.decode(metadata.encode("Hello, hub!"))
else:
    preds = [predictor.predict(img) for img in x[:16]]
    out["mode"] = "predict"
    out["chars"] = [p[0] if isinstance(p, (tuple, list)) else p for p in preds]
    out["truth"] = [metadata.CHARSET[i] for i in y[:16]]
print(json.dumps(out))
"""

STANDIN_APP = '''
from flask import Flask, request
app = Flask(__name__)

@app.get("/healthz")
def healthz():
    return {"ok": True, "app": "lab4 stand-in"}

@app.post("/v1/predict")
def predict():
    return {"text": "stand-in", "received_bytes": len(request.get_data())}
'''


@pytest.mark.timeout(240)
def test_smoke_hub_login_spawn_kernel_proxy(hub):
    t0 = time.monotonic()
    # a student logs in on the login page (the authenticator answers), then gets an API token via the REST API
    browser = loopback_session()
    browser.get(f"{hub.url}/hub/login", timeout=30).raise_for_status()
    r = browser.post(f"{hub.url}/hub/login", data={"username": STUDENT, "password": "any",
                                                  "_xsrf": browser.cookies.get("_xsrf")}, allow_redirects=False)
    assert r.status_code == 302 and "jupyterhub-hub-login" in browser.cookies, r.text[:500]
    assert hub.api("GET", f"/users/{STUDENT}").json()["name"] == STUDENT
    r = hub.api("POST", f"/users/{STUDENT}/tokens", json={"note": "smoke test", "expires_in": 600})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    auth = {"Authorization": f"token {token}"}
    assert hub.api("GET", "/user", token=token).json()["name"] == STUDENT

    # spawn the student's server and wait until the hub routes to it
    r = hub.api("POST", f"/users/{STUDENT}/server", token=token)
    assert r.status_code in (201, 202), r.text
    hub.wait_for("the student's server",
                 lambda: hub.api("GET", f"/users/{STUDENT}", token=token).json()["servers"].get("", {}).get("ready"),
                 150)
    hub.track()
    server = f"{hub.url}/user/{STUDENT}"
    lab1 = HTTP.get(f"{server}/api/contents/lab1", headers=auth, timeout=30)
    assert lab1.ok and any(f["name"].endswith(".ipynb") for f in lab1.json()["content"]), "lab notebooks copied"

    # a kernel runs the package on the embedded EMNIST test split
    r = HTTP.post(f"{server}/api/kernels", json={"name": "python3"}, headers=auth, timeout=30)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    ws = websocket.create_connection(f"ws://127.0.0.1:{hub.url.rsplit(':', 1)[1]}/user/{STUDENT}/api/kernels/"
                                     f"{kernel}/channels", header=[f"Authorization: token {token}"], timeout=60)
    try:
        result = json.loads(run_cell(ws, PREDICT_CELL).strip().splitlines()[-1])
        hub.track()
        assert result["data_dir"].endswith(f"home/{STUDENT}/data"), result
        assert result["test_shape"][1:] == [28, 28] and result["test_shape"][0] > 100
        if result["mode"] == "predict":
            hits = sum(a == b for a, b in zip(result["chars"], result["truth"]))
            assert hits >= 8, f"{hits}/16 right: {result}"
        else:
            assert result["decoded"] == "Hello, hub!" and result["no_predictor"]
        print(f"\nkernel cell: {result['mode']} ({result.get('no_predictor', 'CharacterPredictor')})")

        # a gunicorn app (the lab4 endpoint's stand-in) served through jupyter-server-proxy
        want_port = free_ports(1)[0]
        started = run_cell(ws, f"""
import pathlib, subprocess, sys
pathlib.Path("standin_app.py").write_text({STANDIN_APP!r})
app_server = subprocess.Popen([sys.executable, {str(HUB_DIR / 'serve_app.py')!r}, "standin_app:app",
                               "--port", "{want_port}", "--workers", "1"], stdout=subprocess.PIPE, text=True)
print(app_server.stdout.readline().strip())
""")
        hub.track()
        proxy_path = started.split("open ")[-1].strip()
        port = int(proxy_path.rstrip("/").rsplit("/", 1)[1])
        assert proxy_path == f"/user/{STUDENT}/proxy/{port}/", started
        url = f"{hub.url}{proxy_path}"
        health = hub.wait_for("the stand-in app behind the proxy",
                              lambda: (r := HTTP.get(f"{url}healthz", headers=auth, timeout=10)).ok and r.json(), 60)
        hub.track()
        assert health == {"ok": True, "app": "lab4 stand-in"}
        r = HTTP.post(f"{url}v1/predict", data=b"x" * 1000, headers=auth, timeout=30)
        assert r.ok and r.json() == {"text": "stand-in", "received_bytes": 1000}
        anonymous = loopback_session().get(f"{url}healthz", allow_redirects=False, timeout=10)
        assert anonymous.status_code in (302, 401, 403), "the proxy must not serve the app without the student's login"
        assert run_cell(ws, "app_server.terminate(); print(app_server.wait(15))").strip() in ("0", "-15")
    finally:
        ws.close()
    assert HTTP.delete(f"{server}/api/kernels/{kernel}", headers=auth, timeout=30).status_code == 204

    # stop the server through the hub
    assert hub.api("DELETE", f"/users/{STUDENT}/server", token=token).status_code in (202, 204)
    hub.wait_for("the server to stop",
                 lambda: "" not in hub.api("GET", f"/users/{STUDENT}", token=token).json()["servers"], 60)
    assert "not recognized" not in hub.log_path.read_text(), "a config option JupyterHub does not know"
    print(f"smoke test body: {time.monotonic() - t0:.1f}s")
