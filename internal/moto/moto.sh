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

log() { printf 'moto: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

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

# kill -0 also succeeds for a zombie: look at the process state too.
alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -e 's/^.*) //' -e 's/ .*//' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

is_moto_pid() {
  local pid=$1
  [[ -n $pid ]] && alive "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'moto_server\|moto\.server'
}

# Pid of the server: from the pid file, else a moto process listening on the port.
find_pid() {
  local pid=""
  if [[ -f $PIDFILE ]]; then
    pid=$(<"$PIDFILE")
    if is_moto_pid "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-p $PORT\b"; then
      echo "$pid"
      return 0
    fi
  fi
  pid=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
  if is_moto_pid "$pid"; then
    echo "$pid"
  fi
}

port_in_use() {
  [[ -n $(ss -Hltn "sport = :$PORT" 2>/dev/null) ]]
}

log_tail() {
  if [[ -f $LOG ]]; then
    log "last lines of ${LOG#"$REPO_ROOT"/}:"
    tail -n 30 "$LOG" >&2 || true
  fi
}

wait_ready() {
  local pid=$1
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! alive "$pid"; then
      log "process $pid exited during startup"
      log_tail
      return 1
    fi
    if healthy; then
      return 0
    fi
    sleep 0.2
  done
  log "not healthy after ${START_TIMEOUT}s on port $PORT"
  log_tail
  return 1
}

start() {
  if healthy; then
    log "already running on 127.0.0.1:$PORT"
    return 0
  fi
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]]; then
    log "waiting for running process $pid"
    wait_ready "$pid"
    return
  fi
  if port_in_use; then
    die "port $PORT is in use by a process that is not a healthy moto server"
  fi
  [[ -x $SERVER ]] || die "no moto_server at $SERVER (run \`make venv\`)"
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  if [[ -f $LOG ]] && (($(stat -c %s "$LOG") > 10 * 1024 * 1024)); then
    mv -f "$LOG" "$LOG.1"
  fi
  printf '==== %s starting moto on port %s\n' "$(date '+%F %T')" "$PORT" >>"$LOG"

  # New session, so that a test runner's process group kill does not take
  # the server down; the inner shell records its pid and becomes the
  # server. No standard stream or lock fd is inherited.
  rm -f "$PIDFILE"
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' moto "$PIDFILE" \
    "$SERVER" -H 127.0.0.1 -p "$PORT" \
    </dev/null >>"$LOG" 2>&1 9>&- &

  local t=0
  while [[ ! -s $PIDFILE ]] && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if wait_ready "$pid"; then
    log "ready on 127.0.0.1:$PORT (pid $pid)"
  else
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    return 1
  fi
}

stop() {
  local pid
  pid=$(find_pid)
  if [[ -z $pid ]]; then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  local t=0
  while port_in_use && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  local pid
  pid=$(find_pid)
  if healthy; then
    echo "moto: running on 127.0.0.1:$PORT (pid ${pid:-unknown})"
  elif [[ -n $pid ]]; then
    echo "moto: process $pid is up but not healthy on 127.0.0.1:$PORT"
    return 1
  else
    echo "moto: not running (port $PORT)"
    return 1
  fi
}

locked() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/moto-$PORT.lock"
  flock -w $((START_TIMEOUT + STOP_TIMEOUT + 30)) 9 || die "timed out waiting for lock"
  "$@"
  local rc=$?
  exec 9>&-
  return $rc
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
