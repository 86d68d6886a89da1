# shellcheck shell=bash
# basic.sh: the basic detect-mode scenario shared by detect_basic.sh (IPv4) and ipv6.sh: a bulk
# transfer, a refused connection, a server-side and a client-side SO_LINGER 0 abort, each
# checked both at the applications and in rstguard's events. Source after netns.sh.

RG_BASIC_PORT_BULK=5001
RG_BASIC_PORT_REFUSED=5002     # nothing listens there
RG_BASIC_PORT_SABORT=5003
RG_BASIC_PORT_CABORT=5004

# shellcheck disable=SC2034 # used by the tests for their plans
RG_BASIC_POINTS=11             # TAP points printed by rg_basic_run
# shellcheck disable=SC2034
RG_BASIC_FLOW_POINTS=2         # by rg_basic_flows
RG_BASIC_CONNS=()              # "CLIENT_PORT SERVER_PORT" of each connection made
RG_BASIC_BULK_CPORT=""
RG_BASIC_CPORT=""              # client port of the last rg__basic_exchange
# shellcheck disable=SC2034 # read by the tests
RG_BASIC_LATE_RSTS=0           # genuine late RSTs on the closed bulk flow (see step 5)

# rg__basic_exchange SERVER SERVER_MODE CLIENT CLIENT_MODE ADDR PORT [CLIENT ARGS...]: a
# tcpapp.py server of SERVER_MODE on ADDR:PORT in the server namespace, a client of CLIENT_MODE
# against it; status 0 when both did what their modes expect (the server within 10 s). Records
# the connection and sets RG_BASIC_CPORT to the client's port.
rg__basic_exchange() {
	local srv=$1 smode=$2 cli=$3 cmode=$4 addr=$5 port=$6 ok=1
	shift 6
	rg_serve "$srv" "$RG_SERVER" "$addr" "$port" "$smode" || ok=0
	if [ "$ok" = 1 ]; then
		rg_app "$cli" "$RG_CLIENT" "$cmode" --to "$addr" --port "$port" "$@" || ok=0
		rg_wait_app "$srv" 10 || ok=0
	fi
	RG_BASIC_CPORT=$(rg_app_field "$cli" sport)
	RG_BASIC_CONNS+=("$RG_BASIC_CPORT $port")
	[ "$ok" = 1 ]
}

# rg__basic_result STATUS DESC CLIENT SERVER [DETAIL]: one TAP point for an exchange, passing
# as "DESC DETAIL", failing with both applications' reports.
rg__basic_result() {
	if [ "$1" = 0 ]; then
		rg_pass "$2${5:+ $5}"
	else
		rg_fail "$2"
		rg_app_diag "$3"
		rg_app_diag "$4"
	fi
}

# rg_basic_run FAMILY(4|6) BYTES EVENTS_FILE
rg_basic_run() {
	local fam=$1 bytes=$2 ev=$3 cli srv cport ok
	if [ "$fam" = 6 ]; then
		cli=$RG_CLIENT6
		srv=$RG_SERVER6
	else
		cli=$RG_CLIENT4
		srv=$RG_SERVER4
	fi

	# 1. Bulk: every byte arrives, in order (sha256 on both ends).
	rg__basic_exchange bulk bulk-sink bulkc bulk "$srv" "$RG_BASIC_PORT_BULK" --bytes "$bytes"
	ok=$?
	RG_BASIC_BULK_CPORT=$RG_BASIC_CPORT
	rg__basic_result "$ok" "IPv$fam bulk transfer of $bytes bytes arrives intact" bulkc bulk \
		"(sha256 $(rg_app_field bulkc sha256 | cut -c1-16)..., $(rg_app_field bulkc mbit_s) Mbit/s)"

	# 2. A closed port: the server's kernel answers the SYN with RST/ACK (seq 0, window 0).
	rg_app refused "$RG_CLIENT" connect-refused --to "$srv" --port "$RG_BASIC_PORT_REFUSED"
	ok=$?
	cport=$(rg_app_field refused sport)
	RG_BASIC_CONNS+=("$cport $RG_BASIC_PORT_REFUSED")
	rg_ok "$ok" "IPv$fam connection to a closed port: the client sees ECONNREFUSED" \
		"$(cat "$RG_TMP/refused.json" "$RG_TMP/refused.err" 2>/dev/null)"
	rg_expect_rst "IPv$fam refused" "$ev" "$srv" "$RG_BASIC_PORT_REFUSED" "$cli" "$cport" \
		rst.cause=refused verdict=accept rst.forged=false rst.direction=toclient rst.flags=RA \
		rst.state=syn_sent rst.seq=0 rst.window=0 rst.ttl=63

	# 3. The server answers the request, then aborts (SO_LINGER 0): RST/ACK from the server.
	# (It answers first: a RST as the very first reaction to data just received is what a close
	# with unread data looks like, a different cause.)
	rg__basic_exchange sabort linger-abort sabortc expect-reset "$srv" "$RG_BASIC_PORT_SABORT"
	rg__basic_result $? "IPv$fam server SO_LINGER 0 abort: the client sees ECONNRESET" sabortc sabort
	cport=$RG_BASIC_CPORT
	rg_expect_rst "IPv$fam server abort" "$ev" "$srv" "$RG_BASIC_PORT_SABORT" "$cli" "$cport" \
		rst.cause=abort verdict=accept rst.forged=false rst.direction=toclient rst.flags=RA \
		rst.state=established rst.ttl=63

	# 4. The client gets the reply, sends QUIT, then aborts: RST/ACK from the client; the server
	# sees ECONNRESET.
	rg__basic_exchange cabort expect-abort cabortc linger-abort-client "$srv" "$RG_BASIC_PORT_CABORT"
	rg__basic_result $? "IPv$fam client SO_LINGER 0 abort: the server sees ECONNRESET" cabortc cabort
	cport=$RG_BASIC_CPORT
	rg_expect_rst "IPv$fam client abort" "$ev" "$cli" "$cport" "$srv" "$RG_BASIC_PORT_CABORT" \
		rst.cause=abort verdict=accept rst.forged=false rst.direction=toserver rst.flags=RA \
		rst.state=established rst.ttl=64

	# 5. A clean transfer closes with FINs: no rst event for it. One exception: when the gateway
	# is starved of CPU (parallel tests on a busy machine), a segment held in the queue past the
	# RTO is retransmitted, and the duplicate can reach the server after its socket is gone:
	# its kernel answers with a genuine RST in time_wait. That is tolerated (and shown).
	local n late
	n=$(rg_rst_count "$ev" "$RG_BASIC_BULK_CPORT" "$RG_BASIC_PORT_BULK")
	late=$(($(rg_events_count "$ev" rst "src_port=$RG_BASIC_BULK_CPORT" \
		"dest_port=$RG_BASIC_PORT_BULK" rst.state=time_wait) + $(rg_events_count "$ev" rst \
		"src_port=$RG_BASIC_PORT_BULK" "dest_port=$RG_BASIC_BULK_CPORT" rst.state=time_wait)))
	# shellcheck disable=SC2034 # read by the tests
	RG_BASIC_LATE_RSTS=$late
	if [ "$n" -eq "$late" ]; then
		rg_pass "IPv$fam bulk flow (client port $RG_BASIC_BULK_CPORT) produced no rst event"
		if [ "$late" -gt 0 ]; then
			rg_diag "tolerated: $late RST(s) after both FINs were acknowledged (a late duplicate segment hit the closed socket):"
			rg_events_show "$ev" rst "dest_port=$RG_BASIC_BULK_CPORT"
			rg_events_show "$ev" rst "src_port=$RG_BASIC_BULK_CPORT"
		fi
	else
		rg_fail "IPv$fam bulk flow (client port $RG_BASIC_BULK_CPORT) produced no rst event" \
			"$n rst events for it, $late of them in time_wait:"
		rg_events_show "$ev" rst "dest_port=$RG_BASIC_BULK_CPORT"
		rg_events_show "$ev" rst "src_port=$RG_BASIC_BULK_CPORT"
	fi
}

# rg_basic_flows EVENTS_FILE BYTES: after the daemon stopped: one flow event per connection of
# rg_basic_run, and the bulk flow's counters cover the transfer.
rg_basic_flows() {
	local ev=$1 bytes=$2 c cport sport a b bad=()
	for c in "${RG_BASIC_CONNS[@]}"; do
		cport=${c% *}
		sport=${c#* }
		a=$(rg_events_count "$ev" flow "src_port=$cport" "dest_port=$sport")
		b=$(rg_events_count "$ev" flow "src_port=$sport" "dest_port=$cport")
		[ $((a + b)) -eq 1 ] || bad+=("ports $cport/$sport: $((a + b)) flow events")
	done
	if [ ${#bad[@]} -eq 0 ]; then
		rg_pass "exactly one flow event for each of the ${#RG_BASIC_CONNS[@]} connections"
	else
		rg_fail "exactly one flow event for each of the ${#RG_BASIC_CONNS[@]} connections" "${bad[@]}"
		rg_events_show "$ev" flow
	fi
	# toserver is the client's direction, whichever way round the event names the endpoints.
	a=$(rg_events_count "$ev" flow "src_port=$RG_BASIC_BULK_CPORT" "dest_port=$RG_BASIC_PORT_BULK" \
		"flow.bytes_toserver>=$bytes" "flow.pkts_toserver>=1" "flow.pkts_toclient>=1")
	b=$(rg_events_count "$ev" flow "dest_port=$RG_BASIC_BULK_CPORT" "src_port=$RG_BASIC_PORT_BULK" \
		"flow.bytes_toserver>=$bytes" "flow.pkts_toserver>=1" "flow.pkts_toclient>=1")
	if [ $((a + b)) -eq 1 ]; then
		rg_pass "bulk flow event: bytes_toserver >= $bytes, packets both ways"
	else
		rg_fail "bulk flow event: bytes_toserver >= $bytes, packets both ways"
		"$RG_PY" "$RG_EVQ" show "$ev" flow "src_port=$RG_BASIC_BULK_CPORT" 2>&1 | rg_diag
		"$RG_PY" "$RG_EVQ" show "$ev" flow "dest_port=$RG_BASIC_BULK_CPORT" 2>&1 | rg_diag
	fi
}

# rg_basic_test FAMILY(4|6): the whole of detect_basic.sh (4) or ipv6.sh (6): the daemon in
# detect mode, rg_basic_run, no other rst event, the queue without drops, SIGTERM (exit 0, queue
# unbound), rg_basic_flows, and the events checked as a whole.
rg_basic_test() {
	local fam=$1 bytes=${RG_BULK_BYTES:-20000000} ev n seq drops alive
	rg_setup --queue-num "$RG_QUEUE_NUM"
	ev=$RG_TMP/events.json
	# shellcheck disable=SC2034 # read by netns.sh's diagnostics
	RG_DIAG_EVENTS=$ev

	rg_plan $((1 + RG_BASIC_POINTS + 5 + RG_BASIC_FLOW_POINTS + 1))

	rg_daemon_up "rstguard -m detect binds queue $RG_QUEUE_NUM in the gateway" -m detect -e "$ev"

	rg_basic_run "$fam" "$bytes" "$ev"

	n=$(($(rg_events_count "$ev" rst) - RG_BASIC_LATE_RSTS))
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

	rg_basic_flows "$ev" "$bytes"

	rg_check_events "$ev"
}
