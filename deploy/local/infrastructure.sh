#!/usr/bin/env bash
# Local infrastructure for `./smgw up` and `./smgw test` on a Debian machine (root):
# installs and starts whatever of PostgreSQL, Redis, RabbitMQ (+ management) and clamd is missing or stopped,
# reuses what already runs, creates the database, and writes the local settings to $SMGW_STATE_DIR/env.
set -euo pipefail

ROOT="${SMGW_ROOT:?}"
STATE="${SMGW_STATE_DIR:?}"
mkdir -p "$STATE"

say() { printf '\033[1;34msmgw\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31msmgw\033[0m %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds what
  for _ in $(seq 1 "$(( $2 * 4 ))"); do port_open "$1" && return 0; sleep 0.25; done
  die "$3 did not come up on 127.0.0.1:$1"
}

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# --- PostgreSQL -------------------------------------------------------------------------------------------------
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start >&2
  wait_port 5432 30 PostgreSQL
fi

# --- Redis ------------------------------------------------------------------------------------------------------
if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/smgw.log >&2
  wait_port 6379 15 Redis
fi

# --- RabbitMQ + management plugin -------------------------------------------------------------------------------
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  say "starting RabbitMQ"
  rabbitmq-server -detached >&2
  wait_port 5672 90 RabbitMQ
fi
if ! port_open 15672; then
  say "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable --quiet rabbitmq_management >&2 || rabbitmq-plugins enable rabbitmq_management >&2
  wait_port 15672 60 "RabbitMQ management"
fi

# --- clamd with the project's offline test signatures (no freshclam here: there is no internet) ----------------
apt_install clamav-daemon clamav clamav-testfiles
MAX_BYTES="${SMGW_MAX_MESSAGE_BYTES:-52428800}"
CLAM="$STATE/clamav"
mkdir -p "$CLAM/db"
# Use an official database if the machine has one; otherwise the project's test signatures.
if ls /var/lib/clamav/*.cvd /var/lib/clamav/*.cld >/dev/null 2>&1; then
  DBDIR=/var/lib/clamav
else
  DBDIR="$CLAM/db"
  cp "$ROOT/deploy/clamav/test-signatures/"* "$CLAM/db/"
fi
# StreamMaxLength must fit a whole message (MIME base64 inflates attachments by a third, the limit is on the raw
# message); the Alert* options make clamd report what it could not fully scan instead of answering OK. MaxFileSize is
# MaxScanSize: clamd skips an archive member over MaxFileSize and answers OK even with AlertExceedsMax (ClamAV issue
# 633), while one over MaxScanSize is reported.
STREAM_MAX=$(( MAX_BYTES + 1048576 ))
# Written beside the old one first: a clamd already running with other limits (SMGW_MAX_MESSAGE_BYTES changed)
# must be restarted, or it would keep refusing or under-scanning with the old ones.
OLD_CONF="$(cat "$CLAM/clamd.conf" 2>/dev/null || true)"
cat > "$CLAM/clamd.conf.new" <<EOF
TCPSocket 3310
TCPAddr 127.0.0.1
Foreground false
PidFile $CLAM/clamd.pid
LogFile $CLAM/clamd.log
DatabaseDirectory $DBDIR
StreamMaxLength $STREAM_MAX
MaxScanSize $(( STREAM_MAX * 4 ))
MaxFileSize $(( STREAM_MAX * 4 ))
MaxRecursion 16
MaxFiles 10000
MaxScanTime 120000
AlertExceedsMax yes
AlertEncrypted yes
AlertEncryptedArchive yes
AlertEncryptedDoc yes
AlertBrokenExecutables yes
AlertOLE2Macros no
ScanMail true
ScanArchive true
ReadTimeout 120
CommandReadTimeout 30
MaxThreads 8
ExtendedDetectionInfo true
EOF
mv "$CLAM/clamd.conf.new" "$CLAM/clamd.conf"
clamd_pong() { [ "$(printf 'zPING\0' | timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3310; cat >&3; tr -d "\0" <&3' 2>/dev/null)" = "PONG" ]; }
if [ -n "$OLD_CONF" ] && [ "$OLD_CONF" != "$(cat "$CLAM/clamd.conf")" ] && [ -f "$CLAM/clamd.pid" ] && clamd_pong; then
  say "clamd settings changed: restarting the clamd ./smgw up started"
  kill "$(cat "$CLAM/clamd.pid")" 2>/dev/null || true
  for _ in $(seq 1 40); do clamd_pong || break; sleep 0.25; done
fi
if ! clamd_pong; then
  say "starting clamd on 127.0.0.1:3310"
  [ -f "$CLAM/clamd.pid" ] && kill "$(cat "$CLAM/clamd.pid")" 2>/dev/null || true
  clamd -c "$CLAM/clamd.conf" >&2
  for _ in $(seq 1 240); do clamd_pong && break; sleep 0.25; done
  clamd_pong || die "clamd did not answer PING on 127.0.0.1:3310 (see $CLAM/clamd.log)"
fi

# --- local settings (generated once, kept in $STATE, never committed) --------------------------------------------
install_commands openssl=openssl psql=postgresql-client # the TLS pair below; the database check at the end
if [ ! -f "$STATE/secrets.env" ]; then
  umask 077
  {
    echo ": \"\${SMGW_ADMIN_TOKEN:=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)}\""
    echo ": \"\${SMGW_MASTER_KEY:=$(head -c 32 /dev/urandom | base64)}\""
  } > "$STATE/secrets.env"
fi
if [ ! -f "$STATE/tls/cert.pem" ]; then
  mkdir -p "$STATE/tls"
  say "generating a self-signed TLS certificate for local STARTTLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$STATE/tls/key.pem" -out "$STATE/tls/cert.pem" >/dev/null 2>&1
  chmod 600 "$STATE/tls/key.pem"
fi
# The key store of message blobs: key-encryption keys sealed under SMGW_MASTER_KEY, never in the database.
mkdir -p "$STATE/keys" && chmod 700 "$STATE/keys"
{
  echo "set -a"
  cat "$STATE/secrets.env"
  echo ": \"\${SMGW_TLS_CERT_FILE:=$STATE/tls/cert.pem}\""
  echo ": \"\${SMGW_TLS_KEY_FILE:=$STATE/tls/key.pem}\""
  echo ": \"\${SMGW_KEY_STORE_DIR:=$STATE/keys}\""
  echo "set +a"
} > "$STATE/env"

# --- database -----------------------------------------------------------------------------------------------------
DB_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/smgw}"
DB_NAME="${DB_URL##*/}"; DB_NAME="${DB_NAME%%\?*}"
ADMIN_URL="${DB_URL%/*}/postgres"
if ! psql "$ADMIN_URL" -tAc "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1; then
  say "creating database $DB_NAME"
  psql "$ADMIN_URL" -qc "create database \"$DB_NAME\"" >&2
fi
