#!/bin/bash
# Our SimCLR training step and eval forward next to PyTorch's, on the same
# machine, in one run (bench/bench_step.c vs ../shared/reference/torch_bench_step.py):
# resnet18 CIFAR stem, width 16 and 64, batch 256 pairs (512 images) at 32x32,
# and width-16 eval forward at batch 256; 2 threads on both sides.
#
# The two sides alternate for ROUNDS rounds and each keeps its fastest step:
# on a machine shared with other work that is the least disturbed figure.
# Prints images/s, achieved GFLOP/s (forward FLOPs x 3 for a training step,
# as the PyTorch script counts), the OpenBLAS sgemm rate of the same run,
# peak RSS, and the ratios. Figures are indicative when the cores are shared.
#   usage: bench/step.sh [STEPS [ROUNDS [CASES]]]    CASES: "w16 w64 eval" (default all)
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-3} ROUNDS=${2:-2} CASES=${3:-"w16 w64 eval"}
REF=${SSL_TORCH_REF:-$(cd .. && pwd)/shared/reference}
[ -f "$REF/torch_bench_step.py" ] || REF=/work/shared/reference
BIN=${BUILD:-build}/bench/bench_step
make -s "$BIN"
export OMP_NUM_THREADS=2
# PyTorch at its best: glibc malloc tuned (its step is ~5x slower without)
TUNE=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

min() { echo "$1 $2" | awk '{ if ($1 == "" || ($2 != "" && $2 < $1)) print $2; else print $1 }'; }
max() { echo "$1 $2" | awk '{ if ($1 == "" || ($2 != "" && $2 > $1)) print $2; else print $1 }'; }

run_case() { # name ours-args torch-args
	local name=$1 ours=$2 torch=$3
	local omin="" tmin="" orss="" trss="" oimg=1 timg=1 oflops=0 blas="" kernel=""
	for r in $(seq "$ROUNDS"); do
		local o t
		o=$(/usr/bin/time -f "RSS %M" "$BIN" $ours --steps "$STEPS" --warmup 1 2>&1)
		t=$(cd "$REF" && GLIBC_TUNABLES=$TUNE /usr/bin/time -f "RSS %M" /usr/bin/python3 torch_bench_step.py $torch "$STEPS" 1 2>&1)
		omin=$(min "$omin" "$(sed -n 's/.*RESULT ours.* min=\([0-9.]*\).*/\1/p' <<<"$o")")
		tmin=$(min "$tmin" "$(sed -n 's/^RESULT .* min=\([0-9.]*\).*/\1/p' <<<"$t")")
		oimg=$(sed -n 's/.*RESULT ours.* images_per_step=\([0-9]*\).*/\1/p' <<<"$o")
		timg=$(sed -n 's/^RESULT .* images_per_step=\([0-9]*\).*/\1/p' <<<"$t")
		oflops=$(sed -n 's/.*RESULT ours.* fwd_flops_per_img=\([0-9.]*\).*/\1/p' <<<"$o")
		blas=$(max "$blas" "$(sed -n 's/.*RESULT ours.* sgemm1024_GFLOPs=\([0-9.]*\).*/\1/p' <<<"$o")")
		orss=$(max "$orss" "$(sed -n 's/^RSS //p' <<<"$o")")
		trss=$(max "$trss" "$(sed -n 's/^RSS //p' <<<"$t")")
		kernel=$(sed -n 's/^kernel //p' <<<"$o")
	done
	local oi ti
	oi=$(echo "$oimg / $omin" | bc -l)
	ti=$(echo "$timg / $tmin" | bc -l)
	printf '%-10s ours %7.1f img/s (%5.1f GFLOP/s; sgemm %5.1f GFLOP/s; peak RSS %5.0f MB)   torch %7.1f img/s (peak RSS %5.0f MB)   speed %.2fx  memory %.2fx\n' \
		"$name" "$oi" "$(echo "$oflops * $oi / 1000" | bc -l)" "$blas" "$((orss / 1024))" "$ti" "$((trss / 1024))" \
		"$(echo "$oi / $ti" | bc -l)" "$(echo "$orss / $trss" | bc -l)"
	echo "           (ours: $kernel)"
}

echo "bench/step.sh: best of $ROUNDS rounds x $STEPS steps per side, 2 threads, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CASES; do
	case $c in
	w16) run_case "train-w16" "--mode train --width 16 --batch 256" "resnet18-w16 train 256" ;;
	w64) run_case "train-w64" "--mode train --width 64 --batch 256" "resnet18-cifar train 256" ;;
	eval) run_case "eval-w16" "--mode eval --width 16 --batch 256" "resnet18-w16 fwd 256" ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
