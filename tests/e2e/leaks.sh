#!/bin/bash
# leaks.sh: start-up error paths release what they allocated (the configuration, its error
# list, the event output). Each case must exit 1 with no definite or indirect leak, checked
# with valgrind, or with LeakSanitizer when rstguard was built with --enable-sanitizers.
# Needs neither root nor namespaces; skips when neither checker is available.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_init
rg_require_daemon

CHECK=()
if ldd "$RSTGUARD" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=detect_leaks=1:exitcode=99
	CHECKER=LeakSanitizer
elif command -v valgrind >/dev/null 2>&1; then
	CHECK=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99)
	CHECKER=valgrind
else
	rg_skip "neither valgrind nor a sanitizer build"
fi

mkdir -p "$RG_TMP/conf.d"
printf 'mode = "detect";\nqueue = { bogus = 1; };\nlog = { level = "chatty"; };\n' >"$RG_TMP/bad.conf"
printf '@include "%s"\n' "$RG_TMP/conf.d" >"$RG_TMP/incdir.conf"
printf 'events = { path = "%s/no-such-dir/events.json"; };\n' "$RG_TMP" >"$RG_TMP/noev.conf"
PCAP=$RG_SRCDIR/tests/fixtures/refused.pcap

# case NAME DESC ARGS...: rstguard ARGS under the checker must exit 1 (99: a leak).
case_() {
	local name=$1 desc=$2 rc
	shift 2
	timeout 60 "${CHECK[@]}" "$RSTGUARD" "$@" >"$RG_TMP/$name.out" 2>"$RG_TMP/$name.err" </dev/null
	rc=$?
	if [ "$rc" -eq 1 ]; then
		rg_pass "$desc: exit 1, no leak ($CHECKER)"
	else
		rg_fail "$desc: exit 1, no leak ($CHECKER)" "exit status $rc (99: leak)"
		rg_diag_file "$RG_TMP/$name.err" stderr 40
	fi
}

rg_plan 5
case_ cfgerr "-t on a file with errors" -t -c "$RG_TMP/bad.conf"
case_ incdir "-t on a file that @includes a directory" -t -c "$RG_TMP/incdir.conf"
case_ cfgerr2 "start with a file with errors" -c "$RG_TMP/bad.conf"
case_ noev "start with an event file that cannot be opened" -c "$RG_TMP/noev.conf"
case_ offev "-r with an event file that cannot be opened" -r "$PCAP" -c "$RG_TMP/noev.conf"
