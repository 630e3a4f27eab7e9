"""Jupyter server settings of every student server on the class hub (setup/hub/start-singleuser puts this folder
on JUPYTER_CONFIG_PATH).

/user/<name>/app/ proxies to the unix socket TR_APP_SOCKET (~/.tr-app/app.sock in the student's 0700 home), where
setup/hub/serve_app.py serves lab4's Flask app. The Jupyter server, and so this proxy, requires its owner's hub login
or API token; the socket itself can be opened only by the owner's processes. No process is started here: the route
answers 502 until the student runs serve_app.py.

Kernels talk to the server over unix sockets next to their connection file (JUPYTER_RUNTIME_DIR, ~/.tr-app/run in
the student's home) instead of loopback TCP ports: on a shared server any user can connect to a port, and a
kernel's iopub channel publishes every output to whoever subscribes (the message signatures protect only what the
kernel receives). A unix socket path has at most 107 bytes; where the runtime folder is too deep for that (a long
$HOME, as in the smoke test), kernels keep TCP.
"""
import os

from jupyter_core.paths import jupyter_runtime_dir

c = get_config()  # noqa: F821 (defined by Jupyter's config loader)

LONGEST_KERNEL_SOCKET = os.path.join(jupyter_runtime_dir(), f"kernel-{'0' * 8}-{'0' * 4}-{'0' * 4}-{'0' * 4}-{'0' * 12}-ipc-99")
if len(LONGEST_KERNEL_SOCKET.encode()) <= 107:
    c.KernelManager.transport = "ipc"

if os.environ.get("TR_APP_SOCKET"):
    c.ServerProxy.servers = {
        "app": {
            "unix_socket": os.environ["TR_APP_SOCKET"],
            "launcher_entry": {"enabled": False},  # started from a terminal, not from the launcher
        },
    }
