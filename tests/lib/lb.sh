# shellcheck shell=bash
# shellcheck disable=SC2004 # RG_PIDS is netns.sh's associative array (keys are names)
# lb.sh: a load balancer that forgets idle flows, in the router namespace of netns.sh's test
# network, and the idle-then-talk endpoints of tests/lib/idleapp.py. Source it after netns.sh:
#   . "$(dirname "$0")/../lib/netns.sh"
#   . "$RG_LIB/lb.sh"
#
# The load balancer is Linux conntrack in the router: established flows are forgotten after
# LB_TIMEOUT seconds of silence (net.netfilter.nf_conntrack_tcp_timeout_established), a packet
# of a forgotten flow is not picked up again (nf_conntrack_tcp_loose=0) and so is INVALID, and
# the FORWARD chain either answers it with a RST (REJECT --reject-with tcp-reset, as AWS NLB
# does) or drops it (a black hole, as GCP Cloud NAT or Azure LB by default). Both families.
#
# Everything lives in the test's namespaces; lb_root_snapshot / lb_root_check let a test prove
# that the root namespace was left as it was found.

RG_IDLEAPP=$RG_LIB/idleapp.py
LB_TIMEOUT=""

# lb_begin TIMEOUT PLAN: the start of a load-balancer test: remember the root namespace's state,
# build the network with the queue rule, plan PLAN TAP points and put the load balancer (idle
# timeout TIMEOUT) in the router. Sets EV (the event file), CONF (a configuration file to write)
# and RG_DIAG_EVENTS.
lb_begin() {
	lb_root_snapshot
	rg_setup --queue-num "$RG_QUEUE_NUM"
	EV=$RG_TMP/events.json
	CONF=$RG_TMP/rstguard.conf
	RG_DIAG_EVENTS=$EV
	rg_plan "$2"
	lb_up "$1" || rg_bail "could not set up the load balancer in the router"
}

# lb_up TIMEOUT: conntrack in the router with an established timeout of TIMEOUT seconds and no
# loose pick-up. The rules come first: the first -m conntrack rule of a namespace is what starts
# conntrack there (and makes its sysctls meaningful). Must run before the test's connections:
# a connection that predates it has no conntrack entry and would be INVALID at once.
lb_up() {
	local t
	LB_TIMEOUT=$1
	for t in iptables ip6tables; do
		rg_ns "$RG_ROUTER" "$t" -w 5 -N LB_INVALID || return 1
		rg_ns "$RG_ROUTER" "$t" -w 5 -A FORWARD -p tcp -m conntrack --ctstate INVALID \
			-j LB_INVALID || return 1
	done
	rg_router_conntrack "nf_conntrack_tcp_timeout_established=$LB_TIMEOUT" \
		nf_conntrack_tcp_loose=0 || return 1
	[ "$(rg_ns "$RG_ROUTER" cat /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established)" = "$LB_TIMEOUT" ]
}

# lb_invalid ACTION [PORTS]: what the load balancer does with a packet of a flow it forgot,
# "rst" (REJECT --reject-with tcp-reset, to the sender) or "drop", for the server ports PORTS
# (comma-separated, either direction) or, without PORTS, for every port. Rules are appended:
# the first that matches wins.
lb_invalid() {
	local action=$1 ports=${2:-} t match=() target
	case $action in
	rst) target=(REJECT --reject-with tcp-reset) ;;
	drop) target=(DROP) ;;
	*) echo "lb_invalid: unknown action $action" >&2; return 1 ;;
	esac
	[ -n "$ports" ] && match=(-m multiport --ports "$ports")
	for t in iptables ip6tables; do
		rg_ns "$RG_ROUTER" "$t" -w 5 -A LB_INVALID -p tcp "${match[@]}" -j "${target[@]}" || return 1
	done
}

# lb_invalid_hits FAMILY(4|6) [PORTS]: packets of forgotten flows (INVALID) that the rule
# lb_invalid added for PORTS (as given there; empty: the rule for every port) has caught.
lb_invalid_hits() {
	local t=iptables want=" ${2:+multiport ports $2 }"
	[ "$1" = 6 ] && t=ip6tables
	rg_ns "$RG_ROUTER" "$t" -w 5 -L LB_INVALID -v -n -x 2>/dev/null |
		awk -v want="$want" -v any="${2:-}" 'NR > 2 {
			if ((any == "" && $0 !~ /multiport/) || (any != "" && index($0 " ", want))) { print $1; exit }
		}'
}

# lb_diag: the router's rules and conntrack table, as TAP comments.
lb_diag() {
	[ "$RG_NET_IS_UP" = 1 ] || return 0
	rg_diag "---- router FORWARD / LB_INVALID ----"
	rg_ns "$RG_ROUTER" iptables -w 5 -L -v -n -x 2>&1 | rg_diag
	rg_ns "$RG_ROUTER" ip6tables -w 5 -L -v -n -x 2>&1 | rg_diag
	rg_diag "---- router conntrack ----"
	rg_ns "$RG_ROUTER" cat /proc/net/nf_conntrack 2>&1 | head -n 20 | rg_diag
}

# ----------------------------------------------------------------------------------------------
# idleapp.py endpoints; results in $RG_TMP/NAME.json, stderr in NAME.err (as rg_app's)

# lb_serve NAME NS ADDR PORT [SERVE OPTS...]: the echo server, background, waits until it
# listens (bounded, 5 s). Global idleapp options come from LB_SERVE_GLOBAL (default: a 90 s
# socket timeout, as connections idle long, and a deadline of RG_APP_DEADLINE).
lb_serve() {
	local name=$1 ns=$2 addr=$3 port=$4 _
	shift 4
	rm -f "$RG_TMP/$name.ready"
	# shellcheck disable=SC2086 # word lists
	timeout $((RG_APP_DEADLINE + 10)) ip netns exec "$ns" "$RG_PY" "$RG_IDLEAPP" \
		--deadline "$RG_APP_DEADLINE" ${LB_SERVE_GLOBAL:---timeout 90} serve --bind "$addr" \
		--port "$port" --ready-file "$RG_TMP/$name.ready" "$@" \
		>"$RG_TMP/$name.json" 2>"$RG_TMP/$name.err" </dev/null &
	RG_PIDS[$name]=$!
	for _ in $(seq 1 50); do
		[ -s "$RG_TMP/$name.ready" ] && return 0
		rg__alive "${RG_PIDS[$name]}" || break
		sleep 0.1
	done
	rg_diag "idle server $name ($addr port $port) never became ready"
	rg_diag_file "$RG_TMP/$name.err" "$name stderr" 10
	return 1
}

# lb_client NAME NS CLIENT ARGS...: an idleapp client in the background (rg_wait_app NAME T).
# Its resumption mark file is $RG_TMP/NAME.mark.
lb_client() {
	local name=$1 ns=$2
	shift 2
	rm -f "$RG_TMP/$name.mark"
	timeout $((RG_APP_DEADLINE + 10)) ip netns exec "$ns" "$RG_PY" "$RG_IDLEAPP" \
		--deadline "$RG_APP_DEADLINE" client --mark-file "$RG_TMP/$name.mark" "$@" \
		>"$RG_TMP/$name.json" 2>"$RG_TMP/$name.err" </dev/null &
	RG_PIDS[$name]=$!
}

# lb_server_field NAME PEER_PORT FIELD: FIELD of server NAME's report on the connection from
# client port PEER_PORT.
lb_server_field() {
	"$RG_PY" "$RG_EVQ" get "$RG_TMP/$1.json" "$3" "peer_port=$2" 2>/dev/null | tail -n 1
}

# lb_wait_server NAME PEER_PORT: bounded wait (3 s) until server NAME has reported on the
# connection from client port PEER_PORT.
lb_wait_server() {
	local i
	for i in $(seq 1 30); do
		[ -n "$(lb_server_field "$1" "$2" bytes)" ] && return 0
		sleep 0.1
	done
	return 1
}

# lb_epoch TIMESTAMP: an event timestamp (2026-11-25T12:59:41.123456+0000) as epoch seconds.
lb_epoch() {
	"$RG_PY" -c 'import sys, datetime
print("%.6f" % datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp())' "$1"
}

# lb_fcmp A OP B: floating-point comparison (OP: < <= > >= ==), status 0 when true.
lb_fcmp() {
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
		if (op == "<") r = a < b; else if (op == "<=") r = a <= b; else if (op == ">") r = a > b;
		else if (op == ">=") r = a >= b; else r = a == b; exit !r }'
}

# lb_last_run_log: the daemon's stderr since the last "==== ... start:" header that
# rg_daemon_start writes, i.e. the log of the last run.
lb_last_run_log() {
	awk '/^==== .* start: / {buf = ""} {buf = buf $0 "\n"} END {printf "%s", buf}' "$RG_DAEMON_LOG"
}

# lb_expect_events DESC FILE N FILTER...: one TAP point, exactly N events match the filters
# (evq.py syntax; a bare word is an event_type). Waits up to RG_EVENT_TIMEOUT (5) s for them to
# appear, then RG_SETTLE (0.5) s for extra ones.
lb_expect_events() {
	local desc=$1 f=$2 n=$3 got
	shift 3
	if [ "$n" -gt 0 ]; then
		rg_wait_events "$f" "$n" "${RG_EVENT_TIMEOUT:-5}" "$@"
	fi
	sleep "${RG_SETTLE:-0.5}"
	got=$(rg_events_count "$f" "$@")
	if [ "$got" = "$n" ]; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "expected $n events matching: $*" "found $got; the events of these ports:"
		rg__filters "$@"
		"$RG_PY" "$RG_EVQ" show "$f" "${RG__F[@]}" 2>&1 | head -n 10 | rg_diag
	fi
}

# lb_reported_before_resume DESC FILE PORT APP: one TAP point, the first eviction event toward
# port PORT in FILE is stamped before client APP ended its silence.
lb_reported_before_resume() {
	local desc=$1 ts resume
	ts=$("$RG_PY" "$RG_EVQ" get "$2" timestamp eviction "dest_port=$3" | head -n 1)
	resume=$(rg_app_field "$4" resume_time)
	if [ -n "$ts" ] && [ -n "$resume" ] && lb_fcmp "$(lb_epoch "$ts")" "<" "$resume"; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "event '$ts', resumption $resume"
	fi
}

# lb_conn_events FILE CPORT SPORT [FILTER...]: events of one connection, either direction.
lb_conn_events() {
	local f=$1 c=$2 s=$3 a b
	shift 3
	a=$(rg_events_count "$f" "src_port=$c" "dest_port=$s" "$@")
	b=$(rg_events_count "$f" "src_port=$s" "dest_port=$c" "$@")
	echo $((a + b))
}

# ----------------------------------------------------------------------------------------------
# the root namespace must be left as found

# lb_root_state: what of the root namespace a test could conceivably touch: its links, its
# netfilter ruleset, the conntrack and forwarding sysctls.
lb_root_state() {
	local k
	timeout 5 ip -o link show 2>&1 | awk -F': ' '{print "link", $2}' | sed 's/@.*//' | sort
	for k in net/netfilter/nf_conntrack_tcp_timeout_established net/netfilter/nf_conntrack_tcp_loose \
		net/ipv4/ip_forward net/ipv6/conf/all/forwarding; do
		echo "sysctl $k=$(cat "/proc/sys/$k" 2>/dev/null)"
	done
	if command -v nft >/dev/null 2>&1; then
		timeout 5 nft list ruleset 2>&1 | sed 's/^/nft /'
	fi
}

lb_root_snapshot() {
	rg_init
	lb_root_state >"$RG_TMP/root.before"
}

# lb_finish: at the end of a test, the diagnostics if anything failed, then lb_root_check.
lb_finish() {
	if [ "$RG_TAP_FAILED" -gt 0 ]; then
		lb_diag
		rg_dump_context
	fi
	lb_root_check
}

# lb_root_check: two TAP points, after tearing the test network down here (the EXIT trap's
# teardown is then a no-op): none of our namespaces is left, and the root namespace is as found.
lb_root_check() {
	local left
	rg_kill_all
	rg_net_down
	left=$(timeout 5 ip netns list 2>/dev/null | awk -v p="$RG_PREFIX" 'index($1, p) == 1 {print $1}')
	if [ -z "$left" ]; then
		rg_pass "teardown: no namespace of this test is left"
	else
		rg_fail "teardown: no namespace of this test is left" "left: $left"
	fi
	lb_root_state >"$RG_TMP/root.after"
	if cmp -s "$RG_TMP/root.before" "$RG_TMP/root.after"; then
		rg_pass "teardown: root namespace links, netfilter ruleset and sysctls unchanged"
	else
		rg_fail "teardown: root namespace links, netfilter ruleset and sysctls unchanged"
		diff "$RG_TMP/root.before" "$RG_TMP/root.after" | head -n 20 | rg_diag
	fi
}
