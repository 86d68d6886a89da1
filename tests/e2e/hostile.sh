#!/bin/bash
# hostile.sh: malformed and odd packets through the live queue (issue 14).
# tests/tools/hostile_pkts.py sends about 700 crafted frames from the client to a closed port of
# the server: IPv4 headers cut short or with a bad IHL or total length, IP options, TCP headers
# cut short, every data offset, TCP options of length 0, 1 and 255 and other bad lengths, every
# TCP flag combination over IPv4 and IPv6, bad checksums, IPv4 fragments of TCP (tiny, overlapping,
# lone), IPv6 extension-header chains (hop-by-hop, routing types 0/2/4, 2, 10 and 40 headers,
# fragments, truncated chains). The same frames are sent three times:
#   1. no queue rule, no daemon: the server's capture is the reference;
#   2. rstguard in detect mode: every packet queued got a verdict (the kernel's queue counters:
#      nothing waiting, nothing dropped, the daemon's "accepted" equals the queue's id
#      sequence), the counters say what it saw (truncated, malformed, fragments), and the
#      server's capture is byte for byte the reference (as a multiset of frames);
#   3. rstguard in enforce mode: every packet verdicted, the daemon survives.
# Each daemon run ends with SIGTERM and must exit 0 (under ASan/UBSan a finding aborts it).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

PORT=7999   # nothing listens there
TOOL=$RG_SRCDIR/tests/tools/hostile_pkts.py

rg_setup --queue-num "$RG_QUEUE_NUM"
RG_DIAG_EVENTS="$RG_TMP/events-detect.json $RG_TMP/events-enforce.json"
rg_plan 13

GW_MAC=$(rg_ns "$RG_GW" cat "/sys/class/net/$RG_IF_GW_C/address")
# Resolve every neighbour on the path first, so no frame waits for ARP/ND in one run only.
warm() {
	rg_ns "$RG_CLIENT" ping -c 1 -W 2 "$RG_SERVER4" >/dev/null 2>&1
	rg_ns "$RG_CLIENT" ping -6 -c 1 -W 2 "$RG_SERVER6" >/dev/null 2>&1
}

# capture_start NAME / capture_stop: tcpdump on the server of what arrives from the client.
capture_start() {
	CAP=$RG_TMP/$1.pcap
	ip netns exec "$RG_SERVER" timeout 60 tcpdump -i "$RG_IF_SERVER" -n -U -w "$CAP" \
		"src host $RG_CLIENT4 or src host $RG_CLIENT6" 2>"$RG_TMP/$1.tcpdump.err" &
	CAP_PID=$!
	for _ in $(seq 1 50); do
		grep -q 'listening on' "$RG_TMP/$1.tcpdump.err" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
capture_stop() {
	sleep 1
	kill -INT "$CAP_PID" 2>/dev/null
	rg_wait_pid "$CAP_PID" 10 >/dev/null
}

send_all() {
	rg_ns "$RG_CLIENT" "$RG_PY" "$TOOL" --iface "$RG_IF_CLIENT" --dst-mac "$GW_MAC" \
		--src4 "$RG_CLIENT4" --dst4 "$RG_SERVER4" --src6 "$RG_CLIENT6" --dst6 "$RG_SERVER6" \
		--port "$PORT" 2>"$RG_TMP/send.err"
}

# counters: SIGUSR1, then the daemon's latest counter lines.
counters() {
	local n
	n=$(grep -c 'queue [0-9]*: packets' "$RG_DAEMON_LOG")
	rg_daemon_signal USR1
	for _ in $(seq 1 30); do
		[ "$(grep -c 'queue [0-9]*: packets' "$RG_DAEMON_LOG")" -gt "$n" ] && break
		sleep 0.1
	done
	sleep 0.2
}
last() { grep -o "$1" "$RG_DAEMON_LOG" | tail -n 1 | grep -o "[0-9][0-9]*" | head -n 1; }

# compare NAME: "REF_FRAMES NAME_FRAMES MISSING EXTRA EXTRA_PROBES" of the server's captures as
# multisets of frames; EXTRA_PROBES counts the extra frames that are bare ACKs from the client
# (the shape of rstguard's confirmation probe).
compare() {
	"$RG_PY" - "$RG_TMP/ref.pcap" "$RG_TMP/$1.pcap" <<'EOF'
import sys
from collections import Counter
from scapy.all import rdpcap, TCP
a = Counter(bytes(p) for p in rdpcap(sys.argv[1]))
pb = rdpcap(sys.argv[2])
b = Counter(bytes(p) for p in pb)
extra = b - a
probes = sum(1 for p in pb if bytes(p) in extra and TCP in p and p[TCP].flags == "A"
             and len(p[TCP].payload) == 0)
print(sum(a.values()), sum(b.values()), sum((a - b).values()), sum(extra.values()), probes)
EOF
}

# ---- 1. reference: no rule, no daemon
rg_queue_rule_clear || rg_bail "could not remove the queue rule"
warm
capture_start ref || rg_bail "tcpdump did not start"
sent=$(send_all) || rg_bail "sending failed: $(cat "$RG_TMP/send.err")"
capture_stop
nref=$("$RG_PY" -c 'import sys; from scapy.all import rdpcap; print(len(rdpcap(sys.argv[1])))' "$RG_TMP/ref.pcap")
rg_diag "sent: $sent; without rstguard the server received $nref of them"
[ "${nref:-0}" -gt 0 ] || rg_bail "the reference capture is empty"

# run_mode MODE: the daemon in MODE, the frames sent once more, counters and queue checked.
run_mode() {
	local mode=$1 ev=$RG_TMP/events-$1.json line seq0 seq qd ud waiting acc drp
	rg_queue_rule --queue-num "$RG_QUEUE_NUM" || rg_bail "could not install the queue rule"
	rg_daemon_up "rstguard runs in $mode mode" -m "$mode" -e "$ev"
	warm
	seq0=$(rg_queue_seq)
	capture_start "$mode" || rg_bail "tcpdump did not start"
	send_all >/dev/null || rg_bail "sending failed: $(cat "$RG_TMP/send.err")"
	capture_stop
	sleep 0.5
	line=$(rg_queue_line)
	read -r _ _ waiting _ _ qd ud seq _ <<<"$line"
	if rg_daemon_stop 10; then
		rg_pass "$mode: the daemon survives and exits 0 on SIGTERM"
	else
		rg_fail "$mode: the daemon survives and exits 0 on SIGTERM" "exit: $RG_DAEMON_RC"
	fi
	# The counters the daemon logs at exit: the queue's (verdicts) and the parser's (kinds).
	acc=$(last 'accepted [0-9]*')
	drp=$(last 'dropped [0-9]*, enobufs')
	if [ "${waiting:-x}" = 0 ] && [ "${qd:-x}" = 0 ] && [ "${ud:-x}" = 0 ] &&
		[ -n "${acc:-}" ] && [ $((acc + ${drp:-0})) = "${seq:-x}" ] && [ $((seq - seq0)) -gt 300 ]; then
		rg_pass "$mode: every queued packet got a verdict ($((seq - seq0)) queued while sending, $seq in all: accepted $acc, dropped ${drp:-0}; kernel queue dropped $qd, user dropped $ud, waiting $waiting)"
	else
		rg_fail "$mode: every queued packet got a verdict" "queue line: $line (seq before sending $seq0)" \
			"daemon: accepted ${acc:-?} dropped ${drp:-?}"
	fi
	KINDS=$(grep -o 'packets [0-9]*: tcp.*' "$RG_DAEMON_LOG" | tail -n 1)
	PROBES=$(grep -o 'confirmation probes: sent [0-9]*' "$RG_DAEMON_LOG" | tail -n 1 | grep -o '[0-9]*$')
	RSTLINE=$(grep -o 'rst [0-9]*:.*' "$RG_DAEMON_LOG" | tail -n 1)
	rg_queue_rule_clear || rg_bail "could not remove the queue rule"
}

# ---- 2. detect mode
run_mode detect
rg_diag "detect counters: $KINDS"
tr=$(grep -o 'truncated [0-9]*' <<<"$KINDS" | grep -o '[0-9]*$')
ma=$(grep -o 'malformed [0-9]*' <<<"$KINDS" | grep -o '[0-9]*$')
fr=$(grep -o 'fragment [0-9]*' <<<"$KINDS" | grep -o '[0-9]*$')
# (a TCP header cut short where the IP length says the packet ends is "malformed": the lengths
# disagree; "truncated" is for captures cut by a snap length)
if [ "${ma:-0}" -gt 0 ] && [ "${fr:-0}" -gt 0 ]; then
	rg_pass "detect: the counters say what it saw (truncated $tr, malformed $ma, fragments $fr)"
else
	rg_fail "detect: the counters say what it saw" "$KINDS"
fi
cmp=$(compare detect)
read -r na nb missing extra _ <<<"$cmp"
if [ "${missing:-x}" = 0 ] && [ "${extra:-x}" = 0 ] && [ "$na" = "$nb" ]; then
	rg_pass "detect: the server received exactly what it receives without rstguard ($nb frames, byte for byte)"
else
	rg_fail "detect: the server received exactly what it receives without rstguard" \
		"reference $na frames, with rstguard $nb; missing $missing, extra $extra"
fi
rg_check_events "$RG_TMP/events-detect.json"
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "detect: no sanitizer finding in the daemon's log"
else
	rg_pass "detect: no sanitizer finding in the daemon's log"
fi

# ---- 3. enforce mode: verdicts and survival (what it drops is forged.sh's business)
run_mode enforce
rg_diag "enforce counters: $KINDS" "$RSTLINE" "confirmation probes sent: $PROBES"
# In enforce mode a RST from the server may be held and checked with a confirmation probe (a bare
# ACK in the client's name, answered by the server's RST, which the daemon keeps to itself): the
# server gets the reference plus exactly the probes the daemon counted.
read -r na nb missing extra probes <<<"$(compare enforce)"
if [ "${missing:-x}" = 0 ] && [ "${extra:-x}" = "${PROBES:-y}" ] && [ "${probes:-z}" = "$extra" ]; then
	rg_pass "enforce: the server received the reference's $na frames and the daemon's $PROBES confirmation probes, nothing else"
else
	rg_fail "enforce: the server received the reference's frames and the confirmation probes" \
		"reference $na, with rstguard $nb: missing $missing, extra $extra (probe-shaped $probes); daemon sent $PROBES probes"
fi
[ -s "$RG_TMP/events-enforce.json" ] && rg_check_events "$RG_TMP/events-enforce.json" ||
	rg_pass "enforce: no events (nothing to check)"
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "no sanitizer finding in the daemon's log"
else
	rg_pass "no sanitizer finding in the daemon's log"
fi
