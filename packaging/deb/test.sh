#!/usr/bin/env bash
# The Debian package, for real: builds it (from the debug binary unless
# PROFILE=release), runs lintian, installs it with dpkg -i, checks the
# binary, the system user, the unit, the plugin, that no config is
# shipped in /etc (init writes it); with $TEST_DATABASE_URL (a user that
# may create databases and users), installs it again as an upgrade over a
# config whose database user lacks a privilege and checks that postinst
# names the GRANT; removes and purges it. Needs root.
# One run at a time per machine: dpkg has one database.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "packaging/deb/test.sh: run as root (it installs the package)" >&2; exit 1; }

exec 9>/tmp/piwigo-s3upload-deb-test.lock
flock 9

name=piwigo-s3upload
conf=/etc/$name.toml
fail() { echo "deb test: $*" >&2; exit 1; }
if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "installed"; then
  fail "$name is already installed on this machine; the test would replace it"
fi
user_existed=0
getent passwd "$name" >/dev/null && user_existed=1
db_name="pkgtest_$$"
sql() { :; }
cleanup() {
  sql "DROP DATABASE IF EXISTS \`$db_name\`; DROP USER IF EXISTS '$db_name'@'127.0.0.1';" || true
  rm -f "$conf"
  dpkg --purge "$name" >/dev/null 2>&1 || true
  if [ "$user_existed" -eq 0 ] && getent passwd "$name" >/dev/null; then
    deluser --system --quiet "$name" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

deb=$(PROFILE="${PROFILE:-debug}" packaging/deb/build.sh | tail -1)
echo "deb test: built $deb"
if command -v lintian >/dev/null; then
  lintian --fail-on error,warning "$deb"
  echo "deb test: lintian clean"
fi

dpkg -i "$deb" >/dev/null
"/usr/bin/$name" --version >/dev/null || fail "the binary does not run"
getent passwd "$name" >/dev/null || fail "no system user $name"
[ "$(getent passwd "$name" | cut -d: -f7)" = /usr/sbin/nologin ] || fail "the user has a login shell"
[ ! -e "$conf" ] || fail "the package ships $conf; init writes it and refuses to replace a file"
[ -f "/usr/share/doc/$name/config.example.toml" ] || fail "no example config in the docs"
[ -f "/usr/share/$name/piwigo-plugin/s3upload_companion/main.inc.php" ] || fail "no companion plugin"
[ -f "/usr/lib/systemd/system/$name.service" ] || fail "no systemd unit"
# The crates compiled in, each with its notice: one we use directly, one
# only the SDK pulls in, and one published without a licence file.
# Read whole first: `zcat | grep -q` fails under pipefail when grep stops
# at its first match.
licenses=$(zcat "/usr/share/doc/$name/third-party-licenses.gz")
for crate in "tokio " "aws-smithy-runtime " "bech32 "; do
  grep -q "^$crate[0-9.]*: " <<<"$licenses" \
    || fail "third-party-licenses.gz has no notice of ${crate% }"
done
grep -q "^ExecStart=/usr/bin/$name " "/usr/lib/systemd/system/$name.service" \
  || fail "the unit does not start /usr/bin/$name"
"/usr/bin/$name" grants --database piwigo --prefix piwigo_ | grep -q "^GRANT SELECT, LOCK TABLES, SHOW VIEW ON \`piwigo\`\.\* TO 'piwigo-s3upload'@'localhost';$" \
  || fail "grants does not print the read-only database grant"
echo "deb test: installed; user, unit, plugin, crate licences, no /etc config; grants prints"

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  # mysql://user:password@host:port, as scripts/test.sh exports it.
  rest=${TEST_DATABASE_URL#mysql://}
  admin_user=${rest%%:*}; rest=${rest#*:}
  admin_pass=${rest%%@*}; rest=${rest#*@}
  db_host=${rest%%:*}; db_port=${rest#*:}; db_port=${db_port%%/*}
  sql() { mariadb --no-defaults -h "$db_host" -P "$db_port" -u "$admin_user" -p"$admin_pass" -e "$1"; }
  password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  pwfile=$(mktemp); printf '%s\n' "$password" > "$pwfile"
  sql "CREATE DATABASE \`$db_name\`;"
  # The printed grants but one: the heartbeat table's.
  statements=$("/usr/bin/$name" grants --database "$db_name" --prefix piwigo_ --user "$db_name" \
    --host 127.0.0.1 --password-file "$pwfile" | grep -v '^--')
  rm -f "$pwfile"
  withheld=$(printf '%s\n' "$statements" | grep '^GRANT .* ON .*\.`piwigo_s3upload_heartbeat` ' || true)
  [ -n "$withheld" ] || fail "grants prints no GRANT on the heartbeat table"
  sql "$(printf '%s\n' "$statements" | grep -vF "$withheld")"
  gallery=$(mktemp -d)
  cat > "$conf" <<CONF
[piwigo]
database_url = "mysql://$db_name:$password@$db_host:$db_port/$db_name"
table_prefix = "piwigo_"
root = "$gallery"

[s3]
bucket = "gallery"
region = "us-east-1"

[snapshots]
CONF
  chmod 0600 "$conf"
  out=$(dpkg -i "$deb" 2>&1)
  printf '%s\n' "$out" | grep -q "this version needs database privileges its user lacks" \
    || fail "an upgrade over a user without a privilege does not say so: $out"
  printf '%s\n' "$out" | grep -qF "GRANT CREATE ON \`$db_name\`.\`piwigo_s3upload_heartbeat\` TO '$db_name'@'127.0.0.1';" \
    || fail "postinst does not print the missing GRANT: $out"
  sql "$withheld"
  out=$(dpkg -i "$deb" 2>&1)
  if printf '%s\n' "$out" | grep -q "lacks\|could not check"; then
    fail "an upgrade with every privilege still complains: $out"
  fi
  rm -f "$conf"; rmdir "$gallery"
  echo "deb test: an upgrade names the GRANT its database user lacks, and is quiet once granted"
else
  echo "deb test: upgrade check skipped (no TEST_DATABASE_URL)"
fi

dpkg -r "$name" >/dev/null
[ ! -e "/usr/bin/$name" ] || fail "the binary is still there after dpkg -r"
dpkg --purge "$name" >/dev/null
echo "deb test: removed, purged"
