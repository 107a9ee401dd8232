#!/usr/bin/env bash
# The alert and API suites at other dates and times of day (libfaketime) and in reverse order:
# no test may depend on the calendar, the clock or another test. Usage: scripts/time-independence.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v faketime >/dev/null || { echo "faketime missing: run ./scripts/system-deps.sh as root" >&2; exit 1; }
PYTEST=(.venv/bin/pytest -q -p no:cacheprovider tests/alerts tests/api)
export GOVNET_STRICT=1
# libfaketime fakes CLOCK_MONOTONIC too (a real monotonic clock makes clock_nanosleep fail with
# EINVAL); a timed lock/condition wait then sleeps for years, so tests poll with time.sleep.
# Monday 00:30 Beijing time, a month end just before midnight Beijing time, a leap day at noon UTC.
for when in "2026-12-06 16:30:00" "2027-01-31 15:50:00" "2028-02-29 12:00:00"; do
  echo "== faketime '$when' (UTC)"
  TZ=UTC faketime "$when" "${PYTEST[@]}"
done
echo "== reverse order"
"${PYTEST[@]}" --reverse
