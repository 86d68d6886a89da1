#!/bin/bash
# failopen.sh: overload beyond the queue's capacity (issue 14), with and without queue.fail_open.
# queue.maxlen 16 and an unpaced burst of 20000 spoofed SYNs (tests/tools/flood) from the client:
# the daemon cannot keep 16 packets' room, so the queue overflows. The server counts what reaches
# it (an iptables rule on the flood's sources) and the gateway's NFQUEUE rule counts what entered
# the queue's hook.
#   fail_open on:  every SYN reaches the server; the kernel's queue counters show no drop (the
#                  kernel counts nothing for a packet it lets through when the queue is full),
#                  so the packets that failed open are the rule's count minus the queue's id
#                  sequence (> 0), and the daemon saw exactly the id sequence.
#   fail_open off: the kernel drops what does not fit, counted as queue_dropped; the server
#                  receives exactly the burst minus queue_dropped; the rule's count minus the id
#                  sequence equals queue_dropped.
# In both, a connection made right after the burst works and the daemon exits 0.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

FLOOD=${RG_FLOOD:-${RG_BUILDDIR:-$RG_SRCDIR}/tests/tools/flood}
BURST=20000
[ -x "$FLOOD" ] || { echo "1..0 # SKIP $FLOOD not built"; exit 77; }

rg_setup --queue-num "$RG_QUEUE_NUM"
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS=$RG_TMP/events.json
rg_ns "$RG_SERVER" iptables -A INPUT -s 198.19.0.0/16 -j DROP
rg_plan 10

rule_pkts() {
	rg_ns "$RG_GW" iptables -w 5 -t raw -L PREROUTING -v -x -n | awk '/NFQUEUE/ {print $1; exit}'
}
server_pkts() {
	rg_ns "$RG_SERVER" iptables -w 5 -L INPUT -v -x -n | awk '/198.19.0.0/ {print $1; exit}'
}

# run FAIL_OPEN: one daemon run with the burst; sets SENT, RULE, SEQ, QD, UD, SRV, SEEN.
run() {
	local fo=$1 r0 s0 line
	cat >"$CONF" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; maxlen = 16; fail_open = $fo; };
events = { path = "$RG_TMP/events.json"; };
EOF
	rg_daemon_up "fail_open = $fo: rstguard runs with queue.maxlen 16" -c "$CONF"
	r0=$(rule_pkts)
	s0=$(server_pkts)
	SENT=$(rg_ns "$RG_CLIENT" "$FLOOD" syn -d "$RG_SERVER4" -p 7998 -n "$BURST" | awk '{print $2}')
	if rg_app conn "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER4" --port 7999; then
		rg_pass "fail_open = $fo: a connection right after the burst works"
	else
		rg_fail "fail_open = $fo: a connection right after the burst works"
		rg_app_diag conn
	fi
	sleep 0.5
	line=$(rg_queue_line)
	read -r _ _ _ _ _ QD UD SEQ _ <<<"$line"
	RULE=$(( $(rule_pkts) - r0 ))
	SRV=$(( $(server_pkts) - s0 ))
	if rg_daemon_stop 10; then
		rg_pass "fail_open = $fo: the daemon exits 0"
	else
		rg_fail "fail_open = $fo: the daemon exits 0" "exit $RG_DAEMON_RC"
	fi
	SEEN=$(grep -o 'queue [0-9]*: packets [0-9]*' "$RG_DAEMON_LOG" | tail -n 1 | awk '{print $4}')
	rg_diag "fail_open = $fo: sent $SENT, rule counted $RULE, queued (id sequence) $SEQ, daemon saw $SEEN, kernel queue_dropped $QD, user_dropped $UD, server received $SRV"
}

run true
# The rule and the queue also count the connection after the burst (its SYN and the RST).
fo_count=$((RULE - SEQ))
if [ "$SRV" = "$SENT" ] && [ "${QD:-x}" = 0 ] && [ "$SEEN" = "$SEQ" ] && [ "$fo_count" -gt 0 ]; then
	rg_pass "fail_open on: all $SENT SYNs reached the server; $fo_count failed open (rule $RULE - id sequence $SEQ), kernel queue_dropped 0, the daemon saw its $SEQ"
else
	rg_fail "fail_open on: traffic keeps flowing and the counters say so" \
		"sent $SENT, server $SRV, rule $RULE, id sequence $SEQ, daemon $SEEN, queue_dropped $QD"
fi
FO=$fo_count
rg_ns "$RG_GW" iptables -w 5 -t raw -Z PREROUTING
run false
if [ "${QD:-0}" -gt 0 ] && [ "$SRV" = $((SENT - QD)) ] && [ $((RULE - SEQ)) = "$QD" ] && [ "$SEEN" = "$SEQ" ]; then
	rg_pass "fail_open off: the kernel dropped $QD (queue_dropped), the server received the other $SRV, rule - id sequence = queue_dropped"
else
	rg_fail "fail_open off: the kernel drops what does not fit, counted" \
		"sent $SENT, server $SRV, rule $RULE, id sequence $SEQ, daemon $SEEN, queue_dropped $QD"
fi
if [ "$FO" -gt 0 ] && [ "${QD:-0}" -gt 0 ]; then
	rg_pass "the burst overloaded the queue in both runs (failed open $FO, dropped $QD)"
else
	rg_fail "the burst overloaded the queue in both runs" "failed open $FO, dropped $QD"
fi
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "no sanitizer finding in the daemon's log"
else
	rg_pass "no sanitizer finding in the daemon's log"
fi
