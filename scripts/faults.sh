#!/usr/bin/env bash
# The fault suite at full scale: the real binary killed at random moments
# (25 kills, 500+ photos), three daemons with two killed at random, S3
# errors, resets, stalls and a one-minute outage, a database outage. Takes
# several minutes. `scripts/test.sh` runs the same tests at a short scale.
#
#   scripts/faults.sh            full scale
#   FAULT_SEED=123 scripts/faults.sh   replay the random kill timings
set -euo pipefail
cd "$(dirname "$0")/.."
export FAULT_SCALE="${FAULT_SCALE:-full}"
# The development MariaDB instance of scripts/test.sh (kept running; stop
# it with scripts/test.sh --stop).
SETUP_ONLY=1 scripts/test.sh
# shellcheck disable=SC1091
. .tools/test-env
cargo nextest run --locked --no-fail-fast --run-ignored only --test faults --test-threads 1
