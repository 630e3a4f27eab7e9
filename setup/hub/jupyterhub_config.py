"""JupyterHub for a class on one GPU server (The Littlest JupyterHub style): see setup/hub/README.md.

    sudo bash /opt/text-recognizer-labs/setup/hub/install     # environment, admin account, private homes, the unit
    sudo /opt/text-recognizer-labs/.venv/bin/jupyterhub -f /opt/text-recognizer-labs/setup/hub/jupyterhub_config.py

- Network: HTTPS with the certificate in TR_HUB_SSL_CERT/TR_HUB_SSL_KEY (https://:443), or, without a certificate,
  loopback only (127.0.0.1:8000, for a TLS proxy in front). A public plain-HTTP address is refused unless
  TR_HUB_ALLOW_HTTP=1 (setup/hub/classhub.py: network_settings).
- Accounts: NativeAuthenticator. The instructor (admin) account is created by `classhub.py create-admin` before the
  hub starts, and the hub refuses to start without one; the signup page never creates an admin. Students sign up at
  /hub/signup; an instructor approves each signup at /hub/authorize. Passwords are bcrypt-hashed in the hub
  database, common passwords refused, logins throttled.
- Servers: SystemdSpawner, as in The Littlest JupyterHub: each student's server is a systemd unit running as the Unix
  user jupyter-<name> (created at the first start; home /home/jupyter-<name>, mode 0700, fixed at every start), with
  its own /tmp, memory and CPU caps, no sudo. On a GPU host each student gets one GPU by device isolation (the unit
  may open only that GPU's /dev/nvidia<N>); see README for sharing them. (systemd's dynamic users are avoided on
  purpose: their state folder /var/lib/<name> could clash with a system folder like /var/lib/apt.)
- Environment: the labs' locked environment in <labs>/.venv (plus setup/hub/gpu/requirements.txt on GPU hosts);
  setup/hub/start-singleuser copies the student notebooks into the home and starts jupyterhub-singleuser with
  jupyter-server-proxy: lab4's Flask app, served by setup/hub/serve_app.py on a unix socket in the student's
  private home, is at /user/<name>/app/ for its owner only.

Settings read from the environment (e.g. in the systemd unit, setup/hub/jupyterhub.service):
    TR_HUB_SSL_CERT, TR_HUB_SSL_KEY   certificate and key files: the hub serves https (default https://:443)
    TR_HUB_URL        the URL the proxy binds; default https://:443 with a certificate, else http://127.0.0.1:8000
    TR_HUB_ALLOW_HTTP=1  allow a public http:// TR_HUB_URL (only when TLS is terminated in front of it)
    TR_HUB_STATE      hub database, cookie secret, proxy token; default /srv/jupyterhub (root only)
    TR_HUB_ADMINS     comma-separated instructor usernames, default "instructor" (create them with create-admin)
    TR_HUB_MEM_LIMIT  per-student memory cap (systemd MemoryMax), default 12G
    TR_HUB_CPU_LIMIT  per-student CPU cap in cores (systemd CPUQuota), default 2
    TR_HUB_GPUS       number of GPUs to spread students over (GPU = user id mod N, isolated by the device cgroup);
                      default: every GPU of the host (0 = no GPU for anyone)
    TR_HUB_IDLE_TIMEOUT  seconds before an idle server is stopped (frees GPU memory), default 3600
"""
import os
import sys
from pathlib import Path

import nativeauthenticator
from nativeauthenticator import handlers as native_handlers

c = get_config()  # noqa: F821 (defined by JupyterHub's config loader)

HUB = Path(__file__).resolve().parent
if str(HUB) not in sys.path:
    sys.path.insert(0, str(HUB))
import classhub  # noqa: E402 (setup/hub/classhub.py, next to this file)

LABS = Path(os.environ.get("TR_LABS_ROOT", HUB.parents[1]))
STATE = Path(os.environ.get("TR_HUB_STATE", "/srv/jupyterhub"))

# ---- network and state -------------------------------------------------------------------------------------------
for key, value in classhub.network_settings().items():  # bind_url, and ssl_cert/ssl_key; refuses public plain HTTP
    setattr(c.JupyterHub, key, value)
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = False  # restarting the hub (config change) leaves students' servers running

# ---- accounts ----------------------------------------------------------------------------------------------------
c.JupyterHub.authenticator_class = classhub.ClassAuthenticator  # NativeAuthenticator without admin signup
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
c.JupyterHub.spawner_class = classhub.ClassSpawner  # SystemdSpawner (PyPI: jupyterhub-systemdspawner)
c.SystemdSpawner.username_template = "jupyter-{USERNAME}"
c.SystemdSpawner.unit_name_template = "jupyter-{USERNAME}"
c.Authenticator.username_pattern = classhub.USERNAME_PATTERN  # valid Unix names once prefixed (32 chars at most)
c.SystemdSpawner.isolate_tmp = True
c.SystemdSpawner.isolate_devices = False  # PrivateDevices would hide every GPU; the hook allows each student one
c.SystemdSpawner.disable_user_sudo = True
c.SystemdSpawner.default_shell = "/bin/bash"
c.Spawner.mem_limit = os.environ.get("TR_HUB_MEM_LIMIT", "12G")
c.Spawner.cpu_limit = float(os.environ.get("TR_HUB_CPU_LIMIT", "2"))
c.Spawner.cmd = [str(HUB / "start-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


# the student's Unix user with a private (0700) home, and on a GPU host one GPU (DevicePolicy=closed + DeviceAllow=)
gpu_limit = int(os.environ["TR_HUB_GPUS"]) if os.environ.get("TR_HUB_GPUS") else None
c.Spawner.pre_spawn_hook = classhub.student_hook(gpu_limit)


c.Spawner.environment = {
    "TR_LABS_ROOT": str(LABS),
    "WANDB_MODE": "offline",  # students sync runs themselves: `wandb sync wandb/offline-run-*`
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # take GPU memory as needed, so several students can share one GPU
}

# ---- stop idle servers (frees memory and GPU memory); jupyterhub-idle-culler is in Pipfile.lock ----------------
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
c.JupyterHub.services = [{"name": "idle-culler", "command": [
    sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={os.environ.get('TR_HUB_IDLE_TIMEOUT', '3600')}"]}]
