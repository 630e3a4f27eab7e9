"""Serve a WSGI app (lab4's Flask endpoint) with gunicorn inside your hub server and print its proxy URL.

    python setup/hub/serve_app.py MODULE:APP [--port 8000] [gunicorn options...]

jupyter-server-proxy makes a process listening on 127.0.0.1:PORT reachable at <hub>/user/<you>/proxy/PORT/ for
you (and only you: the hub asks for your login or an API token). Port 8000 is the default; when it is taken (on a
single-server hub every student shares one network, so another student may hold it) a free port is chosen and
printed. The app sees paths without the /user/<you>/proxy/PORT prefix, so links in its pages must be relative.
"""
import argparse
import os
import shutil
import socket
import sys


def port_is_free(port: int) -> bool:
    "True when nothing listens on 127.0.0.1:`port`."
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    "A port on 127.0.0.1 that is free right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_url(port: int) -> str:
    "Where the hub serves 127.0.0.1:`port` of this server (absolute when the hub's public URL is known)."
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return f"http://127.0.0.1:{port}/ (not inside a hub server: no proxy URL)"
    server = os.environ.get("JUPYTERHUB_PUBLIC_URL") or prefix  # the server's full URL when c.JupyterHub.public_url is set
    return f"{server.rstrip('/')}/proxy/{port}/"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="the WSGI app as MODULE:APP, e.g. text_recognizer.api:app")
    parser.add_argument("--port", type=int, default=8000, help="preferred port (default 8000)")
    args, gunicorn_args = parser.parse_known_args(argv)
    if ":" not in args.app:
        parser.error(f"app must look like MODULE:APP, got {args.app!r}")
    if shutil.which("gunicorn") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "gunicorn")):
        sys.exit("serve_app: gunicorn is not installed in this environment (it is in the labs' Pipfile)")
    port = args.port if port_is_free(args.port) else free_port()
    print(f"serving {args.app} on 127.0.0.1:{port}; open {proxy_url(port)}", flush=True)
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *gunicorn_args, args.app]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
