#!/bin/bash
# ssl-train-mpi on this machine, measured side by side in one run: resnet18
# width 16 (CIFAR stem, 32x32), one thread per process,
#   1 process, batch B                  (the baseline)
#   2 ranks, batch 2B (B each), --sync-bn and without
#   1 process, batch 2B on 2 threads    (OpenMP on the same two cores)
# Weak scaling: each rank does the baseline's work, so ideal is twice its
# images per second; efficiency = images/s of 2 ranks / (2 x baseline).
# The ranks' own report gives the time per step in each kind of collective
# (waiting for the slower rank included) and the bytes moved. Then the
# volume per step of resnet18 w16, w64 and resnet50 (bench/mpi_volume.c),
# for estimating a cluster: bytes per step / link bandwidth vs step time.
# Figures are indicative when other work shares the cores.
#   usage: bench/mpi.sh [BUILD]   env: B (64), STEPS (8), WIDTH (16), DATA (a CIFAR-10 archive)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
B=${B:-64} STEPS=${STEPS:-8} WIDTH=${WIDTH:-16}
DATA=${DATA:-../shared/data/cifar10-train.tar.gz}
[ -f "$DATA" ] || DATA=/work/shared/data/cifar10-train.tar.gz
make -s "$BUILD/bench/mpi_volume"
bin=$PWD/$BUILD/bin
if ! command -v mpirun >/dev/null || [ ! -x "$bin/ssl-train-mpi" ]; then
	echo "bench-mpi: needs mpirun and $bin/ssl-train-mpi (Debian: openmpi-bin, libopenmpi-dev)" >&2
	exit 1
fi
export PATH=$bin:$PATH OPENBLAS_NUM_THREADS=1
unset OMP_NUM_THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MPIRUN="mpirun -np 2 --oversubscribe"
[ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"

# The views, made once: all records for one process, and each rank's shard.
N=$((2 * B * STEPS))
echo "== views: $N records of $DATA (ssl-decode --limit, --shuffle), recipe cifar"
ssl-decode -q --limit $N --shuffle --seed 1 "$DATA" | ssl-augment -q --recipe cifar --seed 1 -j 2 > "$tmp/all.st"
for r in 0 1; do
	ssl-decode -q --limit $N --shuffle --seed 1 --shard $r/2 "$DATA" | ssl-augment -q --recipe cifar --seed 1 -j 2 \
		> "$tmp/v$r.st"
done

MODEL="--arch resnet18 --width $WIDTH --proj-hidden $((32 * WIDTH)) --steps $STEPS --quiet"

# median images/s of the steps after the first (the first includes set-up)
rate() {
	awk -F'\t' 'NR > 2 { print $5 }' "$1" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ssl-train $MODEL --batch $B --threads 1 --log "$tmp/one.tsv" -o "$tmp/one.ssl" "$tmp/all.st"
one=$(rate "$tmp/one.tsv")
for sb in sync plain; do
	flag=""
	[ $sb = sync ] && flag=--sync-bn
	# --quiet silences the ranks' notes; rank 0's report is what we want, so no --quiet here
	$MPIRUN sh -c "ssl-train-mpi ${MODEL/--quiet/} $flag --batch $((2 * B)) --threads 1 --log $tmp/$sb.tsv \
		-o $tmp/$sb.ssl $tmp/v\$OMPI_COMM_WORLD_RANK.st" 2> "$tmp/$sb.err"
	grep -o 'communication per step: .*' "$tmp/$sb.err" > "$tmp/$sb.comm" || true
done
ssl-train $MODEL --batch $((2 * B)) --threads 2 --log "$tmp/omp.tsv" -o "$tmp/omp.ssl" "$tmp/all.st"
sync=$(rate "$tmp/sync.tsv") plain=$(rate "$tmp/plain.tsv") omp=$(rate "$tmp/omp.tsv")

printf '\n== resnet18 width %d, 32x32, %d steps, images/s (median of steps 2..)\n' "$WIDTH" "$STEPS"
printf '%-44s %10s %10s\n' "run" "images/s" "vs ideal"
printf '%-44s %10.1f %10s\n' "1 process, batch $B, 1 thread" "$one" "-"
printf '%-44s %10.1f %9.0f%%\n' "2 ranks, batch $((2 * B)), 1 thread each, --sync-bn" "$sync" \
	"$(echo "100 * $sync / (2 * $one)" | bc -l)"
printf '%-44s %10.1f %9.0f%%\n' "2 ranks, batch $((2 * B)), 1 thread each" "$plain" \
	"$(echo "100 * $plain / (2 * $one)" | bc -l)"
printf '%-44s %10.1f %9.0f%%\n' "1 process, batch $((2 * B)), 2 threads" "$omp" \
	"$(echo "100 * $omp / (2 * $one)" | bc -l)"
printf '\nstep time: 1 process %.0f ms; 2 ranks %.0f ms (--sync-bn), %.0f ms\n' \
	"$(echo "1000 * 2 * $B / $one" | bc -l)" "$(echo "1000 * 4 * $B / $sync" | bc -l)" \
	"$(echo "1000 * 4 * $B / $plain" | bc -l)"
echo "ranks' report, --sync-bn: $(cat "$tmp/sync.comm")"
echo "ranks' report, plain:     $(cat "$tmp/plain.comm")"

printf '\n== bytes per step by model (global batch 256 pairs; 4096 below)\n'
"$BUILD/bench/mpi_volume" 256
"$BUILD/bench/mpi_volume" 4096 | tail -n +2
