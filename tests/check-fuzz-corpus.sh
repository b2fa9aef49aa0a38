#!/bin/bash
# Replays every fuzz harness's committed corpus (fuzz/corpus/<name>/, crash
# reproducers included) through the harness linked with fuzz/replay.c: no
# fuzzing engine, the compiler and sanitizers of this build. Every harness
# must have a corpus, and every corpus a harness. Needs $SSL_BIN (make test):
# the replay binaries are in its build's fuzz-replay/.
set -u
cd "${SSL_SRC:-.}" || exit 1
dir=$(dirname "${SSL_BIN:-build/bin}")/fuzz-replay
fail=0 ran=0 inputs=0
for h in fuzz/fuzz_*.c; do
	name=$(basename "$h" .c)
	name=${name#fuzz_}
	bin=$dir/replay_$name
	if [ ! -x "$bin" ]; then echo "fuzz corpus: $bin is not built"; fail=$((fail + 1)); continue; fi
	if [ -z "$(ls -A "fuzz/corpus/$name" 2>/dev/null)" ]; then
		echo "fuzz corpus: fuzz/corpus/$name is missing or empty"; fail=$((fail + 1)); continue
	fi
	# under ASan (check-asan) the allocation limit of fuzz/replay.c is ASan's
	if out=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=256:allocator_may_return_null=0 \
	         "$bin" "fuzz/corpus/$name" 2>&1); then
		n=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\) inputs$/\1/p' | tail -n 1)
		inputs=$((inputs + ${n:-0}))
		ran=$((ran + 1))
	else
		echo "fuzz corpus: $name failed:"; printf '%s\n' "$out" | tail -n 20; fail=$((fail + 1))
	fi
done
for c in fuzz/corpus/*/; do
	name=$(basename "$c")
	[ -f "fuzz/fuzz_$name.c" ] || { echo "fuzz corpus: $c has no harness fuzz/fuzz_$name.c"; fail=$((fail + 1)); }
done
echo "check-fuzz-corpus: $ran harnesses, $inputs inputs replayed, $fail problems"
[ "$fail" -eq 0 ]
