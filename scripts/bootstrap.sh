#!/usr/bin/env bash
# Installs what is missing on a Debian 12 machine: system packages, running PostgreSQL and
# Redis, a database role for this user, and the virtualenv with the pinned Python dependencies.
# Safe to run again; it only does what is not done yet.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
WITH_TEST_TOOLS="${WITH_TEST_TOOLS:-0}"

say() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages ---------------------------------------------------------------------
packages=(python3 python3-venv python3-dev build-essential pkg-config
          libfuse3-dev fuse3 postgresql redis-server rsync)
if [ "$WITH_TEST_TOOLS" = 1 ]; then
    packages+=(chromium syncthing rclone)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL and Redis: use them if running, start them if not ---------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432 && ! pg_isready -q; then
    say "starting PostgreSQL"
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do pg_isready -q && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
        --dir /var/lib/redis --logfile /var/log/redis/realize.log
    for _ in $(seq 1 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The default DATABASE_URL reaches PostgreSQL over its Unix socket as this OS user, which
# Debian's peer authentication allows once a role of that name exists.
me="$(id -un)"
if ! psql -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    say "creating PostgreSQL role $me"
    as_root runuser -u postgres -- createuser --createdb "$me"
fi

# --- Python virtualenv ---------------------------------------------------------------------
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$WITH_TEST_TOOLS"
if [ ! -f "$stamp" ]; then
    say "installing Python dependencies into $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    if [ "$WITH_TEST_TOOLS" = 1 ]; then
        "$VENV/bin/pip" install -q -e '.[test]'
    else
        "$VENV/bin/pip" install -q -e .
    fi
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
say "ready"
