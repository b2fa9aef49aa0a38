#!/bin/bash
# Lints every man page with mandoc and checks that each long option a tool
# shows in --help appears in its man page. Needs $SSL_BIN (set by make test).
set -u
cd "${SSL_SRC:-.}" || exit 1
bin=${SSL_BIN:-build/bin}
fail=0 checked=0
if command -v mandoc >/dev/null; then
	for p in man/*.[1-9]; do
		[ -e "$p" ] || continue
		# -W warning: style notes are not failures; warnings and errors are.
		out=$(mandoc -T lint -W warning "$p" 2>&1 | grep -v 'Os macro has no argument\|UNSUPP' || true)
		if [ -n "$out" ]; then echo "man lint: $out"; fail=$((fail + 1)); fi
		checked=$((checked + 1))
	done
else
	echo "check-man: mandoc not installed, lint skipped"
fi
for t in "$bin"/ssl-*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	page=man/$name.1
	if [ ! -f "$page" ]; then echo "$name: no man page $page"; fail=$((fail + 1)); continue; fi
	help=$("$t" --help 2>/dev/null) || { echo "$name: --help did not exit 0"; fail=$((fail + 1)); continue; }
	for opt in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
		flag=${opt#--}
		# mdoc writes options as "Fl -name" (\- escapes allowed)
		if ! grep -q -E "Fl (\\\\)?-$flag\\b" "$page"; then
			echo "$name: option $opt is in --help but not in $page"
			fail=$((fail + 1))
		fi
	done
	checked=$((checked + 1))
done
echo "check-man: $checked checked, $fail problems"
[ "$fail" -eq 0 ]
