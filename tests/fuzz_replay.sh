#!/bin/bash
# fuzz_replay.sh: every committed fuzz corpus (fuzz/corpus/TARGET/: the seeds and the regressions
# found by fuzzing) through every fuzz target's LLVMFuzzerTestOneInput, with the plain replay
# driver (fuzz/replay.c; built by make check with any compiler, no libFuzzer). A target on
# another target's corpus is hostile input too. Each (target, corpus) pair is one TAP test: it
# passes when the driver exits 0 (a crash, a failed assertion or, in a sanitizer build, an ASan,
# UBSan or LeakSanitizer report fails it). No root, no network. docs/fuzzing.md.
set -u
srcdir=${RG_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${RG_BUILDDIR:-$srcdir}
corpus=$srcdir/fuzz/corpus
targets=(packet engine offline config nfq control)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rg-fuzz-replay.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
# The targets' temporary files go here (removed with it even after a crash).
export TMPDIR=$tmp

dirs=()
for d in "$corpus"/*/; do
	[ -d "$d" ] && dirs+=("$(basename "$d")")
done
if [ ${#dirs[@]} -eq 0 ]; then
	echo "Bail out! no corpus in $corpus"
	exit 1
fi
for t in "${targets[@]}"; do
	if [ ! -x "$builddir/fuzz/replay_$t" ]; then
		echo "Bail out! $builddir/fuzz/replay_$t not built (make check builds it)"
		exit 1
	fi
done

echo "1..$(( ${#targets[@]} * ${#dirs[@]} ))"
n=0
for t in "${targets[@]}"; do
	for d in "${dirs[@]}"; do
		n=$((n + 1))
		log=$tmp/$t-$d.log
		if "$builddir/fuzz/replay_$t" "$corpus/$d" >"$log" 2>&1; then
			echo "ok $n - replay_$t on corpus/$d: $(grep -o '[0-9]* inputs' "$log" | tail -n 1)"
		else
			rc=$?
			echo "not ok $n - replay_$t on corpus/$d: exit $rc"
			# The driver's report (sanitizer stack, failed input), minus the summaries.
			grep -v '^rstguard\|^ \|^$' "$log" | tail -n 40 | sed 's/^/# /'
		fi
	done
done
