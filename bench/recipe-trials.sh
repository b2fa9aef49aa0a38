#!/bin/bash
# Recipe trials for short budgets (issue 16): each trial is the CIFAR-10
# pipeline (pipelines/cifar10.mk) at the same number of epochs with some of
# its variables changed, judged by the linear and kNN probes of the 10,000
# test images and by ssl-train's kNN monitor. Trials that change the cost of
# a step (WIDTH, BATCH) are compared at equal epochs here; their step rate
# is in the "train s" column (indicative: wall time on a machine that may be
# shared; the probes do not depend on it).
#   usage: bench/recipe-trials.sh EPOCHS "NAME VAR=VAL ..." ...
#   e.g.   bench/recipe-trials.sh 3 "base" "lr0.3 LR=0.3" "t0.2 TEMPERATURE=0.2"
# Runs go to runs/trial-EPOCHS-NAME (kept; a finished trial is not rerun);
# the table goes to stdout and runs/trials-EPOCHS.md (rows appended, so
# batches of trials at the same epochs build one table).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=$1
shift
table=runs/trials-$epochs.md
mkdir -p runs
[ -s "$table" ] || {
	echo "| trial | changes | linear | kNN | monitor first → last | train s | steps |"
	echo "|---|---|---|---|---|---|---|"
} > "$table"
for spec in "$@"; do
	read -r name vars <<< "$spec"
	run=trial-$epochs-$name
	# shellcheck disable=SC2086
	make -s -f pipelines/cifar10.mk EPOCHS="$epochs" RUN="$run" PROBE_LABELS= $vars \
		"runs/$run/simclr-linear.json" "runs/$run/simclr-knn.json" > "runs/$run.make.log" 2>&1 ||
		{ echo "recipe-trials: $name failed (runs/$run.make.log)" >&2; continue; }
	acc() { sed -n 's/^      "top1": *\([0-9.]*\).*/\1/p' "runs/$run/simclr-$1.json" | head -1 |
		awk '{ printf "%.2f%%", 100 * $1 }'; }
	mon=$(sed -n 's/.*after the first epoch \([0-9.]*%\), at the end (step \([0-9]*\)) \([0-9.]*%\).*/\1 → \3/p' \
		"runs/$run/simclr.ssl.log" | tail -1)
	steps=$(sed -n 's/.*at the end (step \([0-9]*\)).*/\1/p' "runs/$run/simclr.ssl.log" | tail -1)
	echo "| $name | ${vars:-(defaults)} | $(acc linear) | $(acc knn) | $mon | $(cat "runs/$run/train-seconds.txt") | $steps |" >> "$table"
done
cat "$table"
