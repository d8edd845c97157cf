"""deploy/ checked by the tools that will read it on the server: `nginx -t` and a live nginx in
front of a stand-in backend, `systemd-analyze verify` and `security` on the units, the web and a
worker under the kernel's memory-deny-write-execute, the example env file under production's
rules, and a restore drill through deploy/backup against a real database.

Paths the files name on a server (/opt/hotline, /etc/letsencrypt/…, /etc/nginx/…) are rewritten
into temporary copies; each test first checks the path is there, so a rewrite cannot quietly
test something else."""
from __future__ import annotations

import ctypes
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from conftest import ENV_NAMES, POSTGRES_URL, ROOT, _postgres_available, free_port, wait_until
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, make_url, text

DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
HOST = "gateway.example.org"
CERT_DIR = f"/etc/letsencrypt/live/{HOST}/"
STAFF_NETWORKS = "/etc/nginx/hotline-staff-networks.conf"
UNITS = ("hotline-web.service", "hotline-worker@.service", "hotline-backup.service", "hotline-backup.timer")
# systemd-analyze's exposure score (0 best, 10 worst); the units score well under it, and losing
# a few hardening lines takes one over.
MAX_EXPOSURE = 2.0
AT_CALLBACK_TIMEOUT_SECONDS = 10  # Africa's Talking gives up on a callback after this long
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{tool} is not installed (`make system-deps` installs it with apt-get)")
    return path


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)


# -- nginx ----------------------------------------------------------------------------------

def nginx_prefix(tmp_path: Path, edit=lambda name, text: text, staff: str = None) -> Path:
    """A temporary nginx prefix holding the two site files, with the certificate (made now with
    openssl), the staff-networks include and the logs moved into it."""
    prefix = tmp_path / "nginx"
    (prefix / "tls").mkdir(parents=True)
    (prefix / "log").mkdir()
    made = run([need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-days", "1", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1",
                "-keyout", prefix / "tls/privkey.pem", "-out", prefix / "tls/fullchain.pem"])
    assert made.returncode == 0, made.stderr
    (prefix / "staff-networks.conf").write_text(staff or (DEPLOY / "nginx/staff-networks.conf").read_text())
    moves = {CERT_DIR: f"{prefix}/tls/", STAFF_NETWORKS: f"{prefix}/staff-networks.conf",
             "/var/log/nginx/": f"{prefix}/log/"}
    sites = {"hotline-http.conf": (), "hotline.conf": (CERT_DIR, STAFF_NETWORKS, "/var/log/nginx/")}
    for name, paths in sites.items():
        site = (DEPLOY / "nginx" / name).read_text()
        for path in paths:
            assert path in site, f"{name} no longer names {path}: update this test's rewrite"
        for path, moved in moves.items():
            site = site.replace(path, moved)
        (prefix / name).write_text(edit(name, site))
    temp = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                     "scgi"))
    (prefix / "nginx.conf").write_text(f"""daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/log/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/log/access.log;
    {temp}
    include {prefix}/hotline-http.conf;
    include {prefix}/hotline.conf;
}}
""")
    return prefix


def nginx_test(prefix: Path) -> subprocess.CompletedProcess:
    return run([need("nginx"), "-t", "-p", prefix, "-c", prefix / "nginx.conf", "-e", prefix / "log/error.log"])


def test_nginx_accepts_the_site(tmp_path):
    result = nginx_test(nginx_prefix(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_nginx_t_fails_on_a_typo(tmp_path):
    """The harness must be able to fail: a misspelt directive in the site is caught."""
    typo = lambda name, site: site.replace("proxy_read_timeout", "proxy_read_timout")  # noqa: E731
    result = nginx_test(nginx_prefix(tmp_path, typo))
    assert result.returncode != 0
    assert "unknown directive" in result.stderr


def test_proxy_timeouts_answer_before_africas_talking_gives_up():
    site = (DEPLOY / "nginx/hotline.conf").read_text()
    timeouts = dict(re.findall(r"^\s*(proxy_\w+_timeout)\s+(\d+)s;", site, re.M))
    assert set(timeouts) == {"proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"}
    assert all(int(seconds) < AT_CALLBACK_TIMEOUT_SECONDS for seconds in timeouts.values()), timeouts


class _Echo(http.server.BaseHTTPRequestHandler):
    """Stands in for granian: answers with the path and the headers nginx forwarded."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def live_nginx(tmp_path):
    """nginx running the site on free loopback ports, in front of the echo backend; the staff
    networks shut to everyone, so the restriction shows from loopback."""
    need("nginx")
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    https_port, http_port = free_port(), free_port()

    def ports(name, site):
        names = ("listen 80;", "listen [::]:80;") if name == "hotline-http.conf" else (
            "listen 443 ssl http2;", "listen [::]:443 ssl http2;", "server 127.0.0.1:8000;")
        for line in names:
            assert line in site, f"{name} no longer has {line}: update this test's rewrite"
        site = site.replace("listen [::]:443 ssl http2;", "").replace("listen [::]:80;", "")
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        return site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{backend.server_port};")

    prefix = nginx_prefix(tmp_path, ports, staff="deny all;\n")
    error_log = prefix / "log/error.log"
    proc = subprocess.Popen([need("nginx"), "-p", prefix, "-c", prefix / "nginx.conf", "-e", error_log],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE or a proxy in the environment wins over `verify`
        session.verify = str(prefix / "tls/fullchain.pem")
        base = f"https://127.0.0.1:{https_port}"

        def up():
            try:
                return session.get(f"{base}/healthz", timeout=1).ok
            except requests.ConnectionError:
                assert proc.poll() is None, error_log.read_text()
                return False

        wait_until(up)
        yield {"session": session, "https": base, "http": f"http://127.0.0.1:{http_port}", "prefix": prefix}
    finally:
        proc.terminate()
        proc.wait(10)
        backend.shutdown()
        backend.server_close()


def test_live_nginx_forwards_callbacks_as_proxy_hops_1_expects(live_nginx):
    session, base = live_nginx["session"], live_nginx["https"]
    answer = session.post(f"{base}/at/ussd?token=s3cret-token", data={"text": ""},
                          headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    seen = answer.json()
    assert seen["path"] == "/at/ussd?token=s3cret-token"
    # The app trusts the last X-Forwarded-For entry (PROXY_HOPS=1): nginx's peer, never the caller's claim.
    assert seen["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert seen["headers"]["X-Forwarded-Proto"] == "https"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["headers"]["X-Request-Id"])
    log = (live_nginx["prefix"] / "log/hotline.access.log").read_text()
    assert "/at/ussd" in log and "s3cret-token" not in log


def test_live_nginx_keeps_staff_pages_to_staff_networks(live_nginx):
    session, base = live_nginx["session"], live_nginx["https"]
    for path in ("/console/sign-in", "/metrics"):
        assert session.get(f"{base}{path}", timeout=5).status_code == 403, path
    assert session.get(f"{base}/readyz", timeout=5).status_code == 200


def test_live_nginx_redirects_http_and_refuses_large_bodies(live_nginx):
    session = live_nginx["session"]
    redirect = session.get(f"{live_nginx['http']}/at/ussd?token=x", allow_redirects=False, timeout=5)
    assert redirect.status_code == 301
    assert redirect.headers["Location"].startswith("https://") and redirect.headers["Location"].endswith(
        "/at/ussd?token=x")
    big = session.post(f"{live_nginx['https']}/at/sms", data={"text": "x" * 20_000}, timeout=5)
    assert big.status_code == 413


# -- systemd --------------------------------------------------------------------------------

def unit_copies(tmp_path: Path, edit=lambda name, text: text) -> list[Path]:
    """The units with /opt/hotline pointed at this checkout and its virtualenv, so verify can
    check that every ExecStart binary exists."""
    out = tmp_path / "units"
    out.mkdir()
    copies = []
    for name in UNITS:
        unit = (DEPLOY / "systemd" / name).read_text()
        if name.endswith(".service"):
            assert "/opt/hotline" in unit, f"{name} no longer names /opt/hotline: update this test's rewrite"
        unit = unit.replace("/opt/hotline/.venv/bin/", f"{VENV_BIN}/").replace("/opt/hotline", str(ROOT))
        (out / name).write_text(edit(name, unit))
        copies.append(out / name)
    return copies


def verify(units: list[Path]) -> str:
    """Everything systemd-analyze verify says: unknown keys and bad values are only warnings to
    it (exit 0), so a unit passes only when it says nothing at all."""
    result = run([need("systemd-analyze"), "verify", *units], cwd=units[0].parent)
    return (result.stdout + result.stderr).strip() or ("" if result.returncode == 0 else f"exit {result.returncode}")


def test_units_pass_systemd_analyze_verify(tmp_path):
    assert verify(unit_copies(tmp_path)) == ""


@pytest.mark.parametrize("typo", [("Restart=always", "Restrat=always"), ("Restart=always", "Restart=alway"),
                                  ("python -m workers", "pyhton -m workers")])
def test_verify_fails_on_a_typo(tmp_path, typo):
    """The harness must be able to fail: a misspelt key, value or binary is reported."""
    edit = lambda name, unit: unit.replace(*typo) if name == "hotline-worker@.service" else unit  # noqa: E731
    units = unit_copies(tmp_path, edit)
    assert typo[1] in units[1].read_text()
    assert verify(units) != ""


@pytest.mark.parametrize("name", ["hotline-web.service", "hotline-worker@.service", "hotline-backup.service"])
def test_units_are_hardened(tmp_path, name):
    unit = next(u for u in unit_copies(tmp_path) if u.name == name)
    result = run([need("systemd-analyze"), "security", "--offline=true", unit], cwd=unit.parent)
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
    text = unit.read_text()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/hotline", "ProtectHome=yes",
                 "PrivateTmp=yes", "PrivateDevices=yes", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
                 "CapabilityBoundingSet=\n", "EnvironmentFile=/etc/hotline/env", "User=hotline"):
        assert line in text, line


def test_worker_may_finish_its_job_before_systemd_kills_it():
    from gateway.settings import JOB_TIMEOUT_SECONDS

    unit = (DEPLOY / "systemd/hotline-worker@.service").read_text()
    assert int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1)) > JOB_TIMEOUT_SECONDS


# -- the services under memory-deny-write-execute -------------------------------------------

MDWE = ("import ctypes, os, sys\n"
        f"if ctypes.CDLL(None, use_errno=True).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0):\n"
        "    raise SystemExit('PR_SET_MDWE: ' + os.strerror(ctypes.get_errno()))\n"
        "os.execvp(sys.argv[1], sys.argv[1:])\n")


def base_env(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT), FLASK=str(VENV_BIN / "flask"))
    env.update({k: str(v) for k, v in values.items()})
    return env


def flask(env: dict, *args, ok: bool = True) -> subprocess.CompletedProcess:
    result = run([VENV_BIN / "flask", "--app", "gateway", *args], env=env, cwd=ROOT)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow
def test_web_and_worker_run_under_memory_deny_write_execute(tmp_path, redis_url):
    """The kernel's PR_SET_MDWE refuses what MemoryDenyWriteExecute=yes refuses (memory both
    writable and executable), and children inherit it: web and worker must still serve."""
    if ctypes.CDLL(None).prctl(PR_SET_MDWE + 1, 0, 0, 0, 0) < 0:  # PR_GET_MDWE
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later), so MemoryDenyWriteExecute cannot be tried")
    wrap = [sys.executable, "-c", MDWE]
    probe = run([*wrap, sys.executable, "-c",
                 "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)"])
    assert "Permission denied" in probe.stderr, "the harness must refuse writable+executable memory"

    port = free_port()
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.db'}", REDIS_URL=redis_url,
                   DATA_KEY=Fernet.generate_key().decode(), VAR_DIR=tmp_path / "var", STAFF_PASSWORD="mdwe drill pass")
    for args in (["db-upgrade"], ["responders", "demo"],
                 ["staff", "add", "--login", "mdwe", "--name", "MDWE", "--role", "coordinator"]):
        result = run([*wrap, VENV_BIN / "flask", "--app", "gateway", *args], env=env, cwd=ROOT)
        assert result.returncode == 0, result.stderr
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("web", "worker")}
    procs = [subprocess.Popen([*wrap, VENV_BIN / "granian", "--interface", "wsgi", "--workers", "1",
                               "--blocking-threads", "1", "--host", "127.0.0.1", "--port", str(port),
                               "--no-access-log", "--factory", "gateway:create_app"],
                              env=env, cwd=ROOT, stdout=logs["web"], stderr=subprocess.STDOUT),
             subprocess.Popen([*wrap, sys.executable, "-m", "workers"], env=env, cwd=ROOT, stdout=logs["worker"],
                              stderr=subprocess.STDOUT)]
    try:
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        http.trust_env = False

        def ready():
            assert all(p.poll() is None for p in procs), [(tmp_path / f"{n}.log").read_text() for n in logs]
            try:
                return http.get(f"{base}/readyz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=30)
        hop = {"sessionId": "mdwe1", "phoneNumber": "+6281234567890", "serviceCode": "*123#"}
        answer = http.post(f"{base}/at/ussd", data={**hop, "text": "1*1*1*98*10*2*1*1"}, timeout=5).text
        ref = re.search(r"Kode: ([A-Z0-9]{6})", answer).group(1)
        sink = tmp_path / "var/sms-sink.log"
        wait_until(lambda: sink.exists() and f"TPPO {ref}" in sink.read_text(), timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(f"{base}/console/sign-in").text).group(1)
        signed_in = http.post(f"{base}/console/sign-in", timeout=5,
                              data={"login": "mdwe", "password": "mdwe drill pass", "csrf_token": token})
        assert signed_in.ok and ref in http.get(f"{base}/console/cases/{ref}", timeout=5).text
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        for log in logs.values():
            log.close()


# -- the example env file -------------------------------------------------------------------

@pytest.mark.slow
def test_env_example_passes_production_checks_once_its_secrets_are_generated(tmp_path, redis_url):
    """Every setting production needs is in deploy/env.example, and no real secret is."""
    values = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    for name in ("DATA_KEY", "WEBHOOK_TOKEN", "SECRET_KEY", "METRICS_TOKEN", "AT_USERNAME", "AT_API_KEY"):
        assert values[name] == "", f"{name} must be left for the operator to generate"
    assert values["GATEWAY_ENV"] == "production" and values["PROXY_HOPS"] == "1"
    readme = (ROOT / "README.md").read_text()
    for name in values:
        assert f"`{name}`" in readme or name.startswith("BACKUP_") or name.startswith("SMS8X8_"), name
    import secrets

    values.update(DATA_KEY=Fernet.generate_key().decode(), WEBHOOK_TOKEN=secrets.token_urlsafe(48),
                  SECRET_KEY=secrets.token_urlsafe(48), METRICS_TOKEN=secrets.token_urlsafe(48),
                  AT_USERNAME="tppo-live", AT_API_KEY=secrets.token_hex(32),
                  DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.db'}", REDIS_URL=redis_url, VAR_DIR=tmp_path)
    result = flask(base_env(**values), "validate-config", ok=False)
    assert result.returncode == 0, result.stdout + result.stderr
    del values["METRICS_TOKEN"]
    refused = flask(base_env(**values), "validate-config", ok=False)
    assert refused.returncode != 0 and "METRICS_TOKEN" in refused.stderr


# -- the restore drill ----------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def drill_databases(request, tmp_path):
    """Two empty databases, as production's and the one a backup is restored into."""
    if request.param == "sqlite":
        yield tuple(f"sqlite:///{tmp_path / side / 'gateway.db'}" for side in ("live", "restored"))
        return
    if not _postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set TEST_POSTGRES_URL): PostgreSQL case skipped")
    for tool in ("pg_dump", "pg_restore", "psql"):
        need(tool)
    names = [f"drill_{uuid.uuid4().hex[:10]}_{side}" for side in ("live", "restored")]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield tuple(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
                    for name in names)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


DRILL_PASSWORD = "restore drill password"
SMS_WORDS = "adik saya dibawa calo ke Malaysia dari Lahat"


def console(monkeypatch, env: dict):
    """The app as the web serves it with these settings, signed in as the drill's coordinator."""
    for name, value in env.items():
        if name in ENV_NAMES:
            monkeypatch.setenv(name, value)
    from gateway import create_app

    app = create_app()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    client.post("/console/sign-in", data={"login": "drill", "password": DRILL_PASSWORD, "csrf_token": token})
    return app, client


def read_cases(client) -> dict[str, str]:
    """Every case page as the coordinator sees it, up to the list of who opened it (each reading
    adds to that list) and without the per-session form tokens."""
    refs = sorted(set(re.findall(r'href="/console/cases/([A-Z0-9]{6})"', client.get("/console/cases").text)))
    pages = {}
    for ref in refs:
        page = client.get(f"/console/cases/{ref}")
        assert page.status_code == 200 and 'id="seen-by"' in page.text, page.text
        page = page.text.split('id="seen-by"')[0]  # whatever the console's language
        pages[ref] = re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    return pages


def backup(env: dict, *args) -> subprocess.CompletedProcess:
    return run([DEPLOY / "backup", *args], env=env, cwd=ROOT)


@pytest.mark.slow
def test_restore_drill(drill_databases, tmp_path, redis_url, monkeypatch):
    """Reports filed through the app, backed up and restored with deploy/backup as docs/deploy.md
    says, read back identically with the same DATA_KEY, and by no one with another key."""
    live_url, restored_url = drill_databases
    env = base_env(DATABASE_URL=live_url, REDIS_URL=redis_url, DATA_KEY=Fernet.generate_key().decode(),
                   VAR_DIR=tmp_path / "var", STAFF_PASSWORD=DRILL_PASSWORD)
    flask(env, "db-upgrade")
    flask(env, "responders", "add", "--agency", "polres_oki", "--name", "Piket PPA OKI", "--phone", "+6281277776666")
    flask(env, "responders", "add", "--agency", "polres_lahat", "--name", "Piket PPA Lahat", "--phone",
          "+6281277775555")
    flask(env, "staff", "add", "--login", "drill", "--name", "Drill", "--role", "coordinator")

    app, client = console(monkeypatch, env)
    for session, phone, contact in (("drill1", "+6281234567890", "1"), ("drill2", "+6281311112222", "2")):
        hop = {"sessionId": session, "phoneNumber": phone, "serviceCode": "*123#"}
        answer = client.post("/at/ussd", data={**hop, "text": f"1*1*1*98*10*2*{contact}*1"}).text
        assert "Kode:" in answer, answer
    assert client.post("/at/sms", data={"from": "+6281399998888", "to": "12345", "text": SMS_WORDS,
                                        "id": "ATSMS_drill1"}).status_code == 200
    worker = run([sys.executable, "-m", "workers", "--burst"], env=env, cwd=ROOT)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    first = sorted(re.findall(r'href="/console/cases/([A-Z0-9]{6})"', client.get("/console/cases").text))[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/console/cases/{first}").text).group(1)
    client.post(f"/console/cases/{first}/note", data={"note": "Dihubungi, aman", "csrf_token": token})

    dump = backup(env, "dump", tmp_path / "drill.backup")
    assert dump.returncode == 0, dump.stderr
    live = read_cases(client)
    app.extensions["gateway"].runtime.db.dispose()
    assert len(live) == 3
    assert any(SMS_WORDS in page for page in live.values()) and any("Dihubungi, aman" in p for p in live.values())

    restored_env = {**env, "DATABASE_URL": restored_url}
    restore = backup(restored_env, "restore", tmp_path / "drill.backup")
    assert restore.returncode == 0, restore.stderr
    again = backup(restored_env, "restore", tmp_path / "drill.backup")
    assert again.returncode != 0 and "restore into" in again.stderr, "a restore must never overwrite a database"
    check = backup(restored_env, "check")
    assert check.returncode == 0 and "2 duty numbers decrypted" in check.stdout, check.stdout + check.stderr

    app, client = console(monkeypatch, restored_env)
    assert read_cases(client) == live
    app.extensions["gateway"].runtime.db.dispose()

    other_key = {**restored_env, "DATA_KEY": Fernet.generate_key().decode()}
    check = backup(other_key, "check")
    assert check.returncode != 0 and "DATA_KEY cannot decrypt this database" in check.stderr, check.stderr
    app, client = console(monkeypatch, other_key)
    page = client.get(f"/console/cases/{sorted(live)[0]}")
    assert page.status_code == 500 and SMS_WORDS not in page.text
    app.extensions["gateway"].runtime.db.dispose()
