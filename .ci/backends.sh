#!/usr/bin/env bash
# Shared storage for the Transparency Service's AWS backend, on this machine:
# Debian's MariaDB (sequencing, statement store, entry index) and versitygw
# (an S3-compatible store that honours If-None-Match, which Tessera relies on)
# on loopback, with all their data under DIR.
#
#   .ci/backends.sh up DIR     install if missing, start both, create the
#                              database, its user and the bucket; print
#                              `export` lines (eval them)
#   .ci/backends.sh down DIR   stop exactly the processes `up DIR` started
#
# Runs as root on a fresh machine (no systemd): mariadbd is started directly
# with its own datadir, socket and port. The application connects as a real
# user with a password (not root, no --skip-grant-tables).
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

VERSITYGW_VERSION=v1.8.0
bindir="${XDG_CACHE_HOME:-$HOME/.cache}/trustfabric/bin"
db_name=trustfabric
db_user=trustfabric
bucket=trustfabric
s3_key=trustfabric-access
region=us-east-1

stop_pid() { # name pidfile
  local pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$1 (pid $pid) did not stop; killing it" >&2
      kill -9 "$pid"
    fi
  fi
  rm -f "$pidfile"
}

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; exit 1
}

wait_for() { # what command...
  local what=$1; shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$what did not come up; see the logs in $dir" >&2
  return 1
}

up() {
  if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
    echo "installing mariadb-server (Debian)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >&2
  fi
  if [ ! -x "$bindir/versitygw" ]; then
    echo "installing versitygw $VERSITYGW_VERSION into $bindir" >&2
    mkdir -p "$bindir"
    (cd / && GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2
  fi
  if [ -f "$dir/mariadb.pid" ] || [ -f "$dir/versitygw.pid" ]; then
    echo "$dir already has running backends; run: $0 down $dir" >&2; exit 1
  fi
  # A failed start stops what it started.
  trap 'down' ERR
  mkdir -p "$dir/db" "$dir/s3data" "$dir/run"
  # The secrets stay in DIR (mode 0600), generated once.
  if [ ! -f "$dir/secrets" ]; then
    (umask 077; printf 'db_pass=%s\ns3_secret=%s\n' "$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')" \
      "$(head -c 24 /dev/urandom | base64 | tr '+/' 'xy')" > "$dir/secrets")
  fi
  local db_pass="" s3_secret=""
  # shellcheck disable=SC1091
  . "$dir/secrets"

  local user=root
  [ "$(id -u)" -eq 0 ] || user=$(id -un)
  if [ ! -d "$dir/db/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/db" --user="$user" \
      --auth-root-authentication-method=socket --skip-test-db >"$dir/mariadb-install.log" 2>&1 ||
      { echo "mariadb-install-db failed; see $dir/mariadb-install.log" >&2; exit 1; }
  fi
  local db_port s3_port
  db_port=$(free_port)
  mariadbd --no-defaults --datadir="$dir/db" --socket="$dir/run/mysql.sock" --port="$db_port" \
    --bind-address=127.0.0.1 --user="$user" --pid-file="$dir/run/mariadbd.pid" \
    --max-connections=500 --innodb-buffer-pool-size=128M --max-allowed-packet=64M \
    --log-error="$dir/mariadb.log" >/dev/null 2>&1 &
  echo $! > "$dir/mariadb.pid"
  wait_for "MariaDB" mariadb --no-defaults --socket="$dir/run/mysql.sock" -uroot -e 'SELECT 1'
  mariadb --no-defaults --socket="$dir/run/mysql.sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS $db_name;
CREATE USER IF NOT EXISTS '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_pass';
ALTER USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_pass';
GRANT ALL ON $db_name.* TO '$db_user'@'127.0.0.1';
-- the tests create one scratch database each (trustfabric_test_...)
GRANT ALL ON \`${db_name}\_test\_%\`.* TO '$db_user'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

  s3_port=$(free_port)
  ROOT_ACCESS_KEY_ID="$s3_key" ROOT_SECRET_ACCESS_KEY="$s3_secret" \
    "$bindir/versitygw" --port "127.0.0.1:$s3_port" posix "$dir/s3data" >"$dir/versitygw.log" 2>&1 &
  echo $! > "$dir/versitygw.pid"
  local endpoint="http://127.0.0.1:$s3_port"
  wait_for "versitygw" curl -sS -o /dev/null "$endpoint"
  local code
  # SigV4 by curl; S3 wants the payload hash header (SHA-256 of the empty body).
  code=$(curl -sS -o "$dir/create-bucket.out" -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$region:s3" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    --user "$s3_key:$s3_secret" "$endpoint/$bucket")
  case $code in
    200|409) ;;
    *) echo "creating bucket $bucket failed (HTTP $code): $(cat "$dir/create-bucket.out")" >&2; down; exit 1 ;;
  esac

  cat <<EOF
export TF_DB_DSN='$db_user:$db_pass@tcp(127.0.0.1:$db_port)/$db_name'
export TF_S3_ENDPOINT='$endpoint'
export TF_S3_BUCKET='$bucket'
export AWS_ACCESS_KEY_ID='$s3_key'
export AWS_SECRET_ACCESS_KEY='$s3_secret'
export AWS_REGION='$region'
EOF
}

down() {
  stop_pid versitygw "$dir/versitygw.pid"
  stop_pid mariadbd "$dir/mariadb.pid"
}

case $cmd in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
