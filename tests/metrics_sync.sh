#!/bin/bash
# metrics_sync.sh: the metric table of src/metrics.c against its documentation, the exposition
# against promtool, and the Grafana dashboard against the exposition (TAP; no root, no network).
#
#   names      `rstguard --list-metrics` (the table itself): each family must be an entry
#              (.TP / .B name) of METRICS in man/rstguard.8, and every entry there a family;
#   buckets    the hold-time histogram's bounds listed in rstguard(8) are those of the exposition;
#   promtool   the exposition of a filled snapshot (tests/unit/test_metrics writes it with
#              RG_METRICS_SAMPLE) must pass `promtool check metrics`, and declare exactly the
#              families --list-metrics lists, with the same types;
#   grafana    contrib/grafana/rstguard.json must be valid JSON, and every rstguard_* name its
#              queries use must be a family of the exposition (a histogram's _bucket, _sum and
#              _count included); every family the issue asks to graph must be used.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"   # TAP helpers, temp dir and traps (no namespace is made)

MAN8=$RG_SRCDIR/man/rstguard.8
DASH=$RG_SRCDIR/contrib/grafana/rstguard.json
SAMPLER=${RG_BUILDDIR:-$RG_SRCDIR}/tests/unit/test_metrics

rg_require_daemon
command -v promtool >/dev/null 2>&1 || rg_skip "promtool not installed (apt-get install prometheus)"
[ -x "$SAMPLER" ] || rg_skip "tests/unit/test_metrics not built"
rg_init

LIST=$RG_TMP/list.txt
SAMPLE=$RG_TMP/sample.prom
timeout 10 "$RSTGUARD" --list-metrics >"$LIST" 2>&1 || rg_bail "$RSTGUARD --list-metrics failed"
RG_METRICS_SAMPLE=$SAMPLE timeout 30 "$SAMPLER" >/dev/null || rg_bail "$SAMPLER failed"
NAMES=$(awk '{ print $1 }' "$LIST" | sort -u)
[ "$(wc -l <<<"$NAMES")" -ge 20 ] || rg_bail "--list-metrics listed too few families"

# The METRICS section's entry heads (.TP then .B name).
MAN_NAMES=$(sed -e 's/\\-/-/g' "$MAN8" |
	awk '/^\.SH / { on = ($0 == ".SH METRICS") ; next } on' |
	awk '/^\.TP$/ { if ((getline l) > 0) print l }' | sed -n 's/^\.B \(rstguard_[a-z_]*\)$/\1/p' | sort -u)

N=$(wc -l <<<"$NAMES")
rg_plan $((N + 7))

for n in $NAMES; do
	if grep -qxF -- "$n" <<<"$MAN_NAMES"; then
		rg_pass "metric $n has an entry in METRICS of rstguard(8)"
	else
		rg_fail "metric $n has an entry in METRICS of rstguard(8)" "add a .TP / .B $n entry to man/rstguard.8"
	fi
done
x=$(comm -13 <(printf '%s\n' "$NAMES") <(printf '%s\n' "$MAN_NAMES"))
rg_is "$x" "" "every metric in METRICS of rstguard(8) exists in src/metrics.c"

# The hold-time histogram's bucket bounds, as rstguard(8) lists them ("buckets 0.005, ... and 1 s").
code_le=$(sed -n 's/^rstguard_rst_hold_seconds_bucket{le="\([0-9.]*\)"}.*/\1/p' "$SAMPLE" |
	awk '{ printf "%g\n", $1 }' | sort -g | tr '\n' ' ')
man_le=$(sed -e 's/\\-/-/g' "$MAN8" | awk '/^\.B rstguard_rst_hold_seconds$/ { getline; print; exit }' |
	sed -n 's/.*(buckets \([^)]*\) s).*/\1/p' | tr -c '0-9.\n' ' ' | tr -s ' ' '\n' | sed '/^$/d' |
	awk '{ printf "%g\n", $1 }' | sort -g | tr '\n' ' ')
rg_is "$man_le" "$code_le" "the hold-time buckets in rstguard(8) are the code's (ENG_HoldBucketsMs)"

out=$(promtool check metrics <"$SAMPLE" 2>&1)
rg_ok $? "promtool check metrics: the sample exposition is clean" "$out"

# The exposition declares exactly the listed families, with the listed types.
typed=$(sed -n 's/^# TYPE \([^ ]*\) \([a-z]*\)$/\1 \2/p' "$SAMPLE" | sort)
listed=$(awk '{ print $1, $2 }' "$LIST" | sort)
rg_is "$typed" "$listed" "the exposition's # TYPE lines are the families --list-metrics lists"

# Grafana: valid JSON, every queried name exists, the issue's panels are there.
out=$("$RG_PY" - "$DASH" "$SAMPLE" <<'EOF' 2>&1
import json, re, sys
dash, sample = sys.argv[1], sys.argv[2]
fams, hist = set(), set()
for line in open(sample):
    m = re.match(r'# TYPE (\S+) (\S+)$', line)
    if m:
        fams.add(m.group(1))
        if m.group(2) == 'histogram':
            hist.add(m.group(1))
names = set(fams)
for h in hist:
    names |= {h + '_bucket', h + '_sum', h + '_count'}
try:
    d = json.load(open(dash))
except ValueError as e:
    print('invalid JSON: %s' % e)
    sys.exit(2)
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ('expr', 'query') and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(d)
if not exprs:
    print('no queries found')
    sys.exit(1)
used = set()
bad = []
for e in exprs:
    for n in re.findall(r'\brstguard_[a-z0-9_]+', e):
        used.add(n)
        if n not in names:
            bad.append('%s (in %s)' % (n, e))
if bad:
    print('unknown metrics:\n' + '\n'.join(bad))
    sys.exit(1)
need = ['rstguard_rsts_total', 'rstguard_forged_rsts_total', 'rstguard_evictions_total',
        'rstguard_keepalive_probes_total', 'rstguard_kernel_queue_dropped_total',
        'rstguard_kernel_queue_user_dropped_total', 'rstguard_flows']
missing = [n for n in need if n not in used]
if missing:
    print('not graphed: ' + ' '.join(missing))
    sys.exit(3)
print('%d queries, %d metrics' % (len(exprs), len(used)))
EOF
)
st=$?
# 0: all good; 2: not JSON; 1: an unknown name; 3: a family the issue asks for not graphed.
rg_ok "$([ $st -ne 2 ]; echo $?)" "contrib/grafana/rstguard.json is valid JSON" "$out"
rg_ok "$([ $st -ne 2 ] && [ $st -ne 1 ]; echo $?)" "every metric the dashboard queries exists in the exposition" "$out"
rg_ok "$st" "the dashboard graphs RSTs by cause, forged, evictions, probes, queue drops, flows" "$out"
rg_diag "$out"
