#!/bin/bash
# Checks the rule of pipelines/images.mk: from tiny folders of PPM images
# written here, the survey and the commands `make -n` would run (nothing is
# trained). Needs $SSL_BIN (set by make test).
set -u
cd "${SSL_SRC:-.}" || exit 1
bin=${SSL_BIN:-build/bin}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# ppm DIR/NAME W H: a flat grey P6 image
ppm() {
	mkdir -p "$(dirname "$1")"
	{ printf 'P6\n%d %d\n255\n' "$2" "$3"; head -c $(($2 * $3 * 3)) /dev/zero | tr '\0' '\200'; } > "$1"
}
# plan NAME TRAIN [VAR=value...]: the commands make would run, in $tmp/NAME.plan
plan() {
	local name=$1 train=$2
	shift 2
	make --no-print-directory -n -f pipelines/images.mk BIN="$bin" TRAIN="$train" OUT="$tmp/out-$name" "$@" \
		> "$tmp/$name.plan" 2> "$tmp/$name.err" || { echo "images.mk $name: make failed: $(cat "$tmp/$name.err")"; fail=$((fail + 1)); }
}
has() { # has NAME TEXT: the plan holds TEXT
	grep -q -F -e "$2" "$tmp/$1.plan" || { echo "images.mk $1: no '$2' in the plan"; fail=$((fail + 1)); }
}
hasnt() {
	! grep -q -F -e "$2" "$tmp/$1.plan" || { echo "images.mk $1: '$2' should not be in the plan"; fail=$((fail + 1)); }
}

# small images, two classes, no test set: 32 px, cifar, a stratified split
for i in 0 1 2 3 4 5 6 7 8 9; do ppm "$tmp/small/a/$i.ppm" 40 30; ppm "$tmp/small/b/$i.ppm" 30 44; done
plan small "$tmp/small/"
has small "--size 32 --fit crop"
has small "--recipe cifar --size 32"
has small "--stem cifar"
has small "--batch 32"
has small "--epochs 200"
has small "--labels 20% --labels-complement --seed 1"
has small "--labels 20% --seed 1"
has small "ssl-probe"
grep -q -x 'short 30 30 30' "$tmp/out-small/survey.txt" || { echo "images.mk small: survey: $(cat "$tmp/out-small/survey.txt")"; fail=$((fail + 1)); }

# larger images (shorter side 100): 96 px, stl10, imagenet stem; overrides win
for i in 0 1 2; do ppm "$tmp/large/a/$i.ppm" 150 100; ppm "$tmp/large/b/$i.ppm" 100 120; done
plan large "$tmp/large"
has large "--size 96 --fit crop"
has large "--recipe stl10 --size 96"
has large "--stem imagenet"
plan override "$tmp/large" SIZE=64 FIT=pad EPOCHS=3 TEST="$tmp/small"
has override "--size 64 --fit pad"
has override "--epochs 3"
hasnt override "--labels-complement"

# no classes: no probe, the run ends with the model
for i in 0 1 2 3; do ppm "$tmp/flat/$i.ppm" 32 32; done
plan flat "$tmp/flat"
has flat "ssl-train"
hasnt flat "ssl-probe"
hasnt flat "--monitor"

echo "check-images-mk: $fail problems"
[ "$fail" -eq 0 ]
