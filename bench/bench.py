#!/usr/bin/env python3
"""tessera's benchmark suite (issue 6). Not a test: run it with `bench/run`.

Drives real servers over loopback with wrk and writes BENCHMARKS.md and
bench/ratios.png. Each scenario is one function; one whose prerequisite is
missing (say `/v1/api` answers 404) is skipped with a line that says why.
Every figure is the median of several runs, quoted as a ratio where the
issue asks for one, because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
TARGET = Path(os.environ.get("TESSERA_BENCH_TARGET", ROOT / "target" / "release"))
BIN = TARGET / "tessera"
LAST = BENCH / "last-run.json"
CACHE = Path(os.environ.get("TESSERA_BENCH_CACHE", Path.home() / ".cache" / "tessera-bench"))
PASSWORD = "bench-password-Xy7!"
CORES = os.cpu_count() or 1
WRK_THREADS = 2

ARGS: argparse.Namespace
RESULTS: list[dict] = []   # every figure, in order
COMMANDS: list[str] = []   # every distinct load command, as run (secrets elided)
NOTES: list[str] = []      # skipped scenarios and other remarks
VERSIONS: dict[str, str] = {}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def figure(fid, name, value, unit, target=None, ok=None, detail=""):
    """Records one figure; `ok` is True/False against `target`, None for 'report'."""
    RESULTS.append(dict(id=fid, name=name, value=value, unit=unit, target=target or "report",
                        ok=ok, detail=detail))
    shown = "n/a" if value is None else (f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
    verdict = {True: "PASS", False: "MISS", None: ""}[ok]
    log(f"{fid} {name}: {shown} {unit} (target {target or 'report'}) {verdict} {detail}")


def skip(fid, why):
    NOTES.append(f"**{fid}** not run: {why}")
    log(f"{fid} skipped: {why}")


def record_command(cmd: list[str] | str, env_note: str = "") -> None:
    text = cmd if isinstance(cmd, str) else shlex.join(cmd)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", text)
    text = re.sub(r"csrf=[0-9a-f-]+", "csrf=$CSRF", text)
    if env_note:
        text = f"{env_note} {text}"
    if text not in COMMANDS:
        COMMANDS.append(text)


def want(*ids) -> bool:
    """Whether `--only` (if given) names one of these scenario ids."""
    only = {s.strip().upper() for s in ARGS.only.split(",") if s.strip()}
    return not only or any(i.upper() in only for i in ids)


def med(xs):
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_post(port, path, body, headers=None, timeout=30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Content-Type": "application/json", **(headers or {})}
        conn.request("POST", path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def write_config(path: Path, db, memory_kib=19456, iterations=2, user_failures=5) -> None:
    """`db` is an SQLite file (Path) or a database URL (str, e.g. postgres://...)."""
    url = db if isinstance(db, str) else f"sqlite://{db}"
    path.write_text(f"""# written by bench/bench.py
database = "{url}"
max_limit = 1000

[secrets]
key_file = "{path.parent / 'tessera.key'}"   # beside the config, never in the repository

[password]
memory_kib = {memory_kib}
iterations = {iterations}
parallelism = 1

[throttle]
user_failures = {user_failures}
ip_failures = 100000   # every client here is 127.0.0.1
window = "15m"

[datasources.Employees]
table = "employees"
indexes = [["dept"]]          # the benchmark's filter (issue 17); peers get the same index
[datasources.Employees.attributes]
empId  = {{ type = "Integer", primary_key = true, generated = true }}
name   = {{ type = "String", required = true }}
dept   = {{ type = "String" }}
salary = {{ type = "Decimal" }}
active = {{ type = "YN", default = "Y" }}
email  = {{ type = "Email", column = "email_address", updatable = false }}

[roles.bench]
Employees = ["query", "insert", "update", "delete"]
""")


def tessera(config: Path, *args, stdin: str | None = None, check=True):
    cmd = [str(BIN), "--config", str(config), *args]
    return subprocess.run(cmd, input=stdin, text=True, capture_output=True, check=check)


def add_users(config: Path, count: int, prefix="bench") -> list[str]:
    names = [f"{prefix}{i:02d}" for i in range(1, count + 1)]
    for name in names:
        r = tessera(config, "user", "add", name, "--org", "bench", "--role", "bench",
                    "--password-stdin", stdin=PASSWORD + "\n", check=False)
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise SystemExit(f"tessera user add {name} failed: {r.stderr.strip()}")
    record_command(f"echo $PASSWORD | tessera --config tessera.toml user add bench01 --org bench --role bench --password-stdin   # bench01..bench{count:02d}")
    return names


class Server:
    """One `tessera serve` process on a free loopback port."""

    def __init__(self, config: Path, workdir: Path, name="tessera"):
        self.config, self.workdir, self.name = config, workdir, name
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, timeout=20.0) -> float:
        """Starts and returns the seconds until the first /readyz 200."""
        out = open(self.workdir / f"{self.name}.log", "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(BIN), "--config", str(self.config), "serve", "--listen", f"127.0.0.1:{self.port}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"tessera exited with {self.proc.returncode}; see {self.workdir / (self.name + '.log')}")
            try:
                status, _ = http_get(self.port, "/readyz", timeout=1.0)
                if status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise SystemExit("tessera did not become ready in time")
            time.sleep(0.001)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def status_kib(self, field="VmRSS") -> int:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


def token_header(user, password=PASSWORD):
    return "Token " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sign_in(port, user, password=PASSWORD):
    status, body, _ = http_post(port, "/v1/auth", {}, {"Authorization": token_header(user, password)})
    if status != 200:
        raise RuntimeError(f"sign-in of {user} gave {status}: {body[:200]!r}")
    return json.loads(body)


def curl_sign_in(port, user):
    """The S1 sign-in, with curl as a user would."""
    cmd = ["curl", "-s", "-X", "POST", f"http://127.0.0.1:{port}/v1/auth",
           "-H", f"Authorization: {token_header(user)}", "-H", "Content-Type: application/json", "-d", "{}"]
    shown = list(cmd)
    shown[6] = "Authorization: Token $(printf bench01:$PASSWORD | base64)"
    record_command(shown)
    return json.loads(subprocess.run(cmd, capture_output=True, check=True, text=True).stdout)


# --------------------------------------------------------------------------
# wrk

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url, *, duration=None, connections=64, threads=WRK_THREADS, script=None, env=None,
        latency=False, env_note=""):
    duration = duration or ARGS.duration
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    if latency:
        cmd.append("--latency")
    if script:
        cmd += ["-s", str(LUA / script)]
    cmd.append(url)
    record_command([c.replace(str(BENCH), "bench") for c in cmd], env_note)
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed: {r.stderr or r.stdout}")
    return parse_wrk(r.stdout)


def parse_wrk(out: str) -> dict:
    res = {"raw": out, "non2xx": 0, "socket_errors": ""}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: (.*)", out)
    if m:
        res["socket_errors"] = m.group(1)
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if m:
            res[f"p{pct}_ms"] = float(m.group(1)) * UNIT[m.group(2)]
    m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
    if m:
        res["json"] = json.loads(m.group(1))
    return res


# --------------------------------------------------------------------------
# A fixed-rate latency probe (wrk2 is not packaged here). One keep-alive
# connection; each request is due at start + i/rate, and its latency counts
# from when it was due if the probe was behind, so stalls are not hidden
# (no coordinated omission).


def probe(port, path, headers, rate, duration, out: dict):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    interval = 1.0 / rate
    lat, bad = [], 0
    start = time.perf_counter()
    for i in range(int(rate * duration)):
        due = start + i * interval
        now = time.perf_counter()
        waited = now < due
        if waited:
            time.sleep(due - now)
        sent = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        done = time.perf_counter()
        lat.append((done - (sent if waited else due)) * 1000.0)
        if r.status != 200:
            bad += 1
    conn.close()
    lat.sort()
    out.update(n=len(lat), bad=bad, p50=lat[len(lat) // 2], p99=lat[min(len(lat) - 1, int(len(lat) * 0.99))],
               max=lat[-1])


def probes(port, jwt, csrf, rate, duration):
    """Probes /v1/status (signed in) and /healthz at once; returns both."""
    status, health = {}, {}
    hdr = {"Authorization": f"Bearer {jwt}", "X-CSRF-Token": csrf}
    ts = [threading.Thread(target=probe, args=(port, "/v1/status", hdr, rate, duration, status)),
          threading.Thread(target=probe, args=(port, "/healthz", {}, rate, duration, health))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return status, health


# --------------------------------------------------------------------------
# Scenarios


def s1_gate(ctx):
    srv = ctx["server"]
    session = curl_sign_in(srv.port, "bench01")
    env = {"BENCH_JWT": session["jwt"], "BENCH_CSRF": session["csrf"]}
    wrk(srv.url + "/healthz", duration=1)  # warm-up
    health, status = [], []
    for i in range(ARGS.runs):
        h = wrk(srv.url + "/healthz")
        s = wrk(srv.url + "/v1/status", script="status.lua", env=env,
                env_note="BENCH_JWT=$JWT BENCH_CSRF=$CSRF")
        if s["non2xx"] or s["socket_errors"]:
            raise RuntimeError(f"S1: /v1/status gave {s['non2xx']} non-2xx, errors {s['socket_errors']}")
        health.append(h["rps"])
        status.append(s["rps"])
        log(f"S1 run {i + 1}: healthz {h['rps']:,.0f} req/s, status {s['rps']:,.0f} req/s")
    ratio = med(status) / med(health)
    figure("S1", "GET /healthz", med(health), "req/s", detail=f"runs {', '.join(f'{x:,.0f}' for x in health)}")
    figure("S1", "signed-in GET /v1/status", med(status), "req/s",
           detail=f"runs {', '.join(f'{x:,.0f}' for x in status)}")
    figure("S1", "gate overhead: /v1/status ÷ /healthz", ratio, "ratio", "≥ 0.8 (issue 3: ≥ 0.7)", ratio >= 0.8,
           detail=f"per-run ratios {', '.join(f'{s / h:.2f}' for s, h in zip(status, health))}")
    ctx["session"] = session
    ctx["healthz_rps"] = med(health)


def argon2_cost():
    r = subprocess.run([str(TARGET / "examples" / "argon2_cost"),
                        "19456", "2", "1", "20"], capture_output=True, text=True, check=True)
    record_command("target/release/examples/argon2_cost 19456 2 1 20")
    return json.loads(r.stdout)


def signin_storm(srv, auth_file, duration, connections=16):
    env = {"BENCH_AUTH_FILE": str(auth_file), "BENCH_THREADS": str(WRK_THREADS)}
    return wrk(srv.url + "/v1/auth", duration=duration, connections=connections, script="lines.lua",
               env=env, env_note="BENCH_AUTH_FILE=auth.txt")


def s2_signin(ctx):
    srv = ctx["server"]
    cost = argon2_cost()
    ctx["argon2"] = cost
    capacity = CORES / (cost["median_ms"] / 1000.0)
    figure("S2", "one argon2id verify (m=19456, t=2, p=1), median of 20", cost["median_ms"], "ms",
           detail=f"min {cost['min_ms']:.1f}, max {cost['max_ms']:.1f}; {CORES} threads at once reach "
                  f"{cost['parallel_verifies_per_s']:.1f} verifies/s")
    figure("S2", f"physical limit: cores ÷ verify time ({CORES} cores)", capacity, "sign-ins/s")
    rates, bad = [], {}
    for i in range(ARGS.runs):
        r = signin_storm(srv, ctx["auth_file"], ARGS.duration)
        js = r.get("json", {})
        codes = js.get("by_status", {})
        ok = codes.get("200", 0)
        for k, v in codes.items():
            if k != "200":
                bad[k] = bad.get(k, 0) + v
        rate = ok / (js.get("duration_us", 1) / 1e6)
        rates.append(rate)
        log(f"S2 run {i + 1}: {rate:.1f} sign-ins/s, statuses {codes}, p99 {r.get('p99_ms', 0):.0f} ms")
    rate = med(rates)
    ctx["s2_rate"] = rate
    figure("S2", "sign-ins/s, 16 connections, 32 users", rate, "sign-ins/s",
           detail=f"runs {', '.join(f'{x:.1f}' for x in rates)}; non-200: {bad or 'none'}")
    par = rate / cost["parallel_verifies_per_s"]
    figure("S2", "sign-ins/s ÷ verifies/s of bare argon2 on all cores (same moment)", par, "ratio",
           detail="how much of what the cores actually deliver now reaches clients")
    ratio = rate / capacity
    figure("S2", "sign-in: sign-ins/s ÷ (cores ÷ verify time)", ratio, "ratio", "≥ 0.8 (issue 2: ≥ 0.6)",
           ratio >= 0.8 and not bad)
    if bad:
        NOTES.append(f"S2: some sign-ins were not 200: {bad}")


def s3_storm(ctx):
    srv, sess = ctx["server"], ctx["session"]
    rate, dur = ARGS.probe_rate, ARGS.duration
    base_s, base_h, storm_s, storm_h = [], [], [], []
    record_command(f"python3 bench/bench.py probe: GET /v1/status and GET /healthz, {rate} req/s each, {dur} s, one keep-alive connection each")
    for i in range(ARGS.runs):
        s, h = probes(srv.port, sess["jwt"], sess["csrf"], rate, dur)
        base_s.append(s["p99"])
        base_h.append(h["p99"])
        # The storm: 16 connections signing in nonstop, with 1 s of lead.
        result = {}
        t = threading.Thread(target=lambda: result.update(signin_storm(srv, ctx["auth_file"], dur + 2)))
        t.start()
        time.sleep(1.0)
        s2, h2 = probes(srv.port, sess["jwt"], sess["csrf"], rate, dur)
        t.join()
        storm_s.append(s2["p99"])
        storm_h.append(h2["p99"])
        if s["bad"] or s2["bad"] or h["bad"] or h2["bad"]:
            raise RuntimeError("S3: a probe got a non-200 answer")
        codes = result.get("json", {}).get("by_status", {})
        log(f"S3 run {i + 1}: status p99 {s['p99']:.2f} → {s2['p99']:.2f} ms, healthz p99 {h['p99']:.2f} → "
            f"{h2['p99']:.2f} ms (storm statuses {codes})")
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    figure("S3", "p99 GET /v1/status, no storm", med(base_s), "ms", detail=f"runs {fmt(base_s)}")
    figure("S3", "p99 GET /v1/status, 16 clients signing in", med(storm_s), "ms", detail=f"runs {fmt(storm_s)}")
    figure("S3", "p99 GET /healthz, no storm", med(base_h), "ms", detail=f"runs {fmt(base_h)}")
    figure("S3", "p99 GET /healthz, 16 clients signing in", med(storm_h), "ms", "< 25 ms (issue 2)",
           med(storm_h) < 25, detail=f"runs {fmt(storm_h)}")
    ratio = med(storm_s) / med(base_s)
    figure("S3", "storm isolation: p99 /v1/status storm ÷ no storm", ratio, "ratio", "≤ 5", ratio <= 5,
           detail=f"per-run ratios {', '.join(f'{b / a:.1f}' for a, b in zip(base_s, storm_s))}")
    hratio = med(storm_h) / med(base_h)
    figure("S3", "storm isolation: p99 /healthz storm ÷ no storm", hratio, "ratio", "≤ 5 (same bar)", hratio <= 5)


# S11 (issue 14): API key sign-ins against password sign-ins, same server,
# same run, 16 connections each, alternating; and /v1/status p99 while 16
# connections sign in with keys (S3's isolation bar).


def add_keys(config: Path, users: list[str]) -> list[str]:
    """One API key per user, made with `tessera key add`; returns the secrets."""
    secrets = []
    for name in users:
        r = tessera(config, "key", "add", name, "--name", "bench")
        secrets.append(r.stdout.strip())
    record_command(f"tessera --config tessera.toml key add bench01 --name bench   # bench01..bench{len(users):02d}")
    return secrets


def s11_keys(ctx):
    srv = ctx["server"]
    users = ctx["users"]
    secrets = add_keys(ctx["config"], users)
    key_file = ctx["tmp"] / "keys.txt"
    key_file.write_text("".join(token_header(u, k) + "\n" for u, k in zip(users, secrets)))
    sign_in(srv.port, users[0], secrets[0])  # a key signs in before the storm
    password, key = [], []
    for i in range(ARGS.runs):
        for rates, auth in ((password, ctx["auth_file"]), (key, key_file)):
            r = signin_storm(srv, auth, ARGS.duration)
            js = r.get("json", {})
            codes = js.get("by_status", {})
            if set(codes) != {"200"}:
                raise RuntimeError(f"S11: sign-ins were not all 200: {codes}")
            rates.append(codes["200"] / (js.get("duration_us", 1) / 1e6))
        log(f"S11 run {i + 1}: password {password[-1]:,.1f}/s, key {key[-1]:,.0f}/s "
            f"(× {key[-1] / password[-1]:,.0f})")
    runs = lambda xs, f="{:,.0f}": ", ".join(f.format(x) for x in xs)
    figure("S11", "password sign-ins/s, 16 connections, 32 users", med(password), "sign-ins/s",
           detail=f"runs {runs(password, '{:,.1f}')}; argon2id at the default cost")
    figure("S11", "API key sign-ins/s, 16 connections, 32 keys", med(key), "sign-ins/s", "≥ 5,000",
           med(key) >= 5000, detail=f"runs {runs(key)}; every answer 200")
    ratio = med(key) / med(password)
    figure("S11", "key sign-ins/s ÷ password sign-ins/s (same server, alternating)", ratio, "ratio", "≥ 50",
           ratio >= 50, detail=f"per-run ratios {runs([k / p for k, p in zip(key, password)])}")

    sess = sign_in(srv.port, users[1])
    rate, dur = ARGS.probe_rate, ARGS.duration
    base, storm = [], []
    for i in range(ARGS.runs):
        s, _ = probes(srv.port, sess["jwt"], sess["csrf"], rate, dur)
        result = {}
        t = threading.Thread(target=lambda: result.update(signin_storm(srv, key_file, dur + 2)))
        t.start()
        time.sleep(1.0)
        s2, _ = probes(srv.port, sess["jwt"], sess["csrf"], rate, dur)
        t.join()
        if s["bad"] or s2["bad"]:
            raise RuntimeError("S11: a probe got a non-200 answer")
        base.append(s["p99"])
        storm.append(s2["p99"])
        codes = result.get("json", {}).get("by_status", {})
        log(f"S11 run {i + 1}: status p99 {s['p99']:.2f} → {s2['p99']:.2f} ms during the key storm ({codes})")
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    figure("S11", "p99 GET /v1/status, no storm", med(base), "ms", detail=f"runs {fmt(base)}")
    figure("S11", "p99 GET /v1/status, 16 clients signing in with keys", med(storm), "ms", detail=f"runs {fmt(storm)}")
    iso = med(storm) / med(base)
    figure("S11", "key storm isolation: p99 /v1/status storm ÷ no storm", iso, "ratio", "≤ 5", iso <= 5,
           detail=f"per-run ratios {', '.join(f'{b / a:.1f}' for a, b in zip(base, storm))}")


def api_available(srv) -> bool:
    sess = sign_in(srv.port, "bench02")
    status, body, _ = http_post(srv.port, "/v1/api", {"e": {"ds": "Employees", "query": {"limit": 1}}},
                                {"Authorization": f"Bearer {sess['jwt']}", "X-CSRF-Token": sess["csrf"]})
    return status != 404


# The typical query (S4, S5 and the peers): one filter, 50 of 10,000 rows.
# Departments D00..D19 hold 500 rows each, so `dept = D07` matches 500 rows
# and `limit 50` returns exactly 50 of them. Every server has an index for the
# filter (issue 17): tessera's catalog declares `indexes = [["dept"]]` (made as
# org_uid, dept, emp_id), and the peers' tables get an index on `dept`.
QUERY_DEPT = "D07"
EMPLOYEE_QUERY = {"e": {"ds": "Employees", "query": {"filter": [{"dept": {"is": QUERY_DEPT}}], "limit": 50}}}
# Employees is org-scoped (design §4.5): the rows belong to the bench users' org.
EMPLOYEE_COLUMNS = ("name", "dept", "salary", "active", "email_address", "org_uid",
                    "created_by", "creation_date", "last_updated_by", "last_update_date")
SEED_TIME = "2026-01-01T00:00:00.000000Z"


# S13 (issue 13): Count + Sum grouped by one attribute over the same 10,000
# rows, 20 groups; datasette's equivalent is its SQL endpoint with the same
# GROUP BY (its facets count but do not sum).
AGGREGATE_QUERY = {"e": {"ds": "Employees", "query": {
    "groupByAttributeCodeList": ["dept"],
    "aggregateList": [{"func": "Count"}, {"func": "Sum", "code": "salary"}],
    "sort": {"dept": 1}, "limit": 100}}}
AGGREGATE_SQL = ("select dept, count(*) as count, sum(salary) as salary from employees "
                 "group by dept order by dept limit 100")


def expected_groups(rows):
    """S13's answer computed here from the rows: [(dept, count, sum)] by dept."""
    groups = {}
    for r in rows:
        n, total = groups.get(r["dept"], (0, 0))
        groups[r["dept"]] = (n + 1, total + r["salary"])
    return [(d, n, t) for d, (n, t) in sorted(groups.items())]


def employee_rows(n=10_000):
    """The same 10,000 rows for every server (tessera, datasette, Directus)."""
    return [{"name": f"Employee {i:05d}", "dept": f"D{i % 20:02d}", "salary": 1000 + (i * 7919) % 10_000,
             "active": "Y" if i % 3 else "N", "email": f"e{i:05d}@example.com"} for i in range(1, n + 1)]


def seed_tuples(rows):
    return [(r["name"], r["dept"], r["salary"], r["active"], r["email"], "bench", "bench01", SEED_TIME, "bench01",
             SEED_TIME)
            for r in rows]


def seed_sqlite(db: Path, rows) -> None:
    """Inserts the rows straight into the `employees` table that tessera made at start."""
    con = sqlite3.connect(db, timeout=30)
    con.executemany(f"INSERT INTO employees ({', '.join(EMPLOYEE_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(EMPLOYEE_COLUMNS))})", seed_tuples(rows))
    con.commit()
    con.close()
    record_command("python3 sqlite3: INSERT INTO employees (name, dept, salary, active, email_address, org_uid, created_by, "
                   "creation_date, last_updated_by, last_update_date) ... × 10,000 (after tessera created the table)")


# --------------------------------------------------------------------------
# PostgreSQL (S5, S6, S8): a fresh database per scenario on 127.0.0.1:5432.

PG = os.environ.get("TESSERA_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def psql(sql: str, db="postgres", stdin: str | None = None):
    r = subprocess.run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql], input=stdin, text=True,
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"psql {sql[:60]!r}: {r.stderr.strip()}")
    return r.stdout


def pg_available() -> str | None:
    if not shutil.which("psql"):
        return "psql is not installed"
    try:
        psql("SELECT 1")
    except RuntimeError as e:
        return f"no PostgreSQL at {PG} ({e})"
    return None


def pg_create(name: str) -> str:
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}"')
    record_command(f"psql {PG}/postgres -c 'CREATE DATABASE {re.sub(r'_[0-9]+$', '_$PID', name)}'")
    return f"{PG}/{name}"


def pg_scenario(ctx, fid: str, subdir: str, **config):
    """A fresh PostgreSQL database for scenario `fid` and a config over it in
    the work dir's `subdir`: (database name, dir, config path); None, with
    the skip noted, when there is no PostgreSQL."""
    why = pg_available()
    if why:
        skip(fid, why)
        return None
    name = f"tessera_bench_{fid.lower()}_{os.getpid()}"
    tmp = ctx["tmp"] / subdir
    tmp.mkdir()
    cfg = tmp / "tessera.toml"
    write_config(cfg, pg_create(name), **config)
    return name, tmp, cfg


def pg_drop(name: str) -> None:
    try:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except RuntimeError as e:
        log(f"could not drop database {name}: {e}")


def seed_postgres(db: str, table: str, columns, tuples, tmp: Path) -> None:
    """COPY the rows into an existing table (tessera's or Directus's)."""
    import csv
    path = tmp / f"{db}-{table}.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(tuples)
    psql(f"\\copy {table} ({', '.join(columns)}) FROM '{path}' WITH (FORMAT csv)", db)
    psql(f"ANALYZE {table}", db)


# --------------------------------------------------------------------------
# S4, S5, S6: the data API


def api_env(sess, body_file):
    return {"BENCH_JWT": sess["jwt"], "BENCH_CSRF": sess["csrf"], "BENCH_PATH": "/v1/api",
            "BENCH_BODY_FILE": str(body_file)}


API_NOTE = "BENCH_JWT=$JWT BENCH_CSRF=$CSRF BENCH_PATH=/v1/api BENCH_BODY_FILE="


def check_query(srv, sess):
    status, resp, _ = http_post(srv.port, "/v1/api", EMPLOYEE_QUERY,
                                {"Authorization": f"Bearer {sess['jwt']}", "X-CSRF-Token": sess["csrf"]})
    got = json.loads(resp)["data"]["e"]["data"] if status == 200 else []
    if status != 200 or len(got) != 50 or any(r.get("dept") != QUERY_DEPT for r in got):
        raise RuntimeError(f"the query gave {status} with {len(got)} rows: {resp[:300]!r}")


def all_2xx(fid, r: dict) -> None:
    """Stops the scenario when a wrk run `r` saw any non-2xx answer or socket error."""
    if r["non2xx"] or r["socket_errors"]:
        raise RuntimeError(f"{fid}: {r['non2xx']} non-2xx answers, socket errors {r['socket_errors']}")


def measure_query(fid, srv, sess, tmp: Path, healthz: bool, query=EMPLOYEE_QUERY, name="query.json"):
    """wrk on the query (and, alternating, on /healthz of the same server);
    returns medians and per-run figures."""
    body_file = tmp / name
    body_file.write_text(json.dumps(query))
    env = api_env(sess, body_file)
    rps, p99, rss, health = [], [], [], []
    rss_before = srv.status_kib() / 1024
    wrk(srv.url + "/healthz", duration=1)  # warm-up
    for i in range(ARGS.runs):
        if healthz:
            health.append(wrk(srv.url + "/healthz")["rps"])
        holder = {}
        t = threading.Thread(target=lambda: holder.update(
            wrk(srv.url, script="api.lua", env=env, latency=True, env_note=API_NOTE + name)))
        t.start()
        time.sleep(ARGS.duration / 2)
        rss.append(srv.status_kib() / 1024)
        t.join()
        r = holder
        all_2xx(fid, r)
        rps.append(r["rps"])
        p99.append(r.get("p99_ms", 0))
        log(f"{fid} run {i + 1}: {r['rps']:,.0f} req/s, p99 {r.get('p99_ms', 0):.2f} ms"
            + (f"; /healthz {health[-1]:,.0f} req/s" if healthz else ""))
    return {"rps": med(rps), "p99": med(p99), "runs": rps, "rss": med(rss), "rss_before": rss_before,
            "healthz": med(health),
            "healthz_runs": health}


def issue17_ratio(fid, backend, srv, sess, tmp: Path, bar: float):
    """Issue 17's figure as the issue defines it: the typical query at
    `wrk -t1 -c32` ÷ `/healthz` at the same setting, on the same server, in
    alternating runs; the median of the per-run ratios."""
    body_file = tmp / "query.json"  # as measure_query writes it
    body_file.write_text(json.dumps(EMPLOYEE_QUERY))
    env = api_env(sess, body_file)
    ratios, health, query = [], [], []
    for _ in range(ARGS.runs):
        health.append(wrk(srv.url + "/healthz", connections=32, threads=1)["rps"])
        r = wrk(srv.url, script="api.lua", env=env, connections=32, threads=1,
                env_note=API_NOTE + "query.json")
        all_2xx(fid, r)
        query.append(r["rps"])
        ratios.append(query[-1] / health[-1])
    runs = ", ".join(f"{q:,.0f} ÷ {h:,.0f}" for q, h in zip(query, health))
    figure(fid, f"query {backend} ÷ /healthz, both at wrk -t1 -c32, alternating (issue 17)", med(ratios),
           "ratio", f"≥ {bar} (issue 17)", med(ratios) >= bar, detail=f"runs {runs} req/s")


def measure_post(fid, backend, srv, sess, tmp: Path):
    """S6: a 10-row insert per request, 16 connections; rows/s."""
    post = {"e": {"ds": "Employees", "data": [{"_rs": "I", "name": f"Posted {k}", "dept": "P00",
                                               "salary": 1234 + k} for k in range(10)]}}
    status, resp, _ = http_post(srv.port, "/v1/api", post,
                                {"Authorization": f"Bearer {sess['jwt']}", "X-CSRF-Token": sess["csrf"]})
    if status != 200 or len(json.loads(resp)["data"]["e"]["data"]) != 10:
        raise RuntimeError(f"{fid}: a 10-row insert gave {status}: {resp[:300]!r}")
    pfile = tmp / "post.json"
    pfile.write_text(json.dumps(post))
    env = api_env(sess, pfile)
    rates, p99 = [], []
    for i in range(ARGS.runs):
        # Shorter runs than the queries' (a report figure), to keep the suite near 6 minutes.
        r = wrk(srv.url, script="api.lua", env=env, connections=16, latency=True, duration=max(2, ARGS.duration * 3 // 5),
                env_note=API_NOTE + "post.json")
        all_2xx(fid, r)
        rates.append(r["rps"] * 10)
        p99.append(r.get("p99_ms", 0))
        log(f"{fid} {backend} run {i + 1}: {r['rps'] * 10:,.0f} rows/s ({r['rps']:,.0f} requests/s, all 200)")
    figure(fid, f"post {backend}: 10-row insert per request, 16 connections", med(rates), "rows/s",
           detail=f"runs {', '.join(f'{x:,.0f}' for x in rates)}; p99 {med(p99):.1f} ms per request; every "
                  "answer 200")


def s16_limit(backend, cfg: Path, tmp: Path, measured_rps: float, healthz_rps: float):
    """S16 (issue 17): the limit of the typical query on this machine, from
    its parts measured below HTTP (examples/query_cost.rs, on the server's
    database while the server is idle) and the server's own /healthz: with
    every core busy, a query costs the statement, the rendering and one
    HTTP exchange. S4/S5 are then reported as a fraction of that limit."""
    body_file = tmp / "limit-query.json"
    body_file.write_text(json.dumps(EMPLOYEE_QUERY))
    cmd = [str(TARGET / "examples" / "query_cost"), str(cfg), "bench01", str(body_file), "2000"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    if r.returncode != 0:
        raise RuntimeError(f"query_cost failed: {r.stderr.strip()[-500:]}")
    record_command("target/release/examples/query_cost tessera.toml bench01 limit-query.json 2000")
    cost = json.loads(r.stdout.strip().splitlines()[-1])
    http_us = CORES * 1e6 / healthz_rps
    limit = CORES * 1e6 / (cost["statement_us"] + cost["render_us"] + http_us)
    fid = "S16"
    figure(fid, f"{backend}: the statement alone (one connection, rows fetched as the server does)",
           cost["statement_us"], "µs", detail=f"{cost['rows']} rows; median of {cost['count']}")
    figure(fid, f"{backend}: rendering those rows to JSON", cost["render_us"], "µs",
           detail=f"{cost['bytes']:,} bytes")
    figure(fid, f"{backend}: query::run without HTTP (parse, authorize, plan, statement, render)",
           cost["pipeline_us"], "µs")
    figure(fid, f"{backend}: limit = cores ÷ (statement + render + one /healthz exchange)", limit, "req/s",
           detail=f"/healthz {healthz_rps:,.0f} req/s on {CORES} cores = {http_us:.0f} core-µs an exchange")
    figure(fid, f"{backend}: the measured query ÷ that limit", measured_rps / limit, "ratio", "report",
           detail=f"{measured_rps:,.0f} req/s measured ÷ {limit:,.0f} req/s limit")


def s4_query_sqlite(ctx):
    srv = ctx["server"]
    if not api_available(srv):
        skip("S4", "`POST /v1/api` answers 404 — the data endpoint is not available yet (issue 4).")
        skip("S6", "`POST /v1/api` is not available yet (issue 4).")
        return
    t0 = time.perf_counter()
    seed_sqlite(ctx["db"], employee_rows())
    log(f"S4: 10,000 rows inserted in {time.perf_counter() - t0:.2f} s")
    sess = sign_in(srv.port, "bench03")
    check_query(srv, sess)
    if want("S4", "S16"):
        q = measure_query("S4", srv, sess, ctx["tmp"], healthz=False)
        ctx["s4"] = q
        figure("S4", f"query SQLite: one filter (dept = {QUERY_DEPT}), 50 of 10,000 rows, signed in", q["rps"],
               "req/s", detail=f"runs {', '.join(f'{x:,.0f}' for x in q['runs'])}; p99 {q['p99']:.2f} ms "
                               "(64 connections, POST /v1/api with Bearer + X-CSRF-Token)")
        figure("S4", "query p99 (SQLite, 64 connections)", q["p99"], "ms")
        ratio = q["rps"] / ctx["healthz_rps"]
        figure("S4", "query SQLite ÷ tessera's own /healthz req/s", ratio, "ratio", "≥ 0.25", ratio >= 0.25,
               detail=f"/healthz {ctx['healthz_rps']:,.0f} req/s (S1, same server)")
        issue17_ratio("S4", "SQLite", srv, sess, ctx["tmp"], 0.2)
        if want("S16"):
            s16_limit("SQLite", ctx["config"], ctx["tmp"], q["rps"], ctx["healthz_rps"])
        figure("S9", "RSS during S4", q["rss"], "MiB",
               detail=f"{q['rss_before']:.1f} MiB just before S4 on the same server, which has by then run "
                      "S1–S3's default-cost argon2 hashes (glibc keeps their 19 MiB blocks per thread arena)")
    if want("S13"):
        s11_aggregate(ctx, srv, sess)
    if want("S6"):
        measure_post("S6", "SQLite", srv, sess, ctx["tmp"])
    if want("S14"):
        s12_compression(srv, sess, ctx["tmp"])


def s12_compression(srv, sess, tmp: Path):
    """S14: what compression costs and saves on the S4 query. wrk runs without
    Accept-Encoding (plain), with `gzip` and with `br` alternate on one server,
    so the ratios are side by side; the bytes are one answer of each."""
    body_file = tmp / "query.json"
    body_file.write_text(json.dumps(EMPLOYEE_QUERY))
    auth = {"Authorization": f"Bearer {sess['jwt']}", "X-CSRF-Token": sess["csrf"]}
    size = {}
    for enc in ("", "gzip", "br"):
        status, resp, headers = http_post(srv.port, "/v1/api", EMPLOYEE_QUERY,
                                          {**auth, **({"Accept-Encoding": enc} if enc else {})})
        got = {k.lower(): v for k, v in headers.items()}.get("content-encoding", "")
        if status != 200 or got != enc:
            raise RuntimeError(f"S14: Accept-Encoding {enc or '(none)'} gave {status}, Content-Encoding {got!r}")
        size[enc] = len(resp)
    rps = {enc: [] for enc in size}
    wrk(srv.url + "/healthz", duration=1)  # warm-up
    for i in range(ARGS.runs):
        for enc in size:
            env = {**api_env(sess, body_file), "BENCH_ACCEPT_ENCODING": enc}
            note = API_NOTE + "query.json" + (f" BENCH_ACCEPT_ENCODING={enc}" if enc else "")
            r = wrk(srv.url, script="api.lua", env=env, latency=True, env_note=note)
            all_2xx("S14", r)
            rps[enc].append(r["rps"])
        log(f"S14 run {i + 1}: plain {rps[''][-1]:,.0f}, gzip {rps['gzip'][-1]:,.0f}, "
            f"br {rps['br'][-1]:,.0f} req/s")
    runs = lambda xs: ", ".join(f"{x:,.0f}" for x in xs)
    figure("S14", "S4 query, no Accept-Encoding (plain)", med(rps[""]), "req/s", detail=f"runs {runs(rps[''])}")
    for enc in ("gzip", "br"):
        figure("S14", f"S4 query, Accept-Encoding: {enc}", med(rps[enc]), "req/s", detail=f"runs {runs(rps[enc])}")
        ratio = med(rps[enc]) / med(rps[""])
        figure("S14", f"{enc} req/s ÷ plain req/s", ratio, "ratio",
               detail="per-run ratios " + ", ".join(f"{b / a:.2f}" for a, b in zip(rps[""], rps[enc])))
    for enc in ("gzip", "br"):
        figure("S14", f"bytes of one S4 answer, {enc}", size[enc], "bytes",
               detail=f"plain {size['']:,} bytes; {enc} saves {size[''] - size[enc]:,} bytes "
                      f"({1 - size[enc] / size['']:.0%})")


def s11_aggregate(ctx, srv, sess):
    status, resp, _ = http_post(srv.port, "/v1/api", AGGREGATE_QUERY,
                                {"Authorization": f"Bearer {sess['jwt']}", "X-CSRF-Token": sess["csrf"]})
    got = [(r["dept"], r["count"], r["salary"]) for r in json.loads(resp)["data"]["e"]["data"]] if status == 200 else []
    if got != expected_groups(employee_rows()):
        raise RuntimeError(f"S13: the aggregate gave {status}: {resp[:300]!r}")
    q = measure_query("S13", srv, sess, ctx["tmp"], healthz=False, query=AGGREGATE_QUERY, name="aggregate.json")
    ctx["s11"] = q
    figure("S13", "aggregate SQLite: Count + Sum grouped by dept (20 groups of 10,000 rows), signed in", q["rps"],
           "req/s", detail=f"runs {', '.join(f'{x:,.0f}' for x in q['runs'])}; p99 {q['p99']:.2f} ms "
                           "(64 connections); answer checked against the rows")


def s5_s6_postgres(ctx):
    scenario = pg_scenario(ctx, "S5", "pg")
    if not scenario:
        return
    name, tmp, cfg = scenario
    srv = Server(cfg, tmp, "pg")
    try:
        add_users(cfg, 2)
        srv.start()
        t0 = time.perf_counter()
        seed_postgres(name, "employees", EMPLOYEE_COLUMNS, seed_tuples(employee_rows()), tmp)
        record_command("psql \\copy employees (name, dept, salary, active, email_address, org_uid, created_by, creation_date, "
                       "last_updated_by, last_update_date) FROM rows.csv; ANALYZE employees")
        log(f"S5: 10,000 rows copied in {time.perf_counter() - t0:.2f} s")
        sess = sign_in(srv.port, "bench01")
        check_query(srv, sess)
        if want("S5", "S16"):
            q = measure_query("S5", srv, sess, tmp, healthz=True)
            ctx["s5"] = q
            figure("S5", f"query PostgreSQL: one filter (dept = {QUERY_DEPT}), 50 of 10,000 rows, signed in",
                   q["rps"], "req/s", detail=f"runs {', '.join(f'{x:,.0f}' for x in q['runs'])}; p99 "
                                             f"{q['p99']:.2f} ms (64 connections)")
            figure("S5", "query p99 (PostgreSQL, 64 connections)", q["p99"], "ms")
            ratio = q["rps"] / q["healthz"]
            figure("S5", "query PostgreSQL ÷ tessera's own /healthz req/s", ratio, "ratio", "≥ 0.25", ratio >= 0.25,
                   detail=f"/healthz {q['healthz']:,.0f} req/s (same server, runs alternating: "
                          f"{', '.join(f'{x:,.0f}' for x in q['healthz_runs'])})")
            issue17_ratio("S5", "PostgreSQL", srv, sess, tmp, 0.1)
            if want("S16"):
                s16_limit("PostgreSQL", cfg, tmp, q["rps"], q["healthz"])
        if want("S6"):
            measure_post("S6", "PostgreSQL", srv, sess, tmp)
    finally:
        srv.stop()
        pg_drop(name)


# --------------------------------------------------------------------------
# S15 (issue 10): 1,000 concurrent connections doing signed-in queries, on a
# fresh server per backend, so that its peak RSS (VmHWM) is this load's.

S15_CONNECTIONS = 1000
S15_SECONDS = 10


def s15_one(fid, backend, cfg: Path, tmp: Path, seed):
    srv = Server(cfg, tmp, f"s15-{backend.lower()}")
    try:
        add_users(cfg, 1)
        srv.start()
        seed()
        sess = sign_in(srv.port, "bench01")
        check_query(srv, sess)
        body_file = tmp / "query.json"
        body_file.write_text(json.dumps(EMPLOYEE_QUERY))
        wrk(srv.url + "/healthz", duration=1)  # warm-up
        r = wrk(srv.url, script="api.lua", env=api_env(sess, body_file), connections=S15_CONNECTIONS,
                duration=S15_SECONDS, latency=True, env_note=API_NOTE + "query.json")
        hwm = srv.status_kib("VmHWM") / 1024
        errors = r["socket_errors"] or "none"
        clean = not r["non2xx"] and not r["socket_errors"]
        log(f"{fid} {backend}: {r['rps']:,.0f} req/s, p99 {r.get('p99_ms', 0):.1f} ms, non-2xx {r['non2xx']}, "
            f"socket errors {errors}, VmHWM {hwm:.1f} MiB")
        figure(fid, f"{S15_CONNECTIONS:,} connections, signed-in query, {backend}: errors (non-2xx + socket)",
               r["non2xx"] + (0 if not r["socket_errors"] else 1), "count", "0", clean,
               detail=f"non-2xx {r['non2xx']}; socket errors {errors}; {r.get('requests', 0):,} requests in "
                      f"{S15_SECONDS} s")
        figure(fid, f"{S15_CONNECTIONS:,} connections, signed-in query, {backend}: throughput", r["rps"], "req/s",
               detail=f"p99 {r.get('p99_ms', 0):.1f} ms (wrk -t{WRK_THREADS} -c{S15_CONNECTIONS} -d{S15_SECONDS}s)")
        figure(fid, f"{S15_CONNECTIONS:,} connections, signed-in query, {backend}: peak RSS (VmHWM)", hwm, "MiB",
               "≤ 120 MiB", hwm <= 120, detail="the whole life of a fresh server: start, one sign-in (argon2id "
                                              "19 MiB), the seed rows and the load")
    finally:
        srv.stop()


def s15_connections(ctx):
    tmp = ctx["tmp"] / "s15"
    tmp.mkdir()
    db = tmp / "s15.db"
    cfg = tmp / "tessera.toml"
    write_config(cfg, db)
    s15_one("S15", "SQLite", cfg, tmp, lambda: seed_sqlite(db, employee_rows()))
    scenario = pg_scenario(ctx, "S15", "s15/pg")
    if not scenario:
        return
    name, pg_tmp, pg_cfg = scenario
    try:
        s15_one("S15", "PostgreSQL", pg_cfg, pg_tmp, lambda: seed_postgres(
            name, "employees", EMPLOYEE_COLUMNS, seed_tuples(employee_rows()), pg_tmp))
    finally:
        pg_drop(name)


# --------------------------------------------------------------------------
# S8: sign-out on instance A → refused on instance B (one PostgreSQL)


def s8_revocation(ctx):
    # Cheap hashing so that 50 sign-ins take no time; the figure is about the gate.
    scenario = pg_scenario(ctx, "S8", "s8", memory_kib=256, iterations=1)
    if not scenario:
        return
    name, tmp, cfg = scenario
    a, b = Server(cfg, tmp, "s8-a"), Server(cfg, tmp, "s8-b")
    try:
        add_users(cfg, 1, prefix="rev")
        a.start()   # A first: it runs the migrations
        b.start()
        record_command("tessera --config s8.toml serve --listen 127.0.0.1:$PORT_A; same config, --listen "
                       "127.0.0.1:$PORT_B   # one PostgreSQL database, [password] memory_kib=256, iterations=1")
        ca = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        cb = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)

        def call(conn, method, path, headers, body=None):
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, data

        auth = {"Authorization": token_header("rev01"), "Content-Type": "application/json"}
        times, polls = [], []
        for i in range(50):
            st, data = call(ca, "POST", "/v1/auth", auth, b"{}")
            if st != 200:
                raise RuntimeError(f"S8: sign-in on A gave {st}: {data[:200]!r}")
            js = json.loads(data)
            hdr = {"Authorization": f"Bearer {js['jwt']}", "X-CSRF-Token": js["csrf"]}
            st, data = call(cb, "GET", "/v1/status", hdr)
            if st != 200:
                raise RuntimeError(f"S8: /v1/status on B gave {st} before the sign-out: {data[:200]!r}")
            # A random pause, so the sign-out lands at any phase of B's refresh timers.
            time.sleep((i * 37 % 50) / 250.0)
            st, data = call(ca, "POST", "/v1/signout", {**hdr, "Content-Type": "application/json"}, b"{}")
            if st not in (200, 204):
                raise RuntimeError(f"S8: sign-out on A gave {st}: {data[:200]!r}")
            t0 = time.perf_counter()
            n = 0
            while True:
                st, _ = call(cb, "GET", "/v1/status", hdr)
                n += 1
                if st == 401:
                    break
                if st != 200:
                    raise RuntimeError(f"S8: /v1/status on B gave {st} while polling")
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError("S8: B still accepted the session 10 s after the sign-out on A")
            times.append((time.perf_counter() - t0) * 1000)
            polls.append(n)
        ca.close()
        cb.close()
        record_command("python3 bench/bench.py S8: 50 × (POST /v1/auth on A; GET /v1/status on B; POST /v1/signout on "
                       "A; GET /v1/status on B on one keep-alive connection until 401)")
        srt = sorted(times)
        mx, md = srt[-1], med(times)
        figure("S8", "revocation A → B: median time from sign-out response to first 401", md, "ms", "< 100 ms",
               md < 100, detail=f"50 tries; p90 {srt[44]:.1f} ms; min {srt[0]:.2f} ms; median "
                                f"{med(polls):.0f} polls of B before the 401")
        figure("S8", "revocation A → B: max over 50 tries", mx, "ms", "< 1 s", mx < 1000,
               detail=f"slowest five {', '.join(f'{x:.1f}' for x in srt[-5:])} ms")
    finally:
        a.stop()
        b.stop()
        pg_drop(name)


# --------------------------------------------------------------------------
# S12 (issue 19): ten instances on one PostgreSQL database, 200 sessions used
# round-robin across them, as a load balancer without sticky sessions spreads
# them. The database's work per signed-in call, the connections held, the
# calls served and failed, and a sign-out reaching all ten.

S12_INSTANCES = 10
S12_SESSIONS = 200
S12_USERS = 10
# Backends flush their statistics at most every second, and an idle one only
# after 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL): wait this long before the
# first pg_stat_database snapshot so that it holds everything before it. The
# last is taken after the instances stopped (a backend flushes as it exits).
S12_STATS_SETTLE = 11.5


def pg_xacts(db: str) -> int:
    return int(psql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'"))


def pg_connections(db: str) -> int:
    return int(psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}'"))


def gate_reads(servers) -> int:
    """The sessions the gate read, summed over `servers` (their /metrics)."""
    total = 0
    for srv in servers:
        _, body = http_get(srv.port, "/metrics")
        m = re.search(rb"^tessera_gate_session_reads_total (\d+)", body, re.M)
        total += int(m.group(1)) if m else 0
    return total


def s12_instances(ctx):
    # Cheap hashing so that 200 sign-ins take no time; the pool is the default.
    scenario = pg_scenario(ctx, "S12", "s12", memory_kib=256, iterations=1)
    if not scenario:
        return
    name, tmp, cfg = scenario
    servers = [Server(cfg, tmp, f"s12-{i}") for i in range(S12_INSTANCES)]
    peak = {"n": 0, "samples": 0}
    try:
        users = add_users(cfg, S12_USERS, prefix="svc")
        for srv in servers:   # one after the other: the first runs the migrations
            srv.start()
        record_command(f"tessera --config s12.toml serve --listen 127.0.0.1:$PORT_i   # i = 1..{S12_INSTANCES}, "
                       "one PostgreSQL database, default database_pool_size, [password] memory_kib=256")
        idle_connections = pg_connections(name)
        sessions = [sign_in(servers[i % S12_INSTANCES].port, users[i % S12_USERS]) for i in range(S12_SESSIONS)]
        sessions_file = tmp / "sessions.txt"
        sessions_file.write_text("".join(f"{x['jwt']} {x['csrf']}\n" for x in sessions))
        s12_revocation(servers)

        def load(seconds, note=""):
            """One wrk per instance, all at once, each rotating through every session."""
            out = [None] * S12_INSTANCES

            def run(i):
                out[i] = wrk(servers[i].url, duration=seconds, connections=4, threads=1, script="rotate.lua",
                             env={"BENCH_SESSIONS_FILE": str(sessions_file), "BENCH_OFFSET": str(i * 20)},
                             env_note=note)
            ts = [threading.Thread(target=run, args=(i,)) for i in range(S12_INSTANCES)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            return out

        # Warm-up: every instance sees every session once (two reads each: the
        # session and its user's roles), then the statistics settle.
        x0 = pg_xacts(name)
        load(2)
        time.sleep(S12_STATS_SETTLE)
        x1 = pg_xacts(name)

        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak["n"] = max(peak["n"], pg_connections(name))
                peak["samples"] += 1
                stop.wait(0.2)
        sampler = threading.Thread(target=sample)
        reads0 = gate_reads(servers)
        sampler.start()
        t0 = time.perf_counter()
        runs = load(ARGS.s12_duration, note="BENCH_SESSIONS_FILE=sessions.txt BENCH_OFFSET=20*i   # one wrk per instance, at once:")
        stop.set()
        sampler.join()
        calls = sum(r.get("requests", 0) for r in runs)
        failed = sum(r["non2xx"] for r in runs)
        socket_errors = [r["socket_errors"] for r in runs if r["socket_errors"]]
        rps = sum(r["rps"] for r in runs)
        reads = gate_reads(servers) - reads0
        for srv in servers:   # SIGTERM: each writes its last uses and exits
            if srv.proc:
                srv.proc.terminate()
        for srv in servers:
            srv.stop()
        time.sleep(0.5)
        window = time.perf_counter() - t0
        x2 = pg_xacts(name)
        per_call = (x2 - x1) / max(calls, 1)
        # Each heartbeat is a transaction, and wakes every listener of the
        # database, which reads the notice queue in a transaction of its own.
        beats = 4 * S12_INSTANCES * window * (1 + S12_INSTANCES)
        figure("S12", f"{S12_INSTANCES} instances, {S12_SESSIONS} sessions round-robin: database transactions per "
                      "signed-in call", per_call, "xacts/call", "≤ 0.05", per_call <= 0.05,
               detail=f"{x2 - x1:,} xacts (pg_stat_database xact_commit + xact_rollback) over {calls:,} calls: "
                      f"{ARGS.s12_duration} s of load, then the ten stopped ({window:.1f} s in all); of them "
                      f"at most {beats:,.0f} for heartbeats (4/s per instance, load or not, each waking all {S12_INSTANCES} listeners, whose wake-ups coalesce); the gates read {reads:,} sessions (2 xacts each); the warm-up before (each "
                      f"instance's first sight of each session) took {x1 - x0:,} more")
        figure("S12", "peak connections to the database (pg_stat_activity, sampled every 0.2 s)", peak["n"],
               "connections", "≤ 60", peak["n"] <= 60,
               detail=f"{peak['samples']} samples; {idle_connections} right after start; default database_pool_size "
                      f"on {CORES} cores + 1 listener per instance")
        figure("S12", f"calls/s over all {S12_INSTANCES} instances (GET /v1/status, 4 connections each)", rps,
               "req/s", detail="per instance: " + ", ".join(f"{r['rps']:,.0f}" for r in runs))
        figure("S12", "failed calls (non-2xx and socket errors)", failed + len(socket_errors), "calls", "0",
               failed == 0 and not socket_errors,
               detail="; ".join(socket_errors) or f"of {calls:,}")
    finally:
        for srv in servers:
            srv.stop()
        pg_drop(name)


def s12_revocation(servers):
    """50 × (sign in on instance k, use it on all ten, sign out on k, poll all
    ten until each refuses it): the time until the last refuses."""
    conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=10) for s in servers]

    def call(conn, method, path, headers, body=None):
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    times = []
    for i in range(50):
        k = i % len(servers)
        st, data = call(conns[k], "POST", "/v1/auth", {"Authorization": token_header("svc01"),
                                                        "Content-Type": "application/json"}, b"{}")
        if st != 200:
            raise RuntimeError(f"S12: sign-in gave {st}: {data[:200]!r}")
        js = json.loads(data)
        hdr = {"Authorization": f"Bearer {js['jwt']}", "X-CSRF-Token": js["csrf"]}
        for conn in conns:
            st, data = call(conn, "GET", "/v1/status", hdr)
            if st != 200:
                raise RuntimeError(f"S12: /v1/status gave {st} before the sign-out: {data[:200]!r}")
        time.sleep((i * 37 % 50) / 250.0)   # any phase of the heartbeats and timers
        st, data = call(conns[k], "POST", "/v1/signout", {**hdr, "Content-Type": "application/json"}, b"{}")
        if st not in (200, 204):
            raise RuntimeError(f"S12: sign-out gave {st}: {data[:200]!r}")
        t0 = time.perf_counter()
        waiting = set(range(len(servers)))
        while waiting:
            for j in list(waiting):
                st, _ = call(conns[j], "GET", "/v1/status", hdr)
                if st == 401:
                    waiting.discard(j)
                elif st != 200:
                    raise RuntimeError(f"S12: /v1/status gave {st} while polling")
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("S12: an instance still accepted the session 10 s after the sign-out")
        times.append((time.perf_counter() - t0) * 1000)
    for conn in conns:
        conn.close()
    record_command("python3 bench/bench.py S12: 50 × (POST /v1/auth on instance k; GET /v1/status on all ten; "
                   "POST /v1/signout on k; GET /v1/status on each of the ten, keep-alive, until all gave 401)")
    srt = sorted(times)
    figure("S12", "revocation reaching all ten: max over 50 tries (sign-out on one → 401 on the last)", srt[-1], "ms",
           "< 1 s", srt[-1] < 1000, detail=f"median {med(times):.1f} ms; p90 {srt[44]:.1f} ms; slowest five "
                                           f"{', '.join(f'{x:.1f}' for x in srt[-5:])} ms")


# --------------------------------------------------------------------------
# S2b: an unknown user and a wrong password must take the same time (issue 2)


def s2b_timing(ctx):
    """Sequential sign-ins on one keep-alive connection at the default hashing:
    a distinct unknown user name per try, and a wrong password for known users
    (bench01..bench20 in turn, two failures each, under the per-user throttle of 5;
    the per-address limit is lifted in every bench config), interleaved,
    alternating which of the two goes first."""
    srv = ctx["server"]
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)

    def attempt(user, password):
        hdr = {"Authorization": token_header(user, password), "Content-Type": "application/json"}
        t0 = time.perf_counter()
        conn.request("POST", "/v1/auth", body=b"{}", headers=hdr)
        r = conn.getresponse()
        r.read()
        took = (time.perf_counter() - t0) * 1000
        if r.status != 403:
            raise RuntimeError(f"S2b: a failed sign-in of {user} gave {r.status}, not 403")
        return took

    tries = 40
    known = [f"bench{i:02d}" for i in range(1, 21)]
    # Warm-up (not counted): bench21..bench24, and two unknown names.
    for k in range(2):
        attempt(f"bench{21 + k:02d}", "wrong-password")
        attempt(f"nobody-warm-{k}-{uuid.uuid4().hex[:8]}", PASSWORD)
    unknown, wrong = [], []
    for i in range(tries):
        pair = [("u", f"nobody-{i:02d}-{uuid.uuid4().hex[:8]}", PASSWORD), ("w", known[i % len(known)], "wrong-" + PASSWORD)]
        if i % 2:
            pair.reverse()
        for kind, user, pw in pair:
            (unknown if kind == "u" else wrong).append(attempt(user, pw))
    conn.close()
    record_command(f"python3 bench/bench.py S2b: {tries} × (POST /v1/auth unknown user; POST /v1/auth known user, wrong "
                   "password), interleaved, one keep-alive connection, default hashing")
    mu, mw = med(unknown), med(wrong)
    ratio = mu / mw
    q = lambda xs: f"p10 {sorted(xs)[len(xs) // 10]:.1f}, p90 {sorted(xs)[len(xs) * 9 // 10]:.1f} ms"
    figure("S2b", "failed sign-in, unknown user: median", mu, "ms", detail=f"{tries} tries, a new name each; {q(unknown)}")
    figure("S2b", "failed sign-in, wrong password: median", mw, "ms",
           detail=f"{tries} tries over 20 users (2 failures each; [throttle] user_failures stays 5); {q(wrong)}")
    figure("S2b", "failed sign-in timing: unknown user ÷ wrong password (medians)", ratio, "ratio",
           "0.8–1.2 (issue 2: within 20 %)", 0.8 <= ratio <= 1.2)


def s9_memory(ctx):
    tmp = ctx["tmp"] / "mem"
    tmp.mkdir()
    db, cfg = tmp / "mem.db", tmp / "tessera.toml"
    write_config(cfg, db)
    add_users(cfg, 1)
    srv = Server(cfg, tmp, "mem")
    srv.start()
    time.sleep(1.0)
    idle = srv.status_kib() / 1024
    srv.stop()
    figure("S9", "RSS idle (fresh start, default hashing)", idle, "MiB", "< 30 MiB", idle < 30)

    # 100,000 live sessions, inserted straight into the sessions table.
    now = int(time.time() * 1e6)
    con = sqlite3.connect(db)
    uid = con.execute("SELECT id FROM users WHERE name = 'bench01'").fetchone()[0]
    con.executemany("INSERT INTO sessions (id, user_id, csrf, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)",
                    ((str(uuid.uuid4()), uid, str(uuid.uuid4()), now, now) for _ in range(100_000)))
    con.commit()
    con.close()
    record_command("python3 sqlite3: INSERT INTO sessions ... × 100,000 (live: ended_at NULL, last_used_at now)")
    srv.start()
    time.sleep(1.0)
    big = srv.status_kib() / 1024
    srv.stop()
    per = (big - idle) * 1024 * 1024 / 100_000
    figure("S9", "RSS with 100,000 live sessions in the database (none used)", big, "MiB",
           detail=f"{per:+.1f} bytes per session")

    # Sessions that are used live in the gate's memory: sign in 10,000 times
    # with cheap hashing (a separate run), then use each session once.
    cheap = tmp / "cheap"
    cheap.mkdir()
    ccfg = cheap / "tessera.toml"
    write_config(ccfg, cheap / "cheap.db", memory_kib=256, iterations=1)
    users = add_users(ccfg, 16)
    srv = Server(ccfg, cheap, "cheap")
    srv.start()
    n = ARGS.sessions
    sessions: list[str] = []
    lock = threading.Lock()

    def worker(k):
        mine = users[k]
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        hdr = {"Authorization": token_header(mine), "Content-Type": "application/json"}
        got = []
        for _ in range(n // len(users)):
            conn.request("POST", "/v1/auth", body=b"{}", headers=hdr)
            r = conn.getresponse()
            body = r.read()
            if r.status == 200:
                js = json.loads(body)
                got.append(f"{js['jwt']} {js['csrf']}")
        conn.close()
        with lock:
            sessions.extend(got)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(len(users))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.perf_counter() - t0
    log(f"S9: {len(sessions)} sign-ins with cheap hashing in {took:.1f} s ({len(sessions) / took:.0f}/s)")
    sfile = cheap / "sessions.txt"
    sfile.write_text("\n".join(sessions) + "\n")
    time.sleep(3.0)  # let the gate's sweep settle
    before = srv.status_kib() / 1024
    r = wrk(srv.url + "/v1/status", duration=8, connections=32, script="lines.lua",
            env={"BENCH_SESSIONS_FILE": str(sfile), "BENCH_THREADS": str(WRK_THREADS)},
            env_note="BENCH_SESSIONS_FILE=sessions.txt")
    after = srv.status_kib() / 1024
    hwm = srv.status_kib("VmHWM") / 1024
    codes = r.get("json", {}).get("by_status", {})
    srv.stop()
    used = min(len(sessions), int(codes.get("200", 0)))
    per_used = (after - before) * 1024 * 1024 / used if used else 0
    figure("S9", f"RSS after using {used:,} distinct sessions through the gate", after, "MiB",
           detail=f"before {before:.1f} MiB, peak (VmHWM) {hwm:.1f} MiB; {r['rps']:,.0f} req/s cycling "
                  f"over them, statuses {codes}; separate run with [password] memory_kib=256, iterations=1")
    figure("S9", "memory per used session", per_used, "bytes", "< 1 KiB", per_used < 1024)
    figure("S9", "memory per stored session", per, "bytes", "< 1 KiB", per < 1024)


def s10_startup(ctx):
    srv = Server(ctx["config"], ctx["tmp"], "startup")
    times = []
    for _ in range(ARGS.startups):
        times.append(srv.start() * 1000)
        srv.stop()
    record_command("python3: Popen(tessera --config tessera.toml serve --listen 127.0.0.1:$PORT), poll GET /readyz every 1 ms until 200")
    figure("S10", "start-up: spawn → first /readyz 200 (existing database)", med(times), "ms", "< 200 ms",
           med(times) < 200, detail=f"runs {', '.join(f'{x:.0f}' for x in times)}")


# --------------------------------------------------------------------------
# Peers: datasette and Directus (optional, --peers)


def peers(ctx):
    import peers as P  # bench/peers.py
    P.run(ctx, sys.modules[__name__])


# --------------------------------------------------------------------------
# Report


def versions():
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml",
                            "Cargo.lock", "migrations"], capture_output=True, text=True).stdout.strip()
    VERSIONS["tessera"] = os.environ.get("TESSERA_BENCH_VERSION") or (
        f"git {rev}" + (" + uncommitted changes in the work tree" if dirty else ""))
    w = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    VERSIONS["wrk"] = (w.stdout + w.stderr).splitlines()[0].strip()
    VERSIONS["rustc"] = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    VERSIONS["python"] = platform.python_version()


def machine():
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"nproc": CORES, "cpu": model, "memory": f"{int(mem) / 1024 / 1024:.1f} GiB",
            "kernel": platform.release()}


def fmt_value(v, unit):
    if v is None:
        return "—"
    if unit in ("req/s", "rows/s", "bytes"):
        return f"{v:,.0f}"
    if unit == "ratio":
        return f"{v:.2f}" if v < 10 else f"{v:,.1f}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"


def write_report(started: float, date=None, minutes=None):
    m = machine()
    date = date or dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    minutes = minutes if minutes is not None else (time.time() - started) / 60
    LAST.write_text(json.dumps({"results": RESULTS, "commands": COMMANDS, "notes": NOTES, "versions": VERSIONS,
                                "date": date, "minutes": minutes,
                                "args": {k: getattr(ARGS, k) for k in ("runs", "duration", "probe_rate",
                                                                       "passthrough")}}, indent=1))
    lines = [
        "# tessera benchmarks",
        "",
        "Written by `bench/run` (see `bench/README.md`); do not edit by hand. Every figure is the",
        f"median of {ARGS.runs} runs unless it says otherwise; load generator and servers share the",
        "machine's cores, so ratios measured side by side in one run are the figures to trust.",
        "",
        f"- Date: {date} (suite took {minutes:.1f} min)",
        f"- Machine: `nproc` = {m['nproc']}, CPU `{m['cpu']}`, {m['memory']} RAM, Linux {m['kernel']}",
        "- Versions: " + "; ".join(f"{k} {v}" for k, v in VERSIONS.items()),
        f"- Load: wrk, {WRK_THREADS} threads, {ARGS.duration} s per run, 64 connections unless it says otherwise;"
        f" latency probe at {ARGS.probe_rate} req/s per path on one keep-alive connection",
        "",
        "![ratios](bench/ratios.png)",
        "",
        "| # | figure | value | unit | target | verdict | detail |",
        "|---|---|---:|---|---|---|---|",
    ]
    for r in RESULTS:
        verdict = {True: "pass", False: "**MISS**", None: ""}[r["ok"]]
        lines.append(f"| {r['id']} | {r['name']} | {fmt_value(r['value'], r['unit'])} | {r['unit']} | "
                     f"{r['target']} | {verdict} | {r['detail']} |")
    if NOTES:
        lines += ["", "## Not measured in this run", ""] + [f"- {n}" for n in NOTES]
    notes_file = BENCH / "NOTES.md"
    if notes_file.exists():
        lines += ["", notes_file.read_text().strip()]
    lines += ["", "## Exact commands", "", "Everything above was run by:", "", "    bench/run " +
              " ".join(ARGS.passthrough), "", "which ran, against servers on 127.0.0.1:", "", "```"]
    lines += COMMANDS + ["```", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    log(f"wrote {ROOT / 'BENCHMARKS.md'}")


def write_chart():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        NOTES.append("no chart: matplotlib is not installed")
        return
    bars = []  # (label, value, targets, marks, ok)
    for r in RESULTS:
        if r["unit"] != "ratio" or r["value"] is None:
            continue
        rng = re.search(r"([\d.]+)\s*[–-]\s*([\d.]+)", r["target"])
        t = re.search(r"([≥≤])\s*([\d.]+)", r["target"])
        if rng:
            lo_, hi_ = float(rng.group(1)), float(rng.group(2))
            bars.append((f"{r['id']} {r['name']}", r["value"], [lo_, hi_], [f"{lo_:g}", f"{hi_:g}"], r["ok"]))
        elif t:
            bars.append((f"{r['id']} {r['name']}", r["value"], [float(t.group(2))],
                         [("≥ " if t.group(1) == "≥" else "≤ ") + f"{float(t.group(2)):g}"], r["ok"]))
    if not bars:
        return
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(bars) + 1.6))
    for i, (label, v, targets, marks, ok) in enumerate(bars):
        ax.barh(i, v, color="#3a923a" if ok else "#c8433a", height=0.6)
        for target, mark in zip(targets, marks):
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black", lw=2)
            ax.text(target, i + 0.42, mark, ha="center", va="bottom", fontsize=7)
        ax.text(max(v, *targets) * 1.06, i, f"{v:.2f}" + ("" if ok else "  (miss)"), va="center", fontsize=9)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ratio (log scale); black tick: target (two: a range); green: met; red: missed", fontsize=9)
    ax.set_title(f"tessera benchmark ratios — {dt.date.today()} — {CORES} cores, median of {ARGS.runs} runs",
                 fontsize=10)
    lo = min(min(b[1] for b in bars), min(min(b[2]) for b in bars)) / 2
    hi = max(max(b[1] for b in bars), max(max(b[2]) for b in bars)) * 8
    ax.set_xlim(lo, hi)
    fig.tight_layout()
    fig.savefig(BENCH / "ratios.png", dpi=110)
    log(f"wrote {BENCH / 'ratios.png'}")


# --------------------------------------------------------------------------


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--probe-rate", type=int, default=200, help="req/s of each S3 latency probe")
    ap.add_argument("--sessions", type=int, default=10_000, help="sessions signed in and used in S9")
    ap.add_argument("--startups", type=int, default=7)
    ap.add_argument("--s12-duration", type=int, default=10, help="seconds of load in S12")
    ap.add_argument("--peers", action="store_true", help="also install and measure datasette and Directus")
    ap.add_argument("--only", default="", help="comma-separated scenario ids, e.g. S1,S10")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite BENCHMARKS.md and the chart from bench/last-run.json (after editing bench/NOTES.md)")
    ARGS = ap.parse_args()
    ARGS.passthrough = sys.argv[1:]
    started = time.time()
    if ARGS.report_only:
        last = json.loads(LAST.read_text())
        RESULTS[:], COMMANDS[:], NOTES[:] = last["results"], last["commands"], last["notes"]
        VERSIONS.update(last["versions"])
        for k in ("runs", "duration", "probe_rate", "passthrough"):
            setattr(ARGS, k, last["args"][k])
        write_chart()
        write_report(started, last["date"], last["minutes"])
        return
    versions()
    tmp = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    log(f"work dir {tmp}")
    cfg, db = tmp / "tessera.toml", tmp / "bench.db"
    write_config(cfg, db)
    users = add_users(cfg, 32)
    auth_file = tmp / "auth.txt"
    auth_file.write_text("".join(token_header(u) + "\n" for u in users))
    srv = Server(cfg, tmp)
    ctx = {"tmp": tmp, "config": cfg, "db": db, "server": srv, "auth_file": auth_file, "users": users}
    try:
        srv.start()
        record_command("tessera --config tessera.toml serve --listen 127.0.0.1:$PORT")
        log(f"tessera ready at {srv.url}")
        if want("S1", "S3", "S4", "S16"):
            s1_gate(ctx)
        if want("S2"):
            s2_signin(ctx)
        if want("S2B"):
            s2b_timing(ctx)
        if want("S3"):
            s3_storm(ctx)
        if want("S4", "S6", "S13", "S14", "S16"):
            s4_query_sqlite(ctx)
        if want("S11"):
            s11_keys(ctx)
        srv.stop()
        if want("S5", "S6", "S16"):
            s5_s6_postgres(ctx)
        if want("S8"):
            s8_revocation(ctx)
        if want("S12"):
            s12_instances(ctx)
        if want("S9"):
            s9_memory(ctx)
        if want("S10"):
            s10_startup(ctx)
        if want("S15"):
            s15_connections(ctx)
        if ARGS.peers:
            peers(ctx)
        else:
            NOTES.append("Peers (datasette, Directus; S4 and S5 ratios, S7) not run: pass `--peers` (installs them from "
                         "PyPI and npm into ~/.cache/tessera-bench).")
    finally:
        srv.stop()
        write_chart()
        write_report(started)
        if not ARGS.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
