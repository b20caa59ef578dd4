#!/usr/bin/env bash
# services.sh start|stop|status|env [DIR]: throwaway PostgreSQL 15, Redis and
# SeaweedFS S3 (`weed mini`) on 127.0.0.1, for tests, manual work and benches.
# All state lives in DIR (default: <repo>/.services). `start` is idempotent,
# writes DIR/env (sourceable exports) and prints it on stdout; messages go to
# stderr, so `eval "$(scripts/services.sh start)"` works too.
# Ports: POCHETTE_PG_PORT (5440), POCHETTE_REDIS_PORT (6390), POCHETTE_S3_PORT
# (8433); the other weed ports move by the same offset as the S3 port
# (master 9433, volume 9440, filer 8988, admin 23746; gRPC = port + 10000).
# Only the S3 port serves objects: the filer's and volume server's HTTP ports
# refuse any request without a JWT signed with DIR/weed/jwt-keys (security.toml).
# Needs root, Debian's postgresql-15 and redis-server, and .venv/bin/weed
# (scripts/setup.sh --test).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN=/usr/lib/postgresql/15/bin
WEED="$REPO/.venv/bin/weed"
TIMEOUT="${POCHETTE_SERVICES_TIMEOUT:-30}"

usage() {
  echo "usage: $0 start|stop|status|env [DIR]" >&2
  exit 2
}
(($# >= 1 && $# <= 2)) || usage
cmd="$1"
DIR="${2:-$REPO/.services}"
case "$cmd" in start | stop | status | env) ;; *) usage ;; esac

log() { echo "services: $*" >&2; }
die() {
  echo "services: ERROR: $*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
secs_since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100))
}
show_log() { # file: print its tail to stderr
  if [[ -s $1 ]]; then
    echo "----- tail of $1" >&2
    tail -n 25 "$1" >&2
    echo "-----" >&2
  fi
}
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
wait_pid_exit() { # pid seconds -> 0 when gone
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    pid_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

if [[ $cmd == start ]]; then
  mkdir -p "$DIR"
fi
if [[ -d $DIR ]]; then
  DIR="$(cd "$DIR" && pwd)"
fi

# ---------------------------------------------------------------- ports
ports_file="$DIR/ports"
if [[ $cmd != start && -f $ports_file ]]; then
  # stop/status: the ports this DIR was started with.
  # shellcheck source=/dev/null
  source "$ports_file"
else
  PG_PORT="${POCHETTE_PG_PORT:-5440}"
  REDIS_PORT="${POCHETTE_REDIS_PORT:-6390}"
  S3_PORT="${POCHETTE_S3_PORT:-8433}"
  off=$((S3_PORT - 8433))
  MASTER_PORT=$((9433 + off))
  VOLUME_PORT=$((9440 + off))
  FILER_PORT=$((8988 + off))
  ADMIN_PORT=$((23746 + off))
fi
for p in "$PG_PORT" "$REDIS_PORT" "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1024 || p + 10000 > 65535)); then
    die "bad port $p (need 1024..55535)"
  fi
done

# ---------------------------------------------------------------- postgres
PGDATA="$DIR/pg/data"
pg_pid() { head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true; }
pg_running() { [[ -f $PGDATA/PG_VERSION ]] && as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

pg_start() {
  if pg_running; then
    log "postgres already running (pid $(pg_pid))"
    return
  fi
  [[ -x $PGBIN/initdb ]] || die "$PGBIN/initdb not found: run scripts/setup.sh --test"
  # postgres must be able to reach DIR: every parent needs o+x.
  if ! as_postgres test -x "$DIR"; then
    local d="$DIR"
    while [[ $d != / ]]; do
      if ! as_postgres test -x "$d"; then
        log "chmod o+x $d (so that the postgres user can reach $DIR)"
        chmod o+x "$d"
      fi
      d="$(dirname "$d")"
    done
  fi
  install -d -o postgres -g postgres -m 700 "$DIR/pg"
  local sock="$DIR/pg/.s.PGSQL.$PG_PORT"
  ((${#sock} <= 100)) || die "DIR path too long for a unix socket ($sock)"
  if [[ ! -f $PGDATA/PG_VERSION ]]; then
    rm -rf "$PGDATA"
    as_postgres "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      >"$DIR/pg/initdb.log" 2>&1 || {
      show_log "$DIR/pg/initdb.log"
      die "initdb failed"
    }
  fi
  as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$DIR/pg/server.log" -w -t "$TIMEOUT" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || {
    show_log "$DIR/pg/server.log"
    die "postgres did not start"
  }
  log "postgres started on 127.0.0.1:$PG_PORT (pid $(pg_pid))"
}

pg_ready() {
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t "$TIMEOUT" || {
    show_log "$DIR/pg/server.log"
    die "postgres not ready on 127.0.0.1:$PG_PORT after ${TIMEOUT}s"
  }
  local exists
  exists="$("$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAX \
    -c "select 1 from pg_database where datname = 'pochette'")"
  if [[ $exists != 1 ]]; then
    "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres pochette
    log "created database pochette"
  fi
}

pg_stop() {
  if pg_running; then
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t "$TIMEOUT" stop >/dev/null
    log "postgres stopped"
  fi
}

# ---------------------------------------------------------------- redis
REDIS_PIDFILE="$DIR/redis/redis.pid"
redis_pid() {
  local pid
  pid="$(cat "$REDIS_PIDFILE" 2>/dev/null || true)"
  # Guard against a recycled pid: it must be a redis-server.
  if pid_alive "$pid" && grep -qa redis-server "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

redis_start() {
  local pid
  pid="$(redis_pid)"
  if [[ -n $pid ]]; then
    log "redis already running (pid $pid)"
    return
  fi
  mkdir -p "$DIR/redis"
  rm -f "$REDIS_PIDFILE"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$DIR/redis/redis.log" \
    --dir "$DIR/redis" || {
    show_log "$DIR/redis/redis.log"
    die "redis did not start"
  }
  log "redis started on 127.0.0.1:$REDIS_PORT"
}

redis_ready() {
  local i pid
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    pid="$(redis_pid)"
    if [[ -n $pid ]] && [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
      return 0
    fi
    sleep 0.1
  done
  show_log "$DIR/redis/redis.log"
  die "redis not ready on 127.0.0.1:$REDIS_PORT after ${TIMEOUT}s"
}

redis_stop() {
  local pid
  pid="$(redis_pid)"
  [[ -n $pid ]] || return 0
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  # shutdown returns before the process is gone: wait for the pid.
  if ! wait_pid_exit "$pid" 10; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$REDIS_PIDFILE"
  log "redis stopped"
}

# ---------------------------------------------------------------- seaweedfs
WEED_PIDFILE="$DIR/weed/weed.pid"
weed_pid() {
  local pid
  pid="$(cat "$WEED_PIDFILE" 2>/dev/null || true)"
  # It must be the weed started for this DIR (its -logdir names DIR).
  pid_alive "$pid" || return 0
  local cmdline
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)"
  if [[ $cmdline == *"-logdir=$DIR/weed/logs "* ]]; then
    echo "$pid"
  fi
}
weed_sockets() {
  local p
  for p in "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$S3_PORT" "$ADMIN_PORT"; do
    # weed always puts its gRPC sockets in /tmp, whatever TMPDIR says.
    compgen -G "/tmp/seaweedfs-*-grpc-$((p + 10000)).sock" || true
  done
}

weed_start() {
  local pid
  pid="$(weed_pid)"
  if [[ -n $pid ]]; then
    log "seaweedfs already running (pid $pid)"
    return
  fi
  [[ -x $WEED ]] || die "$WEED not found: run scripts/setup.sh --test"
  # Ports are free, so any socket left for them is stale.
  weed_sockets | while read -r s; do rm -f "$s"; done
  mkdir -p "$DIR/weed/data" "$DIR/weed/logs" "$DIR/weed/tmp"
  chmod 700 "$DIR/weed"
  local secret_file="$DIR/weed/s3-secret"
  if [[ ! -s $secret_file ]]; then
    (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$secret_file")
  fi
  (umask 077 && cat >"$DIR/weed/s3.json" <<EOF
{
  "identities": [
    {
      "name": "pochette",
      "credentials": [{"accessKey": "pochette-dev", "secretKey": "$(cat "$secret_file")"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  )
  # The filer's and volume server's HTTP ports answer without credentials: every read and
  # write there needs a JWT signed with these keys, which only weed's own S3 gateway holds.
  # Only the S3 port (access keys above) serves objects to anyone else.
  local jwt_file="$DIR/weed/jwt-keys"
  if [[ ! -s $jwt_file ]]; then
    (umask 077 && for _ in 1 2 3 4; do od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo; done >"$jwt_file")
  fi
  local keys
  mapfile -t keys <"$jwt_file"
  local sections=(jwt.signing jwt.signing.read jwt.filer_signing jwt.filer_signing.read) i
  (
    umask 077
    for i in "${!sections[@]}"; do
      printf '[%s]\nkey = "%s"\nexpires_after_seconds = 10\n' "${sections[$i]}" "${keys[$i]}"
    done >"$DIR/weed/security.toml"
    printf '[access]\nui = false\n' >>"$DIR/weed/security.toml"
  )
  # setsid: keep weed out of the caller's terminal signals (Ctrl-C, hangup).
  TMPDIR="$DIR/weed/tmp" setsid "$WEED" -config_dir="$DIR/weed" -logdir="$DIR/weed/logs" mini \
    -dir="$DIR/weed/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" -filer.port="$FILER_PORT" \
    -s3.port="$S3_PORT" -admin.port="$ADMIN_PORT" \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false -volume.preStopSeconds=0 \
    -filer.localSocket="$DIR/weed/filer.sock" -s3.localSocket="$DIR/weed/s3.sock" \
    -s3.config="$DIR/weed/s3.json" \
    </dev/null >"$DIR/weed/weed.out" 2>&1 &
  echo $! >"$WEED_PIDFILE"
  log "seaweedfs launched (pid $!), s3 on 127.0.0.1:$S3_PORT"
}

weed_ready() {
  local i pid code
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    pid="$(weed_pid)"
    if [[ -z $pid ]]; then
      show_log "$DIR/weed/weed.out"
      show_log "$DIR/weed/logs/weed.INFO"
      die "seaweedfs exited during startup"
    fi
    # With credentials enforced, an anonymous GET / answers 403.
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" || true)"
    [[ $code == 403 ]] && return 0
    sleep 0.1
  done
  show_log "$DIR/weed/weed.out"
  show_log "$DIR/weed/logs/weed.INFO"
  die "seaweedfs S3 not ready on 127.0.0.1:$S3_PORT after ${TIMEOUT}s (last HTTP code: ${code:-none})"
}

# Stopping weed takes 3-5 s: send TERM first, stop the others, then wait.
weed_stop_begin() {
  WEED_STOPPING="$(weed_pid)"
  if [[ -n $WEED_STOPPING ]]; then
    kill -TERM "$WEED_STOPPING" 2>/dev/null || true
  fi
}

weed_stop_wait() {
  local pid="${WEED_STOPPING:-}"
  if [[ -n $pid ]]; then
    if ! wait_pid_exit "$pid" 20; then
      log "seaweedfs did not stop after 20s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_pid_exit "$pid" 5 || true
    fi
    log "seaweedfs stopped"
  fi
  rm -f "$WEED_PIDFILE"
  if [[ -z "$(weed_pid)" ]]; then
    weed_sockets | while read -r s; do rm -f "$s"; done
  fi
}

# ---------------------------------------------------------------- commands
write_env() {
  (umask 077 && cat >"$DIR/env" <<EOF
export POCHETTE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/pochette
export POCHETTE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export POCHETTE_STORAGE_URL=s3://pochette
export POCHETTE_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=pochette-dev
export AWS_SECRET_ACCESS_KEY=$(cat "$DIR/weed/s3-secret")
export AWS_DEFAULT_REGION=us-east-1
EOF
  )
}

do_start() {
  [[ $(id -u) -eq 0 ]] || die "run as root (postgres runs through runuser)"
  local t0 recorded
  t0=$(now_ms)
  chmod 755 "$DIR"
  local ports
  ports="$(printf 'PG_PORT=%s\nREDIS_PORT=%s\nS3_PORT=%s\nMASTER_PORT=%s\nVOLUME_PORT=%s\nFILER_PORT=%s\nADMIN_PORT=%s' \
    "$PG_PORT" "$REDIS_PORT" "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT")"
  if [[ -f $ports_file ]]; then
    recorded="$(cat "$ports_file")"
    if [[ $recorded != "$ports" ]] && { pg_running || [[ -n "$(redis_pid)$(weed_pid)" ]]; }; then
      die "services in $DIR run with other ports ($(tr '\n' ' ' <<<"$recorded")); stop them first"
    fi
  fi
  printf '%s\n' "$ports" >"$ports_file"
  # Check every port before launching anything.
  local p
  if ! pg_running && port_busy "$PG_PORT"; then
    die "port $PG_PORT is in use by another process (set POCHETTE_PG_PORT)"
  fi
  if [[ -z "$(redis_pid)" ]] && port_busy "$REDIS_PORT"; then
    die "port $REDIS_PORT is in use by another process (set POCHETTE_REDIS_PORT)"
  fi
  if [[ -z "$(weed_pid)" ]]; then
    for p in "$S3_PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$ADMIN_PORT"; do
      if port_busy "$p" || port_busy $((p + 10000)); then
        die "port $p or $((p + 10000)) is in use by another process (set POCHETTE_S3_PORT to move the weed ports)"
      fi
    done
  fi
  # Launch all three, then wait: weed's startup overlaps the others'.
  weed_start
  pg_start
  redis_start
  redis_ready
  pg_ready
  weed_ready
  printf 'postgres=%s\nredis=%s\nweed=%s\n' "$(pg_pid)" "$(redis_pid)" "$(weed_pid)" >"$DIR/pids"
  write_env
  log "up in $(secs_since "$t0"): postgres :$PG_PORT, redis :$REDIS_PORT, s3 :$S3_PORT (state in $DIR)"
  cat "$DIR/env"
}

do_stop() {
  if [[ ! -d $DIR ]]; then
    log "nothing to stop ($DIR does not exist)"
    return
  fi
  local t0 rc=0
  t0=$(now_ms)
  # Stop each even if another fails.
  weed_stop_begin
  redis_stop || rc=1
  pg_stop || rc=1
  weed_stop_wait || rc=1
  rm -f "$DIR/pids"
  log "stopped in $(secs_since "$t0")"
  return "$rc"
}

do_status() {
  local pid down=0
  if [[ -d $DIR ]] && pg_running; then
    echo "postgres  running  pid $(pg_pid)  127.0.0.1:$PG_PORT"
  else
    echo "postgres  stopped"
    down=1
  fi
  pid="$(redis_pid)"
  if [[ -n $pid ]]; then
    echo "redis     running  pid $pid  127.0.0.1:$REDIS_PORT"
  else
    echo "redis     stopped"
    down=1
  fi
  pid="$(weed_pid)"
  if [[ -n $pid ]]; then
    echo "seaweedfs running  pid $pid  s3 http://127.0.0.1:$S3_PORT"
  else
    echo "seaweedfs stopped"
    down=1
  fi
  echo "state dir $DIR"
  return $((down ? 3 : 0))
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env)
    [[ -f $DIR/env ]] || die "no $DIR/env: run '$0 start${2:+ $2}' first"
    cat "$DIR/env"
    ;;
esac
