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

# shellcheck source-path=SCRIPTDIR source=../daemon/daemon.sh
. "$REPO_ROOT/internal/daemon/daemon.sh"
DAEMON_PREFIX="elasticmq: "

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
  DAEMON_PREFIX="elasticmq: $NAME: "
}

base_url() { printf 'http://127.0.0.1:%s' "$PORT"; }

# The HTTP server is up and answers a real SQS call.
healthy() {
  local url
  url=$(base_url)
  curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 "$url/?Action=ListQueues" 2>/dev/null
}

# The process is this checkout's broker NAME: ElasticMQ run with this
# directory's config file for that broker.
is_our_broker() {
  local pid=$1 cmd
  [[ -n $pid ]] && daemon_alive "$pid" || return 1
  cmd=$(daemon_cmdline "$pid") || return 1
  [[ $cmd == *" org.elasticmq.server.Main"* && $cmd == *" -Dconfig.file=$CONF "* ]]
}

# Pid of the broker this checkout started (the pid file's, else the port's
# listener); empty when there is none.
find_pid() { daemon_find_pid "$PIDFILE" "$PORT" is_our_broker; }

# The port the broker with pid $1 was started on.
port_of() {
  daemon_cmdline "$1" | grep -o -- '-Drest-sqs.bind-port=[0-9]*' | head -n1 | cut -d= -f2
}

port_in_use() { daemon_port_in_use "$PORT"; }

# Describes the process listening on the port, for messages.
describe_holder() {
  local pid=$1
  if [[ $(daemon_cmdline "$pid") == *org.elasticmq.server.Main* ]]; then
    echo "pid $pid, an ElasticMQ this checkout did not start (cwd $(daemon_cwd "$pid" || echo unknown)): $(daemon_cmdline "$pid" | grep -o -- '-Dconfig.file=[^ ]*' || true)"
  else
    echo "pid $pid: $(daemon_cmdline "$pid" | cut -c1-120)"
  fi
}

# Who holds the port, for messages.
port_holder() { daemon_port_holder "$PORT" describe_holder; }

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

# For daemon_wait_ready: the broker with pid $1, started at log offset
# READY_OFFSET, answers and has restored its queues (a failed start when
# another process answers on the port).
broker_ready() {
  local pid=$1
  healthy || return 1
  : "${HEALTHY_SINCE:=$SECONDS}"
  restored "$READY_OFFSET" "$((SECONDS - HEALTHY_SINCE))" || return 1
  local holder
  holder=$(daemon_listener_pid "$PORT")
  if [[ -n $pid && -n $holder && $holder != "$pid" ]]; then
    log "$NAME: port $PORT answers, but from $(port_holder), not from pid $pid"
    DAEMON_READY_FAILED=1
    return 1
  fi
}

# Waits until the broker started at log offset $2 with pid $1 is ready.
wait_ready() {
  READY_OFFSET=$2 HEALTHY_SINCE=""
  daemon_wait_ready "$1" "$START_TIMEOUT" broker_ready "$LOG" 40 "$PORT"
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

  daemon_open_log "$LOG" "starting $NAME broker on port $PORT"
  local offset=$DAEMON_LOG_OFFSET

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

  # Own session, no inherited descriptors, output to the log, run from the
  # repository root.
  daemon_spawn "$PIDFILE" "$LOG" "$REPO_ROOT" elasticmq \
    "$JAVA" "${jvm[@]}" -cp "$LIB_DIR/*" org.elasticmq.server.Main
  pid=$DAEMON_PID

  if wait_ready "$pid" "$offset"; then
    rm -f "$QUEUES_FILE"
    log "$NAME: ready on 127.0.0.1:$PORT (pid $pid)"
  else
    if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    return 1
  fi
}

# Before the persistent broker stops: list its queues, so that the next
# start waits for their restore.
save_queue_list() {
  if [[ $NAME == persistent ]] && healthy; then
    mkdir -p "$DATA_DIR"
    list_queue_names >"$QUEUES_FILE.tmp" && mv "$QUEUES_FILE.tmp" "$QUEUES_FILE"
  fi
}

stop_one() {
  daemon_stop "$PIDFILE" "$PORT" "$STOP_TIMEOUT" is_our_broker describe_holder save_queue_list
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

run_one() {
  case $1 in
    start) start_one ;;
    stop) stop_one ;;
    restart) stop_one && start_one ;;
    reset) reset_one && start_one ;;
  esac
}

# Runs action $1 for broker $2 while holding that broker's lock.
locked() {
  select_instance "$2"
  daemon_locked "$RUN_DIR/elasticmq-$NAME.lock" $((START_TIMEOUT + STOP_TIMEOUT + 30)) run_one "$1"
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
