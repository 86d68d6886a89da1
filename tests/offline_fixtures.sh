#!/bin/bash
# offline_fixtures.sh: `rstguard -r` on the recorded captures of tests/fixtures/ (TAP; needs no
# root and no network). Each NAME.pcap was recorded by tests/e2e/offline.sh on the gateway's
# client-facing interface while rstguard ran inline, and NAME.expected lists the rst and
# eviction events it must give, reduced to their stable fields (tests/lib/pcaptool.py stable);
# NAME.conf, when present, is passed with -c. See tests/fixtures/README.md.
#
# Checked here: every fixture against its .expected; the same captures rewritten by
# tests/lib/pcaptool.py into the other link types and file formats rstguard reads (802.1Q,
# 802.1ad + 802.1Q (QinQ), three stacked tags, Linux SLL and SLL2, raw IP under all its link
# type numbers, BSD loopback both byte orders, NFLOG (both byte orders, payloads cut by the
# kernel's copy range, the packets' own NFULA_TIMESTAMP), PPP bare, in HDLC-like framing and
# with a compressed protocol, Cisco HDLC, PPPoE (its own link type and over Ethernet), pcapng
# (big-endian, simple packet blocks, interfaces of different link types, snap lengths and time
# resolutions in several sections, which libpcap refuses), nanosecond pcap, big-endian pcap,
# standard input); the real NFLOG capture of tests/fixtures/linktypes/ (tcpdump -i nflog:N,
# recorded by tests/e2e/nflog.sh); hostile link headers of each new parser (hand-made: zero,
# short and overlong NFLOG TLVs, truncated PPP and PPPoE headers; and every record of every
# new link type damaged at random, seeded): exit 0, counted not ip, no sanitizer report;
# damaged pcapng blocks (impossible lengths, mismatched trailers, packets past their block or
# of undescribed interfaces, options past their block, bad versions): exit 1 naming the
# packet; cut by a snap length
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
	"raw12 raw --linktype 12"
	"raw14 raw --linktype 14"
	"null null"
	"loop null --loop"
	"nano nano"
	"bigendian swap"
	"snaplen96 snaplen --snaplen 96"
	"nflog nflog"
	"nflogbig nflog --big"
	"nflogrange nflog --range 96"
	"nflogtime nflog --batch --range 96"
	"ppp ppp"
	"pppbare ppp --framing bare"
	"ppppfc ppp --framing pfc"
	"ppphdlc ppp --linktype 50"
	"pppcisco ppp --linktype 50 --framing cisco"
	"chdlc ppp --linktype 104 --framing cisco"
	"pppoe pppoe"
	"pppoeeth pppoe --ethernet"
	"pcapngbig pcapng --big"
	"mixed mixed"
	"mixed3big mixed --sections 3 --big"
)
# New link types whose frames the hostile-input checks below damage at random.
MUTATE=(
	"nflog nflog"
	"nflogbig nflog --big"
	"ppp ppp --framing pfc"
	"ppphdlc ppp --linktype 50"
	"chdlc ppp --linktype 104 --framing cisco"
	"pppoe pppoe"
	"pppoeeth pppoe --ethernet"
)
NGDAMAGE=(zero-length huge-length odd-length trailer caplen ifid no-idb option version bom
	truncate-block truncate-header)

rg_plan $((${#FIXTURES[@]} + 2 + ${#VARIANTS[@]} + 2 + 2 + 4 + 9 + 1 + 4 + 2 + 1 + 2 + 1 + \
	3 + ${#NGDAMAGE[@]} + 6))

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

# Raw IP link types for one family: IPV4 (228) for the IPv4 captures, IPV6 (229) for the IPv6.
SET=()
SET6=()
for name in "${FIXTURES[@]}"; do
	if grep -q '"src_ip": "[0-9a-f]*:' "$FIX/$name.expected"; then SET6+=("$name"); else SET+=("$name"); fi
done
check_set ipv4 raw --linktype 228
SET=("${SET6[@]}")
check_set ipv6 raw --linktype 229
unset SET

# NFLOG's record times are when tcpdump read the messages (the kernel sends them in batches):
# with NFULA_TIMESTAMP in each, the events are those of the Ethernet capture byte for byte,
# timestamps included; without it, rstguard says the times are the read times.
bad=()
for name in "${FIXTURES[@]}"; do
	cmp -s "$RG_TMP/$name.json" "$RG_TMP/$name.nflogtime.json" ||
		bad+=("$name: events differ from the Ethernet capture's:" "$(diff "$RG_TMP/$name.json" "$RG_TMP/$name.nflogtime.json" | head -n 4)")
	grep -q "NFULA_TIMESTAMP" "$RG_TMP/$name.nflogtime.json.summary" && bad+=("$name: warned about missing timestamps")
	grep -q "NFLOG packets without NFULA_TIMESTAMP" "$RG_TMP/$name.nflog.json.summary" ||
		bad+=("$name: no warning without NFULA_TIMESTAMP")
done
rg_ok ${#bad[@]} "NFLOG: the packets' NFULA_TIMESTAMP is the clock (events byte-identical to the Ethernet capture's, record times a second late); without it a warning" "${bad[@]}"

# libpcap itself refuses the mixed-interface pcapng that rstguard reads (if that changes, the
# block reader of src/offline.c could go).
"$PY" "$PT" mixed "$FIX/${FIXTURES[0]}.pcap" "$RG_TMP/mixed.pcapng"
if command -v tcpdump >/dev/null 2>&1; then
	if tcpdump -r "$RG_TMP/mixed.pcapng" -w /dev/null 2>"$RG_TMP/td.err"; then
		rg_pass "libpcap reads a pcapng of mixed link types now: $(tcpdump --version 2>&1 | grep -i libpcap)"
	else
		rg_pass "libpcap (tcpdump -r) refuses the mixed pcapng: $(grep -m1 -i 'interface' "$RG_TMP/td.err")"
	fi
else
	rg_pass "libpcap refusal not checked: # SKIP tcpdump not installed"
fi

# The real NFLOG capture (tests/fixtures/linktypes/, tcpdump -i nflog:N, see the README there).
REAL=$FIX/linktypes/nflog.pcap
if [ -e "$REAL" ]; then
	rm -f "$RG_TMP/real.json"
	timeout 60 "$RSTGUARD" -r "$REAL" -e "$RG_TMP/real.json" --summary json 2>"$RG_TMP/real.summary"
	rc=$?
	got=$(stable_of "$RG_TMP/real.json")
	if [ "$rc" = 0 ] && [ "$got" = "$(cat "$FIX/linktypes/nflog.expected")" ] &&
		grep -q '"not_ip":0,.*"truncated":0,"malformed":0,' "$RG_TMP/real.summary" &&
		! grep -q NFULA_TIMESTAMP "$RG_TMP/real.summary"; then
		rg_pass "real NFLOG capture (tcpdump -i nflog, payloads cut by --nflog-size 128): the $(grep -c . "$FIX/linktypes/nflog.expected") events of nflog.expected, no packet not ip, truncated or malformed, every packet's NFULA_TIMESTAMP used"
	else
		rg_fail "real NFLOG capture: the events of nflog.expected" "exit $rc" "$(cat "$RG_TMP/real.summary")" \
			"$(diff "$FIX/linktypes/nflog.expected" <(printf '%s\n' "$got"))"
	fi
	"$PY" "$PT" pcapng "$REAL" "$RG_TMP/real.pcapng"
	rm -f "$RG_TMP/realng.json"
	timeout 60 "$RSTGUARD" -r "$RG_TMP/real.pcapng" -e "$RG_TMP/realng.json" 2>/dev/null
	rc=$?
	[ "$rc" = 0 ] && cmp -s "$RG_TMP/real.json" "$RG_TMP/realng.json"
	rg_ok $? "real NFLOG capture as pcapng: exit 0, the same events byte for byte" "exit $rc"
else
	rg_fail "the real NFLOG fixture exists ($REAL)"
	rg_fail "real NFLOG capture as pcapng"
fi

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

"$PY" "$PT" linktype "$SRC" "$RG_TMP/user0.pcap" --set 147
damaged "unsupported link type (USER0) in a pcap" "$RG_TMP/user0.pcap" 1 "user0.pcap: packet 1: unsupported link type 147 (USER0)"
"$PY" "$PT" pcapng "$RG_TMP/user0.pcap" "$RG_TMP/user0.pcapng"
damaged "unsupported link type (USER0) in a pcapng interface" "$RG_TMP/user0.pcapng" 1 \
	"user0.pcapng: packet 1: interface 0: unsupported link type 147 (USER0)"
"$PY" "$PT" pcapng "$SRC" "$RG_TMP/spb.pcapng" --spb
damaged "pcapng of simple packet blocks (no timestamps): read" "$RG_TMP/spb.pcapng" 0 "\"packets\":$NPKT\|packets $NPKT:"

# Damaged pcapng blocks: exit 1, the error names the packet (the second: the damage is in it).
for w in "${NGDAMAGE[@]}"; do
	"$PY" "$PT" ngcorrupt "$SRC" "$RG_TMP/ng-$w.pcapng" --what "$w"
	case $w in
	no-idb | option | version | bom) k=1 ;;
	*) k=2 ;;
	esac
	damaged "pcapng damaged ($w)" "$RG_TMP/ng-$w.pcapng" 1 "ng-$w.pcapng: packet $k: "
done

# hostile_check DESC LINKTYPE HEX...: a pcap of these frames: exit 0, every frame counted not
# ip, no sanitizer report.
hostile_check() {
	local desc=$1 lt=$2 rc args=()
	shift 2
	for h in "$@"; do args+=(--hex "$h"); done
	"$PY" "$PT" frames "$RG_TMP/hostile.pcap" --linktype "$lt" "${args[@]}"
	rm -f "$RG_TMP/hostile.json"
	timeout 30 "$RSTGUARD" -r "$RG_TMP/hostile.pcap" -e "$RG_TMP/hostile.json" --summary json 2>"$RG_TMP/hostile.err"
	rc=$?
	if [ "$rc" = 0 ] && grep -q "\"packets\":$#,\"not_ip\":$#," "$RG_TMP/hostile.err" &&
		! grep -q 'Sanitizer\|runtime error' "$RG_TMP/hostile.err"; then
		rg_pass "$desc: $# damaged frames, exit 0, all counted not ip"
	else
		rg_fail "$desc: $# damaged frames, exit 0, all counted not ip" "exit $rc" "$(head -c 600 "$RG_TMP/hostile.err")"
	fi
}
# A 20-byte IPv4 header (TCP, total length 40) for frames that should reach it but must not.
IP4=4500002800000000400600000a0000010a000002
# NFLOG: the header (AF_INET, version 0, group 5), then TLVs in little-endian (this host's).
NFH=02000005
hostile_check "NFLOG: empty, short header, version 1, zero-length TLV, 2-byte TLV, TLV past the end (0xffff), TLV header cut, payload TLV past the record, empty payload, payload not IP, only TLVs without payload" 239 \
	"" "0200" "02010005" "${NFH}00000900${IP4}" "${NFH}02000100${IP4}" "${NFH}ffff0a00${IP4}" \
	"${NFH}080001000000" "${NFH}30000900${IP4}" "${NFH}04000900" "${NFH}0c00090055000000ffffffff" \
	"${NFH}0500010000000000050001000000000008000400000000020800040000000002"
# PPP, PPP in HDLC-like framing, Cisco HDLC, PPPoE (own link type and over Ethernet).
hostile_check "PPP: empty, ff, ff03, ff03 + one byte, LCP, IPX, compressed protocol alone" 9 \
	"" "ff" "ff03" "ff0300" "ff03c021${IP4}" "002b${IP4}" "21"
hostile_check "PPP_SERIAL / Cisco HDLC: short, unknown address, Cisco with ARP, Cisco header alone" 50 \
	"ff" "0f00" "41030021${IP4}" "0f000806${IP4}" "8f000800"
hostile_check "PPPoE: short, discovery (PADI), bad version, length 0, length 1, header alone" 51 \
	"1100" "11091234000400${IP4}" "21001234002a0021${IP4}" "110012340000${IP4}" "1100123400010021${IP4}" "110012340016"
hostile_check "Ethernet PPPoE session: cut in its header, a LCP frame, length 0" 1 \
	"0000000000010000000000028864110012" "000000000001000000000002886411001234002ac021${IP4}" \
	"0000000000010000000000028864110012340000${IP4}"

# Every record of every new link type damaged at random (3 seeds each): never a crash.
bad=()
runs=0
for v in "${MUTATE[@]}"; do
	read -r desc transform opts <<<"$v"
	for name in "${FIXTURES[@]}"; do
		# shellcheck disable=SC2086 # options
		"$PY" "$PT" $transform "$FIX/$name.pcap" "$RG_TMP/m0.cap" $opts || { bad+=("$desc $name: pcaptool"); continue; }
		for seed in 1 2 3; do
			"$PY" "$PT" mutate "$RG_TMP/m0.cap" "$RG_TMP/m.cap" --seed "$seed"
			timeout 30 "$RSTGUARD" -r "$RG_TMP/m.cap" -e /dev/null --summary json 2>"$RG_TMP/m.err"
			rc=$?
			runs=$((runs + 1))
			if [ "$rc" != 0 ] || grep -q 'Sanitizer\|runtime error' "$RG_TMP/m.err"; then
				bad+=("$desc $name seed $seed: exit $rc" "$(head -c 400 "$RG_TMP/m.err")")
			fi
		done
	done
done
rg_ok ${#bad[@]} "randomly damaged link headers ($runs captures of ${#MUTATE[@]} new link types): exit 0 every time, no sanitizer report" "${bad[@]}"

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
