#!/usr/bin/env bash
# Runs moto's server mode, the second SQS implementation of the tests and
# their SNS (ElasticMQ has none): one process serves SQS, SNS (with
# delivery from topics to queues) and STS on one port.
#
# Usage: moto.sh {start|stop|restart|status}
#
#   start    idempotent; returns once the server answers SQS and SNS calls
#   stop     SIGTERM, then SIGKILL after MOTO_STOP_TIMEOUT seconds
#
# moto keeps everything in memory: a restart forgets every queue and topic.
# The server is the virtualenv's moto_server (moto[server], pinned in
# interop/requirements.txt; `make venv` installs it). Its log is
# .cache/logs/moto-<port>.log, its pid file .cache/run/moto-<port>.pid.
#
# A checkout manages only the server it started: the pid file names the
# process, and that process must still be a moto_server for this port whose
# working directory is this checkout's root (where start runs it). start
# fails when the port is held by anything else (another checkout's moto
# included), and stop and status leave such a process alone. The server
# runs in its own session with every file descriptor of the caller closed.
#
# Environment:
#   MOTO_PORT           port on 127.0.0.1 (9400)
#   MOTO_SERVER         the moto_server to run (.cache/venv/bin/moto_server)
#   MOTO_START_TIMEOUT  seconds to wait for a healthy server (60)
#   MOTO_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (10)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd -P)
CACHE_DIR=$REPO_ROOT/.cache
LOG_DIR=$CACHE_DIR/logs
RUN_DIR=$CACHE_DIR/run

PORT=${MOTO_PORT:-9400}
SERVER=${MOTO_SERVER:-$CACHE_DIR/venv/bin/moto_server}
START_TIMEOUT=${MOTO_START_TIMEOUT:-60}
STOP_TIMEOUT=${MOTO_STOP_TIMEOUT:-10}
# Per port, so that servers on two ports of one checkout never take each other's pid.
LOG=$LOG_DIR/moto-$PORT.log
PIDFILE=$RUN_DIR/moto-$PORT.pid

# shellcheck source-path=SCRIPTDIR source=../daemon/daemon.sh
. "$REPO_ROOT/internal/daemon/daemon.sh"
DAEMON_PREFIX="moto: "

log() { daemon_log "$@"; }
die() { daemon_die "$@"; }

base_url() { printf 'http://127.0.0.1:%s' "$PORT"; }

# The server answers moto's own API, an SQS call and an SNS call.
healthy() {
  local url
  url=$(base_url)
  curl -fsS -o /dev/null --max-time 2 "$url/moto-api/" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/sqs/aws4_request' \
      --data 'Action=ListQueues&Version=2012-11-05' "$url/" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/sns/aws4_request' \
      --data 'Action=ListTopics&Version=2010-03-31' "$url/" 2>/dev/null
}

# The process is a moto server for this port whose working directory is
# this checkout's root.
is_ours() {
  local pid=$1 cmd
  [[ -n $pid ]] && daemon_alive "$pid" || return 1
  cmd=" $(daemon_cmdline "$pid")"
  [[ $cmd == *moto_server* || $cmd == *moto.server* ]] || return 1
  [[ $cmd == *" -p $PORT "* ]] || return 1
  [[ $(daemon_cwd "$pid") == "$REPO_ROOT" ]]
}

# Pid of the server this checkout started; empty when there is none.
find_pid() { daemon_find_pid "$PIDFILE" "$PORT" is_ours; }

port_in_use() { daemon_port_in_use "$PORT"; }

port_holder() { daemon_port_holder "$PORT"; }

wait_ready() {
  daemon_wait_ready "$1" "$START_TIMEOUT" healthy "$LOG" 30 "$PORT"
}

start() {
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]]; then
    if healthy; then
      log "already running on 127.0.0.1:$PORT (pid $pid)"
      return 0
    fi
    # Started but not answering yet (e.g. by a start that was interrupted).
    log "waiting for running process $pid"
    wait_ready "$pid"
    return
  fi
  rm -f "$PIDFILE"
  if port_in_use; then
    die "port $PORT is already in use by $(port_holder), which this checkout did not start; not starting a server there. Stop that process or choose another port (MOTO_PORT)"
  fi
  [[ -x $SERVER ]] || die "no moto_server at $SERVER (run \`make venv\`)"
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  daemon_open_log "$LOG" "starting moto on port $PORT"

  # Own session, no inherited descriptors, output to the log; the working
  # directory, the repository root, marks the server as this checkout's.
  daemon_spawn "$PIDFILE" "$LOG" "$REPO_ROOT" moto \
    "$SERVER" -H 127.0.0.1 -p "$PORT"
  pid=$DAEMON_PID
  if wait_ready "$pid"; then
    log "ready on 127.0.0.1:$PORT (pid $pid)"
  else
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    return 1
  fi
}

stop() { daemon_stop "$PIDFILE" "$PORT" "$STOP_TIMEOUT" is_ours; }

status() {
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]] && healthy; then
    echo "moto: running on 127.0.0.1:$PORT (pid $pid)"
  elif [[ -n $pid ]]; then
    echo "moto: process $pid is up but not healthy on 127.0.0.1:$PORT"
    return 1
  elif port_in_use; then
    echo "moto: not started by this checkout; port $PORT is held by $(port_holder)"
    return 1
  else
    echo "moto: not running (port $PORT)"
    return 1
  fi
}

locked() {
  daemon_locked "$RUN_DIR/moto-$PORT.lock" $((START_TIMEOUT + STOP_TIMEOUT + 30)) "$@"
}

case ${1:-} in
  start) locked start ;;
  stop) locked stop ;;
  restart) locked stop && locked start ;;
  status) status ;;
  *)
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
