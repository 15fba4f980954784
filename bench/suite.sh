#!/usr/bin/env bash
# The whole benchmark: loopback, then four real-world links (40 ms RTT at
# 200 Mbit/s, 100 ms at 50 Mbit/s, and two long fat ones: 100 ms with no
# rate cap and 100 ms at 1000 Mbit/s), each with the gallery photo mix and
# with many small photos, three rounds each (reports give the medians), a
# CPU profile, and a summary in bench/results/summary.md. See bench/README.md.
#
#   bench/suite.sh [--small] [--no-build] [--skip-loopback] [--skip-links] [--results DIR]
#                  [-- RUN.SH OPTIONS...]   (e.g. -- --settle 5, passed to every run)
#
# Expected duration on 2 cores: about 34 minutes (plus the build). Estimated
# from smoke runs of this suite on a 2-core machine that was partly busy
# with a compile: the loopback part took 12 min 2 s (loopback-mix 477 s,
# loopback-photos 245 s, gallery written included); the links took
# 18 min 19 s while the long fat links sent 0.4 GB (40ms-200mbit 133 s +
# 145 s, 100ms-50mbit 217 s + 209 s, 100ms-nocap 74 s + 102 s,
# 100ms-1000mbit 95 s + 124 s); at today's 0.8 GB those four take about
# 3 minutes more. --small: 6 min 32 s. (All with `-- --settle 2`; on an idle
# machine the settle wait ends after 1 s anyway.) The links need root (network
# namespace, tc).
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
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
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

# Every bench runs three rounds; reports and the summary give the median.
# The links run the defaults only (defaults against defaults is what is
# compared there; the tuned variants run on loopback). Each link's
# workloads are sized so that one run takes roughly 5-40 s at its rate;
# loopback keeps the full gallery. --small: a tenth of the data or so and
# one round, to check that everything runs.
if [[ $small -eq 1 ]]; then
	rounds=1
	loop_size=(--small)
	photos_loop=(--photos 100 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	# 40 ms / 200 Mbit/s and 100 ms / 50 Mbit/s
	mix_mid=(--photos 8 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 20 --video-max-mb 20)
	photos_mid=(--photos 25 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	mix_slow=(--photos 4 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 10 --video-max-mb 10)
	photos_slow=(--photos 12 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	# 100 ms with no rate cap, 100 ms / 1000 Mbit/s
	mix_fat=(--photos 12 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 40 --video-max-mb 40)
	photos_fat=(--photos 40 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
else
	rounds=3
	loop_size=()
	photos_loop=(--photos 400 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	# 40 ms / 200 Mbit/s: about 0.14 GB, 6-9 s a run at 15-23 MB/s
	mix_mid=(--photos 20 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 40 --video-max-mb 40)
	photos_mid=(--photos 70 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	# 100 ms / 50 Mbit/s: about 0.07 GB, 12-17 s a run at 4-6 MB/s
	mix_slow=(--photos 10 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 20 --video-max-mb 20)
	photos_slow=(--photos 35 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
	# 100 ms with no rate cap, 100 ms / 1000 Mbit/s: about 0.8 GB, 4-20 s a
	# run at 40-200 MB/s
	mix_fat=(--photos 120 --photo-min-mb 2 --photo-max-mb 8 --videos 1 --video-min-mb 200 --video-max-mb 200)
	photos_fat=(--photos 400 --photo-min-mb 1 --photo-max-mb 3 --videos 0)
fi
mix="gallery mix"
photos="small photos (1-3 MB)"

nobuild=()
[[ $build -eq 1 ]] || nobuild=(--no-build)
outputs=()
rc=0
bench() {
	local name=$1 t0=$SECONDS
	shift
	echo "suite: $name"
	"$here/run.sh" ${nobuild[@]+"${nobuild[@]}"} --out "$results/$name.md" --json "$results/$name.json" \
		"$@" ${extra[@]+"${extra[@]}"} || rc=$?
	echo "suite: $name took $((SECONDS - t0)) s"
	[[ $rc -ne 1 && $rc -ne 130 ]] || exit "$rc"
	nobuild=(--no-build)
	outputs+=("$results/$name.json")
}

if [[ $loopback -eq 1 ]]; then
	bench loopback-mix ${loop_size[@]+"${loop_size[@]}"} --workload "$mix" --repeat "$rounds" --perf
	bench loopback-photos "${photos_loop[@]}" --workload "$photos" --repeat "$rounds"
fi
if [[ $links -eq 1 ]]; then
	link() { # name, link, workload args...
		local name=$1 spec=$2
		shift 2
		bench "$name" --link "$spec" --variants default --repeat "$rounds" "$@"
	}
	link 40ms-200mbit-mix 40ms/200mbit "${mix_mid[@]}" --workload "$mix"
	link 40ms-200mbit-photos 40ms/200mbit "${photos_mid[@]}" --workload "$photos"
	link 100ms-50mbit-mix 100ms/50mbit "${mix_slow[@]}" --workload "$mix"
	link 100ms-50mbit-photos 100ms/50mbit "${photos_slow[@]}" --workload "$photos"
	link 100ms-nocap-mix 100ms "${mix_fat[@]}" --workload "$mix"
	link 100ms-nocap-photos 100ms "${photos_fat[@]}" --workload "$photos"
	link 100ms-1000mbit-mix 100ms/1000mbit "${mix_fat[@]}" --workload "$mix"
	link 100ms-1000mbit-photos 100ms/1000mbit "${photos_fat[@]}" --workload "$photos"
fi

python3 "$here/summary.py" "${outputs[@]}" >"$results/summary.md"
echo "suite: summary in $results/summary.md; $((SECONDS / 60)) min $((SECONDS % 60)) s in all"
exit "$rc"
