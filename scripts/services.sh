#!/usr/bin/env bash
# Installs (apt, only what is missing) and runs the real local services the pipeline's
# integration tests use, all on 127.0.0.1, all state under ONE folder:
#   ${PIPELINE_STATE_DIR:-<repo>/.state}
#
#   scripts/services.sh start [--docker]   start what is not running (idempotent)
#   scripts/services.sh stop [service...]  stop only the processes this script recorded
#                                          (services: postgres clamd registry fcgiwrap nginx dockerd)
#   scripts/services.sh status             one line per service
#
# PIPELINE_WITH_DOCKER=1 is the same as --docker (also installs docker.io and runs dockerd).
# PIPELINE_{PG,CLAMD,REGISTRY,GIT}_PORT override the default ports 55432, 3310, 5000, 8088.
# After `start`, <state>/services.env holds KEY=VALUE lines for the tests.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${PIPELINE_STATE_DIR:-$REPO_ROOT/.state}

# Fixed ports (all services are shared on one machine); overridable only to run a second,
# throw-away instance next to the shared one (e.g. to test this script).
readonly PG_PORT=${PIPELINE_PG_PORT:-55432}
readonly CLAMD_PORT=${PIPELINE_CLAMD_PORT:-3310}
readonly REGISTRY_PORT=${PIPELINE_REGISTRY_PORT:-5000}
readonly GIT_PORT=${PIPELINE_GIT_PORT:-8088}
readonly GIT_USER=pipeline
readonly PG_BIN=/usr/lib/postgresql/15/bin

APT_PACKAGES=(docker-registry skopeo umoci clamav-daemon clamav clamdscan clamav-testfiles
  apache2-utils gnupg nginx fcgiwrap netcat-openbsd jq zip p7zip-full busybox-static git
  openssh-client curl systemd bsdextrautils)

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes: liveness without kill -0 (PID 1 does not reap orphans, zombies linger).
# ---------------------------------------------------------------------------------------------

# Expected /proc/PID/comm for each recorded service (guards against a reused PID).
comm_of() {
  case "$1" in
    postgres) echo postgres ;;
    clamd) echo clamd ;;
    registry) echo docker-registry ;;
    nginx) echo nginx ;;
    fcgiwrap) echo fcgiwrap ;;
    dockerd) echo dockerd ;;
    *) die "unknown service $1" ;;
  esac
}

# pid_alive PID: the process exists and is not a zombie/dead.
pid_alive() {
  local pid=$1 stat state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state:0:1}
  [[ $state != Z && $state != X && $state != x ]]
}

pid_file() { echo "$STATE_DIR/pids/$1.pid"; }

# recorded_pid NAME: prints the recorded PID when that process is alive and is the expected
# program; otherwise fails (a stale pid file is cleaned by clean_stale at start).
recorded_pid() {
  local name=$1 file pid comm
  file=$(pid_file "$name")
  [[ -f $file ]] || return 1
  pid=$(tr -d ' \n' <"$file")
  if pid_alive "$pid"; then
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ $comm == "$(comm_of "$name")" ]]; then
      echo "$pid"
      return 0
    fi
  fi
  return 1
}

record_pid() { mkdir -p "$STATE_DIR/pids"; echo "$2" >"$(pid_file "$1")"; }

# stop_pid NAME SIGNAL: signal, wait up to 15 s, then KILL.
stop_service() {
  local name=$1 sig=${2:-TERM} pid i
  clean_stale "$name"
  if ! pid=$(recorded_pid "$name"); then
    return 0
  fi
  log "stopping $name (pid $pid, SIG$sig)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "$name (pid $pid) did not stop in 15 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
  fi
  pid_alive "$pid" && die "$name (pid $pid) is still alive after SIGKILL"
  # Every service was started as the leader of its own session: children it left behind
  # (fcgiwrap's preforked workers, for example) are in that session and end with it.
  local rest
  rest=$(session_members "$pid")
  if [[ -n $rest ]]; then
    log "$name: ending leftover processes of its session: $rest"
    # shellcheck disable=SC2086
    kill -TERM $rest 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -z $(session_members "$pid") ]] && break
      sleep 0.1
    done
    rest=$(session_members "$pid")
    # shellcheck disable=SC2086
    [[ -n $rest ]] && { kill -KILL $rest 2>/dev/null || true; }
  fi
  rm -f "$(pid_file "$name")"
}

# session_members SID [COMM]: live (non-zombie) processes whose session id is SID (and whose
# command name is COMM, when given).
session_members() {
  local sid=$1 comm=${2:-} f stat rest state fields out=() p
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue
    rest=${stat##*) }
    read -r state _ _ fields _ <<<"$rest"
    [[ $fields == "$sid" && $state != Z && $state != X ]] || continue
    p=${f#/proc/}
    p=${p%/stat}
    if [[ -n $comm && $(cat "/proc/$p/comm" 2>/dev/null) != "$comm" ]]; then continue; fi
    out+=("$p")
  done
  echo "${out[*]}"
}

# clean_stale NAME: when the recorded leader of NAME is gone (killed, crashed), end what is
# left of its session (e.g. nginx workers still holding the port) and drop the pid file.
clean_stale() {
  local name=$1 file pid rest i
  file=$(pid_file "$name")
  [[ -f $file ]] || return 0
  recorded_pid "$name" >/dev/null && return 0
  pid=$(tr -d ' \n' <"$file" 2>/dev/null || true)
  rm -f "$file"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  rest=$(session_members "$pid" "$(comm_of "$name")")
  [[ -n $rest ]] || return 0
  log "$name: leader $pid is gone; ending its leftover processes: $rest"
  # shellcheck disable=SC2086
  kill -TERM $rest 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [[ -z $(session_members "$pid" "$(comm_of "$name")") ]] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $(session_members "$pid" "$(comm_of "$name")") 2>/dev/null || true
}

# tcp_open PORT: something accepts connections on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ensure_port_free NAME PORT: fail with a clear reason when a foreign process holds the port.
ensure_port_free() {
  if tcp_open "$2"; then
    die "$1: 127.0.0.1:$2 is already in use by a process this script did not start (see: ss -ltnp 'sport = :$2')"
  fi
}

# launch NAME LOG COMMAND...: runs COMMAND in its own session in the background, records its PID.
launch() {
  local name=$1 logfile=$2 pid
  shift 2
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  pid=$!
  record_pid "$name" "$pid"
  echo "$pid"
}

fail_with_log() {
  local name=$1 logfile=$2
  printf '[services] --- last lines of %s ---\n' "$logfile" >&2
  tail -n 30 "$logfile" >&2 || true
  stop_service "$name" KILL || true
  die "$name did not become ready"
}

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() {
  local with_docker=$1 missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb ]] || missing+=(postgresql-15)
  if [[ $with_docker == 1 ]] && ! command -v dockerd >/dev/null; then missing+=(docker.io); fi
  # By command, not by package: a machine may have them from elsewhere (e.g. node with its own npm).
  command -v python3 >/dev/null || missing+=(python3)
  command -v npm >/dev/null || missing+=(nodejs npm)
  # Independent check of rendered manifests (kubectl kustomize) in the deployment tests.
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  # Headless browser for the auditor web page tests.
  command -v chromium >/dev/null || missing+=(chromium)
  if ((${#missing[@]} == 0)); then
    log "packages: all present"
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root: install them or run as root"
  log "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Downloads as root: on some machines apt's unprivileged sandbox user cannot resolve host names.
  apt-get -o APT::Sandbox::User=root update -q
  apt-get -o APT::Sandbox::User=root install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15 on 127.0.0.1:55432, trust auth, database `pipeline`
# ---------------------------------------------------------------------------------------------

start_postgres() {
  local dir=$STATE_DIR/postgres data=$STATE_DIR/postgres/data run=$STATE_DIR/postgres/run
  local logfile=$STATE_DIR/logs/postgres.log pid
  clean_stale postgres
  if pid=$(recorded_pid postgres) && tcp_open "$PG_PORT"; then
    log "postgres: already running (pid $pid) on 127.0.0.1:$PG_PORT"
    ensure_database
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service postgres INT
  ensure_port_free postgres "$PG_PORT"

  mkdir -p "$dir" "$run"
  chown postgres:postgres "$dir" "$run"
  chmod 700 "$dir"
  runuser -u postgres -- test -w "$dir" ||
    die "postgres: user postgres cannot write $dir (every parent folder of the state dir must be searchable by others)"

  if [[ ! -f $data/PG_VERSION ]]; then
    rm -rf "$data" # a half-made data folder from an interrupted initdb
    log "postgres: initdb $data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -N -E UTF8 \
      --locale=C.UTF-8 >>"$logfile" 2>&1 || { tail -n 20 "$logfile" >&2; die "postgres: initdb failed"; }
    echo "include_if_exists = 'pipeline.conf'" >>"$data/postgresql.conf"
  fi
  # Rewritten at every start so the settings always match this state folder.
  cat >"$data/pipeline.conf" <<EOF
# written by scripts/services.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$run'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  chown postgres:postgres "$data/pipeline.conf"

  # A postmaster.pid left by a killed server blocks the start; drop it when its PID is dead.
  if [[ -f $data/postmaster.pid ]]; then
    local old
    old=$(head -n 1 "$data/postmaster.pid")
    if ! pid_alive "$old"; then rm -f "$data/postmaster.pid"; fi
  fi

  log "postgres: starting on 127.0.0.1:$PG_PORT"
  touch "$logfile" && chown postgres:postgres "$logfile"
  setsid runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start \
    >/dev/null </dev/null || { tail -n 30 "$logfile" >&2; die "postgres: pg_ctl start failed"; }
  pid=$(head -n 1 "$data/postmaster.pid")
  record_pid postgres "$pid"
  wait_for 30 "postgres" tcp_open "$PG_PORT" || fail_with_log postgres "$logfile"
  ensure_database
  log "postgres: ready (pid $pid)"
}

ensure_database() {
  local psql=(runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
  if [[ $("${psql[@]}" -c "select 1 from pg_database where datname = 'pipeline'") != 1 ]]; then
    log "postgres: creating database pipeline"
    "${psql[@]}" -c "create database pipeline" >/dev/null
  fi
}

# ---------------------------------------------------------------------------------------------
# clamd: custom signature database only, TCP 127.0.0.1:3310 + a unix socket
# ---------------------------------------------------------------------------------------------

# The EICAR test string, assembled at run time so that no file in the repository contains it
# in one piece (antivirus on other machines would flag the repository).
eicar_string() {
  local a='X5O!P%@AP[4\PZX54(P^)7CC)7}$' b='EICAR-STANDARD-' c='ANTIVIRUS-TEST-FILE!$H+H*'
  printf '%s%s%s' "$a" "$b" "$c"
}

write_clamd_db() {
  local db=$1 hex md5 size f tmp
  mkdir -p "$db"
  hex=$(eicar_string | od -An -v -tx1 | tr -d ' \n')
  md5=$(eicar_string | md5sum | cut -d' ' -f1)
  size=$(eicar_string | wc -c)
  [[ $size == 68 ]] || die "clamd: EICAR test string is $size bytes, expected 68"
  printf 'Pipeline.Test.EICAR:0:*:%s\n' "$hex" >"$db/pipeline-eicar.ndb"
  printf '%s:%s:Pipeline.Test.EICAR.File\n' "$md5" "$size" >"$db/pipeline-eicar.hdb"
  tmp=$db/pipeline-testfiles.hdb.tmp
  : >"$tmp"
  if [[ -d /usr/share/clamav-testfiles ]]; then
    for f in /usr/share/clamav-testfiles/*; do
      [[ -f $f ]] || continue
      md5=$(md5sum <"$f" | cut -d' ' -f1)
      size=$(stat -c %s "$f")
      printf '%s:%s:Pipeline.Test.ClamavTestfile.%s\n' "$md5" "$size" "$(basename "$f")" >>"$tmp"
    done
  fi
  if [[ -s $tmp ]]; then mv -f "$tmp" "$db/pipeline-testfiles.hdb"; else rm -f "$tmp" "$db/pipeline-testfiles.hdb"; fi
}

clamd_ping_tcp() (
  reply=''
  exec 4<>"/dev/tcp/127.0.0.1/$CLAMD_PORT" || exit 1
  printf 'zPING\0' >&4
  IFS= read -r -d '' -t 3 reply <&4 || true
  [[ $reply == PONG ]]
) 2>/dev/null

clamd_ping_unix() {
  local reply
  [[ -S $1 ]] || return 1
  reply=$(printf 'zPING\0' | nc -U -w 3 "$1" 2>/dev/null | tr -d '\0') || true
  [[ $reply == PONG ]]
}

start_clamd() {
  local dir=$STATE_DIR/clamd logfile=$STATE_DIR/logs/clamd.log pid
  local sock=$dir/clamd.sock conf=$dir/clamd.conf
  mkdir -p "$dir/tmp"
  write_clamd_db "$dir/db"
  clean_stale clamd
  if pid=$(recorded_pid clamd) && clamd_ping_tcp; then
    log "clamd: already running (pid $pid) on 127.0.0.1:$CLAMD_PORT and $sock"
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service clamd TERM
  ensure_port_free clamd "$CLAMD_PORT"
  rm -f "$sock"
  cat >"$conf" <<EOF
# written by scripts/services.sh
Foreground yes
LogFile $STATE_DIR/logs/clamd.log
LogTime yes
LogVerbose no
DatabaseDirectory $dir/db
TemporaryDirectory $dir/tmp
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
LocalSocket $sock
LocalSocketMode 666
User root
MaxThreads 8
MaxConnectionQueueLength 30
StreamMaxLength 64M
MaxScanSize 256M
MaxFileSize 64M
MaxRecursion 8
ScanArchive yes
AlertEncrypted yes
AlertEncryptedArchive yes
AlertExceedsMax yes
SelfCheck 600
EOF
  log "clamd: starting on 127.0.0.1:$CLAMD_PORT and $sock"
  pid=$(launch clamd "$STATE_DIR/logs/clamd-stdout.log" clamd -c "$conf")
  wait_for 60 clamd clamd_ping_tcp || fail_with_log clamd "$logfile"
  wait_for 10 clamd clamd_ping_unix "$sock" || fail_with_log clamd "$logfile"
  chmod 666 "$sock"
  log "clamd: ready (pid $pid), PONG over TCP and unix socket"
}

# ---------------------------------------------------------------------------------------------
# OCI registry (docker-registry / distribution 2.8) on 127.0.0.1:5000, delete enabled
# ---------------------------------------------------------------------------------------------

registry_ready() { curl -sf -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; }

start_registry() {
  local dir=$STATE_DIR/registry logfile=$STATE_DIR/logs/registry.log pid
  clean_stale registry
  if pid=$(recorded_pid registry) && registry_ready; then
    log "registry: already running (pid $pid) on 127.0.0.1:$REGISTRY_PORT"
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service registry TERM
  ensure_port_free registry "$REGISTRY_PORT"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
# written by scripts/services.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  log "registry: starting on 127.0.0.1:$REGISTRY_PORT"
  pid=$(launch registry "$logfile" docker-registry serve "$dir/config.yml")
  wait_for 30 registry registry_ready || fail_with_log registry "$logfile"
  log "registry: ready (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# git smart HTTP: nginx (basic auth) + fcgiwrap + git http-backend on 127.0.0.1:8088/git/
# ---------------------------------------------------------------------------------------------

git_http_code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GIT_PORT/git/" || true; }
git_ready() { [[ $(git_http_code) == 401 ]]; }

ensure_git_credentials() {
  local dir=$STATE_DIR/git pw
  if [[ ! -s $dir/password ]]; then
    log "git: generating the password for user $GIT_USER"
    (umask 077 && od -An -v -N 18 -tx1 /dev/urandom | tr -d ' \n' >"$dir/password")
  fi
  chmod 600 "$dir/password"
  pw=$(<"$dir/password")
  if [[ ! -s $dir/htpasswd ]] || ! htpasswd -vb "$dir/htpasswd" "$GIT_USER" "$pw" >/dev/null 2>&1; then
    (umask 077 && htpasswd -Bbn "$GIT_USER" "$pw" | grep -v '^$' >"$dir/htpasswd")
  fi
}

start_fcgiwrap() {
  local dir=$STATE_DIR/git logfile=$STATE_DIR/logs/fcgiwrap.log pid sock=$STATE_DIR/git/fcgiwrap.sock
  clean_stale fcgiwrap
  if pid=$(recorded_pid fcgiwrap) && [[ -S $sock ]]; then
    log "fcgiwrap: already running (pid $pid) on $sock"
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service fcgiwrap TERM
  rm -f "$sock"
  log "fcgiwrap: starting on $sock"
  pid=$(launch fcgiwrap "$logfile" fcgiwrap -f -c 4 -s "unix:$sock")
  wait_for 10 fcgiwrap test -S "$sock" || fail_with_log fcgiwrap "$logfile"
  chmod 660 "$sock"
  log "fcgiwrap: ready (pid $pid)"
}

start_git_http() {
  local dir=$STATE_DIR/git logfile=$STATE_DIR/logs/nginx.log pid backend
  mkdir -p "$dir/repos" "$dir/nginx/tmp"
  ensure_git_credentials
  start_fcgiwrap
  clean_stale nginx
  if pid=$(recorded_pid nginx) && git_ready; then
    log "git-http: nginx already running (pid $pid) on http://127.0.0.1:$GIT_PORT/git"
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service nginx TERM
  ensure_port_free nginx "$GIT_PORT"
  backend=$(git --exec-path)/git-http-backend
  [[ -x $backend ]] || die "git-http: $backend not found"
  cat >"$dir/nginx/nginx.conf" <<EOF
# written by scripts/services.sh
daemon off;
master_process on;
worker_processes 2;
user root root;
pid $dir/nginx/nginx.pid;
error_log $STATE_DIR/logs/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log $STATE_DIR/logs/nginx-access.log;
  client_body_temp_path $dir/nginx/tmp/body;
  proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi;
  uwsgi_temp_path $dir/nginx/tmp/uwsgi;
  scgi_temp_path $dir/nginx/tmp/scgi;
  client_max_body_size 0;
  server_tokens off;
  server {
    listen 127.0.0.1:$GIT_PORT;
    server_name localhost;
    auth_basic "pipeline git";
    auth_basic_user_file $dir/htpasswd;
    location ~ ^/git(/.*)\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass unix:$dir/fcgiwrap.sock;
      fastcgi_read_timeout 600s;
      fastcgi_param SCRIPT_FILENAME $backend;
      fastcgi_param PATH_INFO \$1;
      fastcgi_param GIT_PROJECT_ROOT $dir/repos;
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param REMOTE_USER \$remote_user;
      fastcgi_param HOME $dir;
    }
    location / { return 404; }
  }
}
EOF
  nginx -t -q -e "$STATE_DIR/logs/nginx-error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" ||
    die "git-http: nginx rejected $dir/nginx/nginx.conf"
  log "git-http: starting nginx on http://127.0.0.1:$GIT_PORT/git"
  pid=$(launch nginx "$logfile" nginx -e "$STATE_DIR/logs/nginx-error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf")
  wait_for 30 nginx git_ready || fail_with_log nginx "$STATE_DIR/logs/nginx-error.log"
  log "git-http: ready (pid $pid), anonymous requests get 401"
}

# ---------------------------------------------------------------------------------------------
# Docker engine (optional): socket under the state folder
# ---------------------------------------------------------------------------------------------

docker_ready() { curl -sf --unix-socket "$STATE_DIR/docker/docker.sock" http://localhost/_ping >/dev/null; }

start_docker() {
  local dir=$STATE_DIR/docker logfile=$STATE_DIR/logs/dockerd.log pid
  clean_stale dockerd
  if pid=$(recorded_pid dockerd) && docker_ready; then
    log "docker: already running (pid $pid) on unix://$dir/docker.sock"
    return 0
  fi
  [[ -n ${pid:-} ]] && stop_service dockerd TERM
  mkdir -p "$dir/data" "$dir/run"
  rm -f "$dir/docker.sock"
  cat >"$dir/daemon.json" <<EOF
{
  "data-root": "$dir/data",
  "exec-root": "$dir/run",
  "pidfile": "$dir/dockerd.pid",
  "hosts": ["unix://$dir/docker.sock"],
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "bridge": "none",
  "insecure-registries": ["127.0.0.1:$REGISTRY_PORT"]
}
EOF
  log "docker: starting dockerd on unix://$dir/docker.sock"
  pid=$(launch dockerd "$logfile" dockerd --config-file "$dir/daemon.json")
  wait_for 60 dockerd docker_ready || fail_with_log dockerd "$logfile"
  log "docker: ready (pid $pid)"
}

# ---------------------------------------------------------------------------------------------

write_env() {
  local tmp=$STATE_DIR/services.env.tmp
  {
    echo "PIPELINE_STATE_DIR=$STATE_DIR"
    # Quoted: the value holds ';', so the file can also be sourced by a shell.
    echo "PIPELINE_PG_CONN=\"Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=pipeline\""
    echo "PIPELINE_PG_PORT=$PG_PORT"
    echo "PIPELINE_CLAMD_TCP=127.0.0.1:$CLAMD_PORT"
    echo "PIPELINE_CLAMD_SOCKET=$STATE_DIR/clamd/clamd.sock"
    echo "PIPELINE_CLAMD_CONFIG=$STATE_DIR/clamd/clamd.conf"
    echo "PIPELINE_REGISTRY=127.0.0.1:$REGISTRY_PORT"
    echo "PIPELINE_GIT_HTTP=http://127.0.0.1:$GIT_PORT/git"
    echo "PIPELINE_GIT_ROOT=$STATE_DIR/git/repos"
    echo "PIPELINE_GIT_USER=$GIT_USER"
    echo "PIPELINE_GIT_PASSWORD_FILE=$STATE_DIR/git/password"
    if [[ -s $STATE_DIR/sigstore/trusted_root.json ]]; then
      echo "PIPELINE_SIGSTORE_DEFAULT_ROOT=$STATE_DIR/sigstore/trusted_root.json"
    fi
    if recorded_pid dockerd >/dev/null && docker_ready; then
      echo "PIPELINE_DOCKER_HOST=unix://$STATE_DIR/docker/docker.sock"
    fi
  } >"$tmp"
  mv -f "$tmp" "$STATE_DIR/services.env"
  log "wrote $STATE_DIR/services.env"
}

cmd_start() {
  local with_docker=${PIPELINE_WITH_DOCKER:-0} started=$SECONDS
  for a in "$@"; do
    case "$a" in
      --docker) with_docker=1 ;;
      *) die "start: unknown option $a (usage: start [--docker])" ;;
    esac
  done
  install_packages "$with_docker"
  mkdir -p "$STATE_DIR"
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  mkdir -p "$STATE_DIR/pids" "$STATE_DIR/logs" "$STATE_DIR/git"
  log "state folder: $STATE_DIR"
  start_postgres
  start_clamd
  start_registry
  start_git_http
  if [[ $with_docker == 1 ]]; then start_docker; fi
  "$REPO_ROOT/scripts/install-sigstore-root.sh" "$STATE_DIR/sigstore/trusted_root.json"
  write_env
  log "all services up in $((SECONDS - started)) s"
}

cmd_stop() {
  [[ -d $STATE_DIR ]] || { log "nothing to stop ($STATE_DIR does not exist)"; return 0; }
  STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
  if (($# > 0)); then
    local name
    for name in "$@"; do
      comm_of "$name" >/dev/null
      case "$name" in postgres) stop_service postgres INT ;; *) stop_service "$name" TERM ;; esac
    done
    [[ -f $STATE_DIR/services.env ]] && write_env
    return 0
  fi
  stop_service dockerd TERM
  stop_service nginx TERM # TERM = fast shutdown for nginx
  stop_service fcgiwrap TERM
  stop_service registry TERM
  stop_service clamd TERM
  stop_service postgres INT # INT = fast shutdown (TERM would wait for clients to disconnect)
  rm -f "$STATE_DIR/clamd/clamd.sock" "$STATE_DIR/git/fcgiwrap.sock"
  log "stopped"
}

status_line() {
  local name=$1 address=$2 check=$3 pid
  if pid=$(recorded_pid "$name") && $check; then
    printf '%-9s running  pid %-7s %s\n' "$name" "$pid" "$address"
    return 0
  elif [[ -n ${pid:-} ]]; then
    printf '%-9s unhealthy pid %-6s %s (process alive, not answering)\n' "$name" "$pid" "$address"
  else
    printf '%-9s stopped  %-11s %s\n' "$name" "" "$address"
  fi
  return 1
}

cmd_status() {
  local rc=0
  if [[ -d $STATE_DIR ]]; then STATE_DIR=$(cd "$STATE_DIR" && pwd -P); fi
  status_line postgres "127.0.0.1:$PG_PORT" "tcp_open $PG_PORT" || rc=1
  status_line clamd "127.0.0.1:$CLAMD_PORT $STATE_DIR/clamd/clamd.sock" clamd_ping_tcp || rc=1
  status_line registry "http://127.0.0.1:$REGISTRY_PORT/v2/" registry_ready || rc=1
  status_line fcgiwrap "$STATE_DIR/git/fcgiwrap.sock" "test -S $STATE_DIR/git/fcgiwrap.sock" || rc=1
  status_line nginx "http://127.0.0.1:$GIT_PORT/git (git smart HTTP)" git_ready || rc=1
  if [[ -f $(pid_file dockerd) || ${PIPELINE_WITH_DOCKER:-0} == 1 ]]; then
    status_line dockerd "unix://$STATE_DIR/docker/docker.sock" docker_ready || rc=1
  fi
  return $rc
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [--docker] | stop [service...] | status" >&2; exit 2 ;;
esac
