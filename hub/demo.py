"""``hub demo``: the embedded default as one process tree.

SQLite (WAL) + kombu's filesystem transport under ``var/``, the four sandbox systems with a
traffic generator, and the hub's web, ingest worker, delivery worker and poller processes. Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from hub.config import HubConfig
from hub.crypto import generate_key

DEMO_STREET = "310104011"  # 斜土路街道 in the sandbox's grid layer
SANDBOX_SYSTEMS = Path(__file__).resolve().parent.parent / "sandbox" / "systems.demo.yaml"


def _console_account(hub_cmd: list[str], env: dict[str, str], var: Path, username: str = "admin",
                     role: str = "admin", scope: str = "", display_name: str = "演示管理员") -> str:
    """A demo console account (once per var directory): a random password, kept in a file only
    the owner can read, printed at start."""
    password_file = var / f"{username}.password"
    if password_file.exists():
        return password_file.read_text().strip()
    password = "gh-" + secrets.token_urlsafe(12)
    subprocess.run([*hub_cmd, "--log-level", "WARNING", "users", "create", username, "--role", role, "--scope", scope,
                    "--display-name", display_name, "--password-stdin"], input=password + "\n", text=True,
                   env=env, check=True, capture_output=True)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password


def _secret_key(var: Path) -> str:
    if os.environ.get("GRIDHUB_SECRET_KEY"):
        return os.environ["GRIDHUB_SECRET_KEY"]
    key_file = var / "secret.key"
    if not key_file.exists():
        key_file.write_text(generate_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.3)
    return False


def _systems_file(var: Path, sandbox_port: int) -> Path:
    """The demo systems, re-pointed when the sandbox runs on other ports."""
    data = yaml.safe_load(SANDBOX_SYSTEMS.read_text(encoding="utf-8"))
    items = data.get("systems", []) if isinstance(data, dict) else data
    for item in items:
        for old in range(9101, 9105):
            item["base_url"] = item["base_url"].replace(f":{old}", f":{sandbox_port + old - 9101}")
    out = var / "systems.demo.yaml"
    out.write_text(yaml.safe_dump({"systems": items}, allow_unicode=True), encoding="utf-8")
    return out


def run_demo(port: int = 8000, sandbox_port: int = 9101, rate: float = 6.0) -> int:
    cfg = HubConfig.from_env()
    var = cfg.var_path.resolve()
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GRIDHUB_SECRET_KEY=_secret_key(var), GRIDHUB_VAR_DIR=str(var),
               GRIDHUB_PUBLIC_URL=f"http://127.0.0.1:{port}")
    hub_cmd = [sys.executable, "-m", "hub.cli"]
    children: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=env)
        children.append(proc)
        return proc

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        subprocess.run([*hub_cmd, "--log-level", "WARNING", "db", "upgrade"], env=env, check=True)
        # a burst at start so every system has records within the first poll, then steady traffic
        if not (var / "grid_layer.geojson").exists():  # the centre's 单元网格 layer: here the sandbox's
            subprocess.run([sys.executable, "-m", "sandbox.gridlayer", "--out", str(var / "grid_layer.geojson")],
                           env=env, check=True, capture_output=True)
        spawn([sys.executable, "-m", "sandbox.run", "--base-port", str(sandbox_port), "--traffic",
               "--burst", "12", "--rate", str(rate), "--time-scale", "60",
               "--police-webhook", f"http://127.0.0.1:{port}/hooks/police_patrol"])
        if not _wait_http(f"http://127.0.0.1:{sandbox_port + 1}/_sandbox/faults"):
            print("sandbox did not start", file=sys.stderr)
            return 1
        subprocess.run([*hub_cmd, "--log-level", "WARNING", "systems", "import",
                        str(_systems_file(var, sandbox_port))],
                       env=env, check=True)
        token = subprocess.run([*hub_cmd, "--log-level", "WARNING", "tokens", "create", "demo-admin",
                                "--role", "admin"], env=env, check=True, capture_output=True,
                               text=True).stdout.strip()
        token_file = var / "admin.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        password = _console_account(hub_cmd, env, var)
        # a grid worker of 斜土路街道 (the sandbox's street), to report and verify from a phone
        worker_password = _console_account(hub_cmd, env, var, "wangwu", "grid_worker", DEMO_STREET, "演示网格员王五")
        spawn([*hub_cmd, "serve", "--port", str(port)])
        spawn([*hub_cmd, "worker", "--queue", "ingest"])
        spawn([*hub_cmd, "worker", "--queue", "outbound"])  # delivers the outbox to the systems
        spawn([*hub_cmd, "poll"])
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        print(f"""
GridHub is running (embedded default: SQLite + kombu filesystem transport in {var})
  console   http://127.0.0.1:{port}/console/   (user admin, password {password}; also in {var / "admin.password"})
  grid      http://127.0.0.1:{port}/console/report   (grid worker wangwu, password {worker_password}; phone-sized)
  API       http://127.0.0.1:{port}/api/v1/cases
  API docs  http://127.0.0.1:{port}/api/docs   (OpenAPI: /api/openapi.json)
  token     {token}   (also in {token_file})
  try:      curl -H "Authorization: Bearer $(cat {token_file})" http://127.0.0.1:{port}/api/v1/cases
Ctrl-C stops everything.
""", flush=True)
        while all(p.poll() is None for p in children):
            time.sleep(1)
        print("a process stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
