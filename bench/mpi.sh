#!/bin/bash
# ssl-train-mpi on this machine, measured side by side in one run: resnet18
# width 16 (CIFAR stem, 32x32), one thread per process,
#   1 process, batch B                     (the baseline)
#   N ranks, batch N x B (B each), --sync-bn, and without (N in RANKS)
#   1 process, batch 2B on 2 threads       (OpenMP on two cores, for N = 2)
# Weak scaling: each rank does the baseline's work, so ideal is N times its
# images per second; efficiency = images/s of N ranks / (N x baseline).
# The ranks' own report gives the time per step in each kind of collective
# (waiting for the slower ranks included) and the bytes moved. Then the
# volume per step of resnet18 w16, w64 and resnet50 (bench/mpi_volume.c),
# for estimating a cluster: bytes per step / link bandwidth vs step time.
# Figures are indicative when other work shares the cores.
#   usage: bench/mpi.sh [BUILD]
#   env: B (64), STEPS (8), WIDTH (16), RANKS ("2"), DATA (CIFAR-10 archive;
#        random pictures when there is none)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
B=${B:-64} STEPS=${STEPS:-8} WIDTH=${WIDTH:-16} RANKS=${RANKS:-2}
DATA=${DATA:-../shared/data/cifar10-train.tar.gz}
[ -f "$DATA" ] || DATA=/work/shared/data/cifar10-train.tar.gz
[ -x "$BUILD/bench/mpi_volume" ] || make -s "$BUILD/bench/mpi_volume"
bin=$PWD/$BUILD/bin
if ! command -v mpirun >/dev/null || [ ! -x "$bin/ssl-train-mpi" ]; then
	echo "bench-mpi: needs mpirun and $bin/ssl-train-mpi (Debian: openmpi-bin, libopenmpi-dev)" >&2
	exit 1
fi
export PATH=$bin:$PATH OPENBLAS_NUM_THREADS=1
unset OMP_NUM_THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ROOT=""
[ "$(id -u)" -eq 0 ] && ROOT=--allow-run-as-root
maxn=1
for n in $RANKS; do [ "$n" -gt "$maxn" ] && maxn=$n; done
N=$((maxn * B * STEPS))
if [ ! -f "$DATA" ]; then
	DATA=$tmp/img
	echo "== no CIFAR-10 archive: $N random 32x32 pictures"
	mkdir -p "$DATA/a" "$DATA/b"
	for i in $(seq 1 "$N"); do
		d=a
		[ $((i % 2)) -eq 1 ] && d=b
		{ printf 'P6\n32 32\n255\n'; head -c 3072 /dev/urandom; } > "$DATA/$d/$i.ppm"
	done
fi

# The views, made once: all records for one process, and each rank's shard.
echo "== views: $N records of $DATA (ssl-decode --limit, --shuffle), recipe cifar"
views() { # shard-option output
	ssl-decode -q --limit $N --shuffle --seed 1 $1 "$DATA" | ssl-augment -q --recipe cifar --seed 1 > "$2"
}
views "" "$tmp/all.st"
for n in $RANKS; do
	for r in $(seq 0 $((n - 1))); do views "--shard $r/$n" "$tmp/v$n.$r.st"; done
done

MODEL="--arch resnet18 --width $WIDTH --proj-hidden $((32 * WIDTH)) --steps $STEPS"

# median images/s of the steps after the first (the first includes set-up)
rate() {
	awk -F'\t' 'NR > 2 { print $5 }' "$1" | sort -g |
		awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
pct() { echo "100 * $1 / ($2 * $one)" | bc -l; }

ssl-train $MODEL --quiet --batch $B --threads 1 --log "$tmp/one.tsv" -o "$tmp/one.ssl" "$tmp/all.st"
one=$(rate "$tmp/one.tsv")
printf '\n== resnet18 width %d, 32x32, %d steps, images/s (median of steps 2..)\n' "$WIDTH" "$STEPS"
printf '%-46s %10s %10s %9s\n' "run" "images/s" "step ms" "vs ideal"
printf '%-46s %10.1f %10.0f %9s\n' "1 process, batch $B, 1 thread" "$one" "$(echo "2000 * $B / $one" | bc -l)" "-"
for n in $RANKS; do
	for sb in sync plain; do
		flag="" name="$n ranks, batch $((n * B)), 1 thread each"
		[ $sb = sync ] && flag=--sync-bn name="$name, --sync-bn"
		# rank 0's notes carry the communication report (so no --quiet)
		mpirun $ROOT --oversubscribe -np "$n" sh -c "ssl-train-mpi $MODEL $flag --batch $((n * B)) --threads 1 \
			--log $tmp/$n$sb.tsv -o $tmp/$n$sb.ssl $tmp/v$n.\$OMPI_COMM_WORLD_RANK.st" 2> "$tmp/$n$sb.err"
		grep -o 'communication per step: .*' "$tmp/$n$sb.err" > "$tmp/$n$sb.comm" || true
		x=$(rate "$tmp/$n$sb.tsv")
		printf '%-46s %10.1f %10.0f %8.0f%%\n' "$name" "$x" "$(echo "2000 * $n * $B / $x" | bc -l)" "$(pct "$x" "$n")"
	done
done
case " $RANKS " in *" 2 "*)
	ssl-train $MODEL --quiet --batch $((2 * B)) --threads 2 --log "$tmp/omp.tsv" -o "$tmp/omp.ssl" "$tmp/all.st"
	x=$(rate "$tmp/omp.tsv")
	printf '%-46s %10.1f %10.0f %8.0f%%\n' "1 process, batch $((2 * B)), 2 threads" "$x" \
		"$(echo "4000 * $B / $x" | bc -l)" "$(pct "$x" 2)"
esac
echo
for n in $RANKS; do
	echo "$n ranks, --sync-bn: $(cat "$tmp/${n}sync.comm")"
	echo "$n ranks, plain:     $(cat "$tmp/${n}plain.comm")"
done

printf '\n== bytes per step by model (global batch 256 pairs; 4096 below)\n'
"$BUILD/bench/mpi_volume" 256
"$BUILD/bench/mpi_volume" 4096 | tail -n +2
