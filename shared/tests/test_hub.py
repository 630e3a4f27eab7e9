"""The class JupyterHub (setup/hub/): config validation, the student start script, and a local smoke test.

The smoke test runs a real JupyterHub on loopback with setup/hub/jupyterhub_test_config.py and
configurable-http-proxy from setup/hub/node_modules (installed by setup/bootstrap), logs a student in, spawns their
server, runs code in a kernel over the websocket, reaches a gunicorn app through jupyter-server-proxy, and stops
everything it started.
"""
import asyncio
import contextlib
import http.cookiejar
import importlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
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

def hub_module(name: str):
    "A module of setup/hub (classhub, serve_app), imported the way the class config imports it."
    if str(HUB_DIR) not in sys.path:
        sys.path.insert(0, str(HUB_DIR))
    return importlib.import_module(name)


classhub = hub_module("classhub")


def test_class_config_uses_real_auth_and_limits(tmp_path):
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path))
    hub = c.JupyterHub
    from nativeauthenticator import NativeAuthenticator
    from systemdspawner import SystemdSpawner
    assert issubclass(hub.authenticator_class, NativeAuthenticator) and hub.authenticator_class is not NativeAuthenticator
    assert c.NativeAuthenticator.open_signup is False, "an instructor must approve each signup"
    assert c.NativeAuthenticator.minimum_password_length >= 8
    assert any(Path(p, "native-login.html").exists() for p in hub.template_paths), "NativeAuthenticator's templates"
    assert issubclass(hub.spawner_class, SystemdSpawner) and c.SystemdSpawner.username_template == "jupyter-{USERNAME}"
    assert c.SystemdSpawner.isolate_devices is False, "PrivateDevices would hide the GPUs (DeviceAllow isolates them)"
    assert c.Spawner.mem_limit and c.Spawner.cpu_limit > 0
    assert c.Spawner.environment["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert Path(c.Spawner.cmd[0]) == HUB_DIR / "start-singleuser"
    assert "--allow-root" not in c.Spawner.get("args", [])
    assert Path(c.ConfigurableHTTPProxy.command[0]) == CHP
    assert str(tmp_path) in hub.db_url and Path(hub.cookie_secret_file).parent == tmp_path
    assert hub.cleanup_servers is False, "restarting the hub must not kill the students' servers"
    culler = [s for s in hub.services if s["name"] == "idle-culler"]
    assert culler and culler[0]["command"][1:3] == ["-m", "jupyterhub_idle_culler"], "the culler is in the lock"
    assert importlib.util.find_spec("jupyterhub_idle_culler"), "jupyterhub-idle-culler must be in Pipfile.lock"
    import re
    pattern = re.compile(c.Authenticator.username_pattern)
    assert pattern.match("ada") and pattern.match("student-42")
    assert not any(pattern.match(bad) for bad in ("", "Ada", "../etc", "a b", "x" * 25, "-rf"))


def test_class_config_listens_on_https_or_loopback_only(tmp_path):
    "HTTPS with a certificate, loopback without one; a public plain-HTTP address is refused unless allowed."
    config = HUB_DIR / "jupyterhub_config.py"
    assert load_config(config).JupyterHub.bind_url == "http://127.0.0.1:8000", "no certificate: loopback only"
    for public in ("http://:80", "http://0.0.0.0:80", "http://[::]:8000", "http://labs.example.org"):
        with pytest.raises(SystemExit, match="plain HTTP on a public address"):
            load_config(config, TR_HUB_URL=public)
    assert load_config(config, TR_HUB_URL="http://:80", TR_HUB_ALLOW_HTTP="1").JupyterHub.bind_url == "http://:80"
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    with pytest.raises(SystemExit, match="not found"):
        load_config(config, TR_HUB_SSL_CERT=str(cert), TR_HUB_SSL_KEY=str(key))
    cert.write_text("cert"), key.write_text("key")
    hub = load_config(config, TR_HUB_SSL_CERT=str(cert), TR_HUB_SSL_KEY=str(key)).JupyterHub
    assert (hub.bind_url, hub.ssl_cert, hub.ssl_key) == ("https://:443", str(cert), str(key))
    with pytest.raises(SystemExit, match="must be https"):
        load_config(config, TR_HUB_SSL_CERT=str(cert), TR_HUB_SSL_KEY=str(key), TR_HUB_URL="http://:80")
    with pytest.raises(SystemExit, match="no certificate"):
        load_config(config, TR_HUB_URL="https://:443")
    with pytest.raises(SystemExit, match="both"):
        load_config(config, TR_HUB_SSL_CERT=str(cert))


def test_shipped_unit_serves_https_by_default(tmp_path):
    "The systemd unit names a certificate: the hub it starts serves https://:443, or refuses while it is missing."
    unit = (HUB_DIR / "jupyterhub.service").read_text()
    env = dict(line.split("=", 2)[1:] for line in unit.splitlines() if line.startswith("Environment="))
    assert "TR_HUB_URL" not in env and "TR_HUB_ALLOW_HTTP" not in env and "http://:80" not in unit
    assert env["TR_HUB_SSL_CERT"] and env["TR_HUB_SSL_KEY"]
    if not (os.path.exists(env["TR_HUB_SSL_CERT"]) and os.path.exists(env["TR_HUB_SSL_KEY"])):
        with pytest.raises(SystemExit, match="certificate or key not found"):
            classhub.network_settings(env)
    for name in ("TR_HUB_SSL_CERT", "TR_HUB_SSL_KEY"):
        env[name] = str(tmp_path / Path(env[name]).name)
        Path(env[name]).write_text("pem")
    assert classhub.network_settings(env)["bind_url"] == "https://:443"
    install = (HUB_DIR / "install").read_text()
    assert "create-admin" in install and "private-homes" in install and "gpu-env" in install
    assert install.index("create-admin") < install.index("systemctl enable"), "the admin exists before the hub runs"


def test_create_admin_tool(tmp_path):
    "classhub.py create-admin writes an approved account into a private state folder; weak passwords are refused."
    state = tmp_path / "state"
    tool = Path(classhub.__file__)

    def run(*args, password="Teach-labs-2026"):
        "The tool run as an instructor runs it (its own process: TensorFlow's or W&B's stream hooks stay out)."
        done = subprocess.run([sys.executable, str(tool), *args, "--state", str(state)], input=password + "\n",
                              capture_output=True, text=True, env={**os.environ, "TR_HUB_ADMINS": "teacher"}, timeout=120)
        return done.returncode, done.stdout + (done.stderr if done.returncode else "")

    assert run("has-admin")[0] == 1
    code, said = run("create-admin", "teacher", "--password-stdin", password="password")
    assert code and "common" in said, "a common password is refused"
    assert run("create-admin", "teacher", "--password-stdin") == (0, f"admin account teacher: created in {state}/jupyterhub.sqlite\n")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert run("has-admin") == (0, "admin accounts: teacher\n")
    assert classhub.admin_accounts(state, ["someone-else"]) == []
    assert run("create-admin", "teacher", "--password-stdin", password="Another-pass-2026")[1].endswith("password reset in "
                                                                                                    f"{state}/jupyterhub.sqlite\n")


def require_root_tools(*tools):
    "Skip (with the reason) where real Unix users cannot be made: not root, or a tool missing."
    if os.geteuid() != 0:
        pytest.skip("needs root: creates real Unix users (useradd) like the class hub does")
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def delete_unix_users(*names):
    for name in names:
        subprocess.run(["userdel", "--remove", "--force", name], capture_output=True, timeout=60)


def test_student_homes_are_private(tmp_path):
    "The spawn hook creates jupyter-<name> with a 0700 home, and fixes an existing home that is group/world readable."
    require_root_tools("useradd", "userdel")
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path))
    hub_name = f"trhome{secrets.token_hex(3)}"
    unix_name = f"jupyter-{hub_name}"
    spawner = SimpleNamespace(user=SimpleNamespace(name=hub_name, id=7), environment={})
    try:
        c.Spawner.pre_spawn_hook(spawner)
        account = pwd.getpwnam(unix_name)
        home = Path(account.pw_dir)
        assert home == Path("/home") / unix_name and home.stat().st_uid == account.pw_uid
        assert stat.S_IMODE(home.stat().st_mode) == 0o700, f"new home is {oct(home.stat().st_mode)}"
        os.chmod(home, 0o755)  # a home made before this fix (useradd's default)
        c.Spawner.pre_spawn_hook(spawner)
        assert stat.S_IMODE(home.stat().st_mode) == 0o700, "the next start fixes an existing home"
        os.chmod(home, 0o751)
        assert str(home) in classhub.private_homes() and stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        delete_unix_users(unix_name)


FAKE_GPUS = {"0000:01:00.0": (0, "GPU-11111111-aaaa"), "0000:41:00.0": (1, "GPU-22222222-bbbb")}


def fake_nvidia_proc(root: Path) -> Path:
    "A /proc/driver/nvidia/gpus tree as the NVIDIA driver writes it, for two GPUs."
    for pci, (minor, gpu_uuid) in FAKE_GPUS.items():
        (root / pci).mkdir(parents=True)
        (root / pci / "information").write_text(
            f"Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t\t 123\nGPU UUID: \t {gpu_uuid}\n"
            f"Video BIOS: \t 92.00.45.00.06\nBus Type: \t PCIe\nDevice Minor: \t {minor}\nBus Location: \t {pci}\n")
    return root


def spawn_command(c, user_id: int, monkeypatch, tmp_path) -> tuple[list, dict]:
    "The systemd-run command and the environment file the class spawner makes for a student (systemd mocked)."
    from systemdspawner import systemd
    calls, started = [], []

    class Proc:
        def __init__(self, code):
            self.code = code

        async def wait(self):
            return self.code

    async def fake_exec(*argv, **kw):
        calls.append(list(argv))
        if argv[0] == "systemd-run":
            started.append(True)
            return Proc(0)
        return Proc(0 if argv[:2] == ("systemctl", "is-active") and started else 3)

    monkeypatch.setattr(systemd.asyncio, "create_subprocess_exec", fake_exec)
    monkeypatch.setattr(systemd, "RUN_ROOT", str(tmp_path / f"run{user_id}"))
    monkeypatch.setattr(classhub, "ensure_unix_user", lambda name: f"jupyter-{name}")  # no useradd here
    user = SimpleNamespace(name=f"student{user_id}", id=user_id, url=f"/user/student{user_id}/",
                           escaped_name=f"student{user_id}")
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    spawner = c.JupyterHub.spawner_class(user=user, hub=hub, config=c)
    spawner.username_template = pwd.getpwuid(os.getuid()).pw_name  # an existing account (the unit is never started)
    c.Spawner.pre_spawn_hook(spawner)
    asyncio.run(spawner.start())
    (run,) = [a for a in calls if a[0] == "systemd-run"]
    env_file = Path(next(a for a in run if a.startswith("--property=EnvironmentFile=")).split("=", 2)[2])
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    return run, env


def test_class_spawner_gives_each_student_one_gpu_by_device_isolation(tmp_path, monkeypatch):
    "On a 2-GPU host (a fake /proc/driver/nvidia) each student's unit may open only its GPU's /dev/nvidia<minor>."
    monkeypatch.setattr(classhub, "NVIDIA_PROC", fake_nvidia_proc(tmp_path / "gpus"))
    assert [g["minor"] for g in classhub.host_gpus()] == [0, 1]
    c = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path))
    for user_id, (minor, gpu_uuid) in [(4, FAKE_GPUS["0000:01:00.0"]), (3, FAKE_GPUS["0000:41:00.0"])]:
        run, env = spawn_command(c, user_id, monkeypatch, tmp_path)
        allowed = [a.split("=", 2)[2] for a in run if a.startswith("--property=DeviceAllow=")]
        assert "--property=DevicePolicy=closed" in run, "only the listed devices may be opened"
        assert f"/dev/nvidia{minor} rw" in allowed and f"/dev/nvidia{1 - minor} rw" not in allowed, allowed
        assert {"/dev/nvidiactl rw", "/dev/nvidia-uvm rw", "char-pts rw", "/dev/ptmx rw"} <= set(allowed)
        assert "--property=PrivateDevices=yes" not in run
        assert env["CUDA_VISIBLE_DEVICES"] == gpu_uuid and gpu_uuid in env["TR_HUB_GPU"]
    hidden = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path), TR_HUB_GPUS="0")
    run, env = spawn_command(hidden, 5, monkeypatch, tmp_path)
    assert not [a for a in run if "nvidia" in a] and "--property=DevicePolicy=closed" in run
    assert env["CUDA_VISIBLE_DEVICES"] in ("", "''") and "TR_HUB_GPU" in env
    one = load_config(HUB_DIR / "jupyterhub_config.py", TR_HUB_STATE=str(tmp_path), TR_HUB_GPUS="1")
    assert "--property=DeviceAllow=/dev/nvidia0 rw" in spawn_command(one, 3, monkeypatch, tmp_path)[0]
    monkeypatch.setattr(classhub, "NVIDIA_PROC", tmp_path / "no-driver")
    run, env = spawn_command(c, 6, monkeypatch, tmp_path)
    assert not [a for a in run if "Device" in a] and "CUDA_VISIBLE_DEVICES" not in env, "a CPU host: unchanged"


def test_gpu_lock_pins_tensorflow_and_cuda_wheels():
    "setup/hub/gpu/requirements.txt: Pipfile.lock's TensorFlow plus every CUDA wheel of its and-cuda extra, hashed."
    from importlib.metadata import requires
    from packaging.requirements import Requirement
    lock = json.loads((ROOT / "Pipfile.lock").read_text())["default"]
    text = (HUB_DIR / "gpu" / "requirements.txt").read_text()
    entries = {}
    for block in text.replace("\\\n", " ").splitlines():
        block = block.split(" #", 1)[0].strip()
        if block and not block.startswith("#"):
            spec, *hashes = block.split(" --hash=")
            entries[Requirement(spec.strip())] = [h.strip() for h in hashes]
    by_name = {r.name.lower(): (r, h) for r, h in entries.items()}
    tf, tf_hashes = by_name["tensorflow"]
    assert tf.extras == {"and-cuda"} and str(tf.specifier) == lock["tensorflow"]["version"]
    assert set(tf_hashes) == set(lock["tensorflow"]["hashes"])
    cuda = [Requirement(r) for r in requires("tensorflow") if 'extra == "and-cuda"' in r]
    assert len(cuda) >= 10 and all(r.name.startswith("nvidia-") for r in cuda)
    for want in cuda:
        pinned, hashes = by_name[want.name.lower()]
        version = str(pinned.specifier).removeprefix("==")
        assert str(pinned.specifier).startswith("==") and want.specifier.contains(version), (want, pinned)
        assert len(hashes) == 1 and hashes[0].startswith("sha256:") and len(hashes[0]) == 71, pinned
    locked = {n.lower().replace("_", "-") for n in lock}
    assert not [n for n in by_name if n != "tensorflow" and n in locked], "the GPU lock must not move locked packages"
    assert classhub.gpu_install_command()[-4:] == ["--require-hashes", "--no-deps", "-r", str(classhub.GPU_REQUIREMENTS)]
    dry = subprocess.run([sys.executable, HUB_DIR / "classhub.py", "gpu-env", "--dry-run", "--force"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert "--require-hashes" in dry.stdout and "gpu/requirements.txt" in dry.stdout
    assert "setup/hub/gpu/requirements.txt" in (HUB_DIR / "Dockerfile").read_text()


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


def test_helm_hub_has_no_admin_by_first_signup(tmp_path, monkeypatch):
    "values.yaml's extraConfig: the admin account comes from the labs-hub-admin Secret; signup refuses admin names."
    import bcrypt
    from jupyterhub import orm
    from nativeauthenticator.orm import UserInfo
    from traitlets.config import Config
    values = yaml.safe_load((HUB_DIR / "values.yaml").read_text())
    env = values["hub"]["extraEnv"]["TR_HUB_ADMIN_BCRYPT"]["valueFrom"]["secretKeyRef"]
    assert env["name"] == "labs-hub-admin" and "labs-hub-admin" in (HUB_DIR / "README.md").read_text()
    c = Config()
    for snippet in values["hub"]["extraConfig"].values():
        exec(compile(snippet, "values.yaml extraConfig", "exec"), {"c": c})
    cls = c.JupyterHub.authenticator_class
    admins = set(values["hub"]["config"]["Authenticator"]["admin_users"])
    make = lambda: cls(_deprecated_db_session=orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")(),
                       admin_users=admins, config=Config(values["hub"]["config"]))
    monkeypatch.delenv("TR_HUB_ADMIN_BCRYPT", raising=False)
    with pytest.raises(SystemExit, match="no admin account"):
        make()
    monkeypatch.setenv("TR_HUB_ADMIN_BCRYPT", bcrypt.hashpw(b"Teach-labs-2026", bcrypt.gensalt()).decode())
    auth = make()
    (admin,) = admins
    assert UserInfo.find(auth.db, admin).is_authorized and UserInfo.find(auth.db, admin).is_valid_password("Teach-labs-2026")
    assert auth.create_user(admin, "Intruder-2026!") is None and auth.create_user(admin.upper(), "Intruder-2026!") is None
    student = auth.create_user("ada", "Lovelace-1815!")
    assert student is not None and not student.is_authorized, "a student still waits for an instructor's approval"


def test_user_image_installs_the_locked_environment():
    dockerfile = (HUB_DIR / "Dockerfile").read_text()
    assert "Pipfile.lock" in dockerfile and "pipenv" in dockerfile and "sync" in dockerfile
    assert "--require-hashes --no-deps -r setup/hub/gpu/requirements.txt" in dockerfile, "the GPU lock, hash-checked"
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


def test_start_singleuser_gives_each_student_a_weights_folder(tmp_path):
    "The shared package's weights are read-only on the hub: a student's models save to ~/weights."
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TR_WEIGHTS_DIR"}
    env.update(HOME=str(home), TR_LABS_ROOT=str(ROOT), TR_SINGLEUSER="printenv")
    done = subprocess.run([HUB_DIR / "start-singleuser", "TR_WEIGHTS_DIR"], env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == str(home / "weights")
    probe = ("from text_recognizer.metadata import weights_file, WEIGHTS_DIR; "
             "print(weights_file('mine.keras', write=True)); print(weights_file('line_model.onnx') == WEIGHTS_DIR / 'line_model.onnx')")
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "TR_WEIGHTS_DIR": done.stdout.strip()},
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert out == [str(home / "weights" / "mine.keras"), "True"] and (home / "weights").is_dir()


def test_serve_app_urls_and_refused_binds(monkeypatch):
    serve_app = hub_module("serve_app")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    monkeypatch.delenv("JUPYTERHUB_PUBLIC_URL", raising=False)
    assert serve_app.proxy_url(8000) == "/user/ada/proxy/8000/"
    assert serve_app.app_url() == "/user/ada/app/"
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_URL", "https://hub.example.org/user/ada/")
    assert serve_app.proxy_url(8123) == "https://hub.example.org/user/ada/proxy/8123/"
    assert serve_app.app_url() == "https://hub.example.org/user/ada/app/"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert not serve_app.port_is_free(taken)
        with serve_app.listen_tcp(taken) as held:  # a taken port: another one, bound and held
            other = held.getsockname()[1]
            assert other != taken and held.getsockname()[0] == "127.0.0.1" and not serve_app.port_is_free(other)
    assert serve_app.port_is_free(serve_app.free_port())
    with pytest.raises(SystemExit):
        serve_app.main(["no_colon_here"])
    for bad in (["-b", "0.0.0.0:80"], ["--bind", "0.0.0.0:80"], ["--bind=[::]:80"], ["--bin", "0.0.0.0:1"],
                ["--bi=0.0.0.0:1"], ["-b0.0.0.0:80"], ["-Rb", "0.0.0.0:1"], ["--workers", "2", "-b", "127.0.0.1:1"]):
        assert serve_app.extra_binds(bad), bad
        with pytest.raises(SystemExit) as refused:
            serve_app.main(["m:app", *bad])
        assert refused.value.code == 2, bad
    assert not serve_app.extra_binds(["--workers", "2", "-w", "2", "--backlog", "64", "--timeout", "60", "-k", "gthread"])


def test_serve_app_private_socket(tmp_path, monkeypatch):
    "The private app socket: a 0700 folder, refused while another app serves it, a stale file replaced."
    serve_app = hub_module("serve_app")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TR_APP_SOCKET", raising=False)
    path = serve_app.private_socket_path()
    assert path == tmp_path / ".tr-app" / "app.sock"
    with serve_app.listen_unix(path):
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_ISSOCK(path.lstat().st_mode)
        assert not stat.S_IMODE(path.lstat().st_mode) & 0o077
        with pytest.raises(SystemExit, match="already served"):
            serve_app.listen_unix(path)
    assert path.exists(), "closed without unlinking: a stale socket file"
    with serve_app.listen_unix(path) as again:
        assert again.getsockname() == str(path)
    monkeypatch.setenv("TR_APP_SOCKET", str(tmp_path / "elsewhere.sock"))
    assert serve_app.private_socket_path() == tmp_path / "elsewhere.sock"


@pytest.mark.timeout(60)
def test_serve_app_holds_its_port_until_gunicorn_serves(tmp_path):
    "No port race: the port printed is already bound by serve_app, so nobody can take it before gunicorn serves it."
    (tmp_path / "standin_app.py").write_text(STANDIN_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    proc = subprocess.Popen([sys.executable, HUB_DIR / "serve_app.py", "standin_app:app", "--port", "0", "--workers",
                             "1"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split(";")[0])
        with socket.socket() as s, pytest.raises(OSError):
            s.bind(("127.0.0.1", port))  # right after the announcement, before gunicorn has even started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = HTTP.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert r.json() == {"ok": True, "app": "lab4 stand-in"}
        assert proc.poll() is None and psutil.Process(proc.pid).name().startswith(("python", "gunicorn"))
    finally:
        proc.terminate()
        proc.wait(15)


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
def running_hub(config: Path, state: Path, *args, wrap=(), **env):
    """Start JupyterHub with `config` on free loopback ports, state in `state`; always stop all it started.
    `wrap` is a command prefix for the hub (e.g. shared_interpreter_view())."""
    if not os.access(CHP, os.X_OK):
        pytest.fail(f"{CHP.relative_to(ROOT)} is missing: run `bash setup/bootstrap` (npm ci --prefix setup/hub)")
    state.mkdir(exist_ok=True)
    port, api_port, proxy_api_port = free_ports(3)
    token = secrets.token_hex(32)
    env = {**os.environ, "TR_HUB_DIR": str(state), "TR_HUB_STATE": str(state), "TR_HUB_PORT": str(port),
           "TR_HUB_API_PORT": str(api_port), "TR_PROXY_API_PORT": str(proxy_api_port),
           "TR_HUB_URL": f"http://127.0.0.1:{port}", "TR_HUB_SERVICE_TOKEN": token, **env}
    args = [f"--JupyterHub.hub_bind_url=http://127.0.0.1:{api_port}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_api_port}", *args]
    log_path = state / "hub.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*wrap, VENV_BIN / "jupyterhub", "-f", config, *args], cwd=state, env=env, stdout=log,
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
    "The shipped class config, run for real (only the spawner swapped): admin made at setup, signup, approval, login."
    config, state = HUB_DIR / "jupyterhub_config.py", tmp_path / "hub"
    assert classhub.create_admin(state, "teacher", "Teach-labs-2026") == "created"  # what setup/hub/install does
    with running_hub(config, state, "--JupyterHub.spawner_class=simple", TR_HUB_ADMINS="teacher,assistant") as hub:
        signup, login = f"{hub.url}/hub/signup", f"{hub.url}/hub/login"
        teacher, student, intruder = browser_on(hub.url), browser_on(hub.url), browser_on(hub.url)
        assert "signup_password" in HTTP.get(signup, timeout=30).text, "NativeAuthenticator's signup page"
        # whoever reaches the signup page first cannot claim the admin name (NativeAuthenticator would approve it)
        for admin_name in ("teacher", "assistant"):  # an admin with an account, and one without any yet
            r = form_post(intruder, signup, username=admin_name, signup_password="Intruder-2026!",
                          signup_password_confirmation="Intruder-2026!")
            assert r.ok and "successful" not in r.text, admin_name
        assert form_post(student, signup, username="ada", signup_password="Lovelace-1815!",
                         signup_password_confirmation="Lovelace-1815!").ok
        weak = browser_on(hub.url)
        form_post(weak, signup, username="weak", signup_password="password", signup_password_confirmation="password")

        def logs_in(session, user, password):
            r = form_post(session, login, username=user, password=password)
            return r.status_code == 302 and "jupyterhub-hub-login" in session.cookies

        assert not logs_in(intruder, "teacher", "Intruder-2026!"), "a signup under the admin name must not log in"
        assert not logs_in(intruder, "assistant", "Intruder-2026!"), "nor under an admin name without an account"
        assert not logs_in(student, "ada", "Lovelace-1815!"), "a signup needs an instructor's approval"
        assert not logs_in(weak, "weak", "password"), "a common password is refused at signup"
        assert not logs_in(teacher, "teacher", "wrong-password")
        assert logs_in(teacher, "teacher", "Teach-labs-2026"), "the admin account made by create-admin"
        assert teacher.get(f"{hub.url}/hub/authorize/ada", timeout=30).ok  # the teacher approves ada
        assert logs_in(student, "ada", "Lovelace-1815!")
        home = student.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200 and "ada" in home.text
        log = hub.log_path.read_text()
        assert "not recognized" not in log, "a config option JupyterHub does not know"
        assert "signup refused for the admin name 'assistant'" in log


@pytest.mark.timeout(120)
def test_class_hub_refuses_to_start_unsafe(tmp_path):
    "The real hub exits (and never listens) without an admin account, or on a public plain-HTTP address."
    runs = {}
    for case, env in {"no-admin": {"TR_HUB_URL": f"http://127.0.0.1:{free_ports(1)[0]}"},
                      "public-http": {"TR_HUB_URL": "http://:80"}}.items():
        state = tmp_path / case
        state.mkdir()
        if case == "public-http":
            classhub.create_admin(state, "instructor", "Teach-labs-2026")
        log = open(state / "hub.log", "w")
        runs[case] = (subprocess.Popen(
            [VENV_BIN / "jupyterhub", "-f", HUB_DIR / "jupyterhub_config.py", "--JupyterHub.spawner_class=simple"],
            cwd=state, env={**os.environ, "TR_HUB_STATE": str(state), **env}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True), state / "hub.log")
    try:
        for case, (proc, log_path) in runs.items():
            code = proc.wait(90)
            text = log_path.read_text()
            assert code != 0, f"{case}: the hub ran:\n{text[-2000:]}"
            want = "no admin account yet" if case == "no-admin" else "plain HTTP on a public address"
            assert want in text, f"{case}:\n{text[-2000:]}"
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait(30)


# ---- two students on the class hub -------------------------------------------------------------------------------

def shared_interpreter_view(stage: Path) -> list:
    """A command prefix under which every Unix user can run the labs' interpreter: [] when they already can.

    When the interpreter sits under a folder other users cannot enter (CI machines keep pyenv in /root, mode 0700),
    the prefix starts the command in a private mount namespace where that folder is an empty tmpfs with only the
    interpreter's tree mounted back; nothing changes outside the namespace. A class hub's .venv is built from the
    system Python (setup/hub/install checks it), where this is never needed.
    """
    needed = [Path(sys.base_prefix).resolve(), ROOT.resolve(), Path(shutil.which("node") or "/usr/bin/node").resolve()]
    covers = {}
    for path in needed:
        for parent in reversed(path.parents):
            if not os.stat(parent).st_mode & 0o001:  # others may not enter: cover it, bring back the needed child
                child = path.relative_to(parent).parts[0]
                if any(not os.stat(p).st_mode & 0o001 for p in [*path.parents][:-len(parent.parts)] if p != parent):
                    pytest.skip(f"{path} is under several private folders")
                covers.setdefault(parent, set()).add(child)
                break
    if not covers:
        return []
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip(f"{', '.join(map(str, covers))} is private and mount namespaces are not available")
    lines, moves = ["set -e"], []
    for i, (parent, children) in enumerate(sorted(covers.items())):
        for j, child in enumerate(sorted(children)):
            keep = stage / f"keep{i}-{j}"
            keep.mkdir(parents=True, exist_ok=True)
            lines.append(f"mount --bind {parent / child} {keep}")
            moves.append(f"mkdir -p {parent / child} && mount --move {keep} {parent / child}")
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {parent}")
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c",
            "\n".join([*lines, *moves, 'exec "$@"']), "shared-interpreter-view"]


def as_user(view: list, unix_name: str, argv: list, **env) -> list:
    "The command running `argv` as `unix_name` (its groups, a clean environment with `env`), like its server does."
    account = pwd.getpwnam(unix_name)
    env = {"HOME": account.pw_dir, "USER": unix_name, "PATH": f"{VENV_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", **env}
    return [*view, "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--",
            "env", "-i", *[f"{k}={v}" for k, v in env.items()], *map(str, argv)]


PROBE = r"""
import json, os, socket, sys, urllib.error, urllib.request
home, sock_path, port, token, prefix = sys.argv[1:6]
out = {}
try:
    os.listdir(home)
    out["home"] = "listed"
except PermissionError:
    out["home"] = "denied"
with socket.socket(socket.AF_UNIX) as s:
    try:
        s.settimeout(10)
        s.connect(sock_path)
        s.sendall(b"GET /healthz HTTP/1.0\r\nHost: app\r\n\r\n")
        out["app_socket"] = s.recv(4096).decode(errors="replace").split("\r\n")[0]
    except PermissionError:
        out["app_socket"] = "denied"
    except OSError as e:
        out["app_socket"] = f"error {e.errno}"
request = urllib.request.Request(f"http://127.0.0.1:{port}{prefix}api/status", headers={"Authorization": f"token {token}"})
try:
    out["server_direct"] = urllib.request.urlopen(request, timeout=20).status
except urllib.error.HTTPError as e:
    out["server_direct"] = e.code
print(json.dumps(out))
"""


def inet_listeners(pid: int) -> list:
    "The TCP/UDP addresses that process `pid` and its children listen on."
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    found = []
    for p in procs:
        conns = p.net_connections(kind="inet") if hasattr(p, "net_connections") else p.connections(kind="inet")
        found += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    return found


@pytest.mark.timeout(300)
def test_two_students_cannot_reach_each_others_server_or_app(tmp_path):
    """Two real Unix students on the shipped class config (servers as local processes of jupyter-<name>): A serves
    the lab4 stand-in app with serve_app.py; A reaches it through the hub and from A's own processes, B reaches neither
    A's app nor A's server, through the hub, through B's own jupyter-server-proxy, or directly on the machine."""
    require_root_tools("useradd", "userdel", "setpriv", "unshare")
    t0 = time.monotonic()
    view = shared_interpreter_view(tmp_path / "stage")
    state = tmp_path / "hub"
    classhub.create_admin(state, "teacher", "Teach-labs-2026")
    tag = secrets.token_hex(3)
    a, b = f"tr{tag}a", f"tr{tag}b"
    ua, ub = f"jupyter-{a}", f"jupyter-{b}"
    app_proc = None
    try:
        with running_hub(HUB_DIR / "jupyterhub_test_class_config.py", state, wrap=view, TR_HUB_ADMINS="teacher") as hub:
            tokens = {}
            for name in (a, b):
                assert hub.api("POST", f"/users/{name}").status_code == 201
                r = hub.api("POST", f"/users/{name}/tokens", json={"note": "two-student test", "expires_in": 900})
                tokens[name] = r.json()["token"]
            for name in (a, b):
                assert hub.api("POST", f"/users/{name}/server").status_code in (201, 202)
            for name in (a, b):
                hub.wait_for(f"{name}'s server", lambda: hub.api("GET", f"/users/{name}").json()["servers"]
                             .get("", {}).get("ready"), 150)
            hub.track()
            t_spawned = time.monotonic()
            homes = {name: Path(pwd.getpwnam(f"jupyter-{name}").pw_dir) for name in (a, b)}
            for name, home in homes.items():
                assert stat.S_IMODE(home.stat().st_mode) == 0o700, f"{home}: {oct(home.stat().st_mode)}"
                assert home.stat().st_uid == pwd.getpwnam(f"jupyter-{name}").pw_uid
                assert (home / "lab1").is_dir() and stat.S_IMODE((home / ".tr-app").stat().st_mode) == 0o700

            # A serves the stand-in app from a terminal of A's server (serve_app's default in a hub: the socket)
            app_file = homes[a] / "standin_app.py"
            app_file.write_text(STANDIN_APP)
            os.chown(app_file, pwd.getpwnam(ua).pw_uid, pwd.getpwnam(ua).pw_gid)
            app_proc = subprocess.Popen(
                as_user(view, ua, [VENV_BIN / "python", HUB_DIR / "serve_app.py", "standin_app:app", "--workers", "1"],
                        JUPYTERHUB_SERVICE_PREFIX=f"/user/{a}/", TR_APP_SOCKET=homes[a] / ".tr-app" / "app.sock"),
                cwd=homes[a], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            announced = app_proc.stdout.readline()
            assert f"open /user/{a}/app/" in announced, announced
            sock_path = homes[a] / ".tr-app" / "app.sock"

            def get(path, name, **kw):
                return HTTP.get(f"{hub.url}{path}", headers={"Authorization": f"token {tokens[name]}"},
                                allow_redirects=False, timeout=30, **kw)

            health = hub.wait_for("A's app through A's server",
                                  lambda: (r := get(f"/user/{a}/app/healthz", a)).status_code == 200 and r.json(), 60)
            assert health == {"ok": True, "app": "lab4 stand-in"}
            assert get(f"/user/{a}/app/v1/predict", a).status_code == 405  # GET on a POST route: the app answered
            assert inet_listeners(app_proc.pid) == [], "A's app must not listen on the shared 127.0.0.1"

            # B, through the hub: neither A's app nor A's server
            assert get(f"/user/{a}/app/healthz", b).status_code == 403
            assert get(f"/user/{a}/api/status", b).status_code == 403
            assert get(f"/user/{a}/api/status", a).status_code == 200
            assert get(f"/user/{b}/app/healthz", b).status_code >= 500, "B's own app route: nothing there"
            # B, through B's own jupyter-server-proxy, at A's server's loopback port
            routes = hub.api("GET", "/proxy").json()
            a_port = int(routes[f"/user/{a}/"]["target"].rsplit(":", 1)[1].strip("/"))
            via_b = get(f"/user/{b}/proxy/{a_port}/user/{a}/api/status", b)
            assert via_b.status_code in (302, 401, 403), (via_b.status_code, via_b.text[:300])

            # A's kernel runs over unix sockets in A's home: none of its channels is a port B could subscribe to
            r = HTTP.post(f"{hub.url}/user/{a}/api/kernels", json={"name": "python3"}, timeout=60,
                          headers={"Authorization": f"token {tokens[a]}"})
            assert r.status_code == 201, r.text
            ws = websocket.create_connection(f"ws://127.0.0.1:{hub.url.rsplit(':', 1)[1]}/user/{a}/api/kernels/"
                                             f"{r.json()['id']}/channels",
                                             header=[f"Authorization: token {tokens[a]}"], timeout=60)
            try:
                assert run_cell(ws, "import os; print(os.getuid())").strip() == str(pwd.getpwnam(ua).pw_uid)
            finally:
                ws.close()
            kernels = [p for p in psutil.process_iter(["uids", "cmdline"])
                       if p.info["uids"] and p.info["uids"].real == pwd.getpwnam(ua).pw_uid
                       and "ipykernel" in " ".join(p.info["cmdline"] or [])]
            (connection,) = (homes[a] / ".tr-app" / "run").glob(f"kernel-{r.json()['id']}.json")
            info = json.loads(connection.read_text())
            assert info["transport"] == "ipc" and info["ip"].startswith(str(homes[a])), info
            assert all(Path(f"{info['ip']}-{info[ch + '_port']}").exists() for ch in ("shell", "iopub", "control", "hb"))
            # the one loopback port left is ipykernel's pipe for output of forked subprocesses: a PULL socket that
            # only receives, and drops messages without the kernel's random pipe key
            assert kernels and all(len(inet_listeners(p.pid)) <= 1 for p in kernels), \
                [(p.pid, inet_listeners(p.pid)) for p in kernels]

            # directly on the machine, as B (a terminal of B's server) and as A
            probe = lambda user, token: json.loads(subprocess.run(
                as_user(view, user, [VENV_BIN / "python", "-c", PROBE, homes[a], sock_path, a_port, token,
                                     f"/user/{a}/"]),
                capture_output=True, text=True, timeout=60, check=True).stdout)
            as_b = probe(ub, tokens[b])
            assert as_b == {"home": "denied", "app_socket": "denied", "server_direct": 403}, as_b
            as_a = probe(ua, tokens[a])
            assert as_a["home"] == "listed" and " 200 " in as_a["app_socket"] and as_a["server_direct"] == 200, as_a
            print(f"\ntwo students: spawned in {t_spawned - t0:.1f}s, checks {time.monotonic() - t_spawned:.1f}s; "
                  f"B: {as_b}; A: {as_a}; B via B's proxy at A's server: {via_b.status_code}")
            app_proc.terminate()
            assert app_proc.wait(20) == 0 and not sock_path.exists(), "gunicorn stops and removes its socket"
    finally:
        if app_proc is not None and app_proc.poll() is None:
            os.killpg(app_proc.pid, 9)
        delete_unix_users(ua, ub)


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
from text_recognizer.data.emnist import load_emnist
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
