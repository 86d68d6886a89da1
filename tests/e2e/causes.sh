#!/bin/bash
# causes.sh: the cause taxonomy on genuine RSTs of real Linux sockets. Each scenario makes one
# connection whose kernel sends exactly one RST for a known reason:
#   refused            connect to a port nobody listens on: the server's RST/ACK
#   server-abort       the server replies, pauses, closes with SO_LINGER 0: abort
#   client-abort       the client gets the reply, sends QUIT, pauses, SO_LINGER 0: abort
#   unread-data        the client sends 5000 bytes, the server reads 4096 and closes (the seed's
#                      case): unread_data
#   closed-socket      the server reads the request and closes; the client keeps sending after
#                      the server's FIN: the server's kernel answers with a bare RST: closed_socket
#   connect-abort      the router drops the server's first SYN-ACK; the client gives up after
#                      0.5 s and closes; the server's retransmitted SYN-ACK (1 s) finds no socket
#                      and the client's kernel answers it with a RST: connect_abort
#   keepalive          the client turns on keepalive (idle 1 s, interval 1 s, 2 probes) and the
#                      server vanishes (DROP both ways in the server's namespace): after two
#                      unanswered probes the client's kernel resets: keepalive_timeout
# IPv6: refused, server-abort, unread-data, closed-socket and connect-abort again.
#
# Three phases on one network: "baseline" (no queue rule, no rstguard: what the applications see
# on their own), then rstguard in detect mode, then in enforce mode. In every phase each
# application must see the same outcome (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, its own
# give-up): in enforce mode a genuine RST is delivered unchanged. With rstguard: exactly one rst
# event per connection, from the expected side, with the expected cause and interrupted state,
# forged false, would_drop false, verdict accept; at exit the counters say forged 0, dropped 0.
# Every RST's expected and observed judgement goes to the results file (tests/confusion.py).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/rstcase.sh
. "$RG_LIB/rstcase.sh"

# The scenario table: NAME FAMILY CAUSE SENDER_OF_THE_RST STATE_IT_INTERRUPTS EXPECTED_OUTCOME
SCEN=(
	"refused 4 refused server syn_sent refused"
	"server-abort 4 abort server established reset"
	"client-abort 4 abort client established reset"
	"unread-data 4 unread_data server established reset"
	"closed-socket 4 closed_socket server fin_wait EPIPE"
	"connect-abort 4 connect_abort client syn_recv gave-up"
	"keepalive 4 keepalive_timeout client established ETIMEDOUT"
	"refused 6 refused server syn_sent refused"
	"server-abort 6 abort server established reset"
	"unread-data 6 unread_data server established reset"
	"closed-socket 6 closed_socket server fin_wait EPIPE"
	"connect-abort 6 connect_abort client syn_recv gave-up"
)

rg_setup_net
rg_results_init

rg_plan $((${#SCEN[@]} + 2 * (2 + 3 * ${#SCEN[@]})))

# Per scenario: the connection's endpoints (set by the sc_* functions) and what the
# application whose outcome counts saw.
CLI=""
SRV=""
CPORT=""
OUTCOME=""
APP=""

ns_ipt() {  # ns_ipt NS FAMILY ARGS...: iptables or ip6tables in a namespace
	local ns=$1 fam=$2 cmd=iptables
	shift 2
	[ "$fam" = 6 ] && cmd=ip6tables
	timeout 10 ip netns exec "$ns" "$cmd" -w 5 "$@"
}

sc_refused() {  # PHASE PORT
	rg_app "$APP" "$RG_CLIENT" connect-refused --to "$SRV" --port "$2"
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "$APP" outcome)
}

sc_server_abort() {
	rg_serve "srv-$APP" "$RG_SERVER" "$SRV" "$2" linger-abort || return
	rg_app "$APP" "$RG_CLIENT" expect-reset --to "$SRV" --port "$2"
	rg_wait_app "srv-$APP" 10
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "$APP" outcome)
}

sc_client_abort() {  # the server's outcome counts: it is the one reset
	rg_serve "srv-$APP" "$RG_SERVER" "$SRV" "$2" expect-abort || return
	rg_app "$APP" "$RG_CLIENT" linger-abort-client --to "$SRV" --port "$2"
	rg_wait_app "srv-$APP" 10
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "srv-$APP" outcome)
}

sc_unread_data() {
	rg_serve "srv-$APP" "$RG_SERVER" "$SRV" "$2" unread-close --read-bytes 4096 --settle 0.3 || return
	rg_app "$APP" "$RG_CLIENT" send-expect-reset --to "$SRV" --port "$2" --bytes 5000
	rg_wait_app "srv-$APP" 10
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "$APP" outcome)
}

sc_closed_socket() {
	# The request is 30 bytes: the server reads exactly that, so its close() sends a FIN.
	rg_serve "srv-$APP" "$RG_SERVER" "$SRV" "$2" unread-close --read-bytes 30 --settle 0 || return
	rg_app "$APP" "$RG_CLIENT" send-after-fin --to "$SRV" --port "$2" --sends 5 --gap 0.1
	rg_wait_app "srv-$APP" 10
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "$APP" outcome)
}

sc_connect_abort() {
	# The router drops the first SYN-ACK from this port only (statistic nth: every 1000th, and
	# with --packet 0 the first one is the one), so the client's handshake stalls; it gives up
	# at 0.5 s, before its own SYN retransmission (1 s), and the server's SYN-ACK
	# retransmission (1 s) meets no socket.
	ns_ipt "$RG_ROUTER" "$1" -I FORWARD -p tcp -s "$SRV" --sport "$2" \
		--tcp-flags SYN,ACK SYN,ACK -m statistic --mode nth --every 1000 --packet 0 -j DROP || {
		rg_diag "cannot add the router's SYN-ACK drop rule"
		return
	}
	# (The listener accepts nothing here; it ends by itself after 3 s.)
	rg_app_serve "srv-$APP" "$RG_SERVER" listen --bind "$SRV" --port "$2" --seconds 3 || return
	rg_app "$APP" "$RG_CLIENT" connect-giveup --to "$SRV" --port "$2" --give-up 0.5
	CPORT=$(rg_app_field "$APP" sport)
	OUTCOME=$(rg_app_field "$APP" outcome)
}

sc_keepalive() {
	local fam=$1 port=$2 i
	rg_serve "srv-$APP" "$RG_SERVER" "$SRV" "$port" keep-open --hold 8 || return
	rm -f "$RG_TMP/$APP.ready" "$RG_TMP/$APP.go"
	rg_bg "$APP" "$RG_CLIENT" keepalive-client --to "$SRV" --port "$port" \
		--ready-file "$RG_TMP/$APP.ready" --go-file "$RG_TMP/$APP.go" --idle 1 --intvl 1 --cnt 2
	for i in $(seq 1 50); do
		[ -s "$RG_TMP/$APP.ready" ] && break
		sleep 0.1
	done
	CPORT=$(awk '/^sport /{print $2}' "$RG_TMP/$APP.ready" 2>/dev/null)
	if [ -z "$CPORT" ]; then
		rg_diag "the keepalive client never got connected"
		rg_wait_app "$APP" 5
		return
	fi
	# The server host vanishes for this connection: nothing in, nothing out.
	if ! ns_ipt "$RG_SERVER" "$fam" -I INPUT -p tcp -s "$CLI" --sport "$CPORT" \
		--dport "$port" -j DROP ||
		! ns_ipt "$RG_SERVER" "$fam" -I OUTPUT -p tcp -d "$CLI" --dport "$CPORT" \
			--sport "$port" -j DROP; then
		rg_diag "cannot add the server's DROP rules"
	fi
	touch "$RG_TMP/$APP.go"
	rg_wait_app "$APP" 15
	OUTCOME=$(rg_app_field "$APP" outcome)
}

# run_phase PHASE FIRST_PORT [EVENTS]: every scenario once; PHASE baseline has no events.
run_phase() {
	local phase=$1 port=$2 ev=${3:-} s name fam cause sender state want same
	for s in "${SCEN[@]}"; do
		read -r name fam cause sender state want <<<"$s"
		CLI=$RG_CLIENT4
		SRV=$RG_SERVER4
		if [ "$fam" = 6 ]; then
			CLI=$RG_CLIENT6
			SRV=$RG_SERVER6
		fi
		APP=$name-$fam-$phase
		CPORT=""
		OUTCOME=""
		"sc_${name//-/_}" "$fam" "$port"
		if [ "$OUTCOME" = "$want" ]; then
			same=""
			[ "$phase" != baseline ] && same=", as without rstguard"
			rg_pass "$phase: $name IPv$fam: the application sees $want$same"
		else
			rg_fail "$phase: $name IPv$fam: the application sees $want" "got '$OUTCOME'"
			rg_app_diag "$APP"
			rg_app_diag "srv-$APP"
		fi
		if [ "$phase" != baseline ]; then
			if [ -z "$CPORT" ]; then
				rg_fail "$phase: $name IPv$fam: connection made (no client port known)"
				rg_fail "$phase: $name IPv$fam: rst event checks skipped"
			else
				rg_check 2 "$phase: " genuine --events "$ev" --mode "$phase" \
					--scenario "$name IPv$fam" --client "$CLI" --cport "$CPORT" --server "$SRV" \
					--sport "$port" --cause "$cause" --from "$sender" --state "$state"
			fi
		fi
		port=$((port + 1))
	done
}

# 1. Without rstguard: what the applications see on their own.
run_phase baseline 5300

# 2, 3. With rstguard in detect and in enforce mode.
rg_queue_rule --queue-num "$RG_QUEUE_NUM" 2>"$RG_TMP/queue-rule.err" ||
	rg_skip "iptables -j NFQUEUE unavailable: $(head -n 1 "$RG_TMP/queue-rule.err")"
first=5400
for mode in detect enforce; do
	EV=$RG_TMP/events-$mode.json
	RG_DIAG_EVENTS="$RG_DIAG_EVENTS $EV"
	rg_daemon_up "rstguard -m $mode binds queue $RG_QUEUE_NUM" -m "$mode" -e "$EV"
	run_phase "$mode" "$first" "$EV"
	first=$((first + 100))
	problems=()
	rg_daemon_stop 5 || problems+=("exit status $RG_DAEMON_RC (want 0)")
	rg_daemon_counters
	n=$(rg_events_count "$EV" rst)
	[ "$RG_CNT_FORGED" = 0 ] || problems+=("forged '$RG_CNT_FORGED', want 0")
	[ "$RG_CNT_DROPPED" = 0 ] || problems+=("dropped '$RG_CNT_DROPPED', want 0")
	[ "$RG_CNT_WOULD" = 0 ] || problems+=("would drop '$RG_CNT_WOULD', want 0")
	[ "$RG_CNT_RST" = "$n" ] || problems+=("rst '$RG_CNT_RST', but $n rst events")
	if [ ${#problems[@]} -eq 0 ]; then
		rg_pass "$mode run: exit 0; counters: $RG_CNT_LINE"
	else
		rg_fail "$mode run: exit 0, counters forged 0, dropped 0" "${problems[@]}" \
			"counter line: $RG_CNT_LINE"
	fi
done

rg_results_table
