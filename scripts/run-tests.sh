#!/bin/bash
# Runs each test program given, keeps going after a failure, and ends with one
# summary line "suites: N passed, N failed, N skipped: NAME (WHY), ..." . A
# suite that could not test everything (no mpirun, no pty) exits 77, as in
# automake, with its reasons in $TU_SKIP_FILE (tests/testutil.h: tu_skip).
# Exit 1 if any suite failed; skips do not fail the run, they are listed.
# Tests are pinned to 2 threads so results never depend on the machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
pass=0 fail=0 skip=0 failed="" skipped=""
skipfile=$(mktemp "${TMPDIR:-/tmp}/run-tests-skip.XXXXXX") || exit 1
trap 'rm -f "$skipfile"' EXIT
for t in "$@"; do
	name=$(basename "$t")
	echo "== $name"
	: > "$skipfile"
	TU_SKIP_FILE=$skipfile "$t"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
	elif [ "$rc" -eq 77 ]; then
		skip=$((skip + 1))
		why=$(awk '!seen[$0]++ { printf "%s%s", (n++ ? "; " : ""), $0 }' "$skipfile")
		skipped="$skipped${skipped:+, }$name (${why:-no reason given})"
	else
		fail=$((fail + 1))
		failed="$failed $name"
	fi
done
[ -n "$failed" ] && echo "failed suites:$failed"
echo "suites: $pass passed, $fail failed, $skip skipped${skipped:+: $skipped}"
[ "$fail" -eq 0 ]
