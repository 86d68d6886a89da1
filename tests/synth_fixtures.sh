#!/bin/bash
# synth_fixtures.sh: `rstguard -r` on the synthetic captures of tests/fixtures/synth/ (TAP; needs
# no root and no network). Each NAME.pcap imitates one injector or one other stack's genuine RST,
# packet by packet (tests/lib/synth.py; tests/fixtures/synth/README.md says what and from which
# source), and NAME.expected holds the rst and eviction events it must give, reduced to their
# stable fields (tests/lib/pcaptool.py stable; a revised event keeps "revised": true).
#
# Checked here: every capture against its .expected; none of the genuine ones (group B of the
# README: no "forged": true in its .expected) has a forged RST, a revised one or a would-drop;
# and, when scapy is there, the generator still writes exactly the committed captures (the
# generator is their source).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"   # TAP helpers, temp dir and traps (no namespace is made)

PT=$RG_LIB/pcaptool.py
DIR=$RG_SRCDIR/tests/fixtures/synth
PY=$RG_PY
[ -x "$PY" ] || PY=$(command -v python3) || rg_skip "python3 not installed"
rg_require_daemon
rg_init

NAMES=()
for f in "$DIR"/*.pcap; do
	[ -e "$f" ] || continue
	NAMES+=("$(basename "$f" .pcap)")
done
[ ${#NAMES[@]} -gt 0 ] || rg_bail "no synthetic captures in $DIR"
rg_plan $((${#NAMES[@]} + 2))

genuine_bad=()
for name in "${NAMES[@]}"; do
	out=$RG_TMP/$name.json
	if ! timeout 60 "$RSTGUARD" -r "$DIR/$name.pcap" -e "$out" 2>"$RG_TMP/$name.err"; then
		rg_fail "$name: rstguard -r exits 0" "$(head -c 300 "$RG_TMP/$name.err")"
		continue
	fi
	if "$PY" "$PT" stable "$out" | diff "$DIR/$name.expected" - >"$RG_TMP/diff" 2>&1; then
		rg_pass "$name: the events of $name.expected"
	else
		rg_fail "$name: the events of $name.expected" "$(cat "$RG_TMP/diff")"
	fi
	if ! grep -q '"forged": true' "$DIR/$name.expected" &&
		grep -E '"forged":true|"revised":true|"would_drop":true' "$out" >"$RG_TMP/bad"; then
		genuine_bad+=("$name:" "$(cut -c 1-300 "$RG_TMP/bad")")
	fi
done
rg_ok ${#genuine_bad[@]} "genuine stacks' RSTs: none forged, revised or would be dropped" "${genuine_bad[@]}"

# The generator is the captures' source: it must still write them byte for byte.
if "$PY" -c 'import scapy' 2>/dev/null; then
	mkdir -p "$RG_TMP/regen"
	if "$PY" "$RG_LIB/synth.py" "$RG_TMP/regen" >"$RG_TMP/regen.log" 2>&1; then
		diffs=()
		for name in "${NAMES[@]}"; do
			cmp -s "$DIR/$name.pcap" "$RG_TMP/regen/$name.pcap" || diffs+=("$name.pcap differs")
		done
		rg_ok ${#diffs[@]} "tests/lib/synth.py writes exactly the committed captures" "${diffs[@]}"
	else
		rg_fail "tests/lib/synth.py writes exactly the committed captures" "$(tail -5 "$RG_TMP/regen.log")"
	fi
else
	rg_pass "tests/lib/synth.py writes exactly the committed captures # SKIP scapy not installed"
fi
