#!/bin/bash
# bench_augment.sh [BUILD]: views per CPU-second of lib/data/augment (what
# ssl-augment runs per record) beside torchvision's PIL path, one thread each,
# on the same generated images, measured in one run. `make bench-augment`.
# CPU time, not wall time: the machine may be shared. BENCH_SECONDS sets the
# time per measurement (default 2).
set -euo pipefail
build=${1:-build}
bin=$build/bench/bench_augment
py=/usr/bin/python3
secs=${BENCH_SECONDS:-2}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

torch=1
if ! "$py" -c 'import torchvision, PIL' 2>/dev/null; then
	echo "bench-augment: $py has no torchvision; measuring ssl-augment alone" >&2
	torch=0
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

rate() { sed -n 's/^\([0-9.]*\) views\/s.*/\1/p'; }

printf '%-9s %-9s %-8s %12s %12s %8s\n' recipe input output ssl-augment torchvision ratio
# recipe  images  H  W
cases="cifar 200 32 32
cifar 40 256 320
stl10 100 96 96
stl10 40 256 320
imagenet 40 256 320"
fail=0
while read -r recipe n h w; do
	f=$tmp/$h-$w.u8
	[ -f "$f" ] || "$bin" --write "$n" "$h" "$w" 3 "$f"
	ours=$("$bin" --recipe "$recipe" "$f" "$n" "$h" "$w" 3 "$secs" | rate)
	out=$("$bin" --recipe "$recipe" "$f" "$n" "$h" "$w" 3 0.01 | sed -n 's/.*-> \([0-9x]*\),.*/\1/p')
	if [ $torch = 1 ]; then
		theirs=$("$py" "$here/bench_augment_torch.py" "$recipe" "$f" "$n" "$h" "$w" 3 "$secs" | rate)
		ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.1fx", a / b }')
	else
		theirs=- ratio=-
	fi
	printf '%-9s %-9s %-8s %12.0f %12s %8s\n' "$recipe" "${h}x$w" "$out" "$ours" "$theirs" "$ratio"
	if [ "$recipe $h" = "cifar 32" ]; then
		awk -v a="$ours" 'BEGIN { exit !(a >= 20000) }' || { echo "target missed: < 20000 views/s at 32x32"; fail=1; }
		[ $torch = 0 ] || awk -v a="$ours" -v b="$theirs" 'BEGIN { exit !(a >= 5 * b) }' ||
			{ echo "target missed: < 5x torchvision at 32x32"; fail=1; }
	fi
done <<<"$cases"
echo "targets at 32x32 (>= 20000 views/s per core, >= 5x torchvision): $([ $fail = 0 ] && echo met || echo MISSED)"
exit $fail
