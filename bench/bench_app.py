#!/usr/bin/env python
"""Load test of the web app: N concurrent clients for T seconds against a local ``app.py`` server.

    python bench/bench_app.py                                # 2 clients, 60 s, the shipped model, astronaut
    python bench/bench_app.py --clients 4 --duration 120 --workers 2 --queue 2
    python bench/bench_app.py --url http://127.0.0.1:7860    # a server already running (no RSS figures)

Starts ``python app.py --port 0`` (unless ``--url``), waits for /healthz, sends ``--warmup`` requests, then
runs the clients: each posts the photo to /api/idphoto in a loop until the time is up or ``--requests`` have
been sent in all. Reports throughput, p50/p95/max latency of the successful requests, the error count by
status (503 = refused by the full queue), and the server's resident memory (RSS, from /proc) after the
warm-up, at every ``--rss-every`` requests, and at the end: the memory must level off, not grow with the
request count. Prints one JSON line on stdout; progress goes to stderr. Only loopback addresses are used.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from common import REPO, emit, note


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, default=2, help="concurrent clients")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (after the warm-up)")
    p.add_argument("--requests", type=int, default=0, help="stop after this many requests in all (0: no limit)")
    p.add_argument("--warmup", type=int, default=2, help="requests sent (one at a time) before the timed part")
    p.add_argument("--image", type=Path, default=REPO / "examples" / "astronaut.jpg", help="the photo posted")
    p.add_argument("--spec", default="1inch", help="spec field of every request")
    p.add_argument("--bg", default="blue", help="bg field of every request")
    p.add_argument("--checkpoint", type=Path, default=None, help="passed to app.py (default: the shipped model)")
    p.add_argument("--workers", type=int, default=0, help="app.py --workers (0: its default, one per core)")
    p.add_argument("--queue", type=int, default=0, help="app.py --queue (0: its default, twice the workers)")
    p.add_argument("--threads", type=int, default=0, help="app.py --threads (0: its default)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more app.py flags (put last)")
    p.add_argument("--url", default=None, help="use this running server instead of starting one (loopback only)")
    p.add_argument("--rss-every", type=int, default=50, help="sample the server's RSS every N finished requests")
    p.add_argument("--timeout", type=float, default=120.0, help="client-side timeout per request, seconds")
    return p.parse_args(argv)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def multipart(photo: bytes, fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="photo.jpg"\r\n'
                 f'Content-Type: application/octet-stream\r\n\r\n'.encode() + photo + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def send(url: str, body: bytes, ctype: str, timeout: float) -> tuple[int, float]:
    t = time.perf_counter()
    req = urllib.request.Request(url + "/api/idphoto", data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        status = 0  # no answer
    return status, time.perf_counter() - t


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(REPO / "app.py"), "--port", "0", "--quiet"]
    for flag, value in (("--checkpoint", args.checkpoint), ("--workers", args.workers), ("--queue", args.queue),
                        ("--threads", args.threads)):
        if value:
            cmd += [flag, str(value)]
    cmd += args.extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stdout.readline()
    if not line.startswith("ID photo app: "):
        proc.kill()
        raise SystemExit(f"bench_app.py: app.py did not start: {line.strip()} {proc.stderr.read().strip()[-300:]}")
    return proc, line.split()[3].rstrip("/")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("bench_app.py: --url must be a loopback address (http://127.0.0.1:PORT)")
    photo = args.image.read_bytes()
    body, ctype = multipart(photo, {"spec": args.spec, "bg": args.bg})
    proc, url = (None, args.url.rstrip("/")) if args.url else start_server(args)
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=60) as resp:
            health = json.load(resp)
        pid = proc.pid if proc else None
        rss = {"start": rss_mb(pid) if pid else None}
        note(f"server {url}: {health['workers']} workers, queue {health['queue']}; warming up")
        for _ in range(args.warmup):
            status, _ = send(url, body, ctype, args.timeout)
            if status != 200:
                raise SystemExit(f"bench_app.py: warm-up request failed with HTTP {status}")
        rss["after_warmup"] = rss_mb(pid) if pid else None

        lock = threading.Lock()
        latencies, statuses, samples = [], {}, []
        sent = [0]
        stop_at = time.perf_counter() + args.duration

        def client():
            while time.perf_counter() < stop_at:
                with lock:
                    if args.requests and sent[0] >= args.requests:
                        return
                    sent[0] += 1
                status, seconds = send(url, body, ctype, args.timeout)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        latencies.append(seconds)
                    done = sum(statuses.values())
                    if pid and done % args.rss_every == 0:
                        samples.append((done, rss_mb(pid)))
                        note(f"  {done} requests, server RSS {samples[-1][1]} MB")
                if status == 503:
                    time.sleep(0.2)  # a polite client backs off when refused

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        rss["end"] = rss_mb(pid) if pid else None
        total = sum(statuses.values())
        ok = statuses.get(200, 0)
        figures = {
            "requests": total, "ok": ok, "errors": total - ok,
            "errors_by_status": {str(k): v for k, v in sorted(statuses.items()) if k != 200},
            "wall_s": round(wall, 2), "throughput_rps": round(ok / wall, 3) if wall else None,
            "latency_s": {"p50": _r(percentile(latencies, 50)), "p95": _r(percentile(latencies, 95)),
                          "max": _r(max(latencies) if latencies else None),
                          "mean": _r(statistics.fmean(latencies) if latencies else None)},
            "server_rss_mb": {**rss, "samples": samples},
        }
        if pid and samples and rss["after_warmup"]:
            figures["server_rss_mb"]["growth_after_warmup"] = round(rss["end"] - rss["after_warmup"], 1)
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    emit("app", {"clients": args.clients, "duration_s": args.duration, "requests_limit": args.requests,
                 "image": str(args.image.name), "photo_kb": round(len(photo) / 1024, 1), "spec": args.spec,
                 "workers": health["workers"], "queue": health["queue"], "url": "started" if proc else args.url,
                 "checkpoint": str(args.checkpoint) if args.checkpoint else "shipped"}, figures)
    return 0


def _r(x):
    return None if x is None else round(x, 3)


if __name__ == "__main__":
    sys.exit(main())
