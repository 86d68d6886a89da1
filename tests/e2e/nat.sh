#!/bin/bash
# nat.sh: rstguard on a NAT gateway (issue 12). gw masquerades the client side toward the router
# (IPv4 and IPv6, source ports mapped into 20000-29999 so that a NAT port never equals the
# client's port) and forwards its outside port 8080 to a server on the client side (DNAT); the
# queue rule stays in raw PREROUTING, before conntrack, so the client's packets reach rstguard
# with the inside tuple and the server's answers with the translated one. rstguard joins the two
# halves through one conntrack lookup per connection (nat.lookup, the default).
#
#   detect   an on-path injector in the router (tests/lib/inject.py bare-ttl) resets a
#            masqueraded fetch: the client sees ECONNRESET, the injected RST is one forged rst
#            event from the real server to the client's inside address and port, with a nat
#            object holding the outside view (gw's address, the NAT port); the same over IPv6;
#            a refused port (refused), a server's abort and a client's abort (abort) from the
#            right side; a port forward with injected RSTs toward both ends (forged, nat type
#            dnat: the inside server at the top level, the forwarded address in nat)
#   enforce  the same injections are dropped and the transfers complete intact (sha256)
#   off      nat.lookup = false: today's behaviour, two flows per masqueraded connection, no nat
#            object, no lookup
# Each run ends with its counters (nat line: lookups, joined) and one flow event per
# connection, carrying the nat object (detect and enforce).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/rstcase.sh
. "$RG_LIB/rstcase.sh"

BYTES=200000
FWD_PORT=8080
INSIDE_PORT=5480

rg_setup --queue-num "$RG_QUEUE_NUM"
rg__sysctl "$RG_GW" net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
	net.ipv4.conf.r0.send_redirects=0 || true
rg_gw_masquerade 20000-29999 || rg_bail "cannot install the masquerade rules"
rg_gw_port_forward "$FWD_PORT" "$RG_CLIENT4:$INSIDE_PORT" "[$RG_CLIENT6]:$INSIDE_PORT" ||
	rg_bail "cannot install the port forward"

rg_plan 54

NEXT_PORT=5500
EV=""
CONNS=()         # "CLIENT_IP CLIENT_PORT SERVER_PORT" of each connection of the run

# expect_one DESC FILTER...: exactly one event of $EV matches (one TAP point).
expect_one() {
	local desc=$1 n
	shift
	rg_wait_events "$EV" 1 5 "$@"
	n=$(rg_events_count "$EV" "$@")
	if [ "$n" = 1 ]; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "$n events match: $*"
		rg_events_show "$EV"
	fi
}

# nat_filters FAM: the filters of a masqueraded connection's nat object toward the client.
nat_to_client() {
	local gw=$RG_GW_R4
	[ "$1" = 6 ] && gw=$RG_GW_R6
	echo "nat.type=snat nat.dest_ip=$gw nat.dest_port>=20000 nat.dest_port<=29999"
}

# inject MODE FAM: a fetch from the client reset by the router's injector (bare-ttl: one RST
# toward the client). 3 points.
inject() {
	local mode=$1 fam=$2 port=$NEXT_PORT name cli=$RG_CLIENT4 srv=$RG_SERVER4 want=reset cport
	NEXT_PORT=$((NEXT_PORT + 1))
	[ "$fam" = 6 ] && cli=$RG_CLIENT6 && srv=$RG_SERVER6
	[ "$mode" = enforce ] && want=complete
	name=inj$fam-$mode
	rg_app_serve "srv-$name" "$RG_SERVER" slow-serve --bind "$srv" --port "$port" --delay 0.4 \
		--bytes "$BYTES" || true
	rg_inject_start "x-$name" "$port" bare-ttl || true
	rg_app "cli-$name" "$RG_CLIENT" fetch --to "$srv" --port "$port" --bytes "$BYTES" --expect "$want"
	rg_wait_app "x-$name" 45
	rg_wait_app "srv-$name" 15
	cport=$(rg_app_field "cli-$name" sport)
	CONNS+=("$cli ${cport:-0} $port")
	rg_is "$(rg_app_field "cli-$name" outcome)" "$want" \
		"$mode: masquerade IPv$fam, injected RST: the client's fetch ends $want"
	# shellcheck disable=SC2046 # the filters are words
	expect_one "$mode: IPv$fam: the injected RST is one forged event from the server to the client's inside address and port, nat = the outside view" \
		rst rst.forged=true rst.cause=injected "src_ip=$srv" "src_port=$port" "dest_ip=$cli" \
		"dest_port=${cport:-0}" $(nat_to_client "$fam")
	if [ "$mode" = enforce ]; then
		expect_one "$mode: IPv$fam: ... and dropped" rst rst.forged=true verdict=drop "dest_port=${cport:-0}"
	else
		expect_one "$mode: IPv$fam: ... would be dropped, accepted in detect mode" rst rst.forged=true \
			verdict=accept rst.would_drop=true "dest_port=${cport:-0}"
	fi
}

# genuine MODE FAM KIND: refused, server-abort, client-abort; one RST from the right side with
# its cause and the nat object. 2 points.
genuine() {
	local mode=$1 fam=$2 kind=$3 port=$NEXT_PORT name cli=$RG_CLIENT4 srv=$RG_SERVER4 cport out
	NEXT_PORT=$((NEXT_PORT + 1))
	[ "$fam" = 6 ] && cli=$RG_CLIENT6 && srv=$RG_SERVER6
	name=$kind$fam-$mode
	case $kind in
	refused)
		rg_app "$name" "$RG_CLIENT" connect-refused --to "$srv" --port "$port"
		out=$(rg_app_field "$name" outcome)
		;;
	server-abort)
		rg_serve "srv-$name" "$RG_SERVER" "$srv" "$port" linger-abort || true
		rg_app "$name" "$RG_CLIENT" expect-reset --to "$srv" --port "$port"
		rg_wait_app "srv-$name" 10
		out=$(rg_app_field "$name" outcome)
		;;
	client-abort)
		rg_serve "srv-$name" "$RG_SERVER" "$srv" "$port" expect-abort || true
		rg_app "$name" "$RG_CLIENT" linger-abort-client --to "$srv" --port "$port"
		rg_wait_app "srv-$name" 10
		out=$(rg_app_field "srv-$name" outcome)
		;;
	esac
	cport=$(rg_app_field "$name" sport)
	CONNS+=("$cli ${cport:-0} $port")
	case $kind in
	refused)
		rg_is "$out" refused "$mode: IPv$fam refused port: the client sees ECONNREFUSED"
		# shellcheck disable=SC2046
		expect_one "$mode: IPv$fam refused port: cause refused, from the server to the client's inside port, nat object" \
			rst rst.cause=refused rst.forged=false verdict=accept rst.state=syn_sent "src_ip=$srv" \
			"dest_ip=$cli" "dest_port=${cport:-0}" $(nat_to_client "$fam")
		;;
	server-abort)
		rg_is "$out" reset "$mode: IPv$fam server abort: the client sees ECONNRESET"
		# shellcheck disable=SC2046
		expect_one "$mode: IPv$fam server abort: cause abort, from the server, established, nat object" \
			rst rst.cause=abort rst.forged=false verdict=accept rst.state=established "src_ip=$srv" \
			"dest_ip=$cli" "dest_port=${cport:-0}" $(nat_to_client "$fam")
		;;
	client-abort)
		rg_is "$out" reset "$mode: IPv$fam client abort: the server sees ECONNRESET"
		expect_one "$mode: IPv$fam client abort: cause abort, from the client's inside address, nat source = the outside view" \
			rst rst.cause=abort rst.forged=false verdict=accept rst.direction=toserver "src_ip=$cli" \
			"src_port=${cport:-0}" "dest_ip=$srv" nat.type=snat nat.src_port\>=20000 nat.src_port\<=29999
		;;
	esac
}

# forward MODE: a fetch from the outside (the server's namespace) to gw's port 8080, forwarded to
# the inside server; the injector sends a RST toward each end. 3 points.
forward() {
	local mode=$1 name want=reset n
	name=fwd-$mode
	[ "$mode" = enforce ] && want=complete
	rg_app_serve "srv-$name" "$RG_CLIENT" slow-serve --bind "$RG_CLIENT4" --port "$INSIDE_PORT" \
		--delay 0.4 --bytes "$BYTES" || true
	rg_inject_start "x-$name" "$FWD_PORT" both-ends || true
	rg_app "cli-$name" "$RG_SERVER" fetch --to "$RG_GW_R4" --port "$FWD_PORT" --bytes "$BYTES" \
		--expect "$want"
	rg_wait_app "x-$name" 45
	rg_wait_app "srv-$name" 15
	CONNS+=("$RG_SERVER4 $(rg_app_field "cli-$name" sport) $INSIDE_PORT")
	if [ "$mode" = enforce ]; then
		rg_is "$(rg_app_field "cli-$name" outcome)" complete \
			"$mode: port forward: the outside client gets the whole answer intact"
	else
		rg_pass "$mode: port forward: fetch done ($(rg_app_field "cli-$name" outcome))"
	fi
	expect_one "$mode: port forward: the RST injected toward the inside server is forged, from the real client to the inside server, nat = the forwarded address" \
		rst rst.forged=true rst.direction=toserver "src_ip=$RG_SERVER4" "dest_ip=$RG_CLIENT4" \
		"dest_port=$INSIDE_PORT" nat.type=dnat "nat.dest_ip=$RG_GW_R4" "nat.dest_port=$FWD_PORT"
	n=$(rg_events_count "$EV" rst rst.forged=true "nat.dest_port=$FWD_PORT")
	n=$((n + $(rg_events_count "$EV" rst rst.forged=true "nat.src_port=$FWD_PORT")))
	if [ "$mode" = enforce ]; then
		local d
		d=$(rg_events_count "$EV" rst rst.forged=true verdict=drop "nat.dest_port=$FWD_PORT")
		d=$((d + $(rg_events_count "$EV" rst rst.forged=true verdict=drop "nat.src_port=$FWD_PORT")))
		[ "$n" -ge 1 ] && [ "$d" = "$n" ]
		rg_ok $? "$mode: port forward: every forged RST dropped ($d of $n)"
	else
		[ "$n" -ge 1 ] && [ "$n" -le 2 ]
		rg_ok $? "$mode: port forward: one or two forged RSTs ($n)"
	fi
}

# flows_per_connection DESC NAT: after the run, each connection of CONNS has exactly one flow
# event (from its client's real address and port) and, when NAT is 1, it has the nat object.
flows_per_connection() {
	local c ip cp sp n bad=()
	for c in "${CONNS[@]}"; do
		read -r ip cp sp <<<"$c"
		n=$(rg_events_count "$EV" flow "src_ip=$ip" "src_port=$cp" "dest_port=$sp" nat.type?)
		[ "$n" = 1 ] || bad+=("$ip port $cp -> $sp: $n flow events with a nat object")
	done
	# No half-flow of the outside view: nothing from a server to the gateway's outside address.
	n=$(rg_events_count "$EV" flow "dest_ip=$RG_GW_R4" "dest_port>=20000")
	n=$((n + $(rg_events_count "$EV" flow "dest_ip=$RG_GW_R6" "dest_port>=20000")))
	n=$((n + $(rg_events_count "$EV" flow "src_ip=$RG_CLIENT4" "src_port=$INSIDE_PORT")))
	[ "$n" = 0 ] || bad+=("$n flow events of an untranslated half")
	if [ ${#bad[@]} -eq 0 ]; then
		rg_pass "$1: one flow event per connection (${#CONNS[@]}), each with its nat object"
	else
		rg_fail "$1: one flow event per connection, each with its nat object" "${bad[@]}"
		rg_events_show "$EV" flow
	fi
}

# stop_run MODE: exit 0, the counters' nat line, flow events. 4 points.
stop_run() {
	local mode=$1 line
	rg_daemon_stop 5
	rg_is "$RG_DAEMON_RC" 0 "$mode: rstguard exits 0"
	line=$(awk '/^==== .* start: /{buf=""} /info: nat: lookups/{buf=$0} END{print buf}' "$RG_DAEMON_LOG")
	rg_diag "$line"
	if [ "$mode" = off ]; then
		[[ $line == *"nat: lookups 0,"* ]]
		rg_ok $? "$mode: no conntrack lookup" "$line"
	else
		# One lookup per connection at most (the reply half's first packet); each joined.
		local lk joined
		lk=$(sed -n 's/.*nat: lookups \([0-9]*\),.*/\1/p' <<<"$line")
		joined=$(sed -n 's/.*joined \([0-9]*\) .*/\1/p' <<<"$line")
		[ -n "$lk" ] && [ "$lk" -le "${#CONNS[@]}" ] && [ "$joined" = "$lk" ]
		rg_ok $? "$mode: at most one lookup per connection (${#CONNS[@]}), each joined" "$line"
	fi
	rg_check_events "$EV"
	if [ "$mode" = off ]; then
		local n bad=()
		n=$(rg_events_count "$EV" nat.type?)
		[ "$n" = 0 ] || bad+=("$n events with a nat object")
		n=$(rg_events_count "$EV" flow "dest_ip=$RG_CLIENT4")
		n=$((n + $(rg_events_count "$EV" flow "src_ip=$RG_CLIENT4")))
		[ "$n" = 1 ] || bad+=("$n flow events of the client's inside half, want 1")
		n=$(rg_events_count "$EV" flow "dest_ip=$RG_GW_R4" "dest_port>=20000")
		n=$((n + $(rg_events_count "$EV" flow "src_ip=$RG_GW_R4" "src_port>=20000")))
		[ "$n" = 1 ] || bad+=("$n flow events of the outside half, want 1")
		if [ ${#bad[@]} -eq 0 ]; then rg_pass "off: two half-flows, no nat object (as before NAT support)"
		else rg_fail "off: two half-flows, no nat object" "${bad[@]}"; rg_events_show "$EV" flow; fi
	else
		flows_per_connection "$mode" 1
	fi
}

for mode in detect enforce; do
	EV=$RG_TMP/events-$mode.json
	RG_DIAG_EVENTS="$RG_DIAG_EVENTS $EV"
	CONNS=()
	rg_daemon_up "$mode: rstguard binds the queue on the masquerading gateway" -m "$mode" -e "$EV"
	inject "$mode" 4
	inject "$mode" 6
	genuine "$mode" 4 refused
	genuine "$mode" 4 server-abort
	genuine "$mode" 4 client-abort
	genuine "$mode" 6 refused
	genuine "$mode" 6 server-abort
	forward "$mode"
	stop_run "$mode"
done

# nat.lookup = false: each half a flow of its own, as before.
EV=$RG_TMP/events-off.json
RG_DIAG_EVENTS="$RG_DIAG_EVENTS $EV"
CONF_OFF=$RG_TMP/off.conf
printf 'nat = { lookup = false; };\n' >"$CONF_OFF"
CONNS=()
rg_daemon_up "off: rstguard with nat.lookup = false" -m detect -e "$EV" -c "$CONF_OFF"
port=$NEXT_PORT
rg_app_serve "srv-off" "$RG_SERVER" slow-serve --bind "$RG_SERVER4" --port "$port" --delay 0.1 \
	--bytes 20000 || true
rg_app "cli-off" "$RG_CLIENT" fetch --to "$RG_SERVER4" --port "$port" --bytes 20000 --expect complete
rg_wait_app "srv-off" 15
rg_is "$(rg_app_field cli-off outcome)" complete "off: the fetch completes"
stop_run off
