#!/usr/bin/env bash
# The whole benchmark: loopback, then two real-world links (40 ms RTT at
# 200 Mbit/s, 100 ms at 50 Mbit/s), each with the gallery photo mix and with
# many small photos, a workers sweep on the slower link, a CPU profile, and
# a summary in bench/results/summary.md. See bench/README.md.
#
#   bench/suite.sh [--small] [--no-build] [--skip-loopback] [--skip-links] [--results DIR]
#                  [-- RUN.SH OPTIONS...]   (e.g. -- --settle 5, passed to every run)
#
# The links need root (network namespace, tc). About 30 minutes on 2 cores;
# --small about 8.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="$here/results"
small=0 build=1 loopback=1 links=1
extra=()
while [[ $# -gt 0 ]]; do
	a=$1
	shift
	case "$a" in
	--results)
		[[ $# -gt 0 ]] || { echo "suite: --results needs a directory" >&2; exit 1; }
		results=$1
		shift
		;;
	--small) small=1 ;;
	--no-build) build=0 ;;
	--skip-loopback) loopback=0 ;;
	--skip-links) links=0 ;;
	--)
		extra=("$@")
		break
		;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "suite: unknown option $a (see --help)" >&2
		exit 1
		;;
	esac
done
mkdir -p "$results"
results="$(cd "$results" && pwd)"

# Link workloads are a few hundred MB so that a run at 50 Mbit/s stays
# under a minute; loopback keeps the full gallery.
if [[ $small -eq 1 ]]; then
	mix_link=(--photos 12 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 30 --video-max-mb 30)
	photos_link=(--photos 40 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	photos_loop=(--photos 100 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	loop_size=(--small)
	fast_rounds=1
else
	mix_link=(--photos 30 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 50 --video-max-mb 50)
	photos_link=(--photos 100 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	photos_loop=(--photos 400 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	loop_size=()
	fast_rounds=2
fi

nobuild=()
[[ $build -eq 1 ]] || nobuild=(--no-build)
outputs=()
rc=0
bench() {
	local name=$1
	shift
	echo "suite: $name"
	"$here/run.sh" ${nobuild[@]+"${nobuild[@]}"} --out "$results/$name.md" --json "$results/$name.json" \
		"$@" ${extra[@]+"${extra[@]}"} || rc=$?
	[[ $rc -ne 1 && $rc -ne 130 ]] || exit "$rc"
	nobuild=(--no-build)
	outputs+=("$results/$name.json")
}

if [[ $loopback -eq 1 ]]; then
	bench loopback-mix ${loop_size[@]+"${loop_size[@]}"} --workload "gallery mix" --perf
	bench loopback-photos "${photos_loop[@]}" --workload "small photos (1-3 MB)" --repeat "$((fast_rounds + 1))"
fi
if [[ $links -eq 1 ]]; then
	bench 40ms-200mbit-mix --link 40ms/200mbit "${mix_link[@]}" --workload "gallery mix" --repeat "$fast_rounds"
	bench 40ms-200mbit-photos --link 40ms/200mbit "${photos_link[@]}" --workload "small photos (1-3 MB)" --repeat "$fast_rounds"
	bench 100ms-50mbit-mix --link 100ms/50mbit "${mix_link[@]}" --workload "gallery mix" --repeat 1
	bench 100ms-50mbit-photos --link 100ms/50mbit "${photos_link[@]}" --workload "small photos (1-3 MB)" --repeat 1 --ours-sweep 2,4,16,32
fi

python3 "$here/summary.py" "${outputs[@]}" >"$results/summary.md"
echo "suite: summary in $results/summary.md"
exit "$rc"
