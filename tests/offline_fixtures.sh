#!/bin/bash
# offline_fixtures.sh: `rstguard -r` on the recorded captures of tests/fixtures/ (TAP; needs no
# root and no network). Each NAME.pcap was recorded by tests/e2e/offline.sh on the gateway's
# client-facing interface while rstguard ran inline, and NAME.expected lists the rst and
# eviction events it must give, reduced to their stable fields (tests/lib/pcaptool.py stable);
# NAME.conf, when present, is passed with -c. See tests/fixtures/README.md.
#
# Checked here: every fixture against its .expected; the same captures rewritten by
# tests/lib/pcaptool.py into the other link types and file formats rstguard reads (802.1Q,
# 802.1ad + 802.1Q (QinQ), three stacked tags, Linux SLL and SLL2, raw IP, BSD loopback both
# byte orders, pcapng, nanosecond pcap, big-endian pcap, standard input), cut by a snap length
# (still analysed with the real lengths), cut at the front (mid-stream pickup: no false alarms),
# damaged (bad magic, truncated inside a record's data or header, an impossible record length,
# empty, unsupported link type: exit 1 and an error naming the packet), and the --summary json
# fields against the events.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=lib/netns.sh
. "$(dirname "$0")/lib/netns.sh"   # TAP helpers, temp dir and traps (no namespace is made)

PT=$RG_LIB/pcaptool.py
FIX=$RG_SRCDIR/tests/fixtures
PY=$RG_PY
[ -x "$PY" ] || PY=$(command -v python3) || rg_skip "python3 not installed"
rg_require_daemon
rg_init

FIXTURES=()
for f in "$FIX"/*.pcap; do
	[ -e "$f" ] || continue
	FIXTURES+=("$(basename "$f" .pcap)")
done
[ ${#FIXTURES[@]} -gt 0 ] || rg_bail "no fixtures in $FIX"
# Fixtures with genuine RSTs only (no injection): cut anywhere, they must never show a forged RST.
GENUINE=()
for n in "${FIXTURES[@]}"; do
	grep -q '"forged": true' "$FIX/$n.expected" || GENUINE+=("$n")
done

VARIANTS=(
	"vlan8021q vlan --tag 8100:100"
	"qinq vlan --tag 88a8:200 --tag 8100:100"
	"vlan3 vlan --tag 9100:300 --tag 88a8:200 --tag 8100:100"
	"sll sll"
	"sll2 sll2"
	"raw raw"
	"null null"
	"loop null --loop"
	"nano nano"
	"bigendian swap"
	"snaplen96 snaplen --snaplen 96"
)

rg_plan $((${#FIXTURES[@]} + 2 + ${#VARIANTS[@]} + 2 + 2 + 4 + 9 + 1 + 4))

# conf_args NAME: -c NAME.conf when the fixture has one.
conf_args() {
	CARGS=()
	[ -e "$FIX/$1.conf" ] && CARGS=(-c "$FIX/$1.conf")
	return 0
}

# analyse NAME CAPTURE OUT [ARGS...]: rstguard -r CAPTURE with the fixture's configuration;
# events in OUT, the JSON summary in OUT.summary, stderr (the summary) too. Returns its status.
analyse() {
	local name=$1 cap=$2 out=$3
	shift 3
	conf_args "$name"
	rm -f "$out"
	timeout 60 "$RSTGUARD" -r "$cap" "${CARGS[@]}" -e "$out" --summary json "$@" 2>"$out.summary"
}

# stable_of EVENTS: the stable fields (the .expected format).
stable_of() {
	"$PY" "$PT" stable "$1"
}

# check_set DESC TRANSFORM...: every fixture of SET (default: all), rewritten by
# `pcaptool TRANSFORM IN OUT`, must give its .expected events. One TAP point.
check_set() {
	local desc=$1 name cap out bad=() set
	shift
	set=("${FIXTURES[@]}")
	[ -n "${SET+x}" ] && set=("${SET[@]}")
	for name in "${set[@]}"; do
		cap=$FIX/$name.pcap
		out=$RG_TMP/$name.$desc.json
		if [ $# -gt 0 ]; then
			cap=$RG_TMP/$name.$desc.cap
			"$PY" "$PT" "$1" "$FIX/$name.pcap" "$cap" "${@:2}" 2>"$RG_TMP/pt.err" ||
				{ bad+=("$name: pcaptool $*: $(cat "$RG_TMP/pt.err")"); continue; }
		fi
		if ! analyse "$name" "$cap" "$out"; then
			bad+=("$name: rstguard -r exited $?: $(head -c 300 "$out.summary")")
			continue
		fi
		if ! stable_of "$out" | diff "$FIX/$name.expected" - >"$RG_TMP/diff" 2>&1; then
			bad+=("$name: events differ from $name.expected:" "$(cat "$RG_TMP/diff")")
		fi
	done
	if [ ${#bad[@]} -eq 0 ]; then
		rg_pass "$desc: all ${#set[@]} captures give their expected events"
	else
		rg_fail "$desc: all ${#set[@]} captures give their expected events" "${bad[@]}"
	fi
}

# ----------------------------------------------------------------------------------------------
# the fixtures as recorded

for name in "${FIXTURES[@]}"; do
	out=$RG_TMP/$name.json
	if analyse "$name" "$FIX/$name.pcap" "$out"; then
		got=$(stable_of "$out")
		if [ "$got" = "$(cat "$FIX/$name.expected")" ]; then
			rg_pass "$name: the $(grep -c . "$FIX/$name.expected") event(s) of $name.expected$([ -e "$FIX/$name.conf" ] && echo " (with -c $name.conf)")"
		else
			rg_fail "$name: the events of $name.expected" \
				"$(diff "$FIX/$name.expected" <(printf '%s\n' "$got"))"
		fi
	else
		rg_fail "$name: rstguard -r exits 0" "$(cat "$out.summary")"
	fi
done

# The same run twice gives byte-identical events (timers on the capture's clock, fixed keys).
bad=()
for name in "${FIXTURES[@]}"; do
	analyse "$name" "$FIX/$name.pcap" "$RG_TMP/again.json"
	cmp -s "$RG_TMP/$name.json" "$RG_TMP/again.json" || bad+=("$name: second run differs")
done
rg_ok ${#bad[@]} "a second run gives byte-identical events (flow ids, timestamps included)" "${bad[@]}"

# Standard input.
bad=()
for name in "${FIXTURES[@]}"; do
	conf_args "$name"
	rm -f "$RG_TMP/stdin.json"
	timeout 60 "$RSTGUARD" -r - "${CARGS[@]}" -e "$RG_TMP/stdin.json" <"$FIX/$name.pcap" 2>/dev/null ||
		bad+=("$name: exit $?")
	cmp -s "$RG_TMP/$name.json" "$RG_TMP/stdin.json" || bad+=("$name: events differ from the file's")
done
rg_ok ${#bad[@]} "-r - reads the capture from standard input, same events" "${bad[@]}"

# ----------------------------------------------------------------------------------------------
# other link types and formats

for v in "${VARIANTS[@]}"; do
	# shellcheck disable=SC2086 # a transform and its options
	check_set $v
done
check_set pcapng pcapng
# pcapng with nanosecond timestamps: two rewrites.
bad=()
for name in "${FIXTURES[@]}"; do
	"$PY" "$PT" nano "$FIX/$name.pcap" "$RG_TMP/n.pcap" &&
		"$PY" "$PT" pcapng "$RG_TMP/n.pcap" "$RG_TMP/n.pcapng" || bad+=("$name: pcaptool failed")
	analyse "$name" "$RG_TMP/n.pcapng" "$RG_TMP/n.json" || bad+=("$name: exit $?")
	stable_of "$RG_TMP/n.json" | diff -q "$FIX/$name.expected" - >/dev/null || bad+=("$name: events differ")
done
rg_ok ${#bad[@]} "pcapng with nanosecond timestamps (if_tsresol 9): expected events" "${bad[@]}"

# A snap length that keeps every header: the flow events count the real (wire) lengths.
bad=()
for name in "${FIXTURES[@]}"; do
	a=$(grep '"event_type":"flow"' "$RG_TMP/$name.json" | sed 's/.*"bytes_toserver":\([0-9]*\),"bytes_toclient":\([0-9]*\).*/\1 \2/')
	b=$(grep '"event_type":"flow"' "$RG_TMP/$name.snaplen96.json" | sed 's/.*"bytes_toserver":\([0-9]*\),"bytes_toclient":\([0-9]*\).*/\1 \2/')
	[ -n "$a" ] && [ "$a" = "$b" ] || bad+=("$name: flow bytes '$a' in full, '$b' with snaplen 96")
	grep -q '"truncated":0,' "$RG_TMP/$name.snaplen96.json.summary" || bad+=("$name: packets counted truncated")
done
rg_ok ${#bad[@]} "snaplen 96: no packet counted truncated, flow byte counts from the wire lengths" "${bad[@]}"

# A snap length that cuts TCP headers: those packets are counted truncated, nothing breaks.
bad=()
for name in "${FIXTURES[@]}"; do
	"$PY" "$PT" snaplen "$FIX/$name.pcap" "$RG_TMP/s40.pcap" --snaplen 40
	analyse "$name" "$RG_TMP/s40.pcap" "$RG_TMP/s40.json" || bad+=("$name: exit $?")
	n=$("$PY" "$PT" info "$FIX/$name.pcap" | sed 's/.*"packets": \([0-9]*\).*/\1/')
	grep -q "\"truncated\":$n," "$RG_TMP/s40.json.summary" ||
		bad+=("$name: not all $n packets counted truncated: $(cat "$RG_TMP/s40.json.summary")")
	grep -q '"event_type":"rst"' "$RG_TMP/s40.json" && bad+=("$name: rst events from cut headers")
done
rg_ok ${#bad[@]} "snaplen 40 (TCP headers cut): every packet counted truncated, no event, exit 0" "${bad[@]}"

# ----------------------------------------------------------------------------------------------
# mid-stream: the capture starts after the handshakes

# Fixtures long enough to have packets after the handshake and before their RSTs.
SET=()
for name in "${FIXTURES[@]}"; do
	n=$("$PY" "$PT" info "$FIX/$name.pcap" | sed 's/.*"packets": \([0-9]*\).*/\1/')
	[ "$n" -ge 6 ] && SET+=("$name")
done
check_set midstream cut --skip 3
bad=()
for name in "${SET[@]}"; do
	s=$RG_TMP/$name.midstream.json.summary
	[ -s "$s" ] || continue
	t=$(sed -n 's/.*"flows":{"total":\([0-9]*\),"midstream":\([0-9]*\).*/\1 \2/p' "$s")
	[ "${t% *}" -ge 1 ] 2>/dev/null && [ "${t% *}" = "${t#* }" ] || bad+=("$name: flows total/midstream: '$t'")
done
rg_ok ${#bad[@]} "mid-stream: every flow counted as picked up mid-stream" "${bad[@]}"

# Cut at every point: a genuine RST never becomes forged, injected or invalid_seq.
bad=()
cuts=0
for name in "${GENUINE[@]}"; do
	n=$("$PY" "$PT" info "$FIX/$name.pcap" | sed 's/.*"packets": \([0-9]*\).*/\1/')
	for k in $(seq 1 $((n - 1))); do
		"$PY" "$PT" cut "$FIX/$name.pcap" "$RG_TMP/cut.pcap" --skip "$k"
		analyse "$name" "$RG_TMP/cut.pcap" "$RG_TMP/cut.json" || bad+=("$name skip $k: exit $?")
		cuts=$((cuts + 1))
		if grep -E '"forged":true|"cause":"(injected|invalid_seq)"' "$RG_TMP/cut.json" >"$RG_TMP/cut.bad"; then
			bad+=("$name without its first $k packets:" "$(cut -c 1-400 "$RG_TMP/cut.bad")")
		fi
	done
done
rg_ok ${#bad[@]} "mid-stream at any point of ${#GENUINE[@]} genuine captures ($cuts cuts): no forged, injected or invalid_seq RST" "${bad[@]}"

# Judgements are made when their wait ends, in capture time, as inline. inject_ttl without its
# first 6 packets: the server has 3 packets before the injected RST, too few for a baseline, so
# only the race can tell; the server's delayed ACK comes 42 ms after the RST, inside the 60 ms
# minimum wait (detector.hold_min_ms): the RST is judged injected, on the race.
if [ -e "$FIX/inject_ttl.pcap" ]; then
	"$PY" "$PT" cut "$FIX/inject_ttl.pcap" "$RG_TMP/late.pcap" --skip 6
	analyse inject_ttl "$RG_TMP/late.pcap" "$RG_TMP/late.json"
	first=$(stable_of "$RG_TMP/late.json" | head -n 1)
	case $first in
	*'"cause": "injected", "forged": true, "evidence": ["race"]'*)
		rg_pass "inject_ttl mid-stream: no baseline, the race inside the wait gives the injection away" ;;
	*)
		rg_fail "inject_ttl mid-stream: no baseline, the race inside the wait gives the injection away" \
			"first rst event: $first" ;;
	esac
else
	rg_fail "the inject_ttl fixture exists"
fi

# ----------------------------------------------------------------------------------------------
# damaged files

SRC=$FIX/${FIXTURES[0]}.pcap
for name in inject_ttl server_abort; do
	[ -e "$FIX/$name.pcap" ] && SRC=$FIX/$name.pcap && break
done
NPKT=$("$PY" "$PT" info "$SRC" | sed 's/.*"packets": \([0-9]*\).*/\1/')

# damaged DESC FILE WANT_RC PATTERN: rstguard -r FILE exits WANT_RC and says PATTERN on stderr.
damaged() {
	local desc=$1 file=$2 want=$3 pat=$4 rc
	timeout 30 "$RSTGUARD" -r "$file" -e "$RG_TMP/dmg.json" >/dev/null 2>"$RG_TMP/dmg.err"
	rc=$?
	if [ "$rc" = "$want" ] && grep -q -- "$pat" "$RG_TMP/dmg.err"; then
		rg_pass "$desc: exit $want, \"$(grep -m1 -- "$pat" "$RG_TMP/dmg.err" | cut -c1-120)\""
	else
		rg_fail "$desc: exit $want and an error matching '$pat'" "exit $rc, stderr:" \
			"$(head -n 5 "$RG_TMP/dmg.err")"
	fi
}

"$PY" "$PT" corrupt "$SRC" "$RG_TMP/magic.pcap" --magic
damaged "bad magic number" "$RG_TMP/magic.pcap" 1 "magic.pcap: ."
K=$((NPKT - 1))
"$PY" "$PT" truncate "$SRC" "$RG_TMP/trunc.pcap" --record "$K"
damaged "file ends inside packet $K's data" "$RG_TMP/trunc.pcap" 1 "trunc.pcap: packet $K: truncated"
"$PY" "$PT" truncate "$SRC" "$RG_TMP/trunch.pcap" --record 4 --in-header
damaged "file ends inside packet 4's record header" "$RG_TMP/trunch.pcap" 1 "trunch.pcap: packet 4: truncated"
"$PY" "$PT" corrupt "$SRC" "$RG_TMP/caplen.pcap" --caplen 3
damaged "packet 3 claims an impossible captured length" "$RG_TMP/caplen.pcap" 1 "caplen.pcap: packet 3: "
: >"$RG_TMP/empty.pcap"
damaged "empty file" "$RG_TMP/empty.pcap" 1 "empty.pcap: "
head -c 10 "$SRC" >"$RG_TMP/short.pcap"
damaged "file shorter than the pcap header" "$RG_TMP/short.pcap" 1 "short.pcap: "
"$PY" "$PT" linktype "$SRC" "$RG_TMP/wifi.pcap" --set 105
damaged "unsupported link type (802.11)" "$RG_TMP/wifi.pcap" 1 "wifi.pcap: packet 1: unsupported link type 105"
damaged "missing file" "$RG_TMP/nonexistent.pcap" 1 "nonexistent.pcap"
head -c 24 "$SRC" >"$RG_TMP/hdronly.pcap"
damaged "a pcap header and no packet: a valid, empty capture" "$RG_TMP/hdronly.pcap" 0 '"packets":0\|packets 0'

# What came before the damage is analysed: the events of the whole packets are written.
"$PY" "$PT" truncate "$SRC" "$RG_TMP/trunc2.pcap" --record "$NPKT"
"$PY" "$PT" cut "$SRC" "$RG_TMP/head.pcap" --count $((NPKT - 1))
analyse "$(basename "$SRC" .pcap)" "$RG_TMP/trunc2.pcap" "$RG_TMP/t2.json"
rc=$?
analyse "$(basename "$SRC" .pcap)" "$RG_TMP/head.pcap" "$RG_TMP/h.json"
if [ "$rc" = 1 ] && [ "$(stable_of "$RG_TMP/t2.json")" = "$(stable_of "$RG_TMP/h.json")" ] &&
	[ -n "$(stable_of "$RG_TMP/h.json")" ]; then
	rg_pass "truncated in its last packet: exit 1, and the rst events of the packets before it are written"
else
	rg_fail "truncated in its last packet: exit 1, and the rst events of the packets before it are written" \
		"exit $rc" "$(stable_of "$RG_TMP/t2.json")" "vs" "$(stable_of "$RG_TMP/h.json")"
fi

# ----------------------------------------------------------------------------------------------
# the summary

cat >"$RG_TMP/summary.py" <<'EOF'
import json, sys
from collections import Counter
summ, events, npkt = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.loads(open(summ).read().strip().splitlines()[-1])
ev = [json.loads(l) for l in open(events) if l.strip()]
rst = [e for e in ev if e["event_type"] == "rst"]
bad = []
def want(key, got, exp):
    if got != exp:
        bad.append("%s = %r, expected %r" % (key, got, exp))
for k in ("capture", "packets", "not_ip", "tcp", "not_tcp", "fragments", "truncated", "malformed",
          "flows", "rst", "rst_by_cause", "forged", "forged_evidence", "would_drop", "evictions",
          "top_pairs"):
    if k not in s:
        bad.append("missing " + k)
if not bad:
    want("packets", s["packets"], npkt)
    want("tcp + not_ip + not_tcp", s["tcp"] + s["not_ip"] + s["not_tcp"] + s["fragments"] + s["truncated"] + s["malformed"], npkt)
    want("rst", s["rst"], len(rst))
    want("rst_by_cause", s["rst_by_cause"], dict(Counter(e["rst"]["cause"] for e in rst)))
    want("forged", s["forged"], sum(e["rst"]["forged"] for e in rst))
    want("forged_evidence", s["forged_evidence"], dict(Counter(x for e in rst for x in e["rst"]["evidence"])))
    want("would_drop", s["would_drop"], sum(e["rst"]["would_drop"] for e in rst))
    want("evictions", s["evictions"], sum(e["rst"]["cause"] == "idle_eviction" for e in rst))
    want("flows.total", s["flows"]["total"], len({e["flow_id"] for e in ev if e["event_type"] == "flow"}))
    pairs = Counter(tuple(sorted((e["src_ip"], e["dest_ip"]))) for e in rst)
    want("top_pairs", sorted((tuple(sorted((p["a"], p["b"]))), p["rst"]) for p in s["top_pairs"]), sorted(pairs.items()))
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
bad=()
for name in "${FIXTURES[@]}"; do
	n=$("$PY" "$PT" info "$FIX/$name.pcap" | sed 's/.*"packets": \([0-9]*\).*/\1/')
	msg=$("$PY" "$RG_TMP/summary.py" "$RG_TMP/$name.json.summary" "$RG_TMP/$name.json" "$n" 2>&1) ||
		bad+=("$name: $msg")
done
rg_ok ${#bad[@]} "--summary json: every field present and consistent with the events (counts, causes, evidence, pairs)" "${bad[@]}"

conf_args server_abort
if [ -e "$FIX/server_abort.pcap" ] &&
	timeout 30 "$RSTGUARD" -r "$FIX/server_abort.pcap" -e /dev/null 2>"$RG_TMP/text.summary" &&
	grep -q "^capture .*server_abort.pcap" "$RG_TMP/text.summary" &&
	grep -q "^  rst 1, by cause:" "$RG_TMP/text.summary" &&
	grep -q "^    abort  *1$" "$RG_TMP/text.summary"; then
	rg_pass "text summary (the default): capture, rst count, causes"
else
	rg_fail "text summary (the default): capture, rst count, causes" "$(cat "$RG_TMP/text.summary")"
fi

# Options that change the judgement apply offline as inline.
if [ -e "$FIX/eviction.pcap" ]; then
	rm -f "$RG_TMP/noconf.json"
	timeout 30 "$RSTGUARD" -r "$FIX/eviction.pcap" -e "$RG_TMP/noconf.json" 2>/dev/null
	if ! grep -q '"event_type":"eviction"\|idle_eviction' "$RG_TMP/noconf.json" &&
		grep -q '"event_type":"rst"' "$RG_TMP/noconf.json"; then
		rg_pass "eviction.pcap without eviction.conf: the 8 s silence is below the automatic 30 s watch, no eviction"
	else
		rg_fail "eviction.pcap without eviction.conf: no eviction" "$(stable_of "$RG_TMP/noconf.json")"
	fi
else
	rg_fail "the eviction fixture exists"
fi
if [ -e "$FIX/inject_burst.pcap" ]; then
	analyse inject_burst "$FIX/inject_burst.pcap" "$RG_TMP/enf.json" -m enforce
	nd=$(grep -c '"verdict":"drop".*"forged":true' "$RG_TMP/enf.json")
	na=$(grep -c '"verdict":"accept".*"forged":false' "$RG_TMP/enf.json")
	nf=$(grep -c '"forged": true' "$FIX/inject_burst.expected")
	nr=$(grep -c '"event_type": "rst"' "$FIX/inject_burst.expected")
	if [ "$nd" = "$nf" ] && [ $((nd + na)) = "$nr" ]; then
		rg_pass "-m enforce: the $nf forged RSTs of inject_burst get verdict drop, the others accept"
	else
		rg_fail "-m enforce: forged RSTs get verdict drop, the others accept" "$(stable_of "$RG_TMP/enf.json")"
	fi
else
	rg_fail "the inject_burst fixture exists"
fi
