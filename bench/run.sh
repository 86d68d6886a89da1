#!/usr/bin/env bash
# bench/run.sh: rstguard's network benchmark suite (see bench/README.md). Run as root:
#
#   bench/run.sh [-r REPS] [-t SECONDS] [--rows "..."] [--workloads "..."] [--preload N]
#                [--no-paired] [--no-multiqueue] [--no-engine] [-n NAME | -o FILE.md] [--keep]
#
# The report goes to bench/results/NAME.md (NAME "network" by default) and the raw runs to
# NAME.tsv beside it, overwriting the previous result of that name: the history is in git.
#
# Builds three namespaces (client - gw - server, veth, addresses from 198.18.0.0/15 only), puts an
# NFQUEUE rule in gw's raw PREROUTING and, in the same run, measures each configuration:
#   noq           no queue rule: kernel forwarding only
#   accept-pp     bench/nfq_accept --per-packet (one verdict per packet)
#   accept-batch  bench/nfq_accept --batched (the practical limit; the targets are ratios to it)
#   detect        rstguard -m detect -e /dev/null
#   enforce       rstguard -m enforce -e /dev/null
#   idle          rstguard -m enforce --keepalive --idle-timeout 300 with PRELOAD (100k) idle
#                 connections open through it (without --keepalive if the daemon refuses it)
#   detect-fp     rstguard -m detect --fast-path --install-rules (docs/fastpath.md; not in the
#   enforce-fp    default rows) and the same in enforce mode: the daemon adds its own rule, with
#                 the bpf match, in chain RSTGUARD
# under each workload:
#   bulk1 / bulk4 iperf3 -t SECONDS, one stream / -P 4, veth offloads on (their defaults)
#   mtu           iperf3 one stream, TSO/GSO/GRO off on every veth: MTU-sized packets
#   small         iperf3 -M 536 -l 536, offloads off: small segments
#   churn         bench/churn client: CONC parallel connect/request/response/close loops, conn/s
#   latency       bench/churn latency: one connection, request/response round trips, p50/p99 us
# then, per repetition, paired runs for the targets (rstguard and the batched accept-all consumer on
# two queues at once, the rule switched between them before each run: see paired()), the
# multi-queue comparison (rstguard enforce, 1 queue vs queue.count = 2 with --queue-balance 0:1,
# 4 host pairs), and at the end bench/engine_bench.
# Every configuration runs once per repetition (interleaved, so drift hits them all alike); the
# tables show medians of REPS runs. Everything lives in namespaces deleted on exit (trap); the root
# namespace's links, routes and firewall are never touched. Every step is bounded in time.
#
# Environment: RSTGUARD (default ./src/rstguard of the build), RG_BUILDDIR, NFQ_ACCEPT, CHURN,
# ENGINE_BENCH (built programs; nfq_accept and churn are compiled into the temp dir when missing),
# CONC (32), LAT_SECONDS (3), PAIR_WORKLOADS ("bulk1 mtu churn"), LAB_PAIRS (4), PRELOAD_PROCS (8),
# PRELOAD_INFLIGHT (50 handshakes per process: more overflows the 4096-packet queue, and
# fail-open then lets handshakes past the daemon unseen).
set -u
export LC_ALL=C

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILDDIR=${RG_BUILDDIR:-$SRCDIR}
RSTGUARD=${RSTGUARD:-$BUILDDIR/src/rstguard}
NFQ_ACCEPT=${NFQ_ACCEPT:-$BUILDDIR/bench/nfq_accept}
CHURN=${CHURN:-$BUILDDIR/bench/churn}
ENGINE_BENCH=${ENGINE_BENCH:-$BUILDDIR/bench/engine_bench}
PY=/usr/bin/python3
# Namespace and process helpers shared with the end-to-end tests.
# shellcheck source=tests/lib/nsbase.sh
. "$SRCDIR/tests/lib/nsbase.sh"

REPS=3
DUR=5
LAT_DUR=${LAT_SECONDS:-3}
CONC=${CONC:-32}
PRELOAD=100000
PRELOAD_PROCS=${PRELOAD_PROCS:-8}
PRELOAD_INFLIGHT=${PRELOAD_INFLIGHT:-50}
ROWS="noq accept-pp accept-batch detect enforce idle"
WORKLOADS="bulk1 bulk4 mtu small churn latency"
MULTIQUEUE=1
PAIRED=1
ENGINE=1
KEEP=0
NAME=network
OUT=""

usage() {
	sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	-r | --reps) REPS=$2; shift ;;
	-t | --duration) DUR=$2; shift ;;
	--rows) ROWS=$2; shift ;;
	--workloads) WORKLOADS=$2; shift ;;
	--preload) PRELOAD=$2; shift ;;
	--no-multiqueue) MULTIQUEUE=0 ;;
	--no-paired) PAIRED=0 ;;
	--no-engine) ENGINE=0 ;;
	-n | --name) NAME=$2; shift ;;
	-o | --output) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
case $REPS$DUR$PRELOAD in *[!0-9]*) echo "run.sh: -r, -t and --preload take integers" >&2; exit 2 ;; esac
[ "$REPS" -ge 1 ] && [ "$DUR" -ge 1 ] || { echo "run.sh: -r and -t must be at least 1" >&2; exit 2; }
case $NAME in "" | *[!A-Za-z0-9_-]*) echo "run.sh: -n takes a name of letters, digits, - and _" >&2; exit 2 ;; esac
[ -n "$OUT" ] || OUT=$SRCDIR/bench/results/$NAME.md

# ----------------------------------------------------------------------------------------------
# checks

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (namespaces, iptables, NFQUEUE)" >&2; exit 1; }
for c in ip iptables ethtool iperf3 timeout ss awk; do
	command -v "$c" >/dev/null 2>&1 || { echo "run.sh: $c is not installed" >&2; exit 1; }
done
[ -x "$PY" ] || { echo "run.sh: $PY is not installed" >&2; exit 1; }
[ -x "$RSTGUARD" ] || { echo "run.sh: rstguard not built ($RSTGUARD); set RSTGUARD" >&2; exit 1; }

# ----------------------------------------------------------------------------------------------
# names, addresses, state

P="rgb$$-"
NC=${P}c
NG=${P}gw
NS=${P}s
CLIENT_ADDRS=(198.18.1.2 198.18.1.3 198.18.1.4 198.18.1.5)
CANDIDATE_ADDRS=()  # more client addresses, to find host pairs that --queue-balance splits 2/2
for ((i = 2; i <= 33; i++)); do CANDIDATE_ADDRS+=("198.18.1.$i"); done
ADDRS=("${CLIENT_ADDRS[@]}")   # the source addresses the workloads use
MQ_ADDRS=()
MQ_NOTE=""
GW_C=198.18.1.1
GW_S=198.18.3.1
SERVER=198.18.3.2
VETHS=("$NC eth0" "$NG c0" "$NG s0" "$NS eth0")
declare -A OFFLOAD_DEFAULT=()

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rgbench.XXXXXX") || exit 1
RUNS=$TMP/runs.tsv
BG_PIDS=()          # servers and helpers started here
CONS_PID=""         # the queue consumer of the current configuration
CONS_KIND=""
CONS_LOG=""
CONS_QUEUES=1
PRELOAD_PID=""
PRELOAD_SRV_PID=""
PRELOAD_OPEN=""
PRELOAD_BYPASS=""
IDLE_FLOWS=""
KEEPALIVE_NOTE=""

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# stop_pid PID [TENTHS]: SIGTERM, bounded wait, SIGKILL; reaps it.
stop_pid() {
	local pid=$1 t=${2:-50}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	rg__wait_gone "$pid" "$t" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local pid ns
	trap - EXIT INT TERM HUP
	set +e
	for pid in "$CONS_PID" "$PRELOAD_PID" "$PRELOAD_SRV_PID" "${BG_PIDS[@]}"; do
		[ -n "$pid" ] && rg__alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for ns in "$NC" "$NG" "$NS"; do
		rg__ns_kill_and_delete "$ns"
	done
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		echo "run.sh: kept $TMP" >&2
	else
		rm -rf -- "$TMP"
	fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 1' INT TERM HUP

# ----------------------------------------------------------------------------------------------
# programs

CFLAGS_BENCH="-std=gnu11 -O2 -Wall -Wextra -pthread"
prepare_programs() {
	# A private copy of the daemon: a rebuild during the run must not change what is measured.
	cp "$RSTGUARD" "$TMP/rstguard" || exit 1
	RG_BIN=$TMP/rstguard
	if [ "$ENGINE" = 1 ] && [ -x "$ENGINE_BENCH" ]; then
		cp "$ENGINE_BENCH" "$TMP/engine_bench" && ENGINE_BENCH=$TMP/engine_bench
	fi
	if [ ! -x "$NFQ_ACCEPT" ]; then
		log "compiling bench/nfq_accept.c (not built in $BUILDDIR)"
		${CC:-cc} $CFLAGS_BENCH -o "$TMP/nfq_accept" "$SRCDIR/bench/nfq_accept.c" -lmnl -lnetfilter_queue || exit 1
		NFQ_ACCEPT=$TMP/nfq_accept
	fi
	if [ ! -x "$CHURN" ]; then
		log "compiling bench/churn.c (not built in $BUILDDIR)"
		${CC:-cc} $CFLAGS_BENCH -o "$TMP/churn" "$SRCDIR/bench/churn.c" || exit 1
		CHURN=$TMP/churn
	fi
}

# ----------------------------------------------------------------------------------------------
# the network

net_up() {
	local ns a v
	for ns in "$NC" "$NG" "$NS"; do
		timeout 5 ip netns add "$ns" || return 1
		timeout 5 ip -n "$ns" link set lo up || return 1
		rg__sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	rg__sysctl "$NG" net.ipv4.ip_forward=1 || return 1
	# Many short connections and 100k idle ones: the whole port range, a long accept queue.
	rg__sysctl "$NC" net.ipv4.ip_local_port_range="1024 65535" || return 1
	rg__sysctl "$NS" net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 || return 1
	# veths are born inside the namespaces, never in the root namespace.
	rg__veth "$NC" eth0 "$NG" c0 || return 1
	rg__veth "$NG" s0 "$NS" eth0 || return 1
	for a in "${CANDIDATE_ADDRS[@]}"; do
		timeout 5 ip -n "$NC" addr add "$a/24" dev eth0 || return 1
	done
	timeout 5 ip -n "$NG" addr add "$GW_C/24" dev c0 || return 1
	timeout 5 ip -n "$NG" addr add "$GW_S/24" dev s0 || return 1
	timeout 5 ip -n "$NS" addr add "$SERVER/24" dev eth0 || return 1
	for v in "${VETHS[@]}"; do
		# shellcheck disable=SC2086 # "ns dev"
		timeout 5 ip -n ${v% *} link set ${v#* } up || return 1
	done
	timeout 5 ip -n "$NC" route add default via "$GW_C" || return 1
	timeout 5 ip -n "$NS" route add default via "$GW_S" || return 1
	for v in "${VETHS[@]}"; do
		# shellcheck disable=SC2086
		rg__wait_link ${v% *} ${v#* } || return 1
		# The default offload settings, restored for the "offloads on" workloads.
		OFFLOAD_DEFAULT[$v]=$(timeout 5 ip netns exec "${v% *}" ethtool -k "${v#* }" 2>/dev/null | awk '
			/^tcp-segmentation-offload:/ {t=$2} /^generic-segmentation-offload:/ {g=$2}
			/^generic-receive-offload:/ {r=$2} END {print "tso", t, "gso", g, "gro", r}')
	done
	return 0
}

# offloads on|off: TSO/GSO/GRO on every veth of the path (on = the veth defaults).
offloads() {
	local v
	for v in "${VETHS[@]}"; do
		if [ "$1" = off ]; then
			timeout 5 ip netns exec "${v% *}" ethtool -K "${v#* }" tso off gso off gro off 2>/dev/null
		else
			# shellcheck disable=SC2086
			timeout 5 ip netns exec "${v% *}" ethtool -K "${v#* }" ${OFFLOAD_DEFAULT[$v]} 2>/dev/null
		fi
	done
	return 0
}

wait_listen() {
	local port=$1 i
	for i in $(seq 1 50); do
		timeout 5 ip netns exec "$NS" ss -Hltn "sport = :$port" 2>/dev/null | grep -q LISTEN && return 0
		sleep 0.1
	done
	echo "run.sh: nothing listens on port $port in the server namespace" >&2
	return 1
}

servers_up() {
	local p
	for p in 5201 5202 5203 5204; do
		ip netns exec "$NS" iperf3 -s -p "$p" >"$TMP/iperf3-server-$p.log" 2>&1 </dev/null &
		BG_PIDS+=($!)
	done
	ip netns exec "$NS" "$CHURN" server -p 9000 >"$TMP/churn-server.log" 2>&1 </dev/null &
	BG_PIDS+=($!)
	for p in 5201 5202 5203 5204 9000; do
		wait_listen "$p" || return 1
	done
	# The path works: a few round trips through gw.
	timeout 10 ip netns exec "$NC" "$CHURN" latency -s "$SERVER" -p 9000 -n 10 >/dev/null ||
		{ echo "run.sh: client -> gw -> server does not work" >&2; return 1; }
}

# ----------------------------------------------------------------------------------------------
# the queue rule, the consumers and their counters

gw() { timeout 10 ip netns exec "$NG" "$@"; }

rule_add() {
	if [ "$CONS_QUEUES" -gt 1 ]; then
		gw iptables -w 5 -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-balance "0:$((CONS_QUEUES - 1))"
	else
		gw iptables -w 5 -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num 0
	fi
}

rule_clear() { gw iptables -w 5 -t raw -F PREROUTING; }

# Packets that reached the queue rule (fail-open bypasses included; with the fast path, those its
# match sent to the queue, in rstguard's own chain).
rule_pkts() { gw iptables -w 5 -t raw -L -v -x -n | awk '/NFQUEUE/ {s += $1} END {print s + 0}'; }

# "QUEUE_DROPPED USER_DROPPED ID_SEQUENCE" summed over our queues, then the id sequence per queue.
queue_counters() {
	gw cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null | awk -v n="$CONS_QUEUES" '
		$1 < n {qd += $6; ud += $7; id += $8; per = per " " $8}
		END {print qd + 0, ud + 0, id + 0 per}'
}

queues_bound() {
	local n
	n=$(gw cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null | awk -v n="$CONS_QUEUES" '$1 < n' | wc -l)
	[ "$n" -eq "$CONS_QUEUES" ]
}

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
CLK_TCK=$(getconf CLK_TCK)

# Packets the consumer has handled so far: SIGUSR1 makes both nfq_accept and rstguard log their
# counters on stderr; wait (bounded) for the new line.
consumer_seen() {
	local pat done_pat before i
	case $CONS_KIND in
	accept*) pat='^nfq_accept: packets [0-9]+ ' done_pat=$pat ;;
	# rstguard logs several lines; "events:" is the last of them
	*) pat='rstguard: info: packets [0-9]+: tcp' done_pat='rstguard: info: events: written' ;;
	esac
	before=$(grep -c -E "$done_pat" "$CONS_LOG")
	kill -USR1 "$CONS_PID" 2>/dev/null || { echo ""; return; }
	for i in $(seq 1 40); do
		[ "$(grep -c -E "$done_pat" "$CONS_LOG")" -gt "$before" ] && break
		sleep 0.05
	done
	grep -E "$pat" "$CONS_LOG" | tail -n 1 | sed -E 's/.*packets ([0-9]+).*/\1/'
}

# consumer_start KIND [rstguard args...]: start it in gw, wait until it is bound, add the rule.
consumer_start() {
	local kind=$1 i
	shift
	CONS_KIND=$kind
	CONS_LOG=$TMP/consumer-$kind.log
	echo "==== $(date +%T) start $kind $*" >>"$CONS_LOG"
	case $kind in
	noq) CONS_PID=""; return 0 ;;
	accept-pp) ip netns exec "$NG" "$NFQ_ACCEPT" --per-packet -q 0 2>>"$CONS_LOG" >/dev/null </dev/null & ;;
	accept-batch) ip netns exec "$NG" "$NFQ_ACCEPT" --batched -q 0 2>>"$CONS_LOG" >/dev/null </dev/null & ;;
	*) ip netns exec "$NG" "$RG_BIN" "$@" 2>>"$CONS_LOG" >/dev/null </dev/null & ;;
	esac
	CONS_PID=$!
	for i in $(seq 1 50); do
		queues_bound && break
		rg__alive "$CONS_PID" || break
		sleep 0.1
	done
	if ! rg__alive "$CONS_PID" || ! queues_bound; then
		log "$kind did not bind its queue(s): $(tail -n 3 "$CONS_LOG" | tr '\n' ' ')"
		stop_pid "$CONS_PID" 10
		CONS_PID=""
		return 1
	fi
	if [ "${CONS_SELF_RULES:-0}" = 1 ]; then
		# --install-rules: the daemon adds its chain once its program is pinned.
		for i in $(seq 1 50); do
			gw iptables -w 5 -t raw -S RSTGUARD 2>/dev/null | grep -q NFQUEUE && return 0
			sleep 0.1
		done
		log "$kind did not add its rules: $(tail -n 3 "$CONS_LOG" | tr '\n' ' ')"
		return 1
	fi
	rule_add || { log "could not add the NFQUEUE rule"; return 1; }
	return 0
}

consumer_stop() {
	rule_clear
	if [ -n "$CONS_PID" ]; then
		stop_pid "$CONS_PID" 100
		echo "==== $(date +%T) stopped" >>"$CONS_LOG"
	fi
	CONS_PID=""
}

# The 100k idle connections of the "idle" configuration: a server with several processes (one
# process may hold only RLIMIT_NOFILE descriptors) and as many preload client processes.
preload_up() {
	local i n s_seen s_rule e_seen e_rule src=()
	for i in "${CLIENT_ADDRS[@]}"; do src+=(-B "$i"); done
	ip netns exec "$NS" "$CHURN" server -p 9001-9004 -P "$PRELOAD_PROCS" >"$TMP/preload-server.log" 2>&1 </dev/null &
	PRELOAD_SRV_PID=$!
	for i in 9001 9002 9003 9004; do wait_listen "$i" || return 1; done
	: >"$TMP/preload.out"
	s_seen=$(consumer_seen)
	s_rule=$(rule_pkts)
	ip netns exec "$NC" "$CHURN" preload -s "$SERVER" -p 9001-9004 -n "$PRELOAD" -c "$PRELOAD_INFLIGHT" \
		-P "$PRELOAD_PROCS" "${src[@]}" >"$TMP/preload.out" 2>&1 </dev/null &
	PRELOAD_PID=$!
	for i in $(seq 1 1800); do   # up to 180 s
		n=$(grep -c '^preload open=' "$TMP/preload.out")
		[ "$n" -ge "$PRELOAD_PROCS" ] && break
		rg__alive "$PRELOAD_PID" || break
		sleep 0.1
	done
	PRELOAD_OPEN=$(awk -F'[= ]' '/^preload open=/ {s += $3} END {print s + 0}' "$TMP/preload.out")
	sleep 1
	# How many flows the daemon tracks now (SIGUSR1 logs "flows: ... active N of M"), and whether
	# every packet of the preload reached it.
	e_rule=$(rule_pkts)
	e_seen=$(consumer_seen)
	IDLE_FLOWS=$(grep -E 'rstguard: info: flows:' "$CONS_LOG" | tail -n 1 | sed -E 's/.*active ([0-9]+) of.*/\1/')
	PRELOAD_BYPASS=$(( (e_rule - s_rule) - (e_seen - s_seen) ))
	log "preload: $PRELOAD_OPEN connections open, daemon tracks ${IDLE_FLOWS:-?} flows, $PRELOAD_BYPASS of $((e_rule - s_rule)) preload packets bypassed it"
}

preload_down() {
	stop_pid "$PRELOAD_PID" 100
	stop_pid "$PRELOAD_SRV_PID" 100
	PRELOAD_PID=""
	PRELOAD_SRV_PID=""
}

# ----------------------------------------------------------------------------------------------
# workloads: each sets VAL (the result) and VAL2 (p99 for latency), NOTE on trouble

iperf_gbps() {
	"$PY" -c '
import json, sys
tot = 0.0
for f in sys.argv[1:]:
    try:
        d = json.load(open(f))
        tot += d["end"]["sum_received"]["bits_per_second"]
    except Exception:
        print("nan"); sys.exit(0)
print("%.3f" % (tot / 1e9))' "$@"
}

# iperf N EXTRA...: N simultaneous iperf3 clients, client address i to server port 5201+i.
run_iperf() {
	local n=$1 i pids=() files=()
	shift
	for ((i = 0; i < n; i++)); do
		timeout $((DUR + 20)) ip netns exec "$NC" iperf3 -c "$SERVER" -p $((5201 + i)) \
			-B "${ADDRS[$i]}" -t "$DUR" --connect-timeout 3000 -J "$@" \
			>"$TMP/iperf-$i.json" 2>"$TMP/iperf-$i.err" </dev/null &
		pids+=($!)
		files+=("$TMP/iperf-$i.json")
	done
	for i in "${pids[@]}"; do wait "$i"; done
	VAL=$(iperf_gbps "${files[@]}")
	VAL2=""
	[ "$VAL" = nan ] && NOTE="iperf3 failed: $(head -c 200 "$TMP/iperf-0.err" "$TMP/iperf-0.json" | tr '\n' ' ')"
}

run_churn() {
	local nsrc=$1 src=() i out
	for ((i = 0; i < nsrc; i++)); do src+=(-B "${ADDRS[$i]}"); done
	out=$(timeout $((DUR + 20)) ip netns exec "$NC" "$CHURN" client -s "$SERVER" -p 9000 -c "$CONC" \
		-t "$DUR" "${src[@]}" 2>&1 </dev/null)
	VAL=$(sed -n -E 's/.* rate=([0-9.]+) .*/\1/p' <<<"$out")
	VAL2=""
	[ -n "$VAL" ] || { VAL=nan; NOTE="churn failed: $out"; }
	case $out in *" errors=0 timeouts=0 "*) ;; *) NOTE="${NOTE:+$NOTE; }$(sed -E 's/.*(errors=[0-9]+ timeouts=[0-9]+).*/\1/' <<<"$out")" ;; esac
}

run_latency() {
	local out
	out=$(timeout $((LAT_DUR + 20)) ip netns exec "$NC" "$CHURN" latency -s "$SERVER" -p 9000 \
		-B "${ADDRS[0]}" -t "$LAT_DUR" 2>&1 </dev/null)
	VAL=$(sed -n -E 's/.* p50_us=([0-9.]+) .*/\1/p' <<<"$out")
	VAL2=$(sed -n -E 's/.* p99_slice_median_us=([0-9.]+) .*/\1/p' <<<"$out")
	VAL3=$(sed -n -E 's/.* p99_us=([0-9.]+) .*/\1/p' <<<"$out")
	[ -n "$VAL" ] && [ -n "$VAL2" ] || { VAL=nan; VAL2=nan; NOTE="latency failed: $out"; }
}

run_workload() {
	case $1 in
	bulk1) offloads on; run_iperf 1 ;;
	bulk4) offloads on; run_iperf 1 -P 4 ;;
	mtu) offloads off; run_iperf 1 ;;
	small) offloads off; run_iperf 1 -M 536 -l 536 ;;
	churn) offloads on; run_churn 1 ;;
	latency) offloads on; run_latency ;;
	mtu4) offloads off; run_iperf 4 ;;
	churn4) offloads on; run_churn 4 ;;
	*) VAL=nan; VAL2=""; NOTE="unknown workload $1" ;;
	esac
}

# measure SECTION CONFIG WORKLOAD REP: run one workload with counters around it; one line in $RUNS.
measure() {
	local section=$1 cfg=$2 wl=$3 rep=$4
	local s_seen s_rule s_cpu e_seen e_rule e_cpu i seen rule queued qd ud bypass cpu_us rss per t0 t1 secs
	local -a sq eq
	VAL=nan VAL2="" VAL3="" NOTE=""
	if [ -n "$CONS_PID" ] && ! rg__alive "$CONS_PID"; then
		NOTE="consumer died before this run"
	fi
	if [ -n "$CONS_PID" ]; then
		s_seen=$(consumer_seen)
		s_rule=$(rule_pkts)
		read -r -a sq <<<"$(queue_counters)"
		s_cpu=$(cpu_ticks "$CONS_PID")
	fi
	t0=$(date +%s.%N)
	run_workload "$wl"
	t1=$(date +%s.%N)
	seen="" rule="" queued="" qd="" ud="" bypass="" cpu_us="" rss="" per=""
	if [ -n "$CONS_PID" ]; then
		if ! rg__alive "$CONS_PID"; then
			NOTE="${NOTE:+$NOTE; }consumer died (see its log)"
		else
			e_cpu=$(cpu_ticks "$CONS_PID")
			sleep 0.3   # let the last packets of the run through
			e_rule=$(rule_pkts)
			read -r -a eq <<<"$(queue_counters)"
			e_seen=$(consumer_seen)
			rss=$(hwm_kb "$CONS_PID")
			rule=$((e_rule - s_rule))
			qd=$((eq[0] - sq[0]))
			ud=$((eq[1] - sq[1]))
			queued=$((eq[2] - sq[2]))
			per=""
			for ((i = 3; i < ${#eq[@]}; i++)); do per="$per${per:+/}$((eq[i] - sq[i]))"; done
			if [ -n "$s_seen" ] && [ -n "$e_seen" ]; then
				seen=$((e_seen - s_seen))
				bypass=$((rule - seen))
				[ "$bypass" -lt 0 ] && bypass=0
			fi
			if [ -n "$seen" ] && [ "$seen" -gt 0 ]; then
				cpu_us=$(awk -v t=$((e_cpu - s_cpu)) -v hz="$CLK_TCK" -v n="$seen" 'BEGIN {printf "%.3f", t / hz * 1e6 / n}')
			fi
		fi
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$section" "$cfg" "$wl" "$rep" "$VAL" "${VAL2:-}" "${VAL3:-}" "$cpu_us" "$seen" "$queued" "$rule" \
		"$qd" "$ud" "$bypass" "$rss" "$per" "$secs" "$NOTE" >>"$RUNS"
	log "  $cfg $wl: ${VAL}${VAL2:+ / $VAL2}${cpu_us:+, $cpu_us us/pkt}${seen:+, $seen pkts}${qd:+, drops $qd/$ud}${bypass:+, bypass $bypass}${per:+, per queue $per}${NOTE:+ [$NOTE]}"
}

# ----------------------------------------------------------------------------------------------
# multi-queue: --queue-balance hashes the address pair with a seed fixed at boot, so 4 given host
# pairs may all land in one queue. Find client addresses that two accept-all consumers (queues 0
# and 1) see on each queue, and use 2 + 2 of them.

calibrate_mq() {
	local a q0=() q1=() pids=() before after
	MQ_ADDRS=("${CLIENT_ADDRS[@]}")
	ip netns exec "$NG" "$NFQ_ACCEPT" --batched -q 0 2>>"$TMP/calibrate.log" >/dev/null </dev/null &
	pids+=($!)
	ip netns exec "$NG" "$NFQ_ACCEPT" --batched -q 1 2>>"$TMP/calibrate.log" >/dev/null </dev/null &
	pids+=($!)
	CONS_QUEUES=2
	for a in $(seq 1 50); do queues_bound && break; sleep 0.1; done
	if queues_bound && rule_add; then
		for a in "${CANDIDATE_ADDRS[@]}"; do
			before=$(queue_counters | awk '{print $4, $5}')
			timeout 10 ip netns exec "$NC" "$CHURN" latency -s "$SERVER" -p 9000 -B "$a" -n 5 >/dev/null 2>&1
			after=$(queue_counters | awk '{print $4, $5}')
			case $(awk -v b="$before" -v a="$after" 'BEGIN {split(b, x); split(a, y);
				print (y[1] > x[1] && y[2] == x[2]) ? 0 : (y[2] > x[2] && y[1] == x[1]) ? 1 : "?"}') in
			0) [ ${#q0[@]} -lt 2 ] && q0+=("$a") ;;
			1) [ ${#q1[@]} -lt 2 ] && q1+=("$a") ;;
			esac
			[ ${#q0[@]} -eq 2 ] && [ ${#q1[@]} -eq 2 ] && break
		done
	fi
	rule_clear
	for a in "${pids[@]}"; do stop_pid "$a" 50; done
	CONS_QUEUES=1
	if [ ${#q0[@]} -eq 2 ] && [ ${#q1[@]} -eq 2 ]; then
		MQ_ADDRS=("${q0[@]}" "${q1[@]}")
		MQ_NOTE="client addresses ${MQ_ADDRS[*]} (the first two hash to queue 0, the others to queue 1)"
	else
		MQ_NOTE="could not find host pairs for both queues; used ${MQ_ADDRS[*]} (the split is whatever the hash gives)"
	fi
	log "multi-queue: $MQ_NOTE"
}

# ----------------------------------------------------------------------------------------------
# paired runs: the machine's noise moves a result more from one run to the next than the
# differences sought (a bulk run by 30%, a p99 by hundreds of microseconds), and slow drifts (other
# work on the machine) separate configurations measured minutes apart. So rstguard (queue 0) and
# the batched accept-all consumer (queue 1) run side by side and the rule is switched between them
# (iptables -R) before each run: each run is new connections, seen whole by one consumer. For each
# target workload the two runs of a pair follow each other (rstguard first in odd repetitions,
# accept-all first in even ones); the latency pairs are LAB_PAIRS 1-second runs. The report takes
# the median of the per-pair ratios (differences for the p99).

PAIR_WORKLOADS=${PAIR_WORKLOADS:-"bulk1 mtu churn"}
LAB_PAIRS=${LAB_PAIRS:-4}

# pair_run MODE REP PAIR SIDE WORKLOAD: switch the rule to SIDE's queue, run, record.
pair_run() {
	local mode=$1 rep=$2 i=$3 side=$4 wl=$5 q=1 out
	[ "$side" = rg ] && q=0
	gw iptables -w 5 -t raw -R PREROUTING 1 -p tcp -j NFQUEUE --queue-num "$q"
	VAL=nan VAL2="" VAL3="" NOTE=""
	if [ "$wl" = latency ]; then
		offloads on
		out=$(timeout 20 ip netns exec "$NC" "$CHURN" latency -s "$SERVER" -p 9000 \
			-B "${CLIENT_ADDRS[0]}" -t 1 2>&1 </dev/null)
		VAL=$(sed -n -E 's/.* p50_us=([0-9.]+) .*/\1/p' <<<"$out")
		VAL2=$(sed -n -E 's/.* p99_us=([0-9.]+) .*/\1/p' <<<"$out")
		[ -n "$VAL2" ] || { VAL=nan; VAL2=nan; NOTE="latency failed: $(tr '\n' ' ' <<<"$out")"; }
	else
		run_workload "$wl"
	fi
	printf 'pair\t%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t%s\t1\t%s\n' "$mode" "$wl" "$rep" \
		"${VAL:-nan}" "${VAL2:-}" "$i:$side" "$NOTE" >>"$RUNS"
}

paired() {
	local mode=$1 rep=$2 i wl acc order
	log "[$rep/$REPS] paired runs: rstguard $mode (queue 0) vs nfq_accept --batched (queue 1)"
	ADDRS=("${CLIENT_ADDRS[@]}")
	CONS_KIND=pair CONS_LOG=$TMP/consumer-pair-$mode.log
	ip netns exec "$NG" "$NFQ_ACCEPT" --batched -q 1 2>>"$CONS_LOG" >/dev/null </dev/null &
	acc=$!
	ip netns exec "$NG" "$RG_BIN" -q 0 -m "$mode" -e /dev/null 2>>"$CONS_LOG" >/dev/null </dev/null &
	CONS_PID=$!
	CONS_QUEUES=2
	for i in $(seq 1 50); do queues_bound && break; sleep 0.1; done
	if ! queues_bound || ! gw iptables -w 5 -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num 0; then
		log "paired runs: the consumers did not start"
	else
		if [ $((rep % 2)) = 1 ]; then order="rg accept"; else order="accept rg"; fi
		for wl in $PAIR_WORKLOADS; do
			case " $WORKLOADS " in *" $wl "*) ;; *) continue ;; esac
			for side in $order; do pair_run "$mode" "$rep" 1 "$side" "$wl"; done
			log "  $wl: $(awk -F'\t' -v m="$mode" -v r="$rep" -v w="$wl" '$1 == "pair" && $2 == m && $4 == r && $3 == w {printf "%s %s; ", $16, $5}' "$RUNS")"
		done
		case " $WORKLOADS " in
		*" latency "*)
			for ((i = 1; i <= LAB_PAIRS; i++)); do
				for side in $order; do pair_run "$mode" "$rep" "$i" "$side" latency; done
			done
			log "  latency p99: $(awk -F'\t' -v m="$mode" -v r="$rep" '$1 == "pair" && $2 == m && $4 == r && $3 == "latency" {printf "%s %s; ", $16, $6}' "$RUNS")" ;;
		esac
	fi
	rule_clear
	stop_pid "$CONS_PID" 100
	stop_pid "$acc" 50
	CONS_PID=""
	CONS_QUEUES=1
}

# ----------------------------------------------------------------------------------------------
# configurations

KA_OK=""
start_config() {
	local cfg=$1
	CONS_QUEUES=1
	case $cfg in
	noq) consumer_start noq ;;
	accept-pp | accept-batch) consumer_start "$cfg" ;;
	detect) consumer_start detect -m detect -e /dev/null ;;
	detect-fp | enforce-fp)
		CONS_SELF_RULES=1
		consumer_start "$cfg" -m "${cfg%-fp}" -e /dev/null --fast-path --install-rules ;;
	enforce | mq-1q) consumer_start "$cfg" -m enforce -e /dev/null ;;
	mq-2q)
		CONS_QUEUES=2
		printf 'queue = { count = 2; };\n' >"$TMP/two-queues.conf"
		consumer_start "$cfg" -c "$TMP/two-queues.conf" -m enforce -e /dev/null ;;
	idle)
		if [ "$KA_OK" != no ] && consumer_start idle -m enforce -e /dev/null --keepalive --idle-timeout 300; then
			KA_OK=yes
			KEEPALIVE_NOTE="with --keepalive --idle-timeout 300"
		else
			[ "$KA_OK" = no ] || log "rstguard --keepalive --idle-timeout 300 failed: the idle row runs without --keepalive"
			KA_OK=no
			KEEPALIVE_NOTE="WITHOUT --keepalive (rstguard --keepalive --idle-timeout 300 failed to start)"
			consumer_start idle -m enforce -e /dev/null --idle-timeout 300 || return 1
		fi
		preload_up ;;
	*) log "unknown configuration $cfg"; return 1 ;;
	esac
}

stop_config() {
	consumer_stop
	[ "$1" = idle ] && preload_down
	CONS_QUEUES=1
	CONS_SELF_RULES=0
	return 0
}

run_config() {
	local section=$1 cfg=$2 rep=$3 wl
	shift 3
	log "[$rep/$REPS] $section: $cfg"
	if [ "$section" = multiqueue ]; then ADDRS=("${MQ_ADDRS[@]}"); else ADDRS=("${CLIENT_ADDRS[@]}"); fi
	if ! start_config "$cfg"; then
		for wl in "$@"; do
			printf '%s\t%s\t%s\t%s\tnan\t\t\t\t\t\t\t\t\t\t\t\t0\t%s\n' "$section" "$cfg" "$wl" "$rep" \
				"configuration did not start" >>"$RUNS"
		done
		stop_config "$cfg"
		return
	fi
	for wl in "$@"; do
		measure "$section" "$cfg" "$wl" "$rep"
	done
	stop_config "$cfg"
}

# ----------------------------------------------------------------------------------------------
# the report: medians, ratios, targets; markdown on stdout and in OUT

report() {
	"$PY" - "$@" <<'PYEOF'
import math, statistics, sys

runs_f, facts_f, engine_f, out_f = sys.argv[1:5]
facts = dict(l.rstrip("\n").split("=", 1) for l in open(facts_f) if "=" in l)
COLS = ["section", "cfg", "wl", "rep", "val", "val2", "val3", "cpu", "seen", "queued", "rule",
        "qd", "ud", "bypass", "rss", "per", "secs", "note"]
runs = []
for line in open(runs_f):
    f = line.rstrip("\n").split("\t")
    f += [""] * (len(COLS) - len(f))
    runs.append(dict(zip(COLS, f)))

def num(x):
    try:
        v = float(x)
        return None if math.isnan(v) else v
    except ValueError:
        return None

def sel(section, cfg, wl):
    return [r for r in runs if r["section"] == section and r["cfg"] == cfg and r["wl"] == wl]

def med(section, cfg, wl, key="val"):
    v = [num(r[key]) for r in sel(section, cfg, wl)]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None

def rng(section, cfg, wl, key="val"):
    v = [num(r[key]) for r in sel(section, cfg, wl)]
    v = [x for x in v if x is not None]
    return (min(v), max(v)) if v else None

def total(section, cfg, wl, key):
    v = [num(r[key]) for r in sel(section, cfg, wl)]
    v = [x for x in v if x is not None]
    return sum(v) if v else None

def fmt(v, d=2):
    return "n/a" if v is None else f"{v:.{d}f}"

WL = {
    "bulk1": ("bulk, 1 stream, offloads on", "Gbit/s", 2),
    "bulk4": ("bulk, -P 4, offloads on", "Gbit/s", 2),
    "mtu": ("MTU-sized packets, 1 stream", "Gbit/s", 2),
    "small": ("small segments (-M 536 -l 536)", "Gbit/s", 3),
    "churn": ("connection churn", "conn/s", 0),
    "latency": ("latency, p50", "us", 1),
    "mtu4": ("MTU-sized, 4 host pairs", "Gbit/s", 2),
    "churn4": ("churn, 4 host pairs", "conn/s", 0),
}
CFG = {
    "noq": "1 no queue rule (kernel)",
    "accept-pp": "2a nfq_accept --per-packet",
    "accept-batch": "2b nfq_accept --batched",
    "detect": "3 rstguard detect",
    "enforce": "4 rstguard enforce",
    "idle": "5 enforce + idle flows",
    "detect-fp": "6 rstguard detect --fast-path",
    "enforce-fp": "7 rstguard enforce --fast-path",
    "mq-1q": "rstguard enforce, 1 queue",
    "mq-2q": "rstguard enforce, 2 queues",
}
order_cfg = [c for c in CFG if any(r["cfg"] == c for r in runs)]
main_wl = [w for w in WL if any(r["section"] == "main" and r["wl"] == w for r in runs)]
reps = facts.get("reps", "?")
o = []
o.append(f"# rstguard network benchmark, {facts.get('date', '')}")
o.append("")
o.append(f"Machine: {facts.get('host_cpus')} CPUs ({facts.get('cpu')}), {facts.get('mem_gb')} GB, kernel "
         f"{facts.get('kernel')}. {facts.get('rstguard')}, tree {facts.get('git')}; {facts.get('iperf3')}.")
o.append(f"Medians of {reps} runs per cell (min-max in brackets), {facts.get('duration')} s per throughput/churn "
         f"run, {facts.get('lat_duration')} s of latency round trips, churn with {facts.get('conc')} parallel "
         f"connections. Load average {facts.get('load_start')} at start, {facts.get('load_end')} at the end; "
         f"CPU busy with other work while the suite was idle, before each repetition: {facts.get('busy')}; "
         f"network part {facts.get('net_seconds')} s. Veth offload defaults: {facts.get('offloads_default')}.")
if any(r["cfg"] == "idle" for r in runs):
    o.append(f"Row 5: {facts.get('preload_open') or '?'} of {facts.get('preload')} idle connections opened through "
             f"the daemon before its workloads ({facts.get('preload_inflight')} handshakes in flight; "
             f"{facts.get('preload_bypass') or '?'} of their packets bypassed the daemon), "
             f"{facts.get('idle_flows') or '?'} flows in its table (last repetition); {facts.get('keepalive')}.")
o.append("")
o.append("Columns: result = iperf3 received throughput (Gbit/s), churn connections/s, or latency p50 (us); "
         "x noq / x 2b = ratio of the medians to row 1 / row 2b in the same run; us/pkt = consumer CPU "
         "(utime+stime) per packet it handled; kpkt/s = packets it handled per second of the run; drops = "
         "queue_dropped/user_dropped of /proc/net/netfilter/nfnetlink_queue over the run; bypass = packets "
         "that hit the queue rule but never reached the consumer (fail-open accepts them uncounted); "
         "RSS = VmHWM of the consumer so far.")
o.append("")
o.append("| workload | configuration | result | min-max | x noq | x 2b | us/pkt | kpkt/s | drops q/u | bypass | RSS MiB |")
o.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for w in main_wl:
    name, unit, d = WL[w]
    base0 = med("main", "noq", w)
    baseb = med("main", "accept-batch", w)
    for c in order_cfg:
        rs = sel("main", c, w)
        if not rs:
            continue
        v = med("main", c, w)
        mm = rng("main", c, w)
        r0 = v / base0 if v is not None and base0 and w != "latency" else None
        rb = v / baseb if v is not None and baseb and w != "latency" else None
        cpu = med("main", c, w, "cpu")
        seen = med("main", c, w, "seen")
        secs = med("main", c, w, "secs")
        kpps = seen / secs / 1e3 if seen is not None and secs else None
        qd = total("main", c, w, "qd")
        ud = total("main", c, w, "ud")
        bp = total("main", c, w, "bypass")
        rss = med("main", c, w, "rss")
        notes = sorted({r["note"] for r in rs if r["note"]})
        o.append(f"| {name} ({unit}) | {CFG[c]} | {fmt(v, d)} | "
                 f"{fmt(mm[0], d) + '-' + fmt(mm[1], d) if mm else 'n/a'} | "
                 f"{fmt(r0)} | {fmt(rb)} | {fmt(cpu, 2) if cpu is not None else '-'} | "
                 f"{fmt(kpps, 0) if kpps is not None else '-'} | "
                 f"{'-' if qd is None else f'{qd:.0f}/{ud:.0f}'} | {'-' if bp is None else f'{bp:.0f}'} | "
                 f"{'-' if rss is None else fmt(rss / 1024, 1)} |"
                 + (f" {'; '.join(notes)}" if notes else ""))
o.append("")

# latency
lat = {}
if "latency" in main_wl:
    o.append("Latency (one connection, 64-byte requests, 128-byte answers, TCP_NODELAY; each round trip "
             "crosses the queue twice). p99 = the median over 500 ms slices of each slice's p99 (a stall of "
             "the machine spoils one slice, not the run), then the median over the runs; whole-run p99 for "
             "comparison:")
    o.append("")
    o.append("| configuration | p50 us | p99 us | p99 min-max | p99 added vs 2b | p99 added vs no queue | whole-run p99 us |")
    o.append("|---|---:|---:|---:|---:|---:|---:|")
    p99b = med("main", "accept-batch", "latency", "val2")
    p990 = med("main", "noq", "latency", "val2")
    for c in order_cfg:
        if not sel("main", c, "latency"):
            continue
        p50 = med("main", c, "latency")
        p99 = med("main", c, "latency", "val2")
        mm = rng("main", c, "latency", "val2")
        lat[c] = p99
        ab = p99 - p99b if p99 is not None and p99b is not None else None
        a0 = p99 - p990 if p99 is not None and p990 is not None else None
        o.append(f"| {CFG[c]} | {fmt(p50, 1)} | {fmt(p99, 1)} | "
                 f"{fmt(mm[0], 1) + '-' + fmt(mm[1], 1) if mm else 'n/a'} | "
                 f"{'+' if ab is not None and ab >= 0 else ''}{fmt(ab, 1)} | "
                 f"{'+' if a0 is not None and a0 >= 0 else ''}{fmt(a0, 1)} | "
                 f"{fmt(med('main', c, 'latency', 'val3'), 1)} |")
    o.append("")

# paired runs
pair_rows = [r for r in runs if r["section"] == "pair"]
paired_ratio, lab = {}, {}
def pairs_of(m, w, key):
    d = {}
    for r in pair_rows:
        if r["cfg"] == m and r["wl"] == w and ":" in r["per"]:
            i, side = r["per"].split(":", 1)
            d.setdefault((r["rep"], i), {})[side] = num(r[key])
    return [(p["rg"], p["accept"]) for p in d.values()
            if p.get("rg") is not None and p.get("accept") is not None]
if pair_rows:
    o.append("Paired runs (the targets' measurement): rstguard on queue 0 and nfq_accept --batched on queue 1 "
             "run side by side, and the rule is switched between them before each run, so the two runs of a "
             "pair are seconds apart under the same conditions (rstguard first in odd repetitions, accept-all "
             "first in even ones). Ratio = median of the per-pair ratios rstguard / accept-all; for latency, "
             "1-second runs and the median of the per-pair p99 differences.")
    o.append("")
    o.append("| workload | rstguard mode | pairs | rstguard (median) | accept-all (median) | ratio or p99 added (median of pairs) | per-pair min-max |")
    o.append("|---|---|---:|---:|---:|---:|---:|")
    for w in ["bulk1", "bulk4", "mtu", "small", "churn", "latency"]:
        for m in ["detect", "enforce"]:
            key = "val2" if w == "latency" else "val"
            ps = pairs_of(m, w, key)
            if not ps:
                continue
            d = WL[w][2]
            rgm = statistics.median([a for a, b in ps])
            acm = statistics.median([b for a, b in ps])
            if w == "latency":
                diffs = [a - b for a, b in ps]
                v = statistics.median(diffs)
                lab[m] = v
                o.append(f"| latency p99 (us) | {m} | {len(ps)} | {fmt(rgm, 1)} | {fmt(acm, 1)} | "
                         f"{'+' if v >= 0 else ''}{fmt(v, 1)} us | {fmt(min(diffs), 1)} to {fmt(max(diffs), 1)} |")
            else:
                ratios = [a / b for a, b in ps if b]
                v = statistics.median(ratios) if ratios else None
                paired_ratio[(m, w)] = v
                o.append(f"| {WL[w][0]} ({WL[w][1]}) | {m} | {len(ps)} | {fmt(rgm, d)} | {fmt(acm, d)} | "
                         f"{fmt(v)} | {fmt(min(ratios)) + '-' + fmt(max(ratios)) if ratios else 'n/a'} |")
    o.append("")

# multi-queue
mq = [r for r in runs if r["section"] == "multiqueue"]
if mq:
    o.append("Multi-queue: rstguard enforce with queue.count = 2 and --queue-balance 0:1 against one queue, "
             "4 host pairs (4 iperf3 clients from 4 client addresses, or churn spreading its connections "
             "over them; " + facts.get("mq_note", "") + "). --queue-balance hashes the address pair with a "
             "seed fixed at boot, so the run picks addresses that split 2/2 (per-queue packets shown). The "
             "machine has " + str(facts.get("host_cpus")) + " cores: the generators, the servers and the "
             "daemon threads all compete for them, so this shows the overhead of a second queue more than "
             "its gain.")
    o.append("")
    o.append("| workload | configuration | result | min-max | x noq | x 1 queue | us/pkt | packets per queue (median run) | drops q/u | bypass |")
    o.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in ["mtu4", "churn4"]:
        name, unit, d = WL[w]
        base0 = med("multiqueue", "noq", w)
        base1 = med("multiqueue", "mq-1q", w)
        for c in ["noq", "mq-1q", "mq-2q"]:
            rs = sel("multiqueue", c, w)
            if not rs:
                continue
            v = med("multiqueue", c, w)
            mm = rng("multiqueue", c, w)
            r0 = v / base0 if v is not None and base0 else None
            r1 = v / base1 if v is not None and base1 and c != "noq" else None
            cpu = med("multiqueue", c, w, "cpu")
            good = sorted([r for r in rs if num(r["val"]) is not None], key=lambda r: float(r["val"]))
            per = good[len(good) // 2]["per"] if good else ""
            qd = total("multiqueue", c, w, "qd")
            ud = total("multiqueue", c, w, "ud")
            bp = total("multiqueue", c, w, "bypass")
            o.append(f"| {name} ({unit}) | {CFG[c]} | {fmt(v, d)} | "
                     f"{fmt(mm[0], d) + '-' + fmt(mm[1], d) if mm else 'n/a'} | {fmt(r0)} | "
                     f"{fmt(r1) if r1 is not None else '-'} | {fmt(cpu) if cpu is not None else '-'} | "
                     f"{per or '-'} | {'-' if qd is None else f'{qd:.0f}/{ud:.0f}'} | "
                     f"{'-' if bp is None else f'{bp:.0f}'} |")
    o.append("")

# targets
o.append("Targets:")
o.append("")
o.append("| target | measured | verdict |")
o.append("|---|---:|---|")
def target(desc, measured, ok):
    o.append(f"| {desc} | {measured} | {'n/a' if ok is None else ('PASS' if ok else 'FAIL')} |")
for w in ["bulk1", "bulk4", "mtu", "churn"]:
    b = med("main", "accept-batch", w)
    for c, lim in [("detect", 0.95), ("enforce", 0.90)]:
        v = med("main", c, w)
        r = v / b if v is not None and b else None
        pr = paired_ratio.get((c, w))
        if pr is not None:
            target(f"{c} >= {lim:.2f} x batched accept-all, {WL[w][0]} (paired runs)",
                   f"{fmt(pr)} (sequential: {fmt(r)})", pr >= lim)
        elif r is not None:
            target(f"{c} >= {lim:.2f} x batched accept-all, {WL[w][0]} (sequential runs)", fmt(r), r >= lim)
for c in ["detect", "enforce"]:
    if c in lab:
        a = lab[c]
        target(f"{c}: p99 latency added over batched accept-all < 50 us (paired runs)", f"{fmt(a, 1)} us",
               None if a is None else a < 50)
    elif "latency" in main_wl:
        p99b = med("main", "accept-batch", "latency", "val2")
        p = lat.get(c)
        a = p - p99b if p is not None and p99b is not None else None
        target(f"{c}: p99 latency added over batched accept-all < 50 us (sequential runs)", f"{fmt(a, 1)} us",
               None if a is None else a < 50)
for c in ["detect", "enforce", "idle", "mq-1q", "mq-2q"]:
    rs = [r for r in runs if r["cfg"] == c]
    if not rs:
        continue
    qd = sum(num(r["qd"]) or 0 for r in rs)
    ud = sum(num(r["ud"]) or 0 for r in rs)
    counted = [r for r in rs if num(r["qd"]) is not None]
    target(f"{c}: zero queue drops and user drops (all its runs)", f"{qd:.0f}/{ud:.0f}",
           None if not counted else qd == 0 and ud == 0)
for c in ["detect", "enforce", "idle", "mq-1q", "mq-2q"]:
    rs = [r for r in runs if r["cfg"] == c and num(r["bypass"]) is not None]
    if not rs:
        continue
    bp = sum(num(r["bypass"]) for r in rs)
    rule = sum(num(r["rule"]) or 0 for r in rs)
    target(f"{c}: no fail-open bypass (additional: drops are invisible with fail-open)",
           f"{bp:.0f} of {rule:.0f} pkts", bp == 0)
for w in ["mtu4", "churn4"]:
    v2, v1 = med("multiqueue", "mq-2q", w), med("multiqueue", "mq-1q", w)
    if v2 is not None and v1:
        target(f"multi-queue: 2 queues / 1 queue, {WL[w][0]} (reported, no target)", fmt(v2 / v1), None)
o.append("")

eng = open(engine_f).read().strip("\n")
if eng:
    o.append("Engine benchmark (bench/engine_bench -f 10000 -f 1000000 -f 4000000; no kernel, the daemon's "
             "per-packet path only):")
    o.append("")
    o.append("```")
    o.append(eng)
    o.append("```")
    o.append("")
text = "\n".join(o)
open(out_f, "w").write(text)
print(text)
PYEOF
}

# ----------------------------------------------------------------------------------------------
# main

rg__reap_stale rgb   # namespaces of earlier runs killed before their trap ran
prepare_programs
log "rstguard: $RSTGUARD ($($RG_BIN -V 2>/dev/null)), nfq_accept: $NFQ_ACCEPT, churn: $CHURN"
net_up || { echo "run.sh: could not build the namespace network" >&2; exit 1; }
servers_up || exit 1
[ "$MULTIQUEUE" = 1 ] && calibrate_mq
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
: >"$RUNS"

# The CPU the rest of the machine uses while this suite is idle (other users' work competes with
# the benchmark on the same cores): one second of /proc/stat, in percent of all CPUs.
background_busy() {
	local a b
	a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {split(a, x); split(b, y); t = (y[1] - x[1]) + (y[2] - x[2]);
		printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0)}'
}
BUSY=""

# shellcheck disable=SC2086 # word lists
for ((rep = 1; rep <= REPS; rep++)); do
	b=$(background_busy)
	BUSY="$BUSY${BUSY:+, }$b%"
	log "repetition $rep: load average $(cut -d' ' -f1-3 /proc/loadavg), background CPU busy $b% (while the suite is idle)"
	for cfg in $ROWS; do
		run_config main "$cfg" "$rep" $WORKLOADS
	done
	if [ "$PAIRED" = 1 ]; then
		for m in detect enforce; do
			case " $ROWS " in *" $m "*) paired "$m" "$rep" ;; esac
		done
	fi
	if [ "$MULTIQUEUE" = 1 ]; then
		for cfg in noq mq-1q mq-2q; do
			run_config multiqueue "$cfg" "$rep" mtu4 churn4
		done
	fi
done
offloads on
T_NET=$(($(date +%s) - T_START))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

: >"$TMP/engine.txt"
if [ "$ENGINE" = 1 ]; then
	if [ -x "$ENGINE_BENCH" ]; then
		log "engine benchmark: $ENGINE_BENCH -f 10000 -f 1000000 -f 4000000"
		timeout 600 "$ENGINE_BENCH" -f 10000 -f 1000000 -f 4000000 >"$TMP/engine.txt" 2>&1 ||
			echo "(engine_bench failed or timed out)" >>"$TMP/engine.txt"
	else
		echo "(engine_bench not built: $ENGINE_BENCH)" >"$TMP/engine.txt"
	fi
fi

# Facts for the report header.
{
	echo "date=$(date '+%F %T %Z')"
	echo "host_cpus=$(nproc)"
	echo "kernel=$(uname -r)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "mem_gb=$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
	# The binary by its content, not by where this machine keeps it.
	echo "rstguard=$($RG_BIN -V 2>/dev/null) (sha256 $(sha256sum "$RG_BIN" | cut -c1-12))"
	echo "git=$(git -C "$SRCDIR" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "iperf3=$(iperf3 --version 2>/dev/null | head -n 1)"
	echo "reps=$REPS"
	echo "duration=$DUR"
	echo "lat_duration=$LAT_DUR"
	echo "conc=$CONC"
	echo "preload=$PRELOAD"
	echo "preload_open=${PRELOAD_OPEN:-}"
	echo "idle_flows=${IDLE_FLOWS:-}"
	echo "preload_bypass=${PRELOAD_BYPASS:-}"
	echo "preload_inflight=$((PRELOAD_INFLIGHT * PRELOAD_PROCS))"
	echo "mq_note=$MQ_NOTE"
	echo "keepalive=${KEEPALIVE_NOTE:-}"
	echo "load_start=$LOAD_START"
	echo "load_end=$LOAD_END"
	echo "busy=$BUSY"
	echo "net_seconds=$T_NET"
	echo "offloads_default=${OFFLOAD_DEFAULT["$NG c0"]}"
} >"$TMP/facts.txt"

mkdir -p "$(dirname "$OUT")"
report "$RUNS" "$TMP/facts.txt" "$TMP/engine.txt" "$OUT" || exit 1
cp "$RUNS" "${OUT%.md}.tsv"
log "results: $OUT (raw runs: ${OUT%.md}.tsv)"
exit 0
