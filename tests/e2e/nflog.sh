#!/bin/bash
# nflog.sh: `rstguard -r` on a real NFLOG capture. No daemon runs inline: the gateway's raw
# PREROUTING sends every TCP packet, both families, to an NFLOG group (iptables and ip6tables
# -j NFLOG --nflog-group N --nflog-size 128), and tcpdump records that group (`tcpdump -i
# nflog:N`, link type NFLOG, 239, default snap length: with a small one, Debian 12's libpcap
# loses messages). The kernel copies at most 128 bytes of each packet, so the payload of a long
# segment is cut inside the NFLOG message itself and its length must come from the IP header.
# Through it: a refused connection over IPv4 and over IPv6, a server that aborts with
# SO_LINGER 0, and a client whose 5000 bytes the server does not read. Then `rstguard -r` on the
# capture must give each RST its cause (refused, refused, abort, unread_data; none forged),
# count no packet as not IP, truncated or malformed, and give the same events from the capture
# rewritten as pcapng. Whether the kernel stamped the packets (NFULA_TIMESTAMP) depends on the
# host (receive timestamps enabled by some program or not): either way the causes are the same.
#
# RG_FIXTURE_OUT=DIR keeps the capture there (nflog.pcap) with its events reduced to their
# stable fields (nflog.offline): that is how tests/fixtures/linktypes/nflog.pcap was recorded.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

PCAPTOOL=$RG_LIB/pcaptool.py
GROUP=${RG_NFLOG_GROUP:-$((4000 + $$ % 1000))}
COPY=${RG_NFLOG_SIZE:-128}

rg_require_root_net
rg_require_daemon
command -v tcpdump >/dev/null 2>&1 || rg_skip "tcpdump not installed"
rg_net_up
st=$?
[ "$st" -eq 2 ] && rg_skip "cannot create network namespaces"
[ "$st" -ne 0 ] && rg_bail "could not build the test network"
CAP=$RG_TMP/nflog.pcap
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV

for ipt in iptables ip6tables; do
	rg_ns "$RG_GW" "$ipt" -w 5 -t raw -A PREROUTING -p tcp -j NFLOG --nflog-group "$GROUP" \
		--nflog-prefix rgt --nflog-size "$COPY" 2>"$RG_TMP/nflog-rule.err" ||
		rg_skip "$ipt -j NFLOG unavailable: $(head -n 1 "$RG_TMP/nflog-rule.err")"
done

rg_plan 9

# ----------------------------------------------------------------------------------------------
# the capture

ip netns exec "$RG_GW" timeout 60 tcpdump -i "nflog:$GROUP" -n -U --immediate-mode \
	-Z root -w "$CAP" >/dev/null 2>"$RG_TMP/tcpdump.err" &
RG_PIDS[tcpdump]=$!
listening=0
for _ in $(seq 1 50); do
	grep -q 'listening on' "$RG_TMP/tcpdump.err" 2>/dev/null && { listening=1; break; }
	rg__alive "${RG_PIDS[tcpdump]}" || break
	sleep 0.1
done
[ "$listening" = 1 ] || rg_bail "tcpdump -i nflog:$GROUP did not start: $(cat "$RG_TMP/tcpdump.err")"

st=0
rg_app refused4 "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER4" --port 5401 || st=1
rg_app refused6 "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER6" --port 5402 || st=1
rg_serve abort_s "$RG_SERVER" "$RG_SERVER4" 5403 linger-abort || st=1
rg_app abort_c "$RG_CLIENT" expect-reset --to "$RG_SERVER4" --port 5403 || st=1
rg_wait_app abort_s 10 || st=1
rg_serve unread_s "$RG_SERVER" "$RG_SERVER4" 5404 unread-close --read-bytes 4096 || st=1
rg_app unread_c "$RG_CLIENT" send-expect-reset --to "$RG_SERVER4" --port 5404 --bytes 5000 || st=1
rg_wait_app unread_s 10 || st=1
if [ "$st" = 0 ]; then
	rg_pass "through the NFLOG rules: two connections refused, a server abort, an unread-data reset"
else
	rg_fail "through the NFLOG rules: two connections refused, a server abort, an unread-data reset"
	for f in "$RG_TMP"/*.json "$RG_TMP"/*.err; do
		[ -e "$f" ] && rg_diag_file "$f" "$(basename "$f")" 8
	done
fi

# The kernel sends NFLOG messages in batches, at the latest after its flush timeout (1 s).
sleep 1.5
kill -INT "${RG_PIDS[tcpdump]}" 2>/dev/null
rg_wait_pid "${RG_PIDS[tcpdump]}" 5
unset "RG_PIDS[tcpdump]"
got=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured$/\1/p' "$RG_TMP/tcpdump.err")
lost=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$RG_TMP/tcpdump.err")
lt=$("$RG_PY" "$PCAPTOOL" info "$CAP" 2>&1 | sed -n 's/.*"linktype": \([0-9]*\).*/\1/p')
if [ "${got:-0}" -ge 10 ] && [ "${lost:-1}" = 0 ] && [ "$lt" = 239 ]; then
	rg_pass "tcpdump -i nflog:$GROUP: $got packets, none dropped, link type 239 (NFLOG)"
else
	rg_fail "tcpdump -i nflog:$GROUP: packets, none dropped, link type 239 (NFLOG)" \
		"link type '$lt'" "$(cat "$RG_TMP/tcpdump.err")"
fi

# ----------------------------------------------------------------------------------------------
# the analysis

timeout 60 "$RSTGUARD" -r "$CAP" -e "$EV" --summary json 2>"$RG_TMP/summary.json"
rc=$?
rg_is "$rc" 0 "rstguard -r on the NFLOG capture exits 0"
rg_diag_file "$RG_TMP/summary.json" summary 3
# Whether this kernel stamped the packets (NFULA_TIMESTAMP: only when something enabled receive
# timestamps) or rstguard had to use tcpdump's read times: information, not a test.
grep -q 'without NFULA_TIMESTAMP' "$RG_TMP/summary.json" &&
	rg_diag "the packets have no NFULA_TIMESTAMP: rstguard used the times tcpdump read them"

# expect_rst DESC PORT FROM_IP CAUSE: exactly one rst event on the port, from FROM_IP, of CAUSE,
# not forged.
expect_rst() {
	local n all
	all=$(($(rg_events_count "$EV" rst "src_port=$2") + $(rg_events_count "$EV" rst "dest_port=$2")))
	n=$(rg_events_count "$EV" rst "src_port=$2" "src_ip=$3" "rst.cause=$4" rst.forged=false)
	if [ "$all" = 1 ] && [ "$n" = 1 ]; then
		rg_pass "$1: one rst event, from $3, cause $4, not forged"
	else
		rg_fail "$1: one rst event, from $3, cause $4, not forged" "$all rst events on port $2:"
		rg_events_show "$EV" rst
	fi
}
expect_rst "refused (IPv4)" 5401 "$RG_SERVER4" refused
expect_rst "refused (IPv6)" 5402 "$RG_SERVER6" refused
expect_rst "server abort" 5403 "$RG_SERVER4" abort
expect_rst "unread data (segments longer than the copy range)" 5404 "$RG_SERVER4" unread_data

# Every packet was TCP, whole headers: none not IP, truncated or malformed (a cut payload's
# length comes from its IP header).
s=$(tail -n 1 "$RG_TMP/summary.json")
if grep -q '"not_ip":0,' <<<"$s" && grep -q '"truncated":0,"malformed":0,' <<<"$s" &&
	grep -q "\"packets\":$got," <<<"$s"; then
	rg_pass "summary: all $got packets TCP, none not IP, truncated or malformed"
else
	rg_fail "summary: all packets TCP, none not IP, truncated or malformed" "$s"
fi

# The same capture as pcapng (rstguard's own block reader): the same events.
"$RG_PY" "$PCAPTOOL" pcapng "$CAP" "$RG_TMP/nflog.pcapng"
rm -f "$RG_TMP/ng.json"
timeout 60 "$RSTGUARD" -r "$RG_TMP/nflog.pcapng" -e "$RG_TMP/ng.json" 2>/dev/null
rc=$?
a=$("$RG_PY" "$PCAPTOOL" stable "$EV")
b=$("$RG_PY" "$PCAPTOOL" stable "$RG_TMP/ng.json")
if [ "$rc" = 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]; then
	rg_pass "the capture rewritten as pcapng: exit 0, the same events"
else
	rg_fail "the capture rewritten as pcapng: exit 0, the same events" "exit $rc" "$a" "vs" "$b"
fi

if [ -n "${RG_FIXTURE_OUT:-}" ]; then
	mkdir -p "$RG_FIXTURE_OUT" && cp "$CAP" "$RG_FIXTURE_OUT/nflog.pcap" &&
		printf '%s\n' "$a" >"$RG_FIXTURE_OUT/nflog.offline" &&
		rg_diag "capture and events kept in $RG_FIXTURE_OUT"
fi
