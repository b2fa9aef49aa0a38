#!/bin/sh
# Runs each libFuzzer harness for a while on its seed corpora (make_corpus's
# and the committed fuzz/corpus/<name>; new units go to FUZZDIR/corpus) and reports
# executions, coverage (cov: edges, ft: features) and the verdict.
# usage: fuzz/run.sh FUZZDIR SECONDS HARNESS...
# Environment: FUZZ_FLAGS, extra libFuzzer flags for every harness.
set -u
dir=$1
secs=$2
shift 2
rm -rf "$dir/seeds"
"$dir/make_corpus" "$dir/seeds" || exit 1
mkdir -p "$dir/artifacts" "$dir/logs"
fail=0
# one thread each: runs are reproducible, and the machine is shared
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMP_NUM_THREADS OPENBLAS_NUM_THREADS
for bin in "$@"; do
	name=${bin##*/fuzz_}
	log=$dir/logs/$name.log
	dict=
	[ -f "fuzz/$name.dict" ] && dict=-dict=fuzz/$name.dict
	# the committed corpus (reproducers included; make check replays it) seeds too
	committed=
	[ -d "fuzz/corpus/$name" ] && committed=fuzz/corpus/$name
	mkdir -p "$dir/corpus/$name" "$dir/seeds/$name"
	# -malloc_limit_mb: a single allocation over 256 MiB from inputs of a
	# few KiB is a bug (a size taken from a header on trust).
	nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/$name-" $dict ${FUZZ_FLAGS:-} \
		"$dir/corpus/$name" "$dir/seeds/$name" $committed >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	units=$(printf '%s\n' "$last" | sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p')
	if [ "$rc" -eq 0 ]; then
		verdict=ok
	else
		verdict="FAILED (rc $rc; see $log)"
		fail=1
	fi
	printf 'fuzz %-8s %4ss  execs %-9s cov %-6s ft %-6s corpus %-5s %s\n' "$name" "$secs" "${execs:-?}" \
		"${cov:-?}" "${ft:-?}" "${units:-?}" "$verdict"
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|check failed|Test unit written|==[0-9]+==' "$log" | head -n 20
	fi
done
exit $fail
