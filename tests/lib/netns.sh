# shellcheck shell=bash
# netns.sh: the reusable namespace test network of rstguard's end-to-end tests, plus TAP helpers.
#
# Source it from a bash test:  . "$RG_SRCDIR/tests/lib/netns.sh"  (or relative to the test).
#
# Topology (four namespaces, created and deleted by the test; nothing ever lives in the root
# namespace: every veth is created inside a namespace with its peer in another one):
#
#   client ---------- gw ------------------ router ------------------ server
#   eth0         c0        r0          g0          s0           eth0
#   198.18.1.2   198.18.1.1  198.18.2.1  198.18.2.2  198.18.3.1   198.18.3.2
#   2001:db8:1::2 ..1::1     2001:db8:2::1 ..2::2    2001:db8:3::1 2001:db8:3::2
#
# gw is where rstguard runs (its NFQUEUE rule sits in gw's raw PREROUTING, so the queue sees
# packets before conntrack); router is where later tests put an on-path injector or a load
# balancer with short conntrack timeouts (rg_router_conntrack).
#
# Names: namespaces are "rgt<PID>-<role>" so parallel tests never collide and a crashed test's
# leftovers can be recognised (rg_net_up removes those whose PID is gone). Addresses come only
# from 198.18.0.0/15 and 2001:db8::/32 (benchmarking and documentation ranges).
#
# Every wait is a bounded poll; every external program that could block runs under `timeout`.

# ----------------------------------------------------------------------------------------------
# locations

if [ -z "${RG_SRCDIR:-}" ]; then
	RG_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
if [ -z "${RSTGUARD:-}" ]; then
	if [ -n "${RG_BUILDDIR:-}" ]; then
		RSTGUARD=$RG_BUILDDIR/src/rstguard
	else
		RSTGUARD=$RG_SRCDIR/src/rstguard
	fi
fi
RG_PY=/usr/bin/python3            # Debian's python with python3-scapy; never a pyenv shim
RG_LIB=$RG_SRCDIR/tests/lib
RG_TCPAPP=$RG_LIB/tcpapp.py
RG_EVQ=$RG_LIB/evq.py
export RG_SRCDIR RSTGUARD
# shellcheck source=tests/lib/nsbase.sh
. "$RG_LIB/nsbase.sh"

# ----------------------------------------------------------------------------------------------
# names and addresses

RG_PREFIX="rgt$$-"
RG_CLIENT=${RG_PREFIX}c
RG_GW=${RG_PREFIX}gw
RG_ROUTER=${RG_PREFIX}r
RG_SERVER=${RG_PREFIX}s

RG_CLIENT4=198.18.1.2
RG_GW_C4=198.18.1.1
RG_GW_R4=198.18.2.1
RG_ROUTER_G4=198.18.2.2
RG_ROUTER_S4=198.18.3.1
RG_SERVER4=198.18.3.2
RG_CLIENT6=2001:db8:1::2
RG_GW_C6=2001:db8:1::1
RG_GW_R6=2001:db8:2::1
RG_ROUTER_G6=2001:db8:2::2
RG_ROUTER_S6=2001:db8:3::1
RG_SERVER6=2001:db8:3::2

# Interface names inside the namespaces (short: links are limited to 15 characters).
RG_IF_CLIENT=eth0      # client -> gw
RG_IF_GW_C=c0          # gw -> client
RG_IF_GW_R=r0          # gw -> router
RG_IF_ROUTER_G=g0      # router -> gw
RG_IF_ROUTER_S=s0      # router -> server
RG_IF_SERVER=eth0      # server -> router

: "${RG_QUEUE_NUM:=0}"

# State.
RG_TMP=""
RG_INITED=0
RG_NET_IS_UP=0
RG_DAEMON_PID=""
RG_DAEMON_RC=""
RG_DAEMON_LOG=""
RG_DAEMON_OUT=""
RG_TAP_N=0
RG_TAP_FAILED=0
RG_TAP_PLANNED=""
RG_EVENTS_COUNT=0
RG_CLEANUP_HOOK=""            # a function name the test may set; called first at cleanup
RG_DIAG_EVENTS=""             # event file(s) to summarise on failure
declare -A RG_PIDS=()         # background helpers by name
RG__F=()                      # scratch: event filters (rg__filters)
RG_FP_RULE=()                 # RG_FASTPATH=1: the queue rule's arguments (rg_queue_rule)

# ----------------------------------------------------------------------------------------------
# TAP

# Print each argument line (or stdin) as a TAP comment.
rg_diag() {
	local line
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | while IFS= read -r line; do printf '# %s\n' "$line"; done
	else
		while IFS= read -r line; do printf '# %s\n' "$line"; done
	fi
}

# rg_diag_file FILE [TITLE [LINES]]: the last LINES (default 40) lines of FILE as comments.
rg_diag_file() {
	local f=$1 title=${2:-$1} n=${3:-40}
	if [ -s "$f" ]; then
		rg_diag "---- $title (last $n lines) ----"
		tail -n "$n" "$f" | rg_diag
	else
		rg_diag "---- $title: empty or missing ----"
	fi
}

rg_plan() {
	RG_TAP_PLANNED=$1
	echo "1..$1"
}

rg_pass() {
	RG_TAP_N=$((RG_TAP_N + 1))
	echo "ok $RG_TAP_N - $1"
}

# rg_fail DESC [DIAG...]
rg_fail() {
	RG_TAP_N=$((RG_TAP_N + 1))
	RG_TAP_FAILED=$((RG_TAP_FAILED + 1))
	echo "not ok $RG_TAP_N - $1"
	shift
	[ $# -gt 0 ] && rg_diag "$@"
	return 0
}

# rg_ok STATUS DESC [DIAG...]: pass when STATUS is 0.
rg_ok() {
	local st=$1 desc=$2
	shift 2
	if [ "$st" -eq 0 ]; then rg_pass "$desc"; else rg_fail "$desc" "$@"; fi
}

# rg_is GOT WANT DESC
rg_is() {
	if [ "$1" = "$2" ]; then
		rg_pass "$3"
	else
		rg_fail "$3" "got:      '$1'" "expected: '$2'"
	fi
}

# rg_skip REASON: skip the whole test. Under CI (CI=true) a skip would hide a broken setup, so
# it fails instead unless RG_ALLOW_SKIP=1.
rg_skip() {
	if [ "${CI:-}" = true ] && [ "${RG_ALLOW_SKIP:-0}" != 1 ]; then
		echo "Bail out! would skip under CI: $1"
		exit 1
	fi
	echo "1..0 # SKIP $1"
	exit 0
}

# rg_bail REASON: a setup step that should have worked did not.
rg_bail() {
	echo "Bail out! $1"
	RG_TAP_FAILED=$((RG_TAP_FAILED + 1))
	exit 1
}

# rg_require_root_net: skip unless this can build namespaces and queue rules at all.
rg_require_root_net() {
	local c
	[ "$(id -u)" -eq 0 ] || rg_skip "needs root (network namespaces, iptables, NFQUEUE)"
	for c in ip iptables ip6tables timeout sysctl; do
		command -v "$c" >/dev/null 2>&1 || rg_skip "$c not installed"
	done
	[ -x "$RG_PY" ] || rg_skip "$RG_PY not installed"
}

# rg_require_daemon: skip (fail under CI) when the daemon has not been built.
rg_require_daemon() {
	[ -x "$RSTGUARD" ] || rg_skip "rstguard not built ($RSTGUARD)"
}

# ----------------------------------------------------------------------------------------------
# setup and teardown

# rg_init: the per-test temp dir and the traps (idempotent; rg_net_up calls it).
rg_init() {
	[ "$RG_INITED" -eq 1 ] && return 0
	RG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rgt.XXXXXX") || rg_bail "mktemp failed"
	RG_DAEMON_LOG=$RG_TMP/daemon.log
	RG_DAEMON_OUT=$RG_TMP/daemon.out
	RG_INITED=1
	trap rg__on_exit EXIT
	trap 'rg__on_signal INT' INT
	trap 'rg__on_signal TERM' TERM
	trap 'rg__on_signal HUP' HUP
}

rg__on_signal() {
	echo "# interrupted by SIG$1" >&2
	exit 1  # runs the EXIT trap
}

rg__on_exit() {
	local st=$?
	trap - EXIT INT TERM HUP
	set +e
	if [ -n "$RG_CLEANUP_HOOK" ]; then
		"$RG_CLEANUP_HOOK"
	fi
	if [ "$RG_TAP_FAILED" -gt 0 ] || [ "$st" -ne 0 ]; then
		rg_dump_context
	fi
	if [ -n "$RG_DAEMON_PID" ]; then
		kill -TERM "$RG_DAEMON_PID" 2>/dev/null
		rg__wait_gone "$RG_DAEMON_PID" 30 || kill -KILL "$RG_DAEMON_PID" 2>/dev/null
		RG_DAEMON_PID=""
	fi
	rg_kill_all
	rg_net_down
	# RG_FASTPATH=1: a daemon killed with -9 leaves its bpffs mounted in our temp dir.
	if [ -n "$RG_TMP" ] && mountpoint -q "$RG_TMP/bpf" 2>/dev/null; then
		umount -l "$RG_TMP/bpf"
	fi
	if [ -n "$RG_TMP" ] && [ -d "$RG_TMP" ]; then
		if [ "${RG_KEEP_TMP:-0}" = 1 ]; then
			echo "# kept $RG_TMP" >&2
		else
			rm -rf -- "$RG_TMP"
		fi
	fi
	if [ -n "$RG_TAP_PLANNED" ] && [ "$RG_TAP_N" -ne "$RG_TAP_PLANNED" ]; then
		echo "# planned $RG_TAP_PLANNED tests but ran $RG_TAP_N"
		[ "$st" -eq 0 ] && st=1
	fi
	if [ "$st" -eq 0 ] && [ "$RG_TAP_FAILED" -gt 0 ]; then
		st=1
	fi
	exit "$st"
}

# The namespaces of this test that exist now.
rg__our_namespaces() {
	timeout 5 ip netns list 2>/dev/null | awk -v p="$RG_PREFIX" 'index($1, p) == 1 {print $1}'
}

# rg_net_down: kill whatever runs in our namespaces, delete them (which deletes the veths).
# Idempotent and safe to call at any point.
rg_net_down() {
	local ns
	for ns in $(rg__our_namespaces); do
		rg__ns_kill_and_delete "$ns"
	done
	RG_NET_IS_UP=0
}

# rg__wait_no_tentative NS: bounded wait until no IPv6 address is still tentative.
rg__wait_no_tentative() {
	local i
	for i in $(seq 1 50); do
		if [ -z "$(timeout 5 ip -n "$1" -6 addr show tentative 2>/dev/null)" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "tentative IPv6 addresses in $1" >&2
	return 1
}

# rg__addr NS DEV ADDR4/LEN ADDR6/LEN
rg__addr() {
	timeout 5 ip -n "$1" addr add "$3" dev "$2" &&
		timeout 5 ip -n "$1" -6 addr add "$4" dev "$2" nodad &&
		timeout 5 ip -n "$1" link set "$2" up
}

# rg_net_up: build the four namespaces and their links. Returns 2 when namespaces cannot be
# created at all (the caller skips), 1 when a later step failed (a real failure, with the
# reason on stderr), 0 when the network is up and a TCP connection crosses it both ways.
rg_net_up() {
	local ns
	rg_init
	rg__reap_stale rgt
	rg_net_down  # a namespace of a dead earlier test whose PID was reused would block ours
	if ! timeout 5 ip netns add "$RG_CLIENT" 2>"$RG_TMP/netns-add.err"; then
		cat "$RG_TMP/netns-add.err" >&2
		return 2
	fi
	RG_NET_IS_UP=1
	for ns in "$RG_GW" "$RG_ROUTER" "$RG_SERVER"; do
		timeout 5 ip netns add "$ns" || return 1
	done
	for ns in "$RG_CLIENT" "$RG_GW" "$RG_ROUTER" "$RG_SERVER"; do
		timeout 5 ip -n "$ns" link set lo up || return 1
		# No duplicate address detection: addresses are usable at once (set before any link
		# exists so "default" applies to the veths too; "nodad" on each address as well).
		rg__sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 || return 1
	done
	for ns in "$RG_GW" "$RG_ROUTER"; do
		rg__sysctl "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
	done

	rg__veth "$RG_CLIENT" "$RG_IF_CLIENT" "$RG_GW" "$RG_IF_GW_C" || return 1
	rg__veth "$RG_GW" "$RG_IF_GW_R" "$RG_ROUTER" "$RG_IF_ROUTER_G" || return 1
	rg__veth "$RG_ROUTER" "$RG_IF_ROUTER_S" "$RG_SERVER" "$RG_IF_SERVER" || return 1

	rg__addr "$RG_CLIENT" "$RG_IF_CLIENT" "$RG_CLIENT4/24" "$RG_CLIENT6/64" || return 1
	rg__addr "$RG_GW" "$RG_IF_GW_C" "$RG_GW_C4/24" "$RG_GW_C6/64" || return 1
	rg__addr "$RG_GW" "$RG_IF_GW_R" "$RG_GW_R4/24" "$RG_GW_R6/64" || return 1
	rg__addr "$RG_ROUTER" "$RG_IF_ROUTER_G" "$RG_ROUTER_G4/24" "$RG_ROUTER_G6/64" || return 1
	rg__addr "$RG_ROUTER" "$RG_IF_ROUTER_S" "$RG_ROUTER_S4/24" "$RG_ROUTER_S6/64" || return 1
	rg__addr "$RG_SERVER" "$RG_IF_SERVER" "$RG_SERVER4/24" "$RG_SERVER6/64" || return 1

	# Routes.
	timeout 5 ip -n "$RG_CLIENT" route add default via "$RG_GW_C4" || return 1
	timeout 5 ip -n "$RG_CLIENT" -6 route add default via "$RG_GW_C6" || return 1
	timeout 5 ip -n "$RG_GW" route add 198.18.3.0/24 via "$RG_ROUTER_G4" || return 1
	timeout 5 ip -n "$RG_GW" -6 route add 2001:db8:3::/64 via "$RG_ROUTER_G6" || return 1
	timeout 5 ip -n "$RG_ROUTER" route add 198.18.1.0/24 via "$RG_GW_R4" || return 1
	timeout 5 ip -n "$RG_ROUTER" -6 route add 2001:db8:1::/64 via "$RG_GW_R6" || return 1
	timeout 5 ip -n "$RG_SERVER" route add default via "$RG_ROUTER_S4" || return 1
	timeout 5 ip -n "$RG_SERVER" -6 route add default via "$RG_ROUTER_S6" || return 1

	rg__wait_link "$RG_CLIENT" "$RG_IF_CLIENT" || return 1
	rg__wait_link "$RG_GW" "$RG_IF_GW_C" || return 1
	rg__wait_link "$RG_GW" "$RG_IF_GW_R" || return 1
	rg__wait_link "$RG_ROUTER" "$RG_IF_ROUTER_G" || return 1
	rg__wait_link "$RG_ROUTER" "$RG_IF_ROUTER_S" || return 1
	rg__wait_link "$RG_SERVER" "$RG_IF_SERVER" || return 1
	for ns in "$RG_CLIENT" "$RG_GW" "$RG_ROUTER" "$RG_SERVER"; do
		rg__wait_no_tentative "$ns" || return 1
	done

	# End-to-end reachability, both families: a SYN to a closed port must come back as a RST
	# (ECONNREFUSED). This runs before any queue rule, so the daemon never sees it.
	if [ "${RG_NET_NOCHECK:-0}" != 1 ]; then
		rg_app netcheck4 "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER4" --port 9 ||
			{ echo "IPv4 client->server path broken: $(cat "$RG_TMP/netcheck4.json")" >&2; return 1; }
		rg_app netcheck6 "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER6" --port 9 ||
			{ echo "IPv6 client->server path broken: $(cat "$RG_TMP/netcheck6.json")" >&2; return 1; }
	fi
	return 0
}

# rg_setup_net: require root and the daemon and build the network, skipping when the machine
# cannot create namespaces and bailing out when something that should work did not. No queue
# rule (a test that installs its own calls this instead of rg_setup).
rg_setup_net() {
	local st
	rg_require_root_net
	rg_require_daemon
	rg_net_up
	st=$?
	[ "$st" -eq 2 ] && rg_skip "cannot create network namespaces"
	[ "$st" -ne 0 ] && rg_bail "could not build the test network"
}

# rg_setup [--bypass] [QUEUE ARGS...]: rg_setup_net, then install the queue rule (skipping when
# NFQUEUE is unavailable).
rg_setup() {
	rg_setup_net
	rg_queue_rule "$@" 2>"$RG_TMP/queue-rule.err" ||
		rg_skip "iptables -j NFQUEUE unavailable: $(head -n 1 "$RG_TMP/queue-rule.err")"
}

# rg_router_conntrack KEY=VALUE...: conntrack sysctls in the router namespace, e.g.
#   rg_router_conntrack nf_conntrack_tcp_timeout_established=5 nf_conntrack_tcp_loose=0
# (the "net.netfilter." prefix is added when missing). For simulating a load balancer or NAT
# with a short idle timeout; the router also needs a rule that uses conntrack to matter, e.g.
#   rg_ns "$RG_ROUTER" iptables -A FORWARD -p tcp -m conntrack --ctstate INVALID -j DROP
rg_router_conntrack() {
	local kv args=()
	for kv in "$@"; do
		case $kv in
		net.*) args+=("$kv") ;;
		*) args+=("net.netfilter.$kv") ;;
		esac
	done
	rg__sysctl "$RG_ROUTER" "${args[@]}"
}

# rg_gw_masquerade [PORTS]: make gw a masquerading gateway (issue 12): connections from the client
# side leave toward the router with gw's outside address (RG_GW_R4, RG_GW_R6), IPv4 and IPv6,
# their source ports mapped into PORTS (default 20000-29999, so that a NAT port never equals the
# client's own port and a mistake cannot hide). The queue rule stays in raw PREROUTING, before
# conntrack: the client's packets reach it with the inside tuple, the server's answers with the
# outside one.
rg_gw_masquerade() {
	local ports=${1:-20000-29999} t
	for t in iptables ip6tables; do
		timeout 10 ip netns exec "$RG_GW" "$t" -w 5 -t nat -A POSTROUTING -o "$RG_IF_GW_R" -p tcp \
			-j MASQUERADE --to-ports "$ports" || return 1
	done
}

# rg_gw_port_forward PORT TO4 TO6: forward gw's outside PORT (on RG_GW_R4 / RG_GW_R6) to an
# inside server (DNAT, "ADDR:PORT" for IPv4, "[ADDR]:PORT" for IPv6).
rg_gw_port_forward() {
	timeout 10 ip netns exec "$RG_GW" iptables -w 5 -t nat -A PREROUTING -i "$RG_IF_GW_R" -p tcp \
		-d "$RG_GW_R4" --dport "$1" -j DNAT --to-destination "$2" || return 1
	timeout 10 ip netns exec "$RG_GW" ip6tables -w 5 -t nat -A PREROUTING -i "$RG_IF_GW_R" -p tcp \
		-d "$RG_GW_R6" --dport "$1" -j DNAT --to-destination "$3"
}

# rg_ns NS CMD...: run a command inside a namespace (bounded to 30 s).
rg_ns() {
	local ns=$1
	shift
	timeout 30 ip netns exec "$ns" "$@"
}

# ----------------------------------------------------------------------------------------------
# the queue rule

# rg_queue_rule [--bypass] [QUEUE ARGS...]: in gw's raw PREROUTING (before conntrack), send all
# TCP to NFQUEUE for IPv4 and IPv6. QUEUE ARGS replace the default "--queue-num $RG_QUEUE_NUM".
# With RG_FASTPATH=1 (the second run of the e2e suite, docs/fastpath.md) the rule also carries the
# fast path's match on the selector the daemon pins in $RG_TMP/bpf; until a daemon has pinned it,
# the rule is only remembered, and rg_daemon_start adds it (again) once the daemon has.
rg_queue_rule() {
	local bypass=() qargs=(--queue-num "$RG_QUEUE_NUM") t match=()
	if [ "${1:-}" = --bypass ]; then
		bypass=(--queue-bypass)
		shift
	fi
	[ $# -gt 0 ] && qargs=("$@")
	if [ "${RG_FASTPATH:-0}" = 1 ]; then
		RG_FP_RULE=("${qargs[@]}" "${bypass[@]}")
		[ -e "$RG_TMP/bpf/selector" ] || return 0
		match=(-m bpf --object-pinned "$RG_TMP/bpf/selector")
	fi
	for t in iptables ip6tables; do
		timeout 10 ip netns exec "$RG_GW" "$t" -w 5 -t raw -A PREROUTING -p tcp "${match[@]}" \
			-j NFQUEUE "${qargs[@]}" "${bypass[@]}" || return 1
	done
}

# RG_FASTPATH=1: the daemon has pinned a new selector; make the remembered queue rule use it (a
# rule keeps the program it was added with).
rg__fastpath_rule() {
	local i
	for i in $(seq 1 50); do
		[ -e "$RG_TMP/bpf/selector" ] && break
		rg_daemon_alive || return 1
		sleep 0.1
	done
	[ -e "$RG_TMP/bpf/selector" ] || { rg_diag "RG_FASTPATH: no selector pinned in $RG_TMP/bpf"; return 1; }
	[ "${#RG_FP_RULE[@]}" -gt 0 ] || return 0
	rg_queue_rule_clear && rg_queue_rule "${RG_FP_RULE[@]}"
}

# rg_queue_rule_clear: remove the queue rules (flush gw's raw PREROUTING, both families).
rg_queue_rule_clear() {
	local t
	for t in iptables ip6tables; do
		timeout 10 ip netns exec "$RG_GW" "$t" -w 5 -t raw -F PREROUTING || return 1
	done
}

# rg_queue_line [NUM]: gw's /proc/net/netfilter/nfnetlink_queue line for queue NUM, or nothing
# when no program is bound to it. Fields: queue portid waiting copy_mode copy_range
# queue_dropped user_dropped id_sequence 1.
rg_queue_line() {
	timeout 5 ip netns exec "$RG_GW" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
		awk -v q="${1:-$RG_QUEUE_NUM}" '$1 == q'
}

# rg_queue_drops [NUM]: "QUEUE_DROPPED USER_DROPPED" of the queue (empty when unbound).
rg_queue_drops() {
	rg_queue_line "${1:-$RG_QUEUE_NUM}" | awk '{print $6, $7}'
}

# rg_queue_seq [NUM]: the queue's id sequence (packets queued so far), or empty.
rg_queue_seq() {
	rg_queue_line "${1:-$RG_QUEUE_NUM}" | awk '{print $8}'
}

# rg_wait_queue_bound [NUM [TIMEOUT]]: bounded poll until a program is bound to queue NUM.
rg_wait_queue_bound() {
	local q=${1:-$RG_QUEUE_NUM} t=${2:-5} i
	for i in $(seq 1 $((t * 10))); do
		[ -n "$(rg_queue_line "$q")" ] && return 0
		if [ -n "$RG_DAEMON_PID" ] && ! rg_daemon_alive; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# rg_wait_queue_unbound [NUM [TIMEOUT]]
rg_wait_queue_unbound() {
	local q=${1:-$RG_QUEUE_NUM} t=${2:-5} i
	for i in $(seq 1 $((t * 10))); do
		[ -z "$(rg_queue_line "$q")" ] && return 0
		sleep 0.1
	done
	return 1
}

# ----------------------------------------------------------------------------------------------
# processes

# rg_wait_pid PID TIMEOUT_SECONDS: wait (bounded) for a child of this shell and return its exit
# status; on timeout kill it and return 124.
rg_wait_pid() {
	local pid=$1 t=$2 st
	if ! rg__wait_gone "$pid" $((t * 10)); then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid" 2>/dev/null
	st=$?
	return "$st"
}

# rg_kill_all: stop every background helper started with rg_serve / rg_bg.
rg_kill_all() {
	local name pid
	for name in "${!RG_PIDS[@]}"; do
		pid=${RG_PIDS[$name]}
		if rg__alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			rg__wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		unset "RG_PIDS[$name]"
	done
}

# ----------------------------------------------------------------------------------------------
# applications (tests/lib/tcpapp.py); results land in $RG_TMP/NAME.json, stderr in NAME.err

: "${RG_APP_DEADLINE:=60}"

# rg_app NAME NS [TCPAPP GLOBAL OPTS] SUBCOMMAND ARGS...: run a client in the foreground;
# returns its exit status (0 = the expected outcome).
rg_app() {
	local name=$1 ns=$2
	shift 2
	timeout $((RG_APP_DEADLINE + 10)) ip netns exec "$ns" "$RG_PY" "$RG_TCPAPP" \
		--deadline "$RG_APP_DEADLINE" "$@" >"$RG_TMP/$name.json" 2>"$RG_TMP/$name.err"
}

# rg_bg NAME NS [GLOBAL OPTS] SUBCOMMAND ARGS...: the same in the background (rg_wait_app).
rg_bg() {
	local name=$1 ns=$2
	shift 2
	timeout $((RG_APP_DEADLINE + 10)) ip netns exec "$ns" "$RG_PY" "$RG_TCPAPP" \
		--deadline "$RG_APP_DEADLINE" "$@" >"$RG_TMP/$name.json" 2>"$RG_TMP/$name.err" </dev/null &
	RG_PIDS[$name]=$!
}

# rg_serve NAME NS ADDR PORT MODE [SERVE OPTS...]: start a server in the background and wait
# (bounded, 5 s) until it listens. Returns 1 with a diagnostic when it never became ready.
rg_serve() {
	local name=$1 ns=$2 addr=$3 port=$4 mode=$5 i
	shift 5
	rm -f "$RG_TMP/$name.ready"
	rg_bg "$name" "$ns" serve --bind "$addr" --port "$port" --mode "$mode" \
		--ready-file "$RG_TMP/$name.ready" "$@"
	for i in $(seq 1 50); do
		[ -s "$RG_TMP/$name.ready" ] && return 0
		rg__alive "${RG_PIDS[$name]}" || break
		sleep 0.1
	done
	rg_diag "server $name ($mode on $addr port $port) never became ready"
	rg_diag_file "$RG_TMP/$name.err" "$name stderr" 10
	return 1
}

# rg_wait_app NAME TIMEOUT: wait for a background helper; returns its exit status.
rg_wait_app() {
	local st
	rg_wait_pid "${RG_PIDS[$1]}" "$2"
	st=$?
	unset "RG_PIDS[$1]"
	return "$st"
}

# rg_app_ok NAME TIMEOUT DESC: one TAP point, background helper NAME ends within TIMEOUT seconds
# with the outcome its mode expects (its output and stderr are the diagnostic otherwise).
# Returns that status.
rg_app_ok() {
	local st
	rg_wait_app "$1" "$2"
	st=$?
	rg_ok "$st" "$3" "$(cat "$RG_TMP/$1.json" "$RG_TMP/$1.err" 2>/dev/null)"
	return "$st"
}

# rg_app_field NAME FIELD: FIELD of the last JSON line the helper printed.
rg_app_field() {
	"$RG_PY" "$RG_EVQ" get "$RG_TMP/$1.json" "$2" 2>/dev/null | tail -n 1
}

# rg_app_diag NAME: the helper's output and stderr as TAP comments.
rg_app_diag() {
	rg_diag_file "$RG_TMP/$1.json" "$1 result" 5
	rg_diag_file "$RG_TMP/$1.err" "$1 stderr" 10
}

# ----------------------------------------------------------------------------------------------
# the daemon

rg_daemon_alive() {
	[ -n "$RG_DAEMON_PID" ] && rg__alive "$RG_DAEMON_PID"
}

# rg_daemon_start ARGS...: run $RSTGUARD ARGS in gw in the background (stdout to
# $RG_DAEMON_OUT, and also to our stdout when RG_DAEMON_TEE=1; stderr appended to
# $RG_DAEMON_LOG), then wait up to RG_BIND_TIMEOUT (5) s
# until it is bound to queue $RG_QUEUE_NUM. Returns 1 (and leaves RG_DAEMON_RC set when it
# died) otherwise.
rg_daemon_start() {
	RG_DAEMON_RC=""
	echo "==== $(date '+%T.%N') start: $RSTGUARD $*" >>"$RG_DAEMON_LOG"
	local run=(ip netns exec "$RG_GW")
	if [ "${RG_FASTPATH:-0}" = 1 ]; then
		# The pins must be visible to the rules added here: the daemon keeps our mount
		# namespace (ip netns exec would give it its own, with its own /sys).
		set -- --fast-path="$RG_TMP/bpf" "$@"
		run=(nsenter --net="/run/netns/$RG_GW")
		mkdir -p "$RG_TMP/bpf"
	fi
	if [ "${RG_DAEMON_TEE:-0}" = 1 ]; then
		# Also show stdout (events with -e -) on our stdout as the daemon writes it; tee writes
		# to stdout before the file, so a line seen in the file is already on the terminal.
		"${run[@]}" "$RSTGUARD" "$@" > >(tee -a "$RG_DAEMON_OUT") \
			2>>"$RG_DAEMON_LOG" </dev/null &
	else
		"${run[@]}" "$RSTGUARD" "$@" >>"$RG_DAEMON_OUT" 2>>"$RG_DAEMON_LOG" </dev/null &
	fi
	RG_DAEMON_PID=$!
	if rg_wait_queue_bound "$RG_QUEUE_NUM" "${RG_BIND_TIMEOUT:-5}"; then
		if [ "${RG_FASTPATH:-0}" = 1 ] && ! rg__fastpath_rule; then
			rg_diag "RG_FASTPATH: could not add the queue rule with the fast-path match"
			return 1
		fi
		return 0
	fi
	if ! rg_daemon_alive; then
		wait "$RG_DAEMON_PID" 2>/dev/null
		RG_DAEMON_RC=$?
		rg_diag "rstguard exited with status $RG_DAEMON_RC before binding queue $RG_QUEUE_NUM"
		RG_DAEMON_PID=""
	else
		rg_diag "rstguard (pid $RG_DAEMON_PID) did not bind queue $RG_QUEUE_NUM within ${RG_BIND_TIMEOUT:-5} s"
	fi
	return 1
}

# rg_daemon_up DESC ARGS...: rg_daemon_start ARGS as the TAP point DESC; the test cannot go on
# without the daemon, so it bails out when the daemon does not come up.
rg_daemon_up() {
	local desc=$1
	shift
	if rg_daemon_start "$@"; then
		rg_pass "$desc"
	else
		rg_fail "$desc"
		rg_bail "the daemon did not start"
	fi
}

# rg_check_events FILE: one TAP point, every line of FILE is an event of the documented shape.
rg_check_events() {
	local out
	if out=$("$RG_PY" "$RG_EVQ" validate "$1" 2>&1); then
		rg_pass "all $(wc -l <"$1") event lines are JSON objects of the documented shape"
	else
		rg_fail "all event lines are JSON objects of the documented shape"
		printf '%s\n' "$out" | head -n 30 | rg_diag
	fi
}

# rg_daemon_signal SIG
rg_daemon_signal() {
	[ -n "$RG_DAEMON_PID" ] && kill -"$1" "$RG_DAEMON_PID"
}

# rg_daemon_stop [TIMEOUT]: SIGTERM, wait (bounded, default 5 s), RG_DAEMON_RC = exit status
# ("timeout" if it had to be killed). Returns 0 only for a clean exit 0.
rg_daemon_stop() {
	local t=${1:-5}
	[ -z "$RG_DAEMON_PID" ] && { RG_DAEMON_RC="not running"; return 1; }
	echo "==== $(date '+%T.%N') SIGTERM" >>"$RG_DAEMON_LOG"
	kill -TERM "$RG_DAEMON_PID" 2>/dev/null
	if rg__wait_gone "$RG_DAEMON_PID" $((t * 10)); then
		wait "$RG_DAEMON_PID" 2>/dev/null
		RG_DAEMON_RC=$?
	else
		kill -KILL "$RG_DAEMON_PID" 2>/dev/null
		wait "$RG_DAEMON_PID" 2>/dev/null
		RG_DAEMON_RC=timeout
	fi
	RG_DAEMON_PID=""
	[ "$RG_DAEMON_RC" = 0 ]
}

# rg_daemon_kill9: SIGKILL, reap; RG_DAEMON_RC = exit status (137). (stderr is silenced for
# the whole body: bash reports a job killed by a signal when it reaps it, wherever that is.)
rg_daemon_kill9() {
	[ -z "$RG_DAEMON_PID" ] && return 1
	echo "==== $(date '+%T.%N') SIGKILL" >>"$RG_DAEMON_LOG"
	rg__kill9_reap 2>/dev/null
}

rg__kill9_reap() {
	kill -KILL "$RG_DAEMON_PID"
	rg__wait_gone "$RG_DAEMON_PID" 50
	wait "$RG_DAEMON_PID"
	RG_DAEMON_RC=$?
	RG_DAEMON_PID=""
}

# ----------------------------------------------------------------------------------------------
# events (tests/lib/evq.py)

# rg_events_count FILE [FILTER...]: number of events matching the filters (see evq.py); a bare
# word FILTER means event_type=WORD.
rg_events_count() {
	local f=$1
	shift
	rg__filters "$@"
	"$RG_PY" "$RG_EVQ" count "$f" "${RG__F[@]}" 2>/dev/null || echo 0
}

# rg__filters FILTER...: the filters in RG__F, a bare word turned into event_type=WORD.
rg__filters() {
	local a
	RG__F=()
	for a in "$@"; do
		case $a in
		*=* | *\?) RG__F+=("$a") ;;  # also covers >= and <=
		*) RG__F+=("event_type=$a") ;;
		esac
	done
}

# rg_wait_events FILE COUNT TIMEOUT [FILTER...]: bounded poll until FILE has at least COUNT
# events matching (a bare word filter is an event_type). RG_EVENTS_COUNT holds the last count.
rg_wait_events() {
	local f=$1 want=$2 t=$3 i
	shift 3
	for i in $(seq 1 $((t * 10))); do
		RG_EVENTS_COUNT=$(rg_events_count "$f" "$@")
		[ "$RG_EVENTS_COUNT" -ge "$want" ] && return 0
		sleep 0.1
	done
	RG_EVENTS_COUNT=$(rg_events_count "$f" "$@")
	[ "$RG_EVENTS_COUNT" -ge "$want" ]
}

# rg_events_show FILE [FILTER...]: matching events as TAP comments (one summary line each).
rg_events_show() {
	local f=$1
	shift
	rg__filters "$@"
	"$RG_PY" "$RG_EVQ" summary "$f" "${RG__F[@]}" 2>&1 | rg_diag
}

# rg_rst_count FILE PORT_A PORT_B: rst events between these two ports, either direction.
rg_rst_count() {
	local a b
	a=$(rg_events_count "$1" rst "src_port=$2" "dest_port=$3")
	b=$(rg_events_count "$1" rst "src_port=$3" "dest_port=$2")
	echo $((a + b))
}

# rg_expect_rst DESC FILE FROM_IP FROM_PORT TO_IP TO_PORT [FILTER...]: two TAP points: exactly
# one rst event between the two ports (either direction; waits up to RG_EVENT_TIMEOUT (5) s for
# the first, then RG_SETTLE (0.5) s for any duplicate), and that event is from FROM to TO with
# the extra FILTERs (e.g. rst.cause=refused verdict=accept).
rg_expect_rst() {
	local desc=$1 f=$2 fip=$3 fport=$4 tip=$5 tport=$6 n
	shift 6
	rg_wait_events "$f" 1 "${RG_EVENT_TIMEOUT:-5}" rst "src_port=$fport" "dest_port=$tport"
	sleep "${RG_SETTLE:-0.5}"
	n=$(rg_rst_count "$f" "$fport" "$tport")
	if [ "$n" = 1 ]; then
		rg_pass "$desc: exactly one rst event"
	else
		rg_fail "$desc: exactly one rst event" "found $n rst events between ports $fport and $tport:"
		rg_events_show "$f" rst "src_port=$fport" "dest_port=$tport"
		rg_events_show "$f" rst "src_port=$tport" "dest_port=$fport"
	fi
	n=$(rg_events_count "$f" rst "src_ip=$fip" "src_port=$fport" "dest_ip=$tip" \
		"dest_port=$tport" proto=TCP "$@")
	if [ "$n" = 1 ]; then
		rg_pass "$desc: from $fip port $fport to $tip port $tport, $*"
	else
		rg_fail "$desc: from $fip port $fport to $tip port $tport, $*" \
			"no single rst event matches; the rst events of this connection:"
		"$RG_PY" "$RG_EVQ" show "$f" event_type=rst "src_port=$fport" "dest_port=$tport" 2>&1 | rg_diag
		"$RG_PY" "$RG_EVQ" show "$f" event_type=rst "src_port=$tport" "dest_port=$fport" 2>&1 | rg_diag
	fi
}

# ----------------------------------------------------------------------------------------------
# diagnostics

# rg_dump_context: everything useful after a failure, as TAP comments.
rg_dump_context() {
	local f
	[ "${RG_DUMPED:-0}" = 1 ] && return 0
	RG_DUMPED=1
	[ -n "$RG_TMP" ] || return 0
	rg_diag_file "$RG_DAEMON_LOG" "rstguard stderr" 60
	[ -s "$RG_DAEMON_OUT" ] && rg_diag_file "$RG_DAEMON_OUT" "rstguard stdout" 20
	for f in $RG_DIAG_EVENTS; do
		if [ -s "$f" ]; then
			rg_diag "---- events in $f (summary) ----"
			"$RG_PY" "$RG_EVQ" summary "$f" 2>&1 | tail -n 40 | rg_diag
			rg_diag_file "$f" "$f (raw)" 10
		else
			rg_diag "---- events file $f: empty or missing ----"
		fi
	done
	if [ "$RG_NET_IS_UP" = 1 ] && [ -n "$(rg__our_namespaces)" ]; then
		rg_diag "---- gw nfnetlink_queue ----"
		timeout 5 ip netns exec "$RG_GW" cat /proc/net/netfilter/nfnetlink_queue 2>&1 | rg_diag
		rg_diag "---- gw raw PREROUTING ----"
		timeout 5 ip netns exec "$RG_GW" iptables -w 5 -t raw -L PREROUTING -v -n 2>&1 | rg_diag
		timeout 5 ip netns exec "$RG_GW" ip6tables -w 5 -t raw -L PREROUTING -v -n 2>&1 | rg_diag
	fi
}
