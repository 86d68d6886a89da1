#!/bin/bash
# ipv6.sh: detect_basic.sh's scenario over IPv6 (2001:db8:1::2 -> 2001:db8:3::2 through the
# gateway's ip6tables NFQUEUE rule): a bulk transfer arrives intact, a refused connection and
# SO_LINGER 0 aborts from each side give exactly one rst event each, with the right cause and
# the IPv6 endpoints as rstguard prints them; SIGTERM: exit 0, flow events for every connection.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/basic.sh
. "$RG_LIB/basic.sh"

BYTES=${RG_BULK_BYTES:-20000000}
rg_setup --queue-num "$RG_QUEUE_NUM"
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV

rg_plan $((1 + RG_BASIC_POINTS + 5 + RG_BASIC_FLOW_POINTS + 1))

rg_daemon_up "rstguard -m detect binds queue $RG_QUEUE_NUM in the gateway" -m detect -e "$EV"

rg_basic_run 6 "$BYTES" "$EV"

n=$(($(rg_events_count "$EV" rst) - RG_BASIC_LATE_RSTS))
rg_is "$n" 3 "no other rst events than the three RSTs sent"

# The queue itself: packets went through it, none dropped (queue full or socket buffer full).
seq=$(rg_queue_seq "$RG_QUEUE_NUM")
drops=$(rg_queue_drops "$RG_QUEUE_NUM")
if [ "$drops" = "0 0" ] && [ "${seq:-0}" -gt 0 ]; then
	rg_pass "gw nfnetlink_queue: $seq packets queued, 0 queue drops, 0 user drops"
else
	rg_fail "gw nfnetlink_queue: packets queued, 0 queue drops, 0 user drops" \
		"queue line: '$(rg_queue_line "$RG_QUEUE_NUM")'"
fi

alive=0
rg_daemon_alive && alive=1
rg_is "$alive" 1 "rstguard still running after the traffic"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits with status 0 within 5 s"

if rg_wait_queue_unbound "$RG_QUEUE_NUM" 2; then
	rg_pass "queue $RG_QUEUE_NUM unbound after exit"
else
	rg_fail "queue $RG_QUEUE_NUM unbound after exit" "queue line: '$(rg_queue_line "$RG_QUEUE_NUM")'"
fi

rg_basic_flows "$EV" "$BYTES"

rg_check_events "$EV"
