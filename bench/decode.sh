#!/bin/sh
# Images/s decoding the JPEGs of a CIFAR-10 archive: ours (lib/data/image,
# lib/data/dataset) on 1 and 2 threads side by side with PIL on 1 thread, on the
# same files in the same run, and whether both decode the same pixels.
# usage: bench/decode.sh [BUILD [ARCHIVE]]   (make bench-decode runs it)
set -eu
build=${1:-build}
archive=${2:-../shared/data/cifar10-train.tar.gz}
[ -f "$archive" ] || archive=/work/shared/data/cifar10-train.tar.gz
py=/usr/bin/python3
load=$(cut -d' ' -f1 /proc/loadavg)
ours=$("$build/bench/bench_decode" "$archive")
t0=$(date +%s.%N)
"$build/bin/ssl-decode" -q "$archive" > /dev/null
t1=$(date +%s.%N)
pil=$("$py" "$(dirname "$0")/decode_pil.py" "$archive")
get() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
n=$(get "$ours" members)
echo "decode: $n JPEG members of $archive (load average $load on $(nproc) cores at the start)"
printf '%-44s %10s %8s\n' "what" "images/s" "vs PIL"
row() { printf '%-44s %10s %8s\n' "$1" "$2" "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2fx", a / b }')"; }
pd=$(get "$pil" pil_decode_1t) pa=$(get "$pil" pil_archive_1t)
row "PIL decode, 1 thread (members in memory)" "$pd" "$pd"
row "ours decode, 1 thread" "$(get "$ours" ours_decode_1t)" "$pd"
row "ours decode, 2 threads" "$(get "$ours" ours_decode_2t)" "$pd"
row "PIL tarfile+gzip+decode, 1 thread" "$pa" "$pa"
row "ours archive+gzip+decode, 1 thread" "$(get "$ours" ours_archive_1t)" "$pa"
row "ours archive+gzip+decode, 2 threads" "$(get "$ours" ours_archive_2t)" "$pa"
row "ssl-decode to /dev/null (all threads)" "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')" "$pa"
if [ "$(get "$ours" checksum)" = "$(get "$pil" checksum)" ]; then
	echo "pixels: identical to PIL (checksum $(get "$ours" checksum))"
else
	echo "pixels: differ from PIL (ours $(get "$ours" checksum), PIL $(get "$pil" checksum))"
fi
