#!/bin/bash
# check_config.sh: `rstguard -t` (check mode) on the defaults, the shipped sample, broken files
# and bad command-line values. Needs neither root nor namespaces, so it never skips: every
# invocation has -t, so even a daemon that ignored a bad option would only check, never bind.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_init
[ -x "$RSTGUARD" ] || rg_bail "rstguard not built ($RSTGUARD)"

RC=""
# run NAME ARGS...: run rstguard (bounded) with stdout/stderr in $RG_TMP/NAME.{out,err}.
run() {
	local name=$1
	shift
	timeout 10 "$RSTGUARD" "$@" >"$RG_TMP/$name.out" 2>"$RG_TMP/$name.err" </dev/null
	RC=$?
}

# show NAME: what the run printed, for a failure's diagnostics.
show() {
	rg_diag "exit status: $RC"
	rg_diag_file "$RG_TMP/$1.out" "stdout" 10
	rg_diag_file "$RG_TMP/$1.err" "stderr" 10
}

# expect_ok NAME DESC ARGS...: exit 0 and "configuration OK".
expect_ok() {
	local name=$1 desc=$2
	shift 2
	run "$name" "$@"
	if [ "$RC" -eq 0 ] && cat "$RG_TMP/$name.out" "$RG_TMP/$name.err" | grep -q 'configuration OK'; then
		rg_pass "$desc"
	else
		rg_fail "$desc (expected exit 0 and 'configuration OK')"
		show "$name"
	fi
}

# expect_errors NAME DESC FILE LINE:REGEX... -- : check FILE with -t; exit 1 and, for each
# LINE:REGEX, a stderr line "FILE:LINE: ..." matching REGEX (case-insensitive).
expect_errors() {
	local name=$1 desc=$2 file=$3 spec line re missing=()
	shift 3
	run "$name" -t -c "$file"
	for spec in "$@"; do
		line=${spec%%:*}
		re=${spec#*:}
		if ! grep -F "$file:$line: " "$RG_TMP/$name.err" | grep -qiE -- "$re"; then
			missing+=("$file:$line: /$re/")
		fi
	done
	if [ "$RC" -eq 1 ] && [ ${#missing[@]} -eq 0 ]; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "expected exit 1 and on stderr: $*"
		[ ${#missing[@]} -gt 0 ] && rg_diag "missing: ${missing[*]}"
		rg_diag "---- $file ----"
		cat -n "$file" | rg_diag
		show "$name"
	fi
}

# expect_fail NAME DESC ARGS...: a bad command line: non-zero exit and a message on stderr.
expect_fail() {
	local name=$1 desc=$2
	shift 2
	run "$name" "$@"
	if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && [ -s "$RG_TMP/$name.err" ] &&
		! grep -q 'configuration OK' "$RG_TMP/$name.out" "$RG_TMP/$name.err"; then
		rg_pass "$desc"
	else
		rg_fail "$desc (expected a non-zero exit with a message on stderr)"
		show "$name"
	fi
}

CONF=$RG_SRCDIR/conf/rstguard.conf

# The broken files. Each bad setting sits alone on its line so the expected line is certain.
cat >"$RG_TMP/unknown-key.conf" <<'EOF'
# an unknown key inside a known group
mode = "detect";
queue = {
	bogus = 1;
};
EOF
cat >"$RG_TMP/wrong-type.conf" <<'EOF'
# a string where an integer is expected
flows: { timeout: { syn = "30"; }; };
EOF
cat >"$RG_TMP/out-of-range.conf" <<'EOF'
# queue numbers are 16 bits
queue = {
	num = 70000;
};
EOF
cat >"$RG_TMP/syntax.conf" <<'EOF'
# a value without quotes is a syntax error
queue = {
	num = 0;
};
mode = detect;
events = { rate = 5; };
EOF
cat >"$RG_TMP/several.conf" <<'EOF'
# three independent errors: all must be reported, not only the first
colour = "blue";
events = {
	rate = "fast";
};
queue = {
	maxlen = 1;
};
log = { level = "chatty"; };
EOF
cat >"$RG_TMP/valid.conf" <<'EOF'
mode = "enforce";
queue = { num = 3; count = 2; };
flows = { timeout = { established = 600; }; };
events = { path = "/dev/null"; rate = 10; burst = 20; };
eviction = { idle_timeout = 300; keepalive = true; };
EOF

# An @include of a directory: libconfig 1.5's scanner calls exit(2) on it unless the loader
# refuses it first.
mkdir -p "$RG_TMP/conf.d"
cat >"$RG_TMP/include-dir.conf" <<EOF
mode = "detect";
@include "$RG_TMP/conf.d"
EOF

rg_plan 19

expect_ok defaults "-t with the built-in defaults" -t
expect_ok sample "-t -c conf/rstguard.conf (the shipped sample)" -t -c "$CONF"
expect_ok valid "-t -c a small valid file with non-default values" -t -c "$RG_TMP/valid.conf"
expect_errors unknown "unknown key: exit 1, FILE:4" "$RG_TMP/unknown-key.conf" '4:bogus'
expect_errors wrongtype "string where an integer is expected: exit 1, FILE:2" \
	"$RG_TMP/wrong-type.conf" '2:syn'
expect_errors range "out-of-range value: exit 1, FILE:3" "$RG_TMP/out-of-range.conf" \
	'3:range|65535|70000'
expect_errors syntax "syntax error: exit 1, FILE:5" "$RG_TMP/syntax.conf" '5:syntax'
expect_errors several "several errors in one file: all printed" "$RG_TMP/several.conf" \
	'2:colour' '4:rate' '7:maxlen' '9:level'

expect_errors incdir "@include of a directory: exit 1 (not 2), FILE:2 names it" \
	"$RG_TMP/include-dir.conf" "2:@include \"$RG_TMP/conf.d\": cannot read: is a directory"

run missing -t -c "$RG_TMP/does-not-exist.conf"
if [ "$RC" -eq 1 ] && grep -q "does-not-exist.conf" "$RG_TMP/missing.err"; then
	rg_pass "a missing config file: exit 1, the file named on stderr"
else
	rg_fail "a missing config file: exit 1, the file named on stderr"
	show missing
fi

expect_fail mode "-m foo is refused" -t -m foo
expect_fail qneg "-q -1 is refused" -t -q -1
expect_fail qbig "-q 65536 is refused" -t -q 65536
expect_fail idle "--idle-timeout abc is refused" -t --idle-timeout abc
expect_fail kaonly "--keepalive without an idle timeout is refused" -t --keepalive
expect_ok kaidle "--keepalive --idle-timeout 300 -m enforce -q 7 is valid" \
	-t --keepalive --idle-timeout 300 -m enforce -q 7
expect_fail unknownopt "an unknown option is refused" -t --no-such-option

run version -V
if [ "$RC" -eq 0 ] && grep -qi 'rstguard' "$RG_TMP/version.out" "$RG_TMP/version.err"; then
	rg_pass "-V prints the version and exits 0"
else
	rg_fail "-V prints the version and exits 0"
	show version
fi

run help -h
if [ "$RC" -eq 0 ] && grep -q -- '--check-config' "$RG_TMP/help.out" "$RG_TMP/help.err"; then
	rg_pass "-h prints usage (mentions --check-config) and exits 0"
else
	rg_fail "-h prints usage (mentions --check-config) and exits 0"
	show help
fi
