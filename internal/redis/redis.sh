#!/usr/bin/env bash
# Starts, stops or checks a local redis-server for the tests (the Celery
# result backend of the Go worker's interop tests).
#
#   internal/redis/redis.sh {install|start|stop|status}
#
# The server listens on 127.0.0.1:$REDIS_PORT (default 6379), runs
# daemonized with its directory, pidfile and log under .cache/redis/, and
# keeps nothing on disk (no RDB snapshots, no AOF). `install` installs the
# Debian package redis-server when redis-server is not on the PATH (as root,
# or through sudo when available), non-interactively.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${REDIS_PORT:-6379}"
DIR="$ROOT/.cache/redis"
PIDFILE="$DIR/redis-$PORT.pid"
LOGFILE="$DIR/redis-$PORT.log"

ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]
  else
    # Without redis-cli: speak the inline protocol over bash's /dev/tcp.
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

install() {
  if command -v redis-server >/dev/null 2>&1; then
    return 0
  fi
  echo "redis: installing the redis-server package"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "redis: redis-server is missing; install it (apt-get install redis-server)" >&2; exit 1; }
    sudo=(sudo -n)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q redis-server >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q redis-server >/dev/null
  fi
  command -v redis-server >/dev/null 2>&1 || { echo "redis: redis-server still missing after apt-get" >&2; exit 1; }
}

start() {
  if ping; then
    echo "redis: already serving on 127.0.0.1:$PORT"
    return 0
  fi
  command -v redis-server >/dev/null 2>&1 || { echo "redis: redis-server not found; run \`make redis-up\`" >&2; exit 1; }
  mkdir -p "$DIR"
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes \
    --dir "$DIR" --pidfile "$PIDFILE" --logfile "$LOGFILE" \
    --save "" --appendonly no --protected-mode yes >/dev/null
  for _ in $(seq 1 100); do
    if ping; then
      echo "redis: serving on 127.0.0.1:$PORT"
      return 0
    fi
    sleep 0.1
  done
  echo "redis: no PONG on 127.0.0.1:$PORT after 10s; see $LOGFILE" >&2
  tail -n 20 "$LOGFILE" >&2 || true
  exit 1
}

stop() {
  if [ ! -f "$PIDFILE" ]; then
    echo "redis: not started from here (no $PIDFILE)"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$PIDFILE"
  echo "redis: stopped"
}

status() {
  if ping; then
    echo "redis: serving on 127.0.0.1:$PORT"
  else
    echo "redis: not serving on 127.0.0.1:$PORT"
    return 1
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
