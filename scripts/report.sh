#!/bin/bash
# Writes runs/<run>/report.md and table.txt from a pipeline's probe results.
# usage: report.sh OUTDIR DATASET SETTINGS "PROBES"
set -eu
out=$1 dataset=$2 settings=$3 probes=$4

top1() { # the first "top1" of an ssl-probe --json report, as a percentage
	local v
	v=$(grep -o '"top1": *[0-9.eE+-]*' "$1" | head -n 1 | sed 's/.*: *//')
	[ -n "$v" ] || { echo "report: no top1 in $1" >&2; exit 1; }
	awk -v v="$v" 'BEGIN { printf "%.2f", 100 * v }'
}

{
	printf '%-14s %10s %12s\n' probe SimCLR random-init
	for p in $probes; do
		printf '%-14s %9s%% %11s%%\n' "$p" "$(top1 "$out/simclr-$p.json")" "$(top1 "$out/random-$p.json")"
	done
} > "$out/table.txt"

# ssl-train's verdict on its kNN monitor (before training, first epoch, end)
monitor=$(grep -h -e 'kNN monitor: before training' -e 'training did not beat' -e 'did not rise after' \
	"$out/simclr.ssl.log" 2>/dev/null | sed 's/^ssl-train: //' || true)
[ -z "$monitor" ] || printf '%s\n' "$monitor" >> "$out/table.txt"

train_s=$(cat "$out/train-seconds.txt" 2>/dev/null || echo "?")
{
	echo "# SimCLR on $dataset"
	echo
	echo "Settings: $settings."
	echo
	echo "Pre-training wall time (decode | augment | train): ${train_s} s."
	echo
	if [ -n "$monitor" ]; then
		echo "ssl-train's kNN monitor (test images, 100 per class):"
		echo
		printf '    %s\n' "$monitor"
		echo
	fi
	echo "Top-1 accuracy on the test split (frozen encoder features):"
	echo
	echo '| probe | SimCLR | random init |'
	echo '|---|---|---|'
	for p in $probes; do
		echo "| $p | $(top1 "$out/simclr-$p.json")% | $(top1 "$out/random-$p.json")% |"
	done
	echo
	echo "linear: logistic regression on standardised features, C chosen on a held-out"
	echo "part of the training set; knn: k=200, cosine, exp(s/0.1) votes;"
	echo "linear-1pct / linear-10pct: the linear probe trained on 1% / 10% of the"
	echo "training labels (stratified, seeded)."
	echo
	echo "Pictures: curves.png (training loss, contrastive accuracy, kNN monitor),"
	echo "preview.png (augmented views), simclr-map.png and random-map.png (PCA of"
	echo "the test embeddings, coloured by class)."
} > "$out/report.md"
