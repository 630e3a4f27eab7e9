"""The shipped class config (jupyterhub_config.py) for the two-student test of shared/tests/test_hub.py: NEVER for a class.

Everything of jupyterhub_config.py applies (ClassAuthenticator, the spawn hook that creates jupyter-<name> with a 0700
home, start-singleuser and its private app route, the idle culler); only what needs systemd is swapped:

- servers are local processes run as the student's Unix user jupyter-<name>, as SystemdSpawner runs them (without
  its memory/CPU caps, private /tmp or device cgroup);
- the test gets an admin service token (TR_HUB_SERVICE_TOKEN), and stopping the hub stops the servers.

Network settings come from the environment as for the class hub: the test binds 127.0.0.1 (TR_HUB_URL).
"""
import os
import pwd
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid

c = get_config()  # noqa: F821 (defined by JupyterHub's config loader)
HUB = Path(__file__).resolve().parent
load_subconfig("jupyterhub_config.py", path=str(HUB))  # noqa: F821 (the class config next to this file)
if not c.JupyterHub.get("spawner_class"):
    raise SystemExit(f"jupyterhub_test_class_config.py: could not load {HUB / 'jupyterhub_config.py'}")
if str(HUB) not in sys.path:
    sys.path.insert(0, str(HUB))
import classhub  # noqa: E402


class UnixUserProcessSpawner(LocalProcessSpawner):
    "LocalProcessSpawner that runs the hub user <name> as the Unix user jupyter-<name> (SystemdSpawner's mapping)."

    def make_preexec_fn(self, name):
        return set_user_setuid(classhub.UNIX_PREFIX + name)

    def user_env(self, env):
        account = pwd.getpwnam(classhub.UNIX_PREFIX + self.user.name)
        env.update(USER=account.pw_name, HOME=account.pw_dir, SHELL=account.pw_shell or "/bin/bash")
        return env


c.JupyterHub.spawner_class = UnixUserProcessSpawner
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.services = [*c.JupyterHub.services,
                         {"name": "smoke-test", "api_token": os.environ.get("TR_HUB_SERVICE_TOKEN", "")}]
c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, {"name": "admin", "services": ["smoke-test"]}]
c.Spawner.environment = {**c.Spawner.environment, "TF_CPP_MIN_LOG_LEVEL": "3"}
