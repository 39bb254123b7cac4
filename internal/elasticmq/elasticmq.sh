#!/usr/bin/env bash
# Runs the ElasticMQ SQS brokers used by the tests, without Docker.
#
# Usage: elasticmq.sh fetch
#        elasticmq.sh {start|stop|restart|reset|status} [standard|persistent|all]
#
#   standard    in-memory broker on 127.0.0.1:${ELASTICMQ_STANDARD_PORT:-9324}
#   persistent  H2-backed broker on 127.0.0.1:${ELASTICMQ_PERSISTENT_PORT:-9325};
#               queues and messages survive a restart
#   all         both (the default)
#
# fetch resolves the ElasticMQ jars from Maven Central into
# .cache/elasticmq/lib (pom.xml next to this script pins the version).
# start is idempotent and returns once the broker answers SQS calls (and,
# for the persistent broker, has restored the queues it had when it was
# last stopped). restart is stop + start and is what the reconnect tests
# run; concurrent calls for the same broker are serialised with a lock.
# reset is stop, delete the stored data, start.
#
# A checkout manages only the brokers it started: the pid file names the
# process, and that process must still be this checkout's ElasticMQ (its
# command line names this directory's config file). start fails when the
# port is held by anything else, another checkout's broker included, and
# stop never stops a process it did not start. The broker runs in its own
# session with every file descriptor of the caller closed, so a caller
# that waits on a pipe or holds a lock is not held up by it.
#
# Everything lives under <repo>/.cache: lib/ and data/ in elasticmq/,
# logs in logs/elasticmq-<name>.log, pid files and locks in run/.
#
# Environment:
#   ELASTICMQ_STANDARD_PORT, ELASTICMQ_PERSISTENT_PORT   ports (9324, 9325)
#   ELASTICMQ_START_TIMEOUT  seconds to wait for a healthy broker (60)
#   ELASTICMQ_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (20)
#   ELASTICMQ_JAVA_OPTS      extra JVM options (default heap is -Xmx512m)
#   JAVA_HOME / JAVA         the java to run (default: java on PATH)
#   MAVEN_REPO_LOCAL         Maven local repository for fetch (.cache/m2)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd -P)
CACHE_DIR=$REPO_ROOT/.cache
LIB_DIR=$CACHE_DIR/elasticmq/lib
DATA_DIR=$CACHE_DIR/elasticmq/data
LOG_DIR=$CACHE_DIR/logs
RUN_DIR=$CACHE_DIR/run
MAVEN_REPO_LOCAL=${MAVEN_REPO_LOCAL:-$CACHE_DIR/m2}

START_TIMEOUT=${ELASTICMQ_START_TIMEOUT:-60}
STOP_TIMEOUT=${ELASTICMQ_STOP_TIMEOUT:-20}

if [[ -n ${JAVA:-} ]]; then
  :
elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=java
fi

log() { printf 'elasticmq: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Run by `setsid bash -c` with the pid file and the command as arguments:
# closes every file descriptor above 2, writes its pid, becomes the command.
# shellcheck disable=SC2016 # expanded by the inner shell
DAEMON_SHELL='for fd in /proc/$$/fd/*; do fd=${fd##*/}; if ((fd > 2)); then eval "exec $fd>&-"; fi; done
echo $$ >"$1"; shift; exec "$@"'

# ---------------------------------------------------------------- fetch

fetch() {
  local stamp=$LIB_DIR/.pom.xml
  if [[ -f $stamp ]] && cmp -s "$stamp" "$SCRIPT_DIR/pom.xml"; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found on PATH (needed once to download ElasticMQ)"
  log "resolving ElasticMQ from Maven Central into ${LIB_DIR#"$REPO_ROOT"/}"
  local tmp=$LIB_DIR.tmp.$$
  rm -rf "$tmp"
  # Debian's Maven 3.8 prints colour resets even with -B -q; drop them.
  if ! mvn -B -q -f "$SCRIPT_DIR/pom.xml" \
      -Dmaven.repo.local="$MAVEN_REPO_LOCAL" \
      dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
      sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  cp "$SCRIPT_DIR/pom.xml" "$tmp/.pom.xml"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

# ------------------------------------------------------------ instances

# Sets NAME, PORT, CONF, LOG, PIDFILE and QUEUES_FILE for one broker.
select_instance() {
  NAME=$1
  case $NAME in
    standard)
      PORT=${ELASTICMQ_STANDARD_PORT:-9324}
      CONF=$SCRIPT_DIR/elasticmq.conf
      ;;
    persistent)
      PORT=${ELASTICMQ_PERSISTENT_PORT:-9325}
      CONF=$SCRIPT_DIR/elasticmq-persistent.conf
      ;;
    *) die "unknown broker '$NAME' (want standard, persistent or all)" ;;
  esac
  LOG=$LOG_DIR/elasticmq-$NAME.log
  PIDFILE=$RUN_DIR/elasticmq-$NAME.pid
  # Queues the broker had when it was last stopped; start waits until
  # each of them has been restored from H2. Kept next to the H2 file so
  # that deleting the data also forgets the list.
  QUEUES_FILE=$DATA_DIR/$NAME.queues
}

base_url() { printf 'http://127.0.0.1:%s' "$PORT"; }

# The HTTP server is up and answers a real SQS call.
healthy() {
  local url
  url=$(base_url)
  curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 "$url/?Action=ListQueues" 2>/dev/null
}

# kill -0 also succeeds for a zombie, and the init process of some
# machines reaps orphans only every few seconds: look at the state too.
alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -e 's/^.*) //' -e 's/ .*//' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# The command line of a process, arguments separated by spaces.
cmdline_of() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null
}

# The process is this checkout's broker NAME: ElasticMQ run with this
# directory's config file for that broker.
is_our_broker() {
  local pid=$1 cmd
  [[ -n $pid ]] && alive "$pid" || return 1
  cmd=$(cmdline_of "$pid") || return 1
  [[ $cmd == *" org.elasticmq.server.Main"* && $cmd == *" -Dconfig.file=$CONF "* ]]
}

# Pid of the broker this checkout started: the one in the pid file, else
# the one listening on the port if it is ours (its pid file was deleted).
# Empty when there is none: the process is gone, or the pid now belongs to
# another process.
find_pid() {
  local pid=""
  if [[ -f $PIDFILE ]]; then
    pid=$(<"$PIDFILE")
  fi
  if ! is_our_broker "$pid"; then
    pid=$(listener_pid)
  fi
  if is_our_broker "$pid"; then
    echo "$pid"
  fi
}

# The port the broker with pid $1 was started on.
port_of() {
  cmdline_of "$1" | grep -o -- '-Drest-sqs.bind-port=[0-9]*' | head -n1 | cut -d= -f2
}

port_in_use() {
  [[ -n $(ss -Hltn "sport = :$PORT" 2>/dev/null) ]]
}

# Pid of the process listening on the port, when ss can tell.
listener_pid() {
  ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# Who holds the port, for messages.
port_holder() {
  local pid
  pid=$(listener_pid)
  if [[ -z $pid ]]; then
    echo "a process this user cannot see"
  elif [[ $(cmdline_of "$pid") == *org.elasticmq.server.Main* ]]; then
    echo "pid $pid, an ElasticMQ this checkout did not start (cwd $(readlink "/proc/$pid/cwd" 2>/dev/null || echo unknown)): $(cmdline_of "$pid" | grep -o -- '-Dconfig.file=[^ ]*' || true)"
  else
    echo "pid $pid: $(cmdline_of "$pid" | cut -c1-120)"
  fi
}

list_queue_names() {
  curl -fsS --max-time 5 "$(base_url)/?Action=ListQueues" 2>/dev/null |
    grep -o '<QueueUrl>[^<]*</QueueUrl>' |
    sed -e 's#</QueueUrl>##' -e 's#.*/##' || true
}

# Restore of persisted queues runs after the port opens. Succeeds when
# every queue in QUEUES_FILE has logged "Restored N messages in queue X"
# since byte offset $1 of the log. QUEUES_FILE is listed just before the
# broker stops, so a queue deleted in between is in it but never restored:
# once the broker has answered for RESTORE_GRACE seconds ($2 is how long
# it has), queues it neither restored nor lists are no longer waited for.
RESTORE_GRACE=10
restored() {
  local offset=$1 healthy_for=$2
  [[ -s $QUEUES_FILE ]] || return 0
  local seen
  seen=$(tail -c +"$((offset + 1))" "$LOG" 2>/dev/null |
    sed -n 's/.*Restored [0-9]* messages in queue //p' | sort -u)
  local missing
  missing=$(comm -23 <(sort -u "$QUEUES_FILE") <(printf '%s\n' "$seen"))
  [[ -z $missing ]] && return 0
  ((healthy_for >= RESTORE_GRACE)) || return 1
  # Only queues the broker lists are still being restored.
  [[ -z $(comm -12 <(printf '%s\n' "$missing") <(list_queue_names | sort -u)) ]]
}

log_tail() {
  if [[ -f $LOG ]]; then
    log "last lines of ${LOG#"$REPO_ROOT"/}:"
    tail -n 40 "$LOG" >&2 || true
  fi
}

# Waits until the broker started at log offset $2 with pid $1 is ready.
wait_ready() {
  local pid=$1 offset=$2
  local deadline=$((SECONDS + START_TIMEOUT)) healthy_since=""
  while ((SECONDS < deadline)); do
    if [[ -n $pid ]] && ! alive "$pid"; then
      log "$NAME: process $pid exited during startup"
      log_tail
      return 1
    fi
    if healthy && { : "${healthy_since:=$SECONDS}"; restored "$offset" "$((SECONDS - healthy_since))"; }; then
      local holder
      holder=$(listener_pid)
      if [[ -n $pid && -n $holder && $holder != "$pid" ]]; then
        log "$NAME: port $PORT answers, but from $(port_holder), not from pid $pid"
        return 1
      fi
      return 0
    fi
    sleep 0.2
  done
  log "$NAME: not healthy after ${START_TIMEOUT}s on port $PORT"
  log_tail
  return 1
}

start_one() {
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]]; then
    local running
    running=$(port_of "$pid")
    if [[ $running != "$PORT" ]]; then
      die "$NAME: this checkout's broker (pid $pid) runs on port $running, not $PORT; stop it first"
    fi
    if healthy; then
      log "$NAME: already running on 127.0.0.1:$PORT (pid $pid)"
      return 0
    fi
    # Started but not answering yet (e.g. by a start that was interrupted).
    log "$NAME: waiting for running process $pid"
    wait_ready "$pid" 0
    return
  fi
  rm -f "$PIDFILE"
  if port_in_use; then
    die "$NAME: port $PORT is already in use by $(port_holder); not starting a broker there. Stop that process or choose another port (ELASTICMQ_${NAME^^}_PORT)"
  fi

  [[ -f $LIB_DIR/.pom.xml ]] || fetch
  command -v "$JAVA" >/dev/null || die "java not found (set JAVA_HOME or JAVA)"
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$DATA_DIR"

  local offset=0
  if [[ -f $LOG ]]; then
    offset=$(stat -c %s "$LOG")
    if ((offset > 10 * 1024 * 1024)); then
      mv -f "$LOG" "$LOG.1"
      offset=0
    fi
  fi
  printf '==== %s starting %s broker on port %s\n' "$(date '+%F %T')" "$NAME" "$PORT" >>"$LOG"

  local -a jvm=(
    -Xmx512m
    -Dfile.encoding=UTF-8
    -Dconfig.file="$CONF"
    -Dlogback.configurationFile="$SCRIPT_DIR/logback.xml"
    -Drest-sqs.bind-port="$PORT"
    -Dnode-address.port="$PORT"
  )
  if [[ $NAME == persistent ]]; then
    # See elasticmq-persistent.conf for the two H2 settings.
    jvm+=("-Dmessages-storage.uri=jdbc:h2:$DATA_DIR/$NAME;WRITE_DELAY=0;DB_CLOSE_ON_EXIT=FALSE")
  fi
  # shellcheck disable=SC2206 # word splitting of extra options is intended
  jvm+=(${ELASTICMQ_JAVA_OPTS:-})

  # New session so that Ctrl-C in a terminal or a test runner's process
  # group kill does not take the broker down; the inner shell closes every
  # descriptor above 2 it inherited (the lock, a CI wrapper's lock or pipe,
  # make's jobserver), records its own pid and becomes java. Standard
  # streams go to the log, so callers waiting on their pipes are not held up.
  rm -f "$PIDFILE"
  cd "$REPO_ROOT"
  setsid bash -c "$DAEMON_SHELL" elasticmq "$PIDFILE" \
    "$JAVA" "${jvm[@]}" -cp "$LIB_DIR/*" org.elasticmq.server.Main \
    </dev/null >>"$LOG" 2>&1 &

  local t=0
  while [[ ! -s $PIDFILE ]] && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
  pid=$(cat "$PIDFILE" 2>/dev/null || true)

  if wait_ready "$pid" "$offset"; then
    rm -f "$QUEUES_FILE"
    log "$NAME: ready on 127.0.0.1:$PORT (pid $pid)"
  else
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    return 1
  fi
}

stop_one() {
  local pid
  pid=$(find_pid)
  if [[ -z $pid ]]; then
    rm -f "$PIDFILE"
    if port_in_use; then
      log "$NAME: not started by this checkout; port $PORT is held by $(port_holder), left alone"
    else
      log "$NAME: not running"
    fi
    return 0
  fi
  if [[ $NAME == persistent ]] && healthy; then
    mkdir -p "$DATA_DIR"
    list_queue_names >"$QUEUES_FILE.tmp" && mv "$QUEUES_FILE.tmp" "$QUEUES_FILE"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    log "$NAME: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  # The listening socket goes away with the process; make sure of it so
  # that an immediate start can bind.
  local t=0
  while port_in_use && ((t < 50)); do
    sleep 0.1
    t=$((t + 1))
  done
  rm -f "$PIDFILE"
  log "$NAME: stopped (pid $pid)"
}

# Stops the broker and deletes its stored queues and messages.
reset_one() {
  stop_one
  rm -f "$DATA_DIR/$NAME".*
  log "$NAME: data deleted"
}

status_one() {
  local pid
  pid=$(find_pid)
  if [[ -n $pid ]] && healthy; then
    echo "$NAME: running on 127.0.0.1:$PORT (pid $pid)"
  elif [[ -n $pid ]]; then
    echo "$NAME: process $pid is up but not healthy on 127.0.0.1:$PORT"
    return 1
  elif port_in_use; then
    echo "$NAME: not started by this checkout; port $PORT is held by $(port_holder)"
    return 1
  else
    echo "$NAME: not running (port $PORT)"
    return 1
  fi
}

# Runs "$1_one" for one broker while holding that broker's lock.
locked() {
  local action=$1
  select_instance "$2"
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/elasticmq-$NAME.lock"
  flock -w $((START_TIMEOUT + STOP_TIMEOUT + 30)) 9 || die "$NAME: timed out waiting for lock"
  case $action in
    start) start_one ;;
    stop) stop_one ;;
    restart) stop_one && start_one ;;
    reset) reset_one && start_one ;;
  esac
  local rc=$?
  exec 9>&-
  return $rc
}

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local cmd=${1:-}
  local target=${2:-all}
  local -a names
  case $target in
    all) names=(standard persistent) ;;
    standard | persistent) names=("$target") ;;
    *) usage ;;
  esac

  case $cmd in
    fetch) fetch ;;
    start | stop | restart | reset)
      for n in "${names[@]}"; do
        (locked "$cmd" "$n")
      done
      ;;
    status)
      local rc=0
      for n in "${names[@]}"; do
        select_instance "$n"
        status_one || rc=3
      done
      return $rc
      ;;
    *) usage ;;
  esac
}

main "$@"
