"""Bounded load test of the prediction service on loopback: start gunicorn on 127.0.0.1 with the served settings
(setup/hub/serve_app.py's gunicorn_defaults, as setup/serving/run and the Docker image use), send N prediction
requests from C concurrent clients (stopping early at a time limit), print latency percentiles, throughput, errors
and the server's memory before and after.

    python shared/benchmarks/load_test.py                        # 1,000 requests, 8 concurrent, 2 workers
    python shared/benchmarks/load_test.py --requests 200 --concurrency 4 --workers 1 --max-seconds 60
    python shared/benchmarks/load_test.py --gunicorn "--worker-class sync --threads 1"   # the old sync workers

A script that prints figures, not a unit test: the numbers depend on the machine and on what else runs on it.
"""
import argparse, base64, importlib.util, io, json, os, shlex, socket, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def paragraph_png(seed: int = 4, max_lines: int = 4) -> bytes:
    "A held-out synthetic handwritten page (the lab4 paragraph generator), as PNG bytes."
    from text_recognizer.data.paragraphs import make_paragraphs
    page = make_paragraphs(1, split="test", seed=seed, max_lines=max_lines)["images"][0]
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    "Resident memory of a process and its children, in MB."
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1e6


def served_settings() -> list[str]:
    "The gunicorn options the service is served with (worker class, threads, keep-alive, timeout)."
    sys.path.insert(0, str(ROOT / "shared"))
    spec = importlib.util.spec_from_file_location("serve_app", ROOT / "setup" / "hub" / "serve_app.py")
    serve_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_app)
    return serve_app.gunicorn_defaults()


def start_gunicorn(app: str, port: int, workers: int, log, settings: list[str]):
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "shared"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *settings, "--workers", str(workers),
               app]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(url: str, server, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {server.returncode}; see its log")
        try:
            if requests.get(url + "/healthz", timeout=5).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"the service did not answer {url}/healthz within {seconds} s")


def run_load(url: str, body: bytes, n: int, concurrency: int, max_seconds: float):
    "Send up to `n` requests from `concurrency` threads; returns (latencies in ms, status codes, wall seconds)."
    local, deadline = threading.local(), time.monotonic() + max_seconds

    def one(_):
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "session"):
            local.session = requests.Session()
        start = time.perf_counter()
        try:
            response = local.session.post(url + "/v1/predict", data=body, timeout=60,
                                    headers={"Content-Type": "application/json"})
            status = response.status_code
            if status == 200:
                response.json()["text"]
        except (requests.RequestException, ValueError, KeyError):
            status = 0
        return (time.perf_counter() - start) * 1000, status

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for r in pool.map(one, range(n)) if r is not None]
    wall = time.perf_counter() - start
    return np.array([r[0] for r in results]), [r[1] for r in results], wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long")
    parser.add_argument("--image", type=Path, help="an image file to send (default: a synthetic handwritten page)")
    parser.add_argument("--app", default="text_recognizer.serving.app:create_app()", help="the WSGI app for gunicorn")
    parser.add_argument("--gunicorn", default="", help='more gunicorn options, after the served ones (they win), '
                        'e.g. "--worker-class sync --threads 1" for the old sync workers')
    options = parser.parse_args()

    png = options.image.read_bytes() if options.image else paragraph_png()
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode()}).encode()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+", suffix=".log", prefix="load_test_gunicorn_") as log:
        settings = served_settings() + shlex.split(options.gunicorn)
        server = start_gunicorn(options.app, port, options.workers, log, settings)
        try:
            wait_until_up(url, server)
            idle_mb = tree_rss_mb(server.pid)
            warm = [requests.post(url + "/v1/predict", data=body, headers={"Content-Type": "application/json"},
                                  timeout=120) for _ in range(4 * options.workers)]  # load the model in every worker
            if any(r.status_code != 200 for r in warm):
                raise RuntimeError(f"warm-up failed: {warm[0].status_code} {warm[0].text[:300]}")
            answer = warm[0].json()
            before_mb = tree_rss_mb(server.pid)
            latencies, statuses, wall, quarters_mb = np.array([]), [], 0.0, []
            for quarter in range(4):  # memory after each quarter of the load: growth would show as a trend
                n = options.requests // 4 + (quarter < options.requests % 4)
                lat, stat, seconds = run_load(url, body, n, options.concurrency, options.max_seconds - wall)
                latencies, statuses, wall = np.concatenate([latencies, lat]), statuses + stat, wall + seconds
                quarters_mb.append(tree_rss_mb(server.pid))
            after_mb = quarters_mb[-1]
            worker_metrics = requests.get(url + "/metrics", timeout=5).json()
        finally:
            server.terminate()
            server.wait(timeout=30)
        log.seek(0)
        log_lines = log.read().splitlines()

    errors = sum(s != 200 for s in statuses)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else (float("nan"),) * 3
    print(f"image: {Image.open(io.BytesIO(png)).size[0]}×{Image.open(io.BytesIO(png)).size[1]} px, "
          f"{len(png) / 1e3:.1f} kB PNG, {len(answer['lines'])} lines read: {answer['text']!r}")
    print(f"gunicorn: {options.workers} workers on 127.0.0.1 ({' '.join(settings)}), {os.cpu_count()} CPUs; "
          f"{options.concurrency} concurrent clients")
    print(f"requests: {len(statuses)} sent of {options.requests} (time limit {options.max_seconds:.0f} s), "
          f"errors: {errors}")
    print(f"wall time: {wall:.1f} s, throughput: {len(statuses) / wall:.1f} requests/s")
    print(f"latency (ms): p50 {p50:.1f}, p95 {p95:.1f}, p99 {p99:.1f}, max {latencies.max():.1f}")
    print(f"server memory (master + workers, RSS): {idle_mb:.0f} MB idle, {before_mb:.0f} MB after warm-up, "
          f"{after_mb:.0f} MB after the load ({after_mb - before_mb:+.0f} MB); after each quarter of the load: "
          f"{', '.join(f'{mb:.0f}' for mb in quarters_mb)} MB")
    print(f"one worker's /metrics: {worker_metrics['predictions']} predictions, latency {worker_metrics['latency_ms']}, "
          f"server errors {worker_metrics['server_errors']}")
    restarts = sum("Booting worker" in l for l in log_lines) - options.workers
    print(f"server log: {sum(l.startswith('{') for l in log_lines)} JSON request lines, {restarts} worker restarts, "
          f"{sum('WORKER TIMEOUT' in l for l in log_lines)} worker timeouts")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
