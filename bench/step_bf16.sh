#!/bin/bash
# Issue 15's step table, side by side in one run: our SimCLR training step in
# fp32 and in bf16 (bench/bench_step.c --precision) next to PyTorch's step
# under torch.autocast("cpu", dtype=torch.bfloat16) (bench/torch_bench_step_bf16.py,
# the work of ../shared/reference/torch_bench_step.py), resnet18 CIFAR stem,
# width 16 and 64, batch 256 pairs (512 images) at 32x32.
#
# For a quiet machine with avx512_bf16 (the script refuses to time our bf16
# step without it). THREADS threads on every side (default 2),
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides, PyTorch with
# its tuned malloc as bench/step.sh runs it. The sides alternate for ROUNDS
# rounds and each keeps its fastest step. Prints images/s per side and the
# ratios issue 15 asks for: our bf16 / our fp32 (target >= 1.6 at width 64)
# and our bf16 / PyTorch bf16 (target > 1).
#   usage: bench/step_bf16.sh [STEPS [ROUNDS [CASES]]]    CASES: "w16 w64" (default both)
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-3} ROUNDS=${2:-2} CASES=${3:-"w16 w64"} THREADS=${THREADS:-2}
BIN=${BUILD:-build}/bench/bench_step
make -s "$BIN"
grep -qw avx512_bf16 /proc/cpuinfo || { echo "step_bf16.sh: this CPU lacks avx512_bf16: nothing to measure" >&2; exit 1; }
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS=$THREADS
TUNE=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

best() { sed -n 's/.*RESULT .* min=\([0-9.]*\).*/\1/p' | head -1; }
min() { echo "$1 $2" | awk '{ if ($1 == "" || ($2 != "" && $2 < $1)) print $2; else print $1 }'; }

run_case() { # name width torch-model
	local name=$1 w=$2 tm=$3 f32="" b16="" tb16="" o
	for r in $(seq "$ROUNDS"); do
		o=$("$BIN" --mode train --width "$w" --batch 256 --threads "$THREADS" --steps "$STEPS" --warmup 1 --precision fp32 2>&1)
		f32=$(min "$f32" "$(best <<<"$o")")
		o=$("$BIN" --mode train --width "$w" --batch 256 --threads "$THREADS" --steps "$STEPS" --warmup 1 --precision bf16 2>&1)
		b16=$(min "$b16" "$(best <<<"$o")")
		o=$(GLIBC_TUNABLES=$TUNE /usr/bin/python3 bench/torch_bench_step_bf16.py "$tm" bf16 256 "$STEPS" 1 "$THREADS" 2>&1)
		tb16=$(min "$tb16" "$(best <<<"$o")")
	done
	awk -v n="$name" -v a="$f32" -v b="$b16" -v t="$tb16" 'BEGIN {
		printf "%-10s ours fp32 %7.1f img/s   ours bf16 %7.1f img/s   torch bf16 %7.1f img/s   bf16/fp32 %.2fx   ours/torch (bf16) %.2fx\n",
		       n, 512 / a, 512 / b, 512 / t, a / b, t / b }'
}

echo "bench/step_bf16.sh: best of $ROUNDS rounds x $STEPS steps per side, $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CASES; do
	case $c in
	w16) run_case "train-w16" 16 resnet18-w16 ;;
	w64) run_case "train-w64" 64 resnet18-cifar ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
