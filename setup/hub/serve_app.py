"""Serve a WSGI app (lab4's Flask endpoint) with gunicorn inside your hub server and print its proxy URL.

    python setup/hub/serve_app.py MODULE:APP [--port N | --socket PATH] [gunicorn options...]

In a hub server the app listens on a unix socket in your private home (TR_APP_SOCKET, default ~/.tr-app/app.sock;
the home is 0700), and your Jupyter server proxies <hub>/user/<you>/app/ to it: only you can reach it, through the
hub (your login or an API token) or from your own processes. No other student can connect to the socket, and
nothing listens on the server's shared 127.0.0.1.

--port N serves on 127.0.0.1:N instead (the default outside a hub: 8000), at <hub>/user/<you>/proxy/N/. On a
single-server hub every student shares 127.0.0.1, so any of them can connect to a TCP port: use it for things
that are not private. When N is taken another free port is chosen and printed; the port is bound here and handed to
gunicorn as an open socket (fd://), so nobody can take it in between. Extra --bind options are refused: the app
must not listen on any other address. The app sees paths without the URL prefix, so its links must be relative.
"""
import argparse
import errno
import os
import re
import shutil
import socket
import stat
import sys
from pathlib import Path


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


def listen_tcp(port: int) -> socket.socket:
    "A socket listening on 127.0.0.1:`port`, or on a free port when that one is taken; held until gunicorn serves it."
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def private_socket_path() -> Path:
    "Where this server's private app listens: TR_APP_SOCKET (set by start-singleuser), else ~/.tr-app/app.sock."
    return Path(os.environ.get("TR_APP_SOCKET") or Path.home() / ".tr-app" / "app.sock")


def listen_unix(path: Path) -> socket.socket:
    "A unix socket listening at `path` (folder 0700, socket 0600); refuses when an app is already served there."
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            sys.exit(f"serve_app: {path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left over from an app that did not clean up
            else:
                sys.exit(f"serve_app: an app is already served at {path}; stop it first (or use --port)")
    sock = socket.socket(socket.AF_UNIX)
    old_umask = os.umask(0o077)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(128)
    return sock


BIND_OPTION = re.compile(r"^(--bi(n(d)?)?(=.*)?|-[DR]*b.*)$")  # --bind/--bin/--bi (argparse abbreviations), -b, -Rb...


def extra_binds(gunicorn_args) -> list:
    "The gunicorn arguments that would add a listening address (refused: the app listens where serve_app says)."
    return [a for a in gunicorn_args if BIND_OPTION.match(a)]


def app_url() -> str:
    "Where the hub serves this server's private app (the unix socket), like proxy_url for a port."
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return f"unix:{private_socket_path()} (not inside a hub server: no proxy URL)"
    server = os.environ.get("JUPYTERHUB_PUBLIC_URL") or prefix
    return f"{server.rstrip('/')}/app/"


def proxy_url(port: int) -> str:
    "Where the hub serves 127.0.0.1:`port` of this server (absolute when the hub's public URL is known)."
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return f"http://127.0.0.1:{port}/ (not inside a hub server: no proxy URL)"
    server = os.environ.get("JUPYTERHUB_PUBLIC_URL") or prefix  # the server's full URL when c.JupyterHub.public_url is set
    return f"{server.rstrip('/')}/proxy/{port}/"


# gunicorn settings for browsers that connect directly, with no buffering proxy in front (setup/serving/README.md):
# threads, so that an idle or slow connection does not hold a whole worker process, and the lab4 service's worker
# class, which keeps silent connections out of the threads and answers 408 to headers slower than 10 s (plain
# gthread when text_recognizer is not importable). Options given on the command line come after these and win.
# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own memory arena; with 2 the workers' memory stays
# flat under load. The Docker image (setup/serving/Dockerfile) runs gunicorn with the same settings.
def gunicorn_defaults() -> list:
    "The gunicorn options every app served from here starts with (and MALLOC_ARENA_MAX=2 in gunicorn's environment)."
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    try:
        from text_recognizer.serving.app import GuardedThreadWorker  # noqa: F401
        worker = "text_recognizer.serving.app.GuardedThreadWorker"
    except Exception:  # not on the path, or an older service without it
        worker = "gthread"
    return ["--worker-class", worker, "--threads", "8", "--keep-alive", "5", "--timeout", "60"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="the WSGI app as MODULE:APP, e.g. text_recognizer.api:app")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, help="serve on 127.0.0.1:PORT, shared with every user of this machine "
                       "(default outside a hub: 8000)")
    where.add_argument("--socket", type=Path, help="serve on this unix socket (default in a hub: ~/.tr-app/app.sock)")
    args, gunicorn_args = parser.parse_known_args(argv)
    if ":" not in args.app:
        parser.error(f"app must look like MODULE:APP, got {args.app!r}")
    if extra_binds(gunicorn_args):
        parser.error(f"refusing {' '.join(extra_binds(gunicorn_args))}: serve_app chooses the one address the app "
                     "listens on (--port or --socket); another --bind could expose it on a public address")
    if shutil.which("gunicorn") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "gunicorn")):
        sys.exit("serve_app: gunicorn is not installed in this environment (it is in the labs' Pipfile)")
    private = args.socket is not None or (args.port is None and "JUPYTERHUB_SERVICE_PREFIX" in os.environ)
    if private:
        path = args.socket or private_socket_path()
        sock = listen_unix(path)
        url = app_url() if path == private_socket_path() else f"unix:{path} (no proxy URL for this path)"
        print(f"serving {args.app} on unix:{path} (only you); open {url}", flush=True)
    else:
        sock = listen_tcp(8000 if args.port is None else args.port)
        port = sock.getsockname()[1]
        print(f"serving {args.app} on 127.0.0.1:{port}; open {proxy_url(port)}", flush=True)
    sock.set_inheritable(True)  # gunicorn takes over the listening socket: no window for anyone to grab the address
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"fd://{sock.fileno()}", *gunicorn_defaults(), *gunicorn_args,
           args.app]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
