#!/bin/bash
# docs_sync.sh: the reference documentation against the code (TAP; needs no root, no network).
#
# The names are taken from the C sources with grep/sed/awk, so that a name added in C without
# documentation makes this test fail, and a name removed from C but left in the man pages does too:
#
#   options   the long-option table `longopts` and the getopt_long short-option string of
#             src/main.c: each must be an entry of OPTIONS in man/rstguard.8 and a line of the
#             built `rstguard --help`; every option those two list must exist in the code;
#   keys      the key tables of src/config.c (`static const struct cfg_key NAME_keys[]`, their
#             *_KEY(...) and `.name = ...` entries, groups joined with dots from top_keys down;
#             REJECT_KEY entries are cause names refused under policy.actions, checked as causes):
#             each must be an entry (.TP / .B key) of SETTINGS in man/rstguard.conf.5, and every
#             such entry must be a key; the members of an eviction.overrides entry (the names
#             load_overrides compares with strcmp) must appear in that key's description.
#             `rstguard --help` lists no configuration keys, so they are not looked for there;
#   causes    `cause_names` in src/rst.c: each must be an entry of the causes list of EVENTS in
#             man/rstguard.8 (and no other entry may be there), and be named in rstguard.conf.5
#             (policy.actions says which causes take an action);
#   signals   the `evidence` table of src/rst.c, name and weight: each must be an entry
#             `.BR name " weight"` under detector in man/rstguard.conf.5 (and no other entry may
#             be there), be listed under the rst object's evidence field in man/rstguard.8, and be
#             named in docs/detection.md.
#   rstguardctl  the `longopts` table and getopt_long string of src/rstguardctl.c, its commands
#             (the `simple` list of build_request, plus flows) and the flows options (the
#             strcmp(argv[i], "--x") of build_request): each option must be an entry of OPTIONS
#             in man/rstguardctl.8 and a line of `rstguardctl --help`, each command an entry of
#             COMMANDS and a line of --help, each flows option named in the flows entry and in
#             --help; and nothing documented that the code lacks.
#
# When an extraction finds nothing (a table renamed or reshaped), the test bails out rather than
# pass on an empty list: update the patterns here along with the code.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"   # TAP helpers, temp dir and traps (no namespace is made)

MAIN_C=$RG_SRCDIR/src/main.c
CONFIG_C=$RG_SRCDIR/src/config.c
RST_C=$RG_SRCDIR/src/rst.c
MAN8=$RG_SRCDIR/man/rstguard.8
CTL_C=$RG_SRCDIR/src/rstguardctl.c
MANCTL=$RG_SRCDIR/man/rstguardctl.8
RSTGUARDCTL=${RSTGUARDCTL:-$(dirname "$RSTGUARD")/rstguardctl}
MAN5=$RG_SRCDIR/man/rstguard.conf.5
DETECTION_MD=$RG_SRCDIR/docs/detection.md

rg_require_daemon
rg_init
for f in "$MAIN_C" "$CONFIG_C" "$RST_C" "$MAN8" "$MAN5" "$DETECTION_MD" "$CTL_C" "$MANCTL"; do
	[ -r "$f" ] || rg_bail "cannot read $f"
done

# ---- extraction from the code

# Long options: the names in `static const struct option longopts[] = { ... }`.
LONGOPTS=$(sed -n '/struct option longopts\[\] = {/,/};/p' "$MAIN_C" |
	sed -n 's/^[[:space:]]*{ *"\([a-zA-Z0-9-]*\)".*/--\1/p' | sort -u)
# Short options: the letters of getopt_long's option string.
SHORTOPTS=$(grep -o 'getopt_long([^"]*"[^"]*"' "$MAIN_C" | sed 's/.*"\([^"]*\)"$/\1/' |
	tr -d ':' | fold -w1 | sed 's/^/-/' | sort -u)

# Configuration keys, as dotted paths.
KEYS=$(awk '
	/^static const struct cfg_key [a-z_]+\[\] = \{/ {
		t = $5; sub(/\[\].*/, "", t); next
	}
	/^\};/ { t = ""; next }
	t == "" { next }
	/REJECT_KEY\(/ || /END_KEYS/ { next }
	/GROUP_KEY\(/ {
		s = $0; sub(/.*GROUP_KEY\( *"/, "", s)
		name = s; sub(/".*/, "", name)
		child = s; sub(/^[^,]*, */, "", child); sub(/[ )].*/, "", child)
		parent[child] = t; pname[child] = name
		next
	}
	match($0, /^[ \t]*[A-Z_]+_KEY[A-Z_]*\( *"[a-z_]+"/) || match($0, /\.name = "[a-z_]+"/) {
		s = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", s); sub(/"$/, "", s)
		n++; kt[n] = t; kn[n] = s
	}
	END {
		for (i = 1; i <= n; i++) {
			p = ""; x = kt[i]
			while (x in parent) { p = pname[x] "." p; x = parent[x] }
			print p kn[i]
		}
	}' "$CONFIG_C" | sort -u)
# Members of an eviction.overrides entry.
OVERRIDE_MEMBERS=$(grep -o 'strcmp(mname, "[a-z_]*")' "$CONFIG_C" | sed 's/.*"\([a-z_]*\)")/\1/' | sort -u)

# RST causes and forged-RST signals ("name weight").
CAUSES=$(sed -n '/cause_names\[[A-Z_]*\] = {/,/};/p' "$RST_C" | grep -o '"[a-z_]*"' | tr -d '"' | sort -u)
SIGNALS=$(sed -n 's/.*\[RST_EV_[A-Z_]*\] = { *"\([a-z_]*\)", *\([0-9]*\),.*/\1 \2/p' "$RST_C" | sort -u)

# rstguardctl: options, commands, flows options.
CTL_LONGOPTS=$(sed -n '/struct option longopts\[\] = {/,/};/p' "$CTL_C" |
	sed -n 's/^[[:space:]]*{ *"\([a-zA-Z0-9-]*\)".*/--\1/p' | sort -u)
CTL_SHORTOPTS=$(grep -o 'getopt_long([^"]*"[^"]*"' "$CTL_C" | sed 's/.*"\([^"]*\)"$/\1/' |
	tr -d ':+' | fold -w1 | sed 's/^/-/' | sort -u)
CTL_COMMANDS=$( (sed -n 's/.*simple\[\] = {\(.*\)NULL };.*/\1/p' "$CTL_C" | grep -o '"[a-z]*"' | tr -d '"'
	grep -o 'strcmp(cmd, "[a-z]*") != 0' "$CTL_C" | sed 's/.*"\([a-z]*\)".*/\1/') | sort -u)
CTL_FLOWOPTS=$(grep -o 'strcmp(argv\[i\], "--[a-z]*")' "$CTL_C" | sed 's/.*"\(--[a-z]*\)".*/\1/' | sort -u)

[ -n "$CTL_LONGOPTS" ] || rg_bail "no long options found in $CTL_C (longopts table moved?)"
[ "$(wc -l <<<"$CTL_COMMANDS")" -ge 6 ] || rg_bail "no commands found in $CTL_C (build_request reshaped?)"
[ -n "$CTL_FLOWOPTS" ] || rg_bail "no flows options found in $CTL_C"
[ -n "$LONGOPTS" ] || rg_bail "no long options found in $MAIN_C (longopts table moved?)"
[ -n "$SHORTOPTS" ] || rg_bail "no short options found in $MAIN_C (getopt_long string moved?)"
[ "$(wc -l <<<"$KEYS")" -ge 10 ] || rg_bail "no configuration keys found in $CONFIG_C (key tables moved?)"
[ -n "$OVERRIDE_MEMBERS" ] || rg_bail "no eviction.overrides members found in $CONFIG_C"
[ "$(wc -l <<<"$CAUSES")" -ge 5 ] || rg_bail "no causes found in $RST_C (cause_names moved?)"
[ "$(wc -l <<<"$SIGNALS")" -ge 5 ] || rg_bail "no signals found in $RST_C (evidence table moved?)"

# ---- extraction from the documentation

# roff to plain text: \- to -, font escapes and a few named characters away.
norm() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" \
		-e 's/\\&//g' -e 's/\\~/ /g' "$@"
}
# section FILE NAME: the lines of section .SH NAME of FILE, normalised.
section() {
	norm "$1" | awk -v s="$2" '/^\.SH / { on = ($0 == ".SH " s || $0 == ".SH \"" s "\"") ; next } on'
}
# tp_heads: the line after each ".TP" (an entry's head) on stdin.
tp_heads() {
	awk '/^\.TP$/ { if ((getline l) > 0) print l }'
}
# options_in: the options (-x, --long) named on stdin, one per line.
options_in() {
	grep -oE '(^|[^a-zA-Z0-9-])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[^-]*//' | sort -u
}

MAN8_OPTIONS=$(section "$MAN8" OPTIONS | tp_heads | options_in)
HELP=$RG_TMP/help.out
timeout 10 "$RSTGUARD" --help >"$HELP" 2>&1 || rg_bail "$RSTGUARD --help failed"
# Option lines of --help: the column before the description.
HELP_OPTIONS=$(grep -E '^ +-' "$HELP" | sed -e 's/^ *//' -e 's/  .*//' | options_in)

# SETTINGS entries of rstguard.conf.5 that look like keys.
MAN5_KEYS=$(section "$MAN5" SETTINGS | tp_heads | sed -n 's/^\.B \([a-z_][a-z_.]*\)$/\1/p' | sort -u)
# The description of eviction.overrides, up to the next entry or subsection.
MAN5_OVERRIDES=$(section "$MAN5" SETTINGS | awk '
	/^\.TP$/ { if (on) exit; if ((getline l) > 0 && l == ".B eviction.overrides") on = 1; next }
	on && /^\.SS/ { exit }
	on')
# Entry heads of the causes list of EVENTS in rstguard.8 (after "Causes", before the next .SS).
MAN8_CAUSES=$(section "$MAN8" EVENTS | awk '/^Causes/ { on = 1; next } on && /^\.SS/ { exit } on' | tp_heads |
	sed -n 's/^\.B \([a-z_]*\)$/\1/p' | sort -u)
# The evidence field's entry in rstguard.8 (from its head to the next entry).
MAN8_EVIDENCE=$(section "$MAN8" EVENTS | awk '/^\.BR forged ", " evidence/ { on = 1; next } on && /^\.TP/ { exit } on')
# Signal entries of rstguard.conf.5: ".BR name " weight"" after ".TP 20".
MAN5_SIGNALS=$(norm "$MAN5" | awk '/^\.TP [0-9]+$/ { if ((getline l) > 0) print l }' |
	sed -n 's/^\.BR \([a-z_]*\) " \([0-9]*\)"$/\1 \2/p' | sort -u)
MAN5_TEXT=$(norm "$MAN5")

# ---- the plan

count() { [ -n "$1" ] && wc -l <<<"$1" || echo 0; }
N_LONG=$(count "$LONGOPTS")
N_SHORT=$(count "$SHORTOPTS")
N_KEYS=$(count "$KEYS")
N_MEMBERS=$(count "$OVERRIDE_MEMBERS")
N_CAUSES=$(count "$CAUSES")
N_SIGNALS=$(count "$SIGNALS")
N_CTL=$(( $(count "$CTL_LONGOPTS") + $(count "$CTL_SHORTOPTS") + $(count "$CTL_COMMANDS") + $(count "$CTL_FLOWOPTS") ))
rg_plan $((2 * N_LONG + 2 * N_SHORT + 2 + N_KEYS + 1 + N_MEMBERS + 2 * N_CAUSES + 1 + 3 * N_SIGNALS + 1 + 2 * N_CTL + 3))

# in_list WORD LIST: is WORD a line of LIST?
in_list() {
	grep -qxF -- "$1" <<<"$2"
}
# has_word WORD TEXT: does TEXT name WORD (not as part of a longer name)?
has_word() {
	grep -qE -- "(^|[^a-zA-Z0-9_.-])$1([^a-zA-Z0-9_-]|$)" <<<"$2"
}
# extras DOCUMENTED CODE: the lines of DOCUMENTED that CODE lacks.
extras() {
	comm -23 <(printf '%s\n' "$1" | sed '/^$/d' | sort -u) <(printf '%s\n' "$2" | sed '/^$/d' | sort -u)
}
# no_extras DOCUMENTED CODE DESC
no_extras() {
	local x
	x=$(extras "$1" "$2")
	if [ -z "$x" ]; then
		rg_pass "$3"
	else
		rg_fail "$3" "documented but not in the code:" "$x"
	fi
}

# ---- options

for o in $LONGOPTS $SHORTOPTS; do
	if in_list "$o" "$MAN8_OPTIONS"; then
		rg_pass "option $o has an entry in OPTIONS of rstguard(8)"
	else
		rg_fail "option $o has an entry in OPTIONS of rstguard(8)" "add it to man/rstguard.8"
	fi
	if in_list "$o" "$HELP_OPTIONS"; then
		rg_pass "option $o is listed by --help"
	else
		rg_fail "option $o is listed by --help" "add it to usage() in src/main.c"
		rg_diag_file "$HELP" "rstguard --help" 30
	fi
done
CODE_OPTIONS=$(printf '%s\n%s\n' "$LONGOPTS" "$SHORTOPTS")
no_extras "$MAN8_OPTIONS" "$CODE_OPTIONS" "every option in OPTIONS of rstguard(8) exists in src/main.c"
no_extras "$HELP_OPTIONS" "$CODE_OPTIONS" "every option --help lists exists in src/main.c"

# ---- configuration keys

for k in $KEYS; do
	if in_list "$k" "$MAN5_KEYS"; then
		rg_pass "key $k has an entry in SETTINGS of rstguard.conf(5)"
	else
		rg_fail "key $k has an entry in SETTINGS of rstguard.conf(5)" \
			"add a .TP / .B $k entry to man/rstguard.conf.5"
	fi
done
no_extras "$MAN5_KEYS" "$KEYS" "every key in SETTINGS of rstguard.conf(5) exists in src/config.c"
for m in $OVERRIDE_MEMBERS; do
	if grep -qE -- "(^|[^a-z_])$m( =|\$)" <<<"$MAN5_OVERRIDES" ||
		grep -qxF -- ".B $m" <<<"$MAN5_OVERRIDES"; then
		rg_pass "eviction.overrides member $m is described in rstguard.conf(5)"
	else
		rg_fail "eviction.overrides member $m is described in rstguard.conf(5)"
	fi
done

# ---- causes

for c in $CAUSES; do
	if in_list "$c" "$MAN8_CAUSES"; then
		rg_pass "cause $c has an entry in the causes of rstguard(8)"
	else
		rg_fail "cause $c has an entry in the causes of rstguard(8)" "add a .TP / .B $c entry to man/rstguard.8"
	fi
	if has_word "$c" "$MAN5_TEXT"; then
		rg_pass "cause $c is named in rstguard.conf(5)"
	else
		rg_fail "cause $c is named in rstguard.conf(5)" "say under policy.actions whether it takes an action"
	fi
done
no_extras "$MAN8_CAUSES" "$CAUSES" "every cause in rstguard(8) exists in src/rst.c"

# ---- forged-RST signals

while read -r name weight; do
	if in_list "$name $weight" "$MAN5_SIGNALS"; then
		rg_pass "signal $name (weight $weight) has an entry under detector in rstguard.conf(5)"
	else
		rg_fail "signal $name (weight $weight) has an entry under detector in rstguard.conf(5)" \
			"documented: $(grep -E "^$name " <<<"$MAN5_SIGNALS" || echo nothing)"
	fi
	if has_word "$name" "$MAN8_EVIDENCE"; then
		rg_pass "signal $name is listed under the evidence field in rstguard(8)"
	else
		rg_fail "signal $name is listed under the evidence field in rstguard(8)"
	fi
	if grep -q -- "\`$name\`" "$DETECTION_MD"; then
		rg_pass "signal $name is named in docs/detection.md"
	else
		rg_fail "signal $name is named in docs/detection.md"
	fi
done <<<"$SIGNALS"
no_extras "$MAN5_SIGNALS" "$SIGNALS" "every signal entry in rstguard.conf(5) is in src/rst.c, with its weight"

# ---- rstguardctl

CTL_HELP=$RG_TMP/ctl-help.out
timeout 10 "$RSTGUARDCTL" --help >"$CTL_HELP" 2>&1 || rg_bail "$RSTGUARDCTL --help failed"
MANCTL_OPTIONS=$(section "$MANCTL" OPTIONS | tp_heads | options_in)
CTL_HELP_OPTIONS=$(sed -n '/^commands:/q; p' "$CTL_HELP" | grep -E '^ +-' | sed -e 's/^ *//' -e 's/  .*//' | options_in)
MANCTL_COMMANDS=$(section "$MANCTL" COMMANDS | tp_heads | sed -n 's/^\.B \([a-z]*\).*/\1/p' | sort -u)
CTL_HELP_COMMANDS=$(sed -n '/^commands:/,/^$/p' "$CTL_HELP" | sed -n 's/^  \([a-z][a-z]*\).*/\1/p' | sort -u)
MANCTL_FLOWS=$(section "$MANCTL" COMMANDS | awk '/^\.TP$/ { if ((getline l) > 0) on = (l ~ /^\.B flows/); if (on) print l; next } on')
CTL_HELP_FLOWS=$(grep -E '^  flows' "$CTL_HELP")

for o in $CTL_LONGOPTS $CTL_SHORTOPTS; do
	if in_list "$o" "$MANCTL_OPTIONS"; then
		rg_pass "rstguardctl option $o has an entry in OPTIONS of rstguardctl(8)"
	else
		rg_fail "rstguardctl option $o has an entry in OPTIONS of rstguardctl(8)" "add it to man/rstguardctl.8"
	fi
	if in_list "$o" "$CTL_HELP_OPTIONS"; then
		rg_pass "rstguardctl option $o is listed by rstguardctl --help"
	else
		rg_fail "rstguardctl option $o is listed by rstguardctl --help" "add it to usage() in src/rstguardctl.c"
	fi
done
no_extras "$MANCTL_OPTIONS" "$(printf '%s\n%s\n' "$CTL_LONGOPTS" "$CTL_SHORTOPTS")" \
	"every option in OPTIONS of rstguardctl(8) exists in src/rstguardctl.c"
for c in $CTL_COMMANDS; do
	if in_list "$c" "$MANCTL_COMMANDS"; then
		rg_pass "rstguardctl command $c has an entry in COMMANDS of rstguardctl(8)"
	else
		rg_fail "rstguardctl command $c has an entry in COMMANDS of rstguardctl(8)"
	fi
	if in_list "$c" "$CTL_HELP_COMMANDS"; then
		rg_pass "rstguardctl command $c is listed by rstguardctl --help"
	else
		rg_fail "rstguardctl command $c is listed by rstguardctl --help"
	fi
done
no_extras "$(printf '%s\n%s\n' "$MANCTL_COMMANDS" "$CTL_HELP_COMMANDS")" "$CTL_COMMANDS" \
	"every command rstguardctl(8) and --help list exists in src/rstguardctl.c"
for o in $CTL_FLOWOPTS; do
	if has_word "$o" "$(norm <<<"$MANCTL_FLOWS")"; then
		rg_pass "flows option $o is described under flows in rstguardctl(8)"
	else
		rg_fail "flows option $o is described under flows in rstguardctl(8)"
	fi
	if has_word "$o" "$CTL_HELP_FLOWS"; then
		rg_pass "flows option $o is listed by rstguardctl --help"
	else
		rg_fail "flows option $o is listed by rstguardctl --help"
	fi
done
no_extras "$(norm <<<"$MANCTL_FLOWS" | grep -oE -- '--[a-z]+' | sort -u)" "$CTL_FLOWOPTS" \
	"every flows option rstguardctl(8) names exists in src/rstguardctl.c"
