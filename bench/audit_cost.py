#!/usr/bin/env python3
"""What the data-change audit trail (issue 15) costs the S6 post benchmark:
a 10-row insert per request over 16 connections, with `audit = true` and
`audit = false` on the datasource, side by side. Two servers (one per
setting, each on its own fresh database) run at once and wrk loads them in
turn, so both see the same machine state; the figure is the median of the
runs and the ratio of the medians.

    python3 bench/audit_cost.py [--runs 5] [--duration 5] [--postgres URL]

Needs wrk and a release build (cargo build --release --bin tessera); with
--postgres (e.g. postgres://postgres@127.0.0.1:5432/postgres) it makes and
drops two databases there and measures PostgreSQL too.
"""

import argparse
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("TESSERA_BENCH_TARGET", ROOT / "target" / "release")) / "tessera"
PASSWORD = "bench-password-Xy7!"
BODY = {"e": {"ds": "Employees", "data": [
    {"_rs": "I", "name": f"Posted {k}", "dept": "P00", "salary": 1234 + k} for k in range(10)]}}


def config(path: Path, url: str, audit: bool) -> None:
    path.write_text(f"""database = "{url}"
[password]
memory_kib = 256
iterations = 1
parallelism = 1
[datasources.Employees]
table = "employees"
audit = {str(audit).lower()}
[datasources.Employees.attributes]
empId  = {{ type = "Integer", primary_key = true, generated = true }}
name   = {{ type = "String", required = true }}
dept   = {{ type = "String" }}
salary = {{ type = "Decimal" }}
[roles.bench]
Employees = ["query", "insert", "update", "delete"]
""")


def post(port, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def start(cfg: Path, work: Path, name: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([str(BIN), "--config", str(cfg), "user", "add", "bench01", "--org", "bench",
                    "--role", "bench", "--password-stdin"], input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True)
    proc = subprocess.Popen([str(BIN), "--config", str(cfg), "serve", "--listen", f"127.0.0.1:{port}"],
                            stdout=open(work / f"{name}.log", "ab"), stderr=subprocess.STDOUT, cwd=work)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    token = "Token " + base64.b64encode(f"bench01:{PASSWORD}".encode()).decode()
    sess = post(port, "/v1/auth", {}, {"Authorization": token})
    return proc, port, sess


def wrk(port, sess, body_file: Path, duration: int) -> float:
    env = {**os.environ, "BENCH_JWT": sess["jwt"], "BENCH_CSRF": sess["csrf"], "BENCH_PATH": "/v1/api",
           "BENCH_BODY_FILE": str(body_file)}
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{duration}s", "--timeout", "10s", "-s",
                          str(ROOT / "bench" / "lua" / "api.lua"), f"http://127.0.0.1:{port}"],
                         env=env, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) * 10


def measure(label: str, urls: dict, runs: int, duration: int, work: Path) -> None:
    servers = {}
    for audit, url in urls.items():
        cfg = work / f"{label}-{audit}.toml"
        config(cfg, url, audit)
        servers[audit] = start(cfg, work, f"{label}-{audit}")
    body_file = work / "post.json"
    body_file.write_text(json.dumps(BODY))
    rates = {True: [], False: []}
    try:
        for i in range(runs):
            for audit in (True, False):
                _, port, sess = servers[audit]
                rates[audit].append(wrk(port, sess, body_file, duration))
            print(f"{label} run {i + 1}: audit on {rates[True][-1]:,.0f}, off {rates[False][-1]:,.0f} rows/s")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait()
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"{label}: audit on {on:,.0f} rows/s, off {off:,.0f} rows/s (medians of {runs}); "
          f"on/off = {on / off:.2f}, the audit costs {1 - on / off:.0%}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--postgres", default="")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tessera-audit-cost-"))
    measure("SQLite", {a: f"sqlite://{work}/{a}.db" for a in (True, False)}, args.runs, args.duration, work)
    if args.postgres:
        base = args.postgres.rsplit("/", 1)[0]
        names = {a: f"tessera_audit_cost_{str(a).lower()}" for a in (True, False)}
        for name in names.values():
            subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
            subprocess.run(["psql", args.postgres, "-qc", f"CREATE DATABASE {name}"], check=True)
        try:
            measure("PostgreSQL", {a: f"{base}/{n}" for a, n in names.items()}, args.runs, args.duration, work)
        finally:
            for name in names.values():
                subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name}"])


if __name__ == "__main__":
    main()
