#!/bin/bash
# Runs each test program given, keeps going after a failure, and ends with one
# summary line "N passed, N failed" (suites). Exit 1 if any suite failed.
# Tests are pinned to 2 threads so results never depend on the machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
pass=0 fail=0 failed=""
for t in "$@"; do
	echo "== $(basename "$t")"
	if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
[ -n "$failed" ] && echo "failed suites:$failed"
echo "suites: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
