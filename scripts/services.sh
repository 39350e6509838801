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
