#!/bin/bash
# Small collections: SimCLR pre-trained on a stratified few thousand images of
# the CIFAR-10 training split (32x32) against the random-init encoder, linear
# and kNN probes trained on the same images' labels and measured on the whole
# test split. The sizes leave a tail of 1, 7 and 100 pairs at batch 128, and
# each runs with the default --min-tail (the short tail dropped) and with
# --min-tail 1 (every tail trained on, as before issue 21).
#
#   usage: bench/small-collection.sh [EPOCHS [SIZES [MIN_TAILS]]]
#   e.g.   bench/small-collection.sh 30 "2945 2951 3044" "default 1"
#
# Runs live in runs/small-N-tT/ (pipelines/simclr.mk: every stage a file, so
# a rerun redoes only what changed); the table goes to stdout and to
# runs/small-collection-EPOCHS.md. Long: about EPOCHS x 25 s per run on one Zen 5
# core at width 16. THREADS (default 2), DATA (the folder holding
# cifar10-train.tar.gz and cifar10-test.tar.gz) and BIN (the tools; default
# build/bin, built first) may be set in the environment.
set -eu
cd "$(dirname "$0")/.."
EPOCHS=${1:-30} SIZES=${2:-"2945 2951 3044"} TAILS=${3:-"default 1"}
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-2}
BIN=${BIN:-build/bin}
[ "$BIN" != build/bin ] || make -s all

top1() { # the first "top1" of an ssl-probe --json report, as a percentage
	grep -o '"top1": *[0-9.eE+-]*' "$1" | head -n 1 | sed 's/.*: *//' | awk '{ printf "%.2f", 100 * $1 }'
}

table=runs/small-collection-$EPOCHS.md
mkdir -p runs
{
	echo "| images | tail | --min-tail | SimCLR linear | SimCLR kNN | random linear | random kNN | monitor (before, first epoch, end) | pre-training s |"
	echo "|---|---|---|---|---|---|---|---|---|"
} > "$table"
for n in $SIZES; do
	per=$(( (n + 9) / 10 ))
	for t in $TAILS; do
		run=small-$n-t$t
		extra=""
		[ "$t" = default ] || extra="--min-tail $t"
		make -s -f pipelines/cifar10.mk BIN="$BIN" RUN="$run" DATA="$DATA" EPOCHS="$EPOCHS" BATCH=128 \
			THREADS="$THREADS" PROBE_LABELS= EXTRA_TRAIN="$extra" \
			TRAIN_SELECT="--labels $per-per-class --limit $n" runs/"$run"/report.md >/dev/null
		out=runs/$run
		mon=$(grep -o 'before training [0-9.]*%, after the first epoch [0-9.]*%, at the end (step [0-9]*) [0-9.]*%' \
			"$out/simclr.ssl.log" | sed 's/before training //; s/after the first epoch //; s/at the end //' || true)
		echo "| $n | $((n % 128)) | $t | $(top1 "$out/simclr-linear.json")% | $(top1 "$out/simclr-knn.json")% |" \
			"$(top1 "$out/random-linear.json")% | $(top1 "$out/random-knn.json")% | ${mon:-?} |" \
			"$(cat "$out/train-seconds.txt") |" >> "$table"
	done
done
cat "$table"
