#!/usr/bin/env bash
# The Debian package, for real: builds it (from the debug binary unless
# PROFILE=release), runs lintian, installs it with dpkg -i, checks the
# binary, the system user, the unit, the plugin, that no config is
# shipped in /etc (init writes it), removes and purges it. Needs root.
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
cleanup() {
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
grep -q "^ExecStart=/usr/bin/$name " "/usr/lib/systemd/system/$name.service" \
  || fail "the unit does not start /usr/bin/$name"
"/usr/bin/$name" grants --database piwigo --prefix piwigo_ | grep -q "^GRANT SELECT, LOCK TABLES, SHOW VIEW ON \`piwigo\`\.\* TO 'piwigo-s3upload'@'localhost';$" \
  || fail "grants does not print the read-only database grant"
echo "deb test: installed; user, unit, plugin, no /etc config; grants prints"

dpkg -r "$name" >/dev/null
[ ! -e "/usr/bin/$name" ] || fail "the binary is still there after dpkg -r"
dpkg --purge "$name" >/dev/null
echo "deb test: removed, purged"
