#!/bin/bash
# Our SimCLR training step and eval forward next to PyTorch's, on the same
# machine, in one run (bench/bench_step.c vs ../shared/reference/torch_bench_step.py
# and torch_step_imagenet_stem.py): resnet18 CIFAR stem, width 16 and 64,
# batch 256 pairs (512 images) at 32x32; width-16 eval forward at batch 256;
# resnet18 ImageNet stem (7x7/2 conv + max-pool), width 32, 96x96, 256 pairs;
# 2 threads on both sides. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset
# for both (OpenBLAS then picks its kernel for this CPU).
#
# The two sides alternate for ROUNDS rounds and each keeps its fastest step:
# on a machine shared with other work that is the least disturbed figure.
# Prints the CPU model, the instruction set each side runs (ours: lib/base/cpu;
# PyTorch: oneDNN's ISA and ATen's CPU capability), the FMA peak of the
# threads (an FMA loop in registers), then per case images/s, achieved GFLOP/s
# (forward FLOPs x 3 for a training step, as the PyTorch scripts count) and
# its fraction of the FMA peak, the OpenBLAS sgemm rate of the same run, peak
# RSS, and the ratios. Figures are indicative when the cores are shared.
#   usage: bench/step.sh [STEPS [ROUNDS [CASES]]]    CASES: "w16 w64 eval stem" (default all)
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-3} ROUNDS=${2:-2} CASES=${3:-"w16 w64 eval stem"}
REF=${SSL_TORCH_REF:-$(cd .. && pwd)/shared/reference}
[ -f "$REF/torch_bench_step.py" ] || REF=/work/shared/reference
BIN=${BUILD:-build}/bench/bench_step
make -s "$BIN"
export OMP_NUM_THREADS=2
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
# PyTorch at its best: glibc malloc tuned (its step is ~5x slower without)
TUNE=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

min() { echo "$1 $2" | awk '{ if ($1 == "" || ($2 != "" && $2 < $1)) print $2; else print $1 }'; }
max() { echo "$1 $2" | awk '{ if ($1 == "" || ($2 != "" && $2 > $1)) print $2; else print $1 }'; }

run_case() { # name ours-args torch-script torch-args
	local name=$1 ours=$2 script=$3 torch=$4
	local omin="" tips="" orss="" trss="" oimg=1 oflops=0 blas="" peak="" kernel=""
	for r in $(seq "$ROUNDS"); do
		local o t
		o=$(/usr/bin/time -f "RSS %M" "$BIN" $ours --steps "$STEPS" --warmup 1 2>&1)
		t=$(cd "$REF" && GLIBC_TUNABLES=$TUNE /usr/bin/time -f "RSS %M" /usr/bin/python3 "$script" $torch 2>&1)
		omin=$(min "$omin" "$(sed -n 's/.*RESULT ours.* min=\([0-9.]*\).*/\1/p' <<<"$o")")
		oimg=$(sed -n 's/.*RESULT ours.* images_per_step=\([0-9]*\).*/\1/p' <<<"$o")
		# torch_bench_step.py: images_per_step and min; torch_step_imagenet_stem.py: best images_per_s
		local ti tmin timg
		tmin=$(sed -n 's/^RESULT .* min=\([0-9.]*\).*/\1/p' <<<"$t")
		timg=$(sed -n 's/^RESULT .* images_per_step=\([0-9]*\).*/\1/p' <<<"$t")
		if [ -n "$tmin" ]; then ti=$(echo "$timg / $tmin" | bc -l)
		else ti=$(sed -n 's/^RESULT .* images_per_s=\([0-9.]*\).*/\1/p' <<<"$t"); fi
		[ -n "$ti" ] || { echo "step.sh: $name: no RESULT from $script:" >&2; echo "$t" >&2; exit 1; }
		tips=$(max "$tips" "$ti")
		oflops=$(sed -n 's/.*RESULT ours.* fwd_flops_per_img=\([0-9.]*\).*/\1/p' <<<"$o")
		blas=$(max "$blas" "$(sed -n 's/.*RESULT ours.* sgemm1024_GFLOPs=\([0-9.]*\).*/\1/p' <<<"$o")")
		peak=$(max "$peak" "$(sed -n 's/.*RESULT ours.* fma_peak_GFLOPs=\([0-9.]*\).*/\1/p' <<<"$o")")
		orss=$(max "$orss" "$(sed -n 's/^RSS //p' <<<"$o")")
		trss=$(max "$trss" "$(sed -n 's/^RSS //p' <<<"$t")")
		kernel=$(sed -n 's/^kernel //p' <<<"$o")
	done
	local oi gf
	oi=$(echo "$oimg / $omin" | bc -l)
	gf=$(echo "$oflops * $oi / 1000" | bc -l)
	printf '%-10s ours %7.1f img/s (%5.1f GFLOP/s = %2.0f%% of FMA peak %5.1f; sgemm %5.1f GFLOP/s; peak RSS %5.0f MB)   torch %7.1f img/s (peak RSS %5.0f MB)   speed %.2fx  memory %.2fx\n' \
		"$name" "$oi" "$gf" "$(echo "100 * $gf / $peak" | bc -l)" "$peak" "$blas" "$((orss / 1024))" "$tips" \
		"$((trss / 1024))" "$(echo "$oi / $tips" | bc -l)" "$(echo "$orss / $trss" | bc -l)"
	echo "           (ours: $kernel)"
}

echo "bench/step.sh: best of $ROUNDS rounds x $STEPS steps per side, 2 threads, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) (family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1))"
echo "torch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__, "|", [l.strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l][0])' 2>&1) | oneDNN $(cd "$REF" && DNNL_VERBOSE=1 /usr/bin/python3 -c 'import torch; torch.nn.functional.conv2d(torch.randn(8, 16, 16, 16), torch.randn(16, 16, 3, 3))' 2>&1 | sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -1)"
for c in $CASES; do
	case $c in
	w16) run_case "train-w16" "--mode train --width 16 --batch 256" torch_bench_step.py "resnet18-w16 train 256 $STEPS 1" ;;
	w64) run_case "train-w64" "--mode train --width 64 --batch 256" torch_bench_step.py "resnet18-cifar train 256 $STEPS 1" ;;
	eval) run_case "eval-w16" "--mode eval --width 16 --batch 256" torch_bench_step.py "resnet18-w16 fwd 256 $STEPS 1" ;;
	stem) run_case "stem-w32" "--mode train --width 32 --batch 256 --stem imagenet --size 96 --hidden 512" \
		torch_step_imagenet_stem.py "32 96 256 $STEPS" ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
done
