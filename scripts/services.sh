#!/usr/bin/env bash
# Make sure the real services the integration tests use are up (CI machines start them; a
# restarted machine may not have). Commands from the machine notes; each is a no-op when running.
set -u
wait_port() {  # host port seconds
  python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + secs
while time.time() < end:
    try:
        socket.create_connection((host, port), 1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1)
PY
}
if ! wait_port 127.0.0.1 5432 1; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 127.0.0.1 5432 60 || { echo "PostgreSQL did not come up" >&2; exit 1; }
fi
if ! wait_port 127.0.0.1 5672 1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_port 127.0.0.1 5672 120 || { echo "RabbitMQ did not come up" >&2; exit 1; }
fi
echo "PostgreSQL and RabbitMQ are up"

# The console's browser tests drive Debian's Chromium (Playwright with executable_path); CJK fonts
# so the screenshots show the Chinese pages as people see them.
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  echo "installing chromium and fonts-noto-cjk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium fonts-noto-cjk >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-noto-cjk >/dev/null; } \
    || { echo "could not install chromium" >&2; exit 1; }
fi
echo "chromium: $(chromium --version 2>/dev/null | head -n1)"
