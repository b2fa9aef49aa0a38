#!/bin/bash
# Our SimCLR training step and eval forward next to PyTorch's, on the same
# machine, in one run (bench/bench_step.c vs ../shared/reference/torch_bench_step.py):
# resnet18 CIFAR stem, width 16 and 64, batch 256 pairs (512 images) at 32x32,
# and width-16 eval forward at batch 256; 2 threads on both sides.
# Prints images/s, peak RSS and the ratio for each. Figures are indicative
# when other work shares the cores.
#   usage: bench/step.sh [STEPS [WARMUP [CASES]]]    CASES: "w16 w64 eval" (default all)
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-3} WARM=${2:-1} CASES=${3:-"w16 w64 eval"}
REF=${SSL_TORCH_REF:-$(cd .. && pwd)/shared/reference}
[ -f "$REF/torch_bench_step.py" ] || REF=/work/shared/reference
BIN=${BUILD:-build}/bench/bench_step
make -s "$BIN"
export OMP_NUM_THREADS=2
# PyTorch at its best: glibc malloc tuned (its step is ~5x slower without)
TUNE=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

run_case() { # name ours-args torch-args
	local name=$1 ours=$2 torch=$3
	local o t
	o=$(/usr/bin/time -f "RSS %M" "$BIN" $ours --steps "$STEPS" --warmup "$WARM" 2>&1)
	t=$(cd "$REF" && GLIBC_TUNABLES=$TUNE /usr/bin/time -f "RSS %M" /usr/bin/python3 torch_bench_step.py $torch "$STEPS" "$WARM" 2>&1)
	local oi ti orss trss og ob
	oi=$(sed -n 's/.*RESULT ours.* images_per_s=\([0-9.]*\).*/\1/p' <<<"$o")
	og=$(sed -n 's/.*RESULT ours.* achieved_GFLOPs=\([0-9.]*\).*/\1/p' <<<"$o")
	ob=$(sed -n 's/.*RESULT ours.* sgemm1024_GFLOPs=\([0-9.]*\).*/\1/p' <<<"$o")
	ti=$(sed -n 's/^RESULT .* images_per_s=\([0-9.]*\).*/\1/p' <<<"$t")
	orss=$(sed -n 's/^RSS //p' <<<"$o")
	trss=$(sed -n 's/^RSS //p' <<<"$t")
	grep -E "^(ours|kernel)" <<<"$o" | sed 's/^/  /'
	printf '%-10s ours %8.1f img/s (%5.1f GFLOP/s, sgemm %5.1f GFLOP/s, peak RSS %5.0f MB)   torch %8.1f img/s (peak RSS %5.0f MB)   ratio %.2fx  memory %.2fx\n' \
		"$name" "$oi" "$og" "$ob" "$((orss / 1024))" "$ti" "$((trss / 1024))" \
		"$(echo "$oi / $ti" | bc -l)" "$(echo "$orss / $trss" | bc -l)"
}

echo "bench/step.sh: $STEPS timed steps after $WARM warm-up, 2 threads, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CASES; do
	case $c in
	w16) run_case "train-w16" "--mode train --width 16 --batch 256" "resnet18-w16 train 256" ;;
	w64) run_case "train-w64" "--mode train --width 64 --batch 256" "resnet18-cifar train 256" ;;
	eval) run_case "eval-w16" "--mode eval --width 16 --batch 256" "resnet18-w16 fwd 256" ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
