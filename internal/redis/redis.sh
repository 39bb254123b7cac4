#!/usr/bin/env bash
# Starts, stops or checks a local redis-server for the tests (the Celery
# result backend of the Go worker's interop tests).
#
#   internal/redis/redis.sh {install|start|stop|status}
#
# The server listens on 127.0.0.1:$REDIS_PORT (default 6379), with its
# directory, pid file and log under .cache/redis/, and keeps nothing on disk
# (no RDB snapshots, no AOF). `install` installs the Debian package
# redis-server when redis-server is not on the PATH (as root, or through
# sudo when available), non-interactively.
#
# A checkout manages only the server it started: the pid file names the
# process, and that process must still be a redis-server running in this
# checkout's .cache/redis. start fails when the port is held by anything
# else (another checkout's Redis included) and stop never stops a process
# it did not start. The server runs in its own session with every file
# descriptor of the caller closed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
PORT="${REDIS_PORT:-6379}"
DIR="$ROOT/.cache/redis"
PIDFILE="$DIR/redis-$PORT.pid"
LOGFILE="$DIR/redis-$PORT.log"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-10}"

# shellcheck source-path=SCRIPTDIR source=../daemon/daemon.sh
. "$ROOT/internal/daemon/daemon.sh"
DAEMON_PREFIX="redis: "
DAEMON_NOTICE_FD=1

ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]
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

# The process is a redis-server whose working directory is this checkout's
# .cache/redis (where start runs it).
is_ours() {
  local pid=$1
  [[ -n $pid ]] && daemon_alive "$pid" || return 1
  [[ $(daemon_cmdline "$pid") == redis-server* ]] || return 1
  [[ $(daemon_cwd "$pid") == "$DIR" ]]
}

# Pid of the server this checkout started; empty when there is none.
find_pid() { daemon_find_pid "$PIDFILE" "$PORT" is_ours; }

port_in_use() { daemon_port_in_use "$PORT"; }

port_holder() { daemon_port_holder "$PORT"; }

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
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]] && ping; then
    echo "redis: already serving on 127.0.0.1:$PORT (pid $pid)"
    return 0
  fi
  if [[ -z $pid ]]; then
    rm -f "$PIDFILE"
    if port_in_use; then
      echo "redis: port $PORT is already in use by $(port_holder), which this checkout did not start; not starting a server there. Stop that process or choose another port (REDIS_PORT)" >&2
      exit 1
    fi
    command -v redis-server >/dev/null 2>&1 || { echo "redis: redis-server not found; run \`make redis-up\`" >&2; exit 1; }
    mkdir -p "$DIR"
    # New session, no inherited descriptors, standard streams to the log;
    # the server's working directory (also --dir) is this checkout's.
    daemon_spawn "$PIDFILE" "$LOGFILE" "$DIR" redis \
      redis-server --bind 127.0.0.1 --port "$PORT" --daemonize no \
      --dir "$DIR" --logfile "" --save "" --appendonly no --protected-mode yes
    pid=$DAEMON_PID
  fi
  for _ in $(seq 1 100); do
    if [[ -z $pid ]] || ! daemon_alive "$pid"; then
      break
    fi
    if ping; then
      echo "redis: serving on 127.0.0.1:$PORT (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  echo "redis: no PONG from pid ${pid:-unknown} on 127.0.0.1:$PORT; see $LOGFILE" >&2
  tail -n 20 "$LOGFILE" >&2 || true
  exit 1
}

stop() { daemon_stop "$PIDFILE" "$PORT" "$STOP_TIMEOUT" is_ours; }

status() {
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]] && ping; then
    echo "redis: serving on 127.0.0.1:$PORT (pid $pid)"
  elif [[ -n $pid ]]; then
    echo "redis: pid $pid is up but does not answer on 127.0.0.1:$PORT"
    return 1
  elif port_in_use; then
    echo "redis: not started by this checkout; port $PORT is held by $(port_holder)"
    return 1
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
