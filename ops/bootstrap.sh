#!/usr/bin/env bash
# Make this machine ready to run (and with --test, to test) Portico. Idempotent.
#   - a virtualenv in .venv with the project installed (re-installed when pyproject.toml changes)
#   - RabbitMQ answering on AMQP_URI with the management plugin (installed/started if needed)
#   - with --test: PostgreSQL on 127.0.0.1:5432 and Debian's chromium for browser tests
#   - with --bench: wrk, the load generator of the benchmarks
# Installs with apt-get only when running as root; otherwise says in one line what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-run}
PYTHON=${PYTHON:-}
say() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
APT_UPDATED=0
apt_install() {
  is_root || die "$1 is missing and I am not root: install it ($*) or run as root"
  if [ "$APT_UPDATED" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
wait_port() { # host port seconds what
  for _ in $(seq 1 $(( $3 * 5 ))); do port_open "$1" "$2" && return 0; sleep 0.2; done
  die "$4 did not answer on $1:$2 within $3 s"
}

# -- Python ---------------------------------------------------------------------------------
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not (3,11) <= sys.version_info[:2] < (3,13))'; then
      PYTHON=$candidate; break
    fi
  done
fi
[ -n "$PYTHON" ] || { is_root && apt_install python3 python3-venv python3-dev && PYTHON=python3; } || die "Python 3.11 or 3.12 is missing"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { apt_install python3-venv && "$PYTHON" -m venv .venv; }
fi
stamp=.venv/.portico-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c 'import nameko, kombu, sqlalchemy, fpdf' || die "pip install failed"
  echo "$want" > "$stamp"
fi

# -- fonts for PDFs ------------------------------------------------------------------------------
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -z "${PORTICO_FONT_DIR:-}" ]; then
  apt_install fonts-dejavu-core
fi

# -- RabbitMQ -------------------------------------------------------------------------------------
AMQP_HOST=127.0.0.1; AMQP_PORT=5672
if ! port_open $AMQP_HOST $AMQP_PORT; then
  if ! command -v rabbitmq-server >/dev/null; then apt_install rabbitmq-server; fi
  say "starting RabbitMQ"
  if is_root; then rabbitmq-server -detached >/dev/null 2>&1 || true
  else die "RabbitMQ is installed but not running; start it (rabbitmq-server -detached as root)"; fi
  wait_port $AMQP_HOST $AMQP_PORT 60 RabbitMQ
fi
if ! port_open 127.0.0.1 15672; then
  command -v rabbitmq-plugins >/dev/null || die "RabbitMQ management plugin is off and rabbitmq-plugins is not here"
  rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
  wait_port 127.0.0.1 15672 60 "RabbitMQ management"
fi

if [ "$MODE" = "--bench" ]; then
  command -v wrk >/dev/null || apt_install wrk
  exit 0
fi
[ "$MODE" = "--test" ] || exit 0

# -- PostgreSQL (tests that need concurrency and numbering) ------------------------------------
if ! port_open 127.0.0.1 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  is_root || die "PostgreSQL is installed but not running on 127.0.0.1:5432; start it"
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1 || true
  wait_port 127.0.0.1 5432 60 PostgreSQL
fi

# -- chromium for the browser tests ------------------------------------------------------------
if ! command -v chromium >/dev/null; then apt_install chromium; fi
exit 0
