# shellcheck shell=bash
# Process management shared by the service scripts (elasticmq.sh, redis.sh,
# moto.sh): sourced, never run. Every function is prefixed daemon_.
#
# The rules these functions serve: a checkout manages only the processes it
# started (a pid file names the process, and the script's own identity check
# confirms it is still its server), a server runs in its own session with
# every file descriptor of the caller above 2 closed and its standard
# streams on its log, and stop is SIGTERM, then SIGKILL after a timeout,
# then a wait for the port to be free.
#
# Messages are prefixed with DAEMON_PREFIX (e.g. "redis: "), which the
# sourcing script sets. Warnings and errors go to standard error, notices
# (stopped, not running) to descriptor DAEMON_NOTICE_FD (2 unless set).

DAEMON_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DAEMON_PREFIX=${DAEMON_PREFIX:-}
DAEMON_NOTICE_FD=${DAEMON_NOTICE_FD:-2}

# Run by `setsid bash -c` with the pid file and the command as arguments:
# closes every file descriptor above 2, writes its pid, becomes the command.
# shellcheck disable=SC2016 # expanded by the inner shell
DAEMON_SHELL='for fd in /proc/$$/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-"; fi; done
echo $$ >"$1"; shift; exec "$@"'

daemon_log() { printf '%s%s\n' "$DAEMON_PREFIX" "$*" >&2; }
daemon_die() { daemon_log "$*"; exit 1; }
daemon_notice() { printf '%s%s\n' "$DAEMON_PREFIX" "$*" >&"$DAEMON_NOTICE_FD"; }

# kill -0 also succeeds for a zombie, and the init process of some
# machines reaps orphans only every few seconds: look at the state too.
daemon_alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -e 's/^.*) //' -e 's/ .*//' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# The command line of a process, arguments separated by spaces.
daemon_cmdline() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# The working directory of a process (fails when it cannot be read).
daemon_cwd() {
  readlink "/proc/$1/cwd" 2>/dev/null
}

# Pid of the process listening on port $1, when ss can tell.
daemon_listener_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

daemon_port_in_use() {
  [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# Who holds port $1, for messages. $2, when given, is a function that
# describes a listener pid its own way; the default names the pid, the
# start of its command line and its working directory.
daemon_port_holder() {
  local port=$1 describe=${2:-} pid
  pid=$(daemon_listener_pid "$port")
  if [[ -z $pid ]]; then
    echo "a process this user cannot see"
  elif [[ -n $describe ]]; then
    "$describe" "$pid"
  else
    echo "pid $pid ($(daemon_cmdline "$pid" | cut -c1-80 | sed 's/ *$//'), cwd $(daemon_cwd "$pid" || echo unknown))"
  fi
}

# Pid of the server this checkout started on port $2: the one in pid file
# $1, else the one listening on the port (its pid file was deleted), as
# long as the function $3 says the process is ours. Empty when there is
# none: the process is gone, or the pid now belongs to another process.
daemon_find_pid() {
  local pidfile=$1 port=$2 is_ours=$3 pid=""
  if [[ -f $pidfile ]]; then
    pid=$(<"$pidfile")
  fi
  if [[ -z $pid ]] || ! "$is_ours" "$pid"; then
    pid=$(daemon_listener_pid "$port")
  fi
  if [[ -n $pid ]] && "$is_ours" "$pid"; then
    echo "$pid"
  fi
}

# Appends a line to log $1 that marks a new start ($2), after moving a log
# past 10 MiB aside to $1.1. Sets DAEMON_LOG_OFFSET to where the new start's
# output begins.
daemon_open_log() {
  local log=$1 header=$2
  DAEMON_LOG_OFFSET=0
  mkdir -p "$(dirname "$log")"
  if [[ -f $log ]]; then
    DAEMON_LOG_OFFSET=$(stat -c %s "$log")
    if ((DAEMON_LOG_OFFSET > 10 * 1024 * 1024)); then
      mv -f "$log" "$log.1"
      DAEMON_LOG_OFFSET=0
    fi
  fi
  printf '==== %s %s\n' "$(date '+%F %T')" "$header" >>"$log"
}

# daemon_spawn PIDFILE LOG DIR NAME COMMAND...
# Starts COMMAND in the background in a new session, so that Ctrl-C in a
# terminal or a test runner's process group kill does not take it down,
# with DIR as its working directory. The inner shell (named NAME) closes
# every descriptor above 2 it inherited (a lock, a CI wrapper's lock or
# pipe, make's jobserver), records its own pid in PIDFILE and becomes
# COMMAND; standard streams go to LOG, so callers waiting on their pipes
# are not held up. Sets DAEMON_PID to the pid (empty when the pid file did
# not appear within 5 seconds).
daemon_spawn() {
  local pidfile=$1 log=$2 dir=$3 name=$4
  shift 4
  rm -f "$pidfile"
  (cd "$dir" && exec setsid bash -c "$DAEMON_SHELL" "$name" "$pidfile" "$@") \
    </dev/null >>"$log" 2>&1 &
  local t=0
  while [[ ! -s $pidfile ]] && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
  # shellcheck disable=SC2034 # read by the sourcing script
  DAEMON_PID=$(cat "$pidfile" 2>/dev/null || true)
}

# Prints the last $2 lines of log $1 to standard error.
daemon_log_tail() {
  local log=$1 lines=$2
  if [[ -f $log ]]; then
    daemon_log "last lines of ${log#"$DAEMON_ROOT"/}:"
    tail -n "$lines" "$log" >&2 || true
  fi
}

# daemon_wait_ready PID TIMEOUT READY LOG LINES PORT
# Waits up to TIMEOUT seconds until the function READY, called with PID,
# returns 0 (ready). A READY that finds the start has failed (and says why)
# sets DAEMON_READY_FAILED=1: the wait gives up at once. Fails, showing the
# last LINES lines of LOG, when process PID exits first or the time runs
# out.
daemon_wait_ready() {
  local pid=$1 timeout=$2 ready=$3 log=$4 lines=$5 port=$6
  local deadline=$((SECONDS + timeout))
  DAEMON_READY_FAILED=0
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! daemon_alive "$pid"; then
      daemon_log "process $pid exited during startup"
      daemon_log_tail "$log" "$lines"
      return 1
    fi
    if "$ready" "$pid"; then
      return 0
    fi
    if ((DAEMON_READY_FAILED)); then
      return 1
    fi
    sleep 0.2
  done
  daemon_log "not healthy after ${timeout}s on port $port"
  daemon_log_tail "$log" "$lines"
  return 1
}

# daemon_stop_pid PID PORT TIMEOUT
# SIGTERM, then SIGKILL when PID is still alive after TIMEOUT seconds; then
# waits (up to 5 seconds) for PORT to be free, so that an immediate start
# can bind.
daemon_stop_pid() {
  local pid=$1 port=$2 timeout=$3
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while daemon_alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if daemon_alive "$pid"; then
    daemon_log "pid $pid still alive after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while daemon_alive "$pid"; do sleep 0.1; done
  fi
  local t=0
  while daemon_port_in_use "$port" && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
}

# daemon_stop PIDFILE PORT TIMEOUT IS_OURS [DESCRIBE [BEFORE]]
# Stops the server this checkout started on PORT (see daemon_find_pid) with
# daemon_stop_pid, after calling the function BEFORE, when given, with its
# pid. A process on the port that is not ours is left alone (DESCRIBE as
# for daemon_port_holder). Succeeds when there is nothing to stop.
daemon_stop() {
  local pidfile=$1 port=$2 timeout=$3 is_ours=$4 describe=${5:-} before=${6:-} pid
  pid=$(daemon_find_pid "$pidfile" "$port" "$is_ours")
  if [[ -z $pid ]]; then
    rm -f "$pidfile"
    if daemon_port_in_use "$port"; then
      daemon_notice "not started by this checkout; port $port is held by $(daemon_port_holder "$port" "$describe"), left alone"
    else
      daemon_notice "not running"
    fi
    return 0
  fi
  if [[ -n $before ]]; then
    "$before" "$pid"
  fi
  daemon_stop_pid "$pid" "$port" "$timeout"
  rm -f "$pidfile"
  daemon_notice "stopped (pid $pid)"
}

# daemon_locked LOCKFILE TIMEOUT COMMAND...
# Runs COMMAND while holding an exclusive flock on LOCKFILE (fd 9), waiting
# up to TIMEOUT seconds for it.
daemon_locked() {
  local lockfile=$1 timeout=$2
  shift 2
  mkdir -p "$(dirname "$lockfile")"
  exec 9>"$lockfile"
  flock -w "$timeout" 9 || daemon_die "timed out waiting for lock"
  "$@"
  local rc=$?
  exec 9>&-
  return $rc
}
