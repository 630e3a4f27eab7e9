"""The class hub's own pieces (setup/hub/jupyterhub_config.py imports them) and its setup command line.

    sudo .venv/bin/python setup/hub/classhub.py create-admin instructor   # the admin account, before the hub runs
    sudo .venv/bin/python setup/hub/classhub.py has-admin                 # exit 0 when an admin account exists
    sudo .venv/bin/python setup/hub/classhub.py private-homes             # chmod 0700 every /home/jupyter-*
    sudo .venv/bin/python setup/hub/classhub.py gpu-env [--dry-run]       # the GPU wheels on a host with NVIDIA GPUs

What lives here, each part tested in shared/tests/test_hub.py:
- network_settings: where the hub listens. HTTPS with a certificate, or loopback only; a plain-HTTP public address
  is refused unless TR_HUB_ALLOW_HTTP=1 says so.
- ClassAuthenticator: NativeAuthenticator whose signup page never creates an admin (NativeAuthenticator approves an
  admin name at signup, so whoever signed up first as "instructor" owned the hub); the admin accounts are made with
  `create-admin` and the hub refuses to start until one exists.
- student_hook: the spawn hook; creates the Unix user jupyter-<name> with a private (0700) home, fixes the mode
  of an existing home, and gives the student one GPU by device isolation (systemd DeviceAllow=).
- ClassSpawner: SystemdSpawner whose unit_extra_properties may hold lists (several DeviceAllow= lines).
"""
import argparse
import getpass
import ipaddress
import os
import pwd
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import bcrypt
import nativeauthenticator
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from systemdspawner import SystemdSpawner
from traitlets import Bool

HUB = Path(__file__).resolve().parent
LABS = HUB.parents[1]
UNIX_PREFIX = "jupyter-"
USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{0,23}$"  # valid Unix names once prefixed (32 characters at most)
GPU_REQUIREMENTS = HUB / "gpu" / "requirements.txt"
NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
LOOPBACK_URL = "http://127.0.0.1:8000"  # without a certificate: reachable only through a TLS proxy or an SSH tunnel


class HubSetupError(SystemExit):
    "The hub must not start as configured (a SystemExit, so JupyterHub's config loader does not swallow it)."

    def __init__(self, message):
        super().__init__(f"class hub: {message}")


# ---- where the hub listens -----------------------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    "True for localhost and loopback addresses; '' (every interface) and every other address are public."
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to is reachable from outside


def network_settings(env=None) -> dict:
    """JupyterHub's bind_url (and ssl_cert/ssl_key) from TR_HUB_URL, TR_HUB_SSL_CERT, TR_HUB_SSL_KEY.

    With a certificate the default is https://:443; without one, 127.0.0.1:8000. A public address over plain HTTP
    (e.g. http://:80) is refused unless TR_HUB_ALLOW_HTTP=1 (TLS terminated by something else in front).
    """
    env = os.environ if env is None else env
    cert, key = env.get("TR_HUB_SSL_CERT", ""), env.get("TR_HUB_SSL_KEY", "")
    if bool(cert) != bool(key):
        raise HubSetupError("set both TR_HUB_SSL_CERT and TR_HUB_SSL_KEY, or neither")
    url = env.get("TR_HUB_URL") or ("https://:443" if cert else LOOPBACK_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise HubSetupError(f"TR_HUB_URL must be http:// or https://, got {url!r}")
    if cert:
        missing = [p for p in (cert, key) if not os.path.isfile(p)]
        if missing:
            raise HubSetupError(f"certificate or key not found: {', '.join(missing)} (README: HTTPS)")
        if parts.scheme != "https":
            raise HubSetupError(f"a certificate is set, so TR_HUB_URL must be https://, got {url!r}")
        return {"bind_url": url, "ssl_cert": cert, "ssl_key": key}
    if parts.scheme == "https":
        raise HubSetupError(f"TR_HUB_URL is {url!r} but no certificate is set (TR_HUB_SSL_CERT, TR_HUB_SSL_KEY)")
    if not is_loopback(parts.hostname or "") and env.get("TR_HUB_ALLOW_HTTP") != "1":
        raise HubSetupError(
            f"refusing to serve passwords over plain HTTP on a public address ({url}). Set TR_HUB_SSL_CERT and "
            "TR_HUB_SSL_KEY (then https://:443), or keep the default 127.0.0.1:8000 behind a TLS proxy, or set "
            "TR_HUB_ALLOW_HTTP=1 if TLS is terminated in front of this address")
    return {"bind_url": url}


# ---- accounts ----------------------------------------------------------------------------------------------------

def common_passwords() -> set:
    "NativeAuthenticator's list of common passwords (refused at signup and by create-admin)."
    return set((Path(nativeauthenticator.__file__).parent / "common-credentials.txt").read_text().splitlines())


class ClassAuthenticator(NativeAuthenticator):
    """NativeAuthenticator for the class: an admin name can never be signed up through the web page (admins are
    created with `classhub.py create-admin`), and the hub does not start until an admin account exists."""

    require_admin_account = Bool(True, config=True, help="refuse to start without an approved admin account")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.require_admin_account and not self.admin_accounts():
            names = ", ".join(sorted(self.admin_users)) or "(none: set TR_HUB_ADMINS)"
            raise HubSetupError(
                f"no admin account yet for {names}. Create it before the hub is reachable: sudo "
                f"{LABS}/.venv/bin/python {HUB}/classhub.py create-admin NAME (setup/hub/install does it)")

    def admin_accounts(self) -> list:
        "The approved accounts among the admin names."
        return [u.username for u in UserInfo.all_users(self.db) if u.username in self.admin_users and u.is_authorized]

    def create_user(self, username, password, **kwargs):
        if self.normalize_username(username) in self.admin_users:
            self.log.warning("signup refused for the admin name %r: admins are created with create-admin", username)
            return None
        return super().create_user(username, password, **kwargs)


def create_admin(state: Path, username: str, password: str, min_length: int = 10) -> str:
    "Create (or reset the password of) the approved NativeAuthenticator account `username` in the hub database."
    if not re.match(USERNAME_PATTERN, username):
        raise HubSetupError(f"{username!r} is not a valid name (lower case, digits, - and _, 24 characters at most)")
    if len(password) < min_length or password in common_passwords():
        raise HubSetupError(f"the password needs {min_length} characters or more and must not be a common one")
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = orm.new_session_factory(f"sqlite:///{state / 'jupyterhub.sqlite'}")()  # the hub's schema, users_info included
    try:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        info = UserInfo.find(db, username)
        if info is None:
            db.add(UserInfo(username=username, password=hashed, is_authorized=True))
            action = "created"
        else:
            info.password, info.is_authorized, action = hashed, True, "password reset"
        db.commit()
    finally:
        db.close()
    return action


def admin_accounts(state: Path, admins) -> list:
    "The approved accounts among `admins` in the hub database of `state` (none when there is no database yet)."
    db_file = state / "jupyterhub.sqlite"
    if not db_file.exists():
        return []
    db = orm.new_session_factory(f"sqlite:///{db_file}")()
    try:
        return [u.username for u in UserInfo.all_users(db) if u.username in set(admins) and u.is_authorized]
    finally:
        db.close()


# ---- students' Unix accounts ---------------------------------------------------------------------------------------

def make_home_private(unix_name: str) -> Path:
    "chmod 0700 the home of `unix_name` (useradd makes 0755 homes: every student could read every notebook)."
    home = Path(pwd.getpwnam(unix_name).pw_dir)
    st = os.lstat(home)
    if not stat.S_ISDIR(st.st_mode):  # an ordinary error: this runs inside the hub, at a spawn
        raise RuntimeError(f"{home} (home of {unix_name}) is not a directory")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(home, stat.S_IMODE(st.st_mode) & 0o700)
    return home


def ensure_unix_user(hub_name: str) -> str:
    "Create the Unix account jupyter-<name> with a private home the first time; fix the home's mode every time."
    name = UNIX_PREFIX + hub_name
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--key", "HOME_MODE=0700", "--shell", "/bin/bash",
                        "--comment", "Text Recognizer Labs", name], check=True)
    make_home_private(name)
    return name


def private_homes() -> list:
    "Make every existing student's home private (setup/hub/install runs it for hubs set up before 0700 homes)."
    return [str(make_home_private(p.pw_name)) for p in pwd.getpwall()
            if p.pw_name.startswith(UNIX_PREFIX) and os.path.isdir(p.pw_dir)]


# ---- GPUs ---------------------------------------------------------------------------------------------------------

def host_gpus(proc: Path = None) -> list:
    "The NVIDIA GPUs the driver reports, in PCI order: [{'pci', 'minor', 'uuid'}] (empty without the driver)."
    proc, gpus = Path(proc or NVIDIA_PROC), []
    for info in sorted(proc.glob("*/information")) if proc.is_dir() else []:
        fields = dict(line.split(":", 1) for line in info.read_text(errors="replace").splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if fields.get("Device Minor", "").isdigit():
            gpus.append({"pci": info.parent.name, "minor": int(fields["Device Minor"]),
                         "uuid": fields.get("GPU UUID", "")})
    return gpus


TERMINAL_DEVICES = ["char-pts rw", "/dev/ptmx rw", "/dev/tty rw"]  # Jupyter terminals (closed policy has no ptys)
NVIDIA_CONTROL_DEVICES = ["/dev/nvidiactl rw", "/dev/nvidia-uvm rw", "/dev/nvidia-uvm-tools rw",
                          "/dev/nvidia-modeset rw"]


def gpu_settings(user_id: int, gpus: list, limit=None):
    """The systemd properties and environment that give user `user_id` one GPU (user id mod the GPUs used).

    The device cgroup (DevicePolicy=closed + DeviceAllow=) is what isolates: the student's processes can open only
    their GPU's /dev/nvidia<minor>, whatever CUDA_VISIBLE_DEVICES they set. `limit` is TR_HUB_GPUS (how many GPUs to
    spread students over, 0 hides them all); None uses every GPU. On a host without GPUs nothing changes.
    """
    if not gpus:
        return {}, {}
    n = len(gpus) if limit is None else max(0, min(int(limit), len(gpus)))
    if n == 0:
        return ({"DevicePolicy": "closed", "DeviceAllow": list(TERMINAL_DEVICES)},
                {"CUDA_VISIBLE_DEVICES": "", "TR_HUB_GPU": "none"})
    gpu = gpus[user_id % n]
    allow = TERMINAL_DEVICES + NVIDIA_CONTROL_DEVICES + [f"/dev/nvidia{gpu['minor']} rw"]
    env = {"TR_HUB_GPU": f"{gpu['pci']} {gpu['uuid']}".strip()}
    if gpu["uuid"]:
        env["CUDA_VISIBLE_DEVICES"] = gpu["uuid"]  # only a convenience: the device cgroup is the isolation
    return {"DevicePolicy": "closed", "DeviceAllow": allow}, env


def student_hook(gpu_limit=None, gpus=None):
    "The spawner's pre_spawn_hook: the student's Unix user and private home, then their GPU."

    def prepare_student(spawner):
        ensure_unix_user(spawner.user.name)
        props, env = gpu_settings(spawner.user.id, host_gpus() if gpus is None else gpus, gpu_limit)
        if props:
            spawner.unit_extra_properties = {**getattr(spawner, "unit_extra_properties", {}), **props}
        if env:
            spawner.environment = {**spawner.environment, **env}

    return prepare_student


class ClassSpawner(SystemdSpawner):
    """SystemdSpawner (The Littlest JupyterHub's spawner) whose unit_extra_properties may hold lists: systemd-run gets
    one --property per item (DeviceAllow= takes one device each). SystemdSpawner 1.0.2 documents lists but formats
    every value as a string, which fails on a list."""

    def _expand_user_vars(self, value):
        if isinstance(value, (list, tuple)):
            return [super(ClassSpawner, self)._expand_user_vars(v) for v in value]
        return super()._expand_user_vars(value)


def gpu_install_command(python: str = None) -> list:
    "pip installing the GPU lock (tensorflow[and-cuda]'s CUDA wheels, hash-checked) into the labs' environment."
    python = python or str(LABS / ".venv" / "bin" / "python")
    return [python, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(GPU_REQUIREMENTS)]


# ---- command line -------------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    admin = sub.add_parser("create-admin", help="create (or reset) an instructor account before the hub runs")
    admin.add_argument("name")
    admin.add_argument("--state", type=Path, default=Path(os.environ.get("TR_HUB_STATE", "/srv/jupyterhub")))
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    has = sub.add_parser("has-admin", help="exit 0 when an admin named in TR_HUB_ADMINS has an account")
    has.add_argument("--state", type=Path, default=Path(os.environ.get("TR_HUB_STATE", "/srv/jupyterhub")))
    sub.add_parser("private-homes", help="chmod 0700 the home of every jupyter-* user")
    gpu = sub.add_parser("gpu-env", help="install the GPU wheels into .venv when this host has NVIDIA GPUs")
    gpu.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    gpu.add_argument("--force", action="store_true", help="install even where no NVIDIA GPU is found")
    args = parser.parse_args(argv)

    if args.command == "create-admin":
        admins = [a.strip() for a in os.environ.get("TR_HUB_ADMINS", args.name).split(",")]
        if args.name not in admins:
            print(f"warning: {args.name} is not in TR_HUB_ADMINS ({', '.join(admins)}): it will not be an admin",
                  file=sys.stderr)
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise HubSetupError("the passwords differ")
        action = create_admin(args.state, args.name, password)
        print(f"admin account {args.name}: {action} in {args.state / 'jupyterhub.sqlite'}")
    elif args.command == "has-admin":
        admins = [a.strip() for a in os.environ.get("TR_HUB_ADMINS", "instructor").split(",") if a.strip()]
        found = admin_accounts(args.state, admins)
        print(f"admin accounts: {', '.join(found) or 'none'}")
        sys.exit(0 if found else 1)
    elif args.command == "private-homes":
        for home in private_homes():
            print(f"0700 {home}")
    elif args.command == "gpu-env":
        gpus = host_gpus()
        cmd = gpu_install_command()
        if not gpus and not args.force:
            print("no NVIDIA GPU found (/proc/driver/nvidia/gpus): the CPU environment of Pipfile.lock is enough")
        elif args.dry_run:
            print(" ".join(cmd))
        else:
            print(f"{len(gpus)} NVIDIA GPU(s): installing {GPU_REQUIREMENTS.relative_to(LABS)}")
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
