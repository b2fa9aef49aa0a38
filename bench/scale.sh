#!/bin/bash
# ssl-decode on collections larger than its memory budget (issue 20).
#
# Generates (once; bench/gen_collection, not committed) an uncompressed tar
# of SMALL_N 32x32 JPEGs and one of PHOTO_N 500x375 JPEGs in DIR, then for
# each runs
#     ssl-decode -v --shuffle --epochs 2 --memory MEM [--size 96x96] TAR | ssl-info
# under /usr/bin/time and prints its peak RSS, the bytes it spilled to disk,
# and the images/s of the first pass (decode) and of each emitted epoch,
# from ssl-decode's --verbose lines. Then, on the first PARALLEL_N photos,
# the decode rate of --size 96x96 and 224x224 with 1 and 2 threads next to
# what the trainer consumes at 96x96 (bench_step, resnet18 ImageNet stem,
# width 16 and 32, 256 pairs = 512 images a step), so the bottleneck is
# known. Needs about 9 GB in DIR at the default sizes.
#   usage: bench/scale.sh [SMALL_N [PHOTO_N [MEM [DIR]]]]
#   defaults: 1000000 200000 1G /var/tmp/ssl-scale
#   PARTS="big rates" (default both): the two large runs, the rates.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL_N=${1:-1000000} PHOTO_N=${2:-200000} MEM=${3:-1G} DIR=${4:-/var/tmp/ssl-scale}
PARALLEL_N=${PARALLEL_N:-10000} PARTS=${PARTS:-big rates}
BUILD=${BUILD:-build}
make -s all "$BUILD/bench/gen_collection" "$BUILD/bench/bench_step"
mkdir -p "$DIR/spill"
BIN=$BUILD/bin

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "scale: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); budget --memory $MEM"

gen() { # name n HxW
	local tar=$DIR/$1.tar
	if [ ! -f "$tar.done" ]; then
		echo "scale: generating $2 $3 JPEGs in $tar"
		"$BUILD/bench/gen_collection" "$2" "$3" "$tar" > "$tar.done.tmp"
		mv "$tar.done.tmp" "$tar.done"
	fi
}

# ssl-decode's --verbose lines: "decoded N images in S s (R images/s)",
# "epoch E: N records in S s (R records/s)", "spilled B bytes ...".
run_decode() { # name tar extra-args...
	local name=$1 tar=$2; shift 2
	local log=$DIR/$name.log t0 t1 rss
	t0=$(date +%s.%N)
	/usr/bin/time -f "RSS_KB %M" -o "$DIR/$name.time" \
		"$BIN/ssl-decode" -v --shuffle --epochs 2 --memory "$MEM" --cache-dir "$DIR/spill" "$@" "$tar" \
		2> "$log" | "$BIN/ssl-info" > "$DIR/$name.info"
	t1=$(date +%s.%N)
	rss=$(sed -n 's/^RSS_KB //p' "$DIR/$name.time")
	printf '%-34s %9s %9s  %s\n' "$name ($(du -h "$tar" | cut -f1) tar)" \
		"$(awk -v k="$rss" 'BEGIN { printf "%.0f MB", k / 1024 }')" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f s", b - a }')" \
		"$(grep -E 'decoded .* images/s|^ssl-decode: epoch|spill' "$log" | sed 's/^ssl-decode: //' | tr '\n' ';')"
	ls -A "$DIR/spill" | grep -q . && echo "scale: $DIR/spill is not empty after the run" >&2 || true
}

gen small "$SMALL_N" 32x32
gen photo "$PHOTO_N" 375x500
gen photo-head "$PARALLEL_N" 375x500   # the same first images (same seed)

if [[ " $PARTS " == *" big "* ]]; then
	echo
	printf '%-34s %9s %9s  %s\n' "collection" "peak RSS" "wall" "ssl-decode --verbose"
	run_decode "small-$SMALL_N-32px" "$DIR/small.tar"
	run_decode "photo-$PHOTO_N-96px" "$DIR/photo.tar" --size 96x96
fi
[[ " $PARTS " == *" rates "* ]] || exit 0

echo
echo "decode rate on $PARALLEL_N 500x375 JPEGs (ssl-decode -q > /dev/null, whole run):"
for size in 96x96 224x224; do
	for t in 1 2; do
		t0=$(date +%s.%N)
		OMP_NUM_THREADS=$t "$BIN/ssl-decode" -q --size "$size" "$DIR/photo-head.tar" > /dev/null
		t1=$(date +%s.%N)
		printf '  --size %-8s %d thread(s): %6.0f images/s\n' "$size" "$t" \
			"$(awk -v n="$PARALLEL_N" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }')"
	done
done
echo "trainer consumption at 96x96 (bench_step, 2 threads, images/s = 2 views x pairs):"
for w in 16 32; do
	r=$(OMP_NUM_THREADS=2 "$BUILD/bench/bench_step" --mode train --width "$w" --batch 256 --stem imagenet \
		--size 96 --hidden 512 --steps 3 --warmup 1 | sed -n 's/^RESULT.* images_per_s=\([0-9.]*\).*/\1/p')
	printf '  resnet18 ImageNet stem width %d: %6.0f images/s (%.0f source images/s)\n' "$w" "$r" \
		"$(awk -v r="$r" 'BEGIN { print r / 2 }')"
done
