"""JupyterHub for a class on one GPU server (The Littlest JupyterHub style): see setup/hub/README.md.

    sudo /opt/text-recognizer-labs/.venv/bin/jupyterhub -f /opt/text-recognizer-labs/setup/hub/jupyterhub_config.py

- Accounts: NativeAuthenticator. Students sign up at /hub/signup; an instructor (an admin) approves each signup at
  /hub/authorize. Passwords are bcrypt-hashed in the hub database, common passwords refused, logins throttled.
- Servers: SystemdSpawner, as in The Littlest JupyterHub: each student's server is a systemd unit running as the Unix
  user jupyter-<name> (created at the first start; home /home/jupyter-<name>), with its own /tmp, memory and CPU
  caps, no sudo. The GPUs stay visible (isolate_devices=False); see README for sharing them. (systemd's dynamic
  users are avoided on purpose: their state folder /var/lib/<name> could clash with a system folder like /var/lib/apt.)
- Environment: the labs' locked environment in <labs>/.venv; setup/hub/start-singleuser copies the student notebooks
  into the home and starts jupyterhub-singleuser with jupyter-server-proxy (lab4's Flask app at /user/<name>/proxy/<port>/).

Settings read from the environment (e.g. in the systemd unit, setup/hub/jupyterhub.service):
    TR_HUB_URL        public URL the proxy binds, default http://:80 (put TLS in front, or set TR_HUB_SSL_CERT/KEY)
    TR_HUB_SSL_CERT, TR_HUB_SSL_KEY   certificate and key files to serve https directly (then use https://:443)
    TR_HUB_STATE      hub database, cookie secret, proxy token; default /srv/jupyterhub (root only)
    TR_HUB_ADMINS     comma-separated instructor usernames, default "instructor" (sign up with that name first)
    TR_HUB_MEM_LIMIT  per-student memory cap (systemd MemoryMax), default 12G
    TR_HUB_CPU_LIMIT  per-student CPU cap in cores (systemd CPUQuota), default 2
    TR_HUB_GPUS       number of GPUs to spread students over (CUDA_VISIBLE_DEVICES = user id mod N); default: all
                      visible to everyone (0 = hide GPUs)
    TR_HUB_IDLE_TIMEOUT  seconds before an idle server is stopped (frees GPU memory), default 3600
"""
import importlib.util
import os
import pwd
import subprocess
import sys
from pathlib import Path

import nativeauthenticator
from nativeauthenticator import handlers as native_handlers

c = get_config()  # noqa: F821 (defined by JupyterHub's config loader)

HUB = Path(__file__).resolve().parent
LABS = Path(os.environ.get("TR_LABS_ROOT", HUB.parents[1]))
STATE = Path(os.environ.get("TR_HUB_STATE", "/srv/jupyterhub"))

# ---- network and state -------------------------------------------------------------------------------------------
c.JupyterHub.bind_url = os.environ.get("TR_HUB_URL", "http://:80")
if os.environ.get("TR_HUB_SSL_CERT"):
    c.JupyterHub.ssl_cert = os.environ["TR_HUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["TR_HUB_SSL_KEY"]
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = False  # restarting the hub (config change) leaves students' servers running

# ---- accounts ----------------------------------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "native"
c.JupyterHub.template_paths = [str(Path(nativeauthenticator.__file__).parent / "templates")]
c.Authenticator.admin_users = {u.strip() for u in os.environ.get("TR_HUB_ADMINS", "instructor").split(",") if u.strip()}
c.Authenticator.allow_all = True  # everyone whose signup an instructor approved may log in
c.NativeAuthenticator.open_signup = False
c.NativeAuthenticator.minimum_password_length = 10
c.NativeAuthenticator.check_common_password = True
c.NativeAuthenticator.allowed_failed_logins = 5
c.NativeAuthenticator.seconds_before_next_try = 300


class _NoStatsd:
    "Stand-in for the statsd client that JupyterHub 6 removed (jupyterhub PR 5407)."

    def timer(self, name):
        return self

    def start(self):
        return self

    def stop(self, send=True):
        return None


# nativeauthenticator 1.3.0 (latest release) still times each login with `self.statsd`, which JupyterHub 6 handlers no
# longer have: every login POST would fail with a 500. Harmless (skipped) on JupyterHub 5 or a fixed release.
if not hasattr(native_handlers.LoginHandler, "statsd"):
    native_handlers.LoginHandler.statsd = _NoStatsd()

# ---- one server per student ----------------------------------------------------------------------------------------
c.JupyterHub.spawner_class = "systemdspawner"  # PyPI: jupyterhub-systemdspawner
c.SystemdSpawner.username_template = "jupyter-{USERNAME}"
c.SystemdSpawner.unit_name_template = "jupyter-{USERNAME}"
c.Authenticator.username_pattern = r"^[a-z][a-z0-9_-]{0,23}$"  # valid Unix names once prefixed (32 chars at most)
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = False  # keep /dev/nvidia* (PrivateDevices would hide the GPUs)
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.default_shell = "/bin/bash"
c.Spawner.mem_limit = os.environ.get("TR_HUB_MEM_LIMIT", "12G")
c.Spawner.cpu_limit = float(os.environ.get("TR_HUB_CPU_LIMIT", "2"))
c.Spawner.cmd = [str(HUB / "start-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def ensure_unix_user(spawner):
    "Create the Unix account jupyter-<name> with a home folder the first time a student's server starts."
    name = f"jupyter-{spawner.user.name}"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", "Text Recognizer Labs", name],
                       check=True)


c.Spawner.pre_spawn_hook = ensure_unix_user


c.Spawner.environment = {
    "TR_LABS_ROOT": str(LABS),
    "WANDB_MODE": "offline",  # students sync runs themselves: `wandb sync wandb/offline-run-*`
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # take GPU memory as needed, so several students can share one GPU
}
if "TR_HUB_GPUS" in os.environ:  # one GPU per student, round-robin by user id (none when TR_HUB_GPUS=0)
    n_gpus = int(os.environ["TR_HUB_GPUS"])
    c.Spawner.environment["CUDA_VISIBLE_DEVICES"] = lambda spawner: str(spawner.user.id % n_gpus) if n_gpus else ""

# ---- stop idle servers (frees memory and GPU memory); PyPI: jupyterhub-idle-culler ------------------------------
if importlib.util.find_spec("jupyterhub_idle_culler"):
    c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
    c.JupyterHub.services = [{"name": "idle-culler", "command": [
        sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={os.environ.get('TR_HUB_IDLE_TIMEOUT', '3600')}"]}]
