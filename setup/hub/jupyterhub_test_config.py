"""JupyterHub for the local smoke test only (shared/tests/test_hub.py): NEVER use it for a class.

Loopback only, any password accepted (DummyAuthenticator), every single-user server runs as the current user
(SimpleLocalProcessSpawner, no isolation), state in a temporary folder. Everything that changes per run comes from
environment variables that the test sets:

    TR_HUB_DIR          temporary folder for the database, cookie secret, proxy pid file and user homes
    TR_HUB_PORT         public proxy port on 127.0.0.1 (the URL a browser would open)
    TR_HUB_API_PORT     the hub's own port on 127.0.0.1 (the proxy forwards /hub/ there)
    TR_PROXY_API_PORT   configurable-http-proxy's REST API port on 127.0.0.1
    TR_HUB_SERVICE_TOKEN  an admin token for the test (a service with the admin role)

The single-user servers start through setup/hub/start-singleuser, as on the class hub, so the smoke test also
checks that a student gets the lab notebooks and the data in their home.
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (defined by JupyterHub's config loader)

HUB = Path(__file__).resolve().parent
LABS = HUB.parents[1]
STATE = Path(os.environ.get("TR_HUB_DIR", "/tmp/tr-hub-test"))
VENV_BIN = Path(sys.executable).parent  # the hub runs from the labs' environment (.venv/bin/jupyterhub)

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ.get('TR_HUB_PORT', '18000')}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ.get('TR_HUB_API_PORT', '18081')}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('TR_PROXY_API_PORT', '18001')}"
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "cookie_secret")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the servers it spawned
c.JupyterHub.cleanup_proxy = True

c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"instructor"}

c.JupyterHub.services = [{"name": "smoke-test", "api_token": os.environ.get("TR_HUB_SERVICE_TOKEN", "")}]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["smoke-test"]}]

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
c.Spawner.cmd = [str(HUB / "start-singleuser")]
c.Spawner.args = ["--allow-root"]  # the test may run as root (CI containers); a class hub never does this
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "PATH": f"{VENV_BIN}:{os.environ.get('PATH', os.defpath)}",
    "TR_LABS_ROOT": str(LABS),
    "WANDB_MODE": "offline",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
