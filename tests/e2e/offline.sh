#!/bin/bash
# offline.sh: inline and offline analysis agree. rstguard runs inline on the gateway (detect mode)
# while tcpdump records the gateway's client-facing interface (c0); each scenario gets its own
# capture. Then `rstguard -r` analyses every capture, and each RST must get the same cause,
# forged flag and evidence offline as it got inline (RSTs matched by addresses, ports, seq, ack
# and flags: the TTLs differ by one, since c0 sees the server side after the gateway's
# forwarding), and the same eviction events.
#
# Scenarios: genuine causes (refused, server abort, client abort, unread data, IPv6 refused);
# RSTs injected from the router (scapy, at layer 2 to the gateway's MAC) while the server waits
# 400 ms before answering: one RST/ACK with TTL 40 at exactly the client's RCV.NXT, and a
# burst of three at +0, +1460, +4380; and a load balancer (the router's conntrack with a 5 s
# established timeout and `REJECT --reject-with tcp-reset` for INVALID) that forgets a flow
# idle for 8 s, with rstguard configured for a 10 s middlebox timeout (the same -c file
# offline).
#
# RG_FIXTURE_OUT=DIR keeps the captures (NAME.pcap), the inline events reduced to their stable
# fields (NAME.inline) and the eviction configuration there: that is how tests/fixtures/ was
# recorded (see tests/fixtures/README.md).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

PCAPTOOL=$RG_LIB/pcaptool.py
SNAPLEN=256
IDLE=8

command -v tcpdump >/dev/null 2>&1 || rg_skip "tcpdump not installed"
rg_setup --queue-num "$RG_QUEUE_NUM"
EV1=$RG_TMP/events1.json
EV2=$RG_TMP/events2.json
RG_DIAG_EVENTS="$EV1 $EV2"

# "NAME SERVER_PORT": the scenarios, in order (the server port tells their events apart).
SCENARIOS=(
	"refused 5301"
	"server_abort 5302"
	"client_abort 5303"
	"unread_data 5304"
	"refused6 5305"
	"inject_ttl 5306"
	"inject_burst 5307"
	"eviction 5308"
)
rg_plan $((2 + ${#SCENARIOS[@]} * 4 + 2))

# ----------------------------------------------------------------------------------------------
# helpers

# The injector: sniff the router's gw-facing interface for the client's request (the marker),
# then send forged RST/ACKs toward the client at layer 2 to the gateway's MAC.
cat >"$RG_TMP/inject.py" <<'EOF'
import json, os, select, sys, time
iface, port, mode, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
from scapy.all import IP, TCP, Ether, conf, get_if_hwaddr
conf.verb = 0
listen = conf.L2listen(iface=iface)
out = conf.L2socket(iface=iface)
mac = get_if_hwaddr(iface)
with open(ready + ".tmp", "w") as f:
    f.write("ready\n")
os.replace(ready + ".tmp", ready)
srv_ipid, trig, end = None, None, time.monotonic() + 20
while trig is None and time.monotonic() < end:
    r, _, _ = select.select([listen], [], [], 0.5)
    if not r:
        continue
    p = listen.recv()
    if p is None or IP not in p or TCP not in p or int(p[TCP].flags) & 0x04:
        continue
    if p[TCP].sport == port:
        srv_ipid = p[IP].id
    elif p[TCP].dport == port and b"GET /forbidden" in bytes(p[TCP].payload):
        trig = p
if trig is None:
    print(json.dumps({"ok": False, "error": "no trigger"}))
    sys.exit(1)
ip, tcp, n = trig[IP], trig[TCP], len(bytes(trig[TCP].payload))
ipid = 1
if srv_ipid is not None and (ipid - srv_ipid) & 0xFFFF <= 1100:
    ipid = (srv_ipid + 0x8000) & 0xFFFF   # never a plausible next value of the server's counter
offsets, ttl = ((0,), 40) if mode == "ttl" else ((0, 1460, 4380), 64)
for off in offsets:
    rst = Ether(src=mac, dst=trig[Ether].src) / IP(src=ip.dst, dst=ip.src, ttl=ttl, id=ipid) / \
        TCP(sport=port, dport=tcp.sport, flags="RA", seq=(tcp.ack + off) & 0xFFFFFFFF,
            ack=(tcp.seq + n) & 0xFFFFFFFF, window=8192)
    out.send(rst)
    print(json.dumps({"injected": {"seq": rst[TCP].seq, "ack": rst[TCP].ack, "ttl": ttl, "ipid": ipid}}))
print(json.dumps({"ok": True, "mode": mode, "sport": tcp.sport}))
EOF

# RSTs and evictions of one scenario (the events whose ports include PORT) in two event files:
# every RST of one must be in the other with the same cause, forged and evidence. One exception,
# shown as "tolerated": the timing signal too_fast alone may differ (cause and forged still
# equal), since the capture on c0 timestamps the server's packets after the queue (its latency
# is in the capture's RTT and gaps) and inline timestamps are taken when the daemon reads a
# packet; with a loaded machine the measured RTT can pass detector.min_rtt_ms on one side only.
cat >"$RG_TMP/compare.py" <<'EOF'
import json, sys
def load(path, port):
    rsts, evs = {}, []
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if port not in (e.get("src_port"), e.get("dest_port")):
                continue
            ends = (e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"])
            if e["event_type"] == "rst":
                r = e["rst"]
                key = ends + (r["seq"], r["ack"], r["flags"])
                rsts.setdefault(key, []).append((r["cause"], r["forged"], sorted(r["evidence"])))
            elif e["event_type"] == "eviction":
                evs.append(ends + (e["eviction"]["kind"],))
    return rsts, sorted(evs)
def timing_only(a, b):
    """Only the timing signal differs: the capture's clock is not the queue's (see above)."""
    strip = lambda x: [(c, f, [e for e in ev if e != "too_fast"]) for c, f, ev in x]
    return len(a) == len(b) and strip(a) == strip(b)
inl, off, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
(ri, ei), (ro, eo) = load(inl, port), load(off, port)
bad = 0
for k in sorted(set(ri) | set(ro)):
    a, b = ri.get(k, []), ro.get(k, [])
    if a == b:
        tag = "same"
    elif timing_only(a, b):
        tag = "tolerated (too_fast only)"
    else:
        tag = "DIFFERENT"
        bad += 1
    print("%s: rst %s:%s -> %s:%s seq %s ack %s %s: inline %s, offline %s" % ((tag,) + k + (a, b)))
if ei != eo:
    bad += 1
    print("DIFFERENT evictions: inline %s, offline %s" % (ei, eo))
else:
    for e in ei:
        print("same: eviction %s" % (e,))
if not ri:
    bad += 1
    print("no rst event inline")
sys.exit(1 if bad else 0)
EOF

# cap_start NAME: tcpdump in gw on c0 into $RG_TMP/NAME.pcap; waits until it listens.
cap_start() {
	local name=$1 i
	rm -f "$RG_TMP/$name.pcap"
	ip netns exec "$RG_GW" timeout 120 tcpdump -i "$RG_IF_GW_C" -n -s "$SNAPLEN" -U --immediate-mode -Z root \
		-w "$RG_TMP/$name.pcap" tcp >/dev/null 2>"$RG_TMP/$name.tcpdump.err" &
	RG_PIDS[cap_$name]=$!
	for i in $(seq 1 50); do
		grep -q 'listening on' "$RG_TMP/$name.tcpdump.err" 2>/dev/null && return 0
		rg__alive "${RG_PIDS[cap_$name]}" || break
		sleep 0.1
	done
	rg_diag "tcpdump for $name did not start:" "$(cat "$RG_TMP/$name.tcpdump.err")"
	return 1
}

# cap_stop NAME: let the last packets arrive, stop tcpdump (it writes out what it has).
cap_stop() {
	local pid=${RG_PIDS[cap_$1]:-}
	sleep 0.5
	[ -n "$pid" ] || return 1
	kill -INT "$pid" 2>/dev/null
	rg_wait_pid "$pid" 5
	unset "RG_PIDS[cap_$1]"
	# Every packet the filter took must be in the file.
	local got want lost
	got=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured$/\1/p' "$RG_TMP/$1.tcpdump.err")
	want=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter$/\1/p' "$RG_TMP/$1.tcpdump.err")
	lost=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$RG_TMP/$1.tcpdump.err")
	if [ -z "$got" ] || [ "$got" != "$want" ] || [ "${lost:-1}" != 0 ] || [ "$got" = 0 ]; then
		rg_diag "capture $1 incomplete:" "$(cat "$RG_TMP/$1.tcpdump.err")"
		return 1
	fi
	return 0
}

# scenario_ok NAME DESC STATUS: the applications' outcome as one TAP point.
scenario_ok() {
	if [ "$3" -eq 0 ]; then
		rg_pass "$1: $2"
	else
		rg_fail "$1: $2"
		for f in "$RG_TMP/$1"*.json "$RG_TMP/$1"*.err; do
			[ -e "$f" ] && rg_diag_file "$f" "$(basename "$f")" 8
		done
	fi
}

# ----------------------------------------------------------------------------------------------
# the scenarios (each: capture, traffic, stop the capture; TAP point for the applications)

run_refused() {  # NAME PORT SERVER
	local st=0
	cap_start "$1" || st=1
	rg_app "${1}c" "$RG_CLIENT" connect-refused --to "$3" --port "$2" || st=1
	cap_stop "$1" || st=1
	scenario_ok "$1" "connection to a closed port refused" "$st"
}

run_server_abort() {
	local st=0
	cap_start "$1" || st=1
	rg_serve "${1}s" "$RG_SERVER" "$RG_SERVER4" "$2" linger-abort || st=1
	rg_app "${1}c" "$RG_CLIENT" expect-reset --to "$RG_SERVER4" --port "$2" || st=1
	rg_wait_app "${1}s" 10 || st=1
	cap_stop "$1" || st=1
	scenario_ok "$1" "server answers, pauses, aborts (SO_LINGER 0): client sees ECONNRESET" "$st"
}

run_client_abort() {
	local st=0
	cap_start "$1" || st=1
	rg_serve "${1}s" "$RG_SERVER" "$RG_SERVER4" "$2" expect-abort || st=1
	rg_app "${1}c" "$RG_CLIENT" linger-abort-client --to "$RG_SERVER4" --port "$2" || st=1
	rg_wait_app "${1}s" 10 || st=1
	cap_stop "$1" || st=1
	scenario_ok "$1" "client aborts (SO_LINGER 0): server sees ECONNRESET" "$st"
}

run_unread_data() {
	local st=0
	cap_start "$1" || st=1
	rg_serve "${1}s" "$RG_SERVER" "$RG_SERVER4" "$2" unread-close --read-bytes 4096 || st=1
	rg_app "${1}c" "$RG_CLIENT" send-expect-reset --to "$RG_SERVER4" --port "$2" --bytes 5000 || st=1
	rg_wait_app "${1}s" 10 || st=1
	cap_stop "$1" || st=1
	scenario_ok "$1" "client sends 5000, server reads 4096 and closes: client sees ECONNRESET" "$st"
}

run_inject() {  # NAME PORT MODE(ttl|burst)
	local st=0 i
	cap_start "$1" || st=1
	rm -f "$RG_TMP/${1}i.ready"
	timeout 40 ip netns exec "$RG_ROUTER" "$RG_PY" "$RG_TMP/inject.py" "$RG_IF_ROUTER_G" "$2" "$3" \
		"$RG_TMP/${1}i.ready" >"$RG_TMP/${1}i.json" 2>"$RG_TMP/${1}i.err" &
	RG_PIDS[${1}i]=$!
	for i in $(seq 1 100); do
		[ -s "$RG_TMP/${1}i.ready" ] && break
		sleep 0.1
	done
	[ -s "$RG_TMP/${1}i.ready" ] || st=1
	rm -f "$RG_TMP/${1}s.ready"
	rg_bg "${1}s" "$RG_SERVER" slow-serve --bind "$RG_SERVER4" --port "$2" --delay 0.4 \
		--bytes 1000 --ready-file "$RG_TMP/${1}s.ready"
	for i in $(seq 1 50); do
		[ -s "$RG_TMP/${1}s.ready" ] && break
		sleep 0.1
	done
	[ -s "$RG_TMP/${1}s.ready" ] || st=1
	rg_app "${1}c" "$RG_CLIENT" fetch --to "$RG_SERVER4" --port "$2" --pings 4 --bytes 1000 \
		--expect reset || st=1
	rg_wait_app "${1}i" 30 || st=1
	rg_wait_app "${1}s" 10
	cap_stop "$1" || st=1
	scenario_ok "$1" "injected RST ($3) from the router resets the client before the answer" "$st"
}

run_eviction() {
	local st=0
	cap_start "$1" || st=1
	rg_serve "${1}s" "$RG_SERVER" "$RG_SERVER4" "$2" echo --accept-timeout 30 || st=1
	rg_app "${1}c" "$RG_CLIENT" --timeout 5 echo-client --to "$RG_SERVER4" --port "$2" \
		--rounds 2 --idle "$IDLE"
	[ "$(rg_app_field "${1}c" rounds_done)" = 1 ] || st=1
	cap_stop "$1" || st=1
	rg_kill_all
	scenario_ok "$1" "echo, ${IDLE} s idle, echo: the router's REJECT resets the forgotten flow" "$st"
}

# warm_up: one refused connection (port 5399, not compared) before the captures, so that the
# first scenario does not pay for the fresh daemon's first packets (page faults in the flow
# table: milliseconds, which the capture would see in the handshake's RTT and inline would not).
warm_up() {
	rg_app warmup "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5399 ||
		rg_diag "warm-up connection not refused: $(cat "$RG_TMP/warmup.json")"
}

# ----------------------------------------------------------------------------------------------
# phase 1: default configuration

rg_daemon_up "rstguard -m detect runs inline in the gateway" -m detect -e "$EV1"
warm_up

for s in "${SCENARIOS[@]}"; do
	read -r name port <<<"$s"
	case $name in
	refused) run_refused "$name" "$port" "$RG_SERVER4" ;;
	refused6) run_refused "$name" "$port" "$RG_SERVER6" ;;
	server_abort) run_server_abort "$name" "$port" ;;
	client_abort) run_client_abort "$name" "$port" ;;
	unread_data) run_unread_data "$name" "$port" ;;
	inject_ttl) run_inject "$name" "$port" ttl ;;
	inject_burst) run_inject "$name" "$port" burst ;;
	esac
done
sleep 0.5   # pending judgements (at most detector.hold_max_ms)
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "phase 1: rstguard exits 0 on SIGTERM"

# ----------------------------------------------------------------------------------------------
# phase 2: a load balancer that forgets idle flows, rstguard told its timeout

CONF=$RG_TMP/eviction.conf
cat >"$CONF" <<'EOF'
# A middlebox beyond the gateway forgets flows idle for 10 s.
eviction = { idle_timeout = 10; probe_lead = 3; };
EOF
rg_ns "$RG_ROUTER" iptables -w 5 -A FORWARD -p tcp -m conntrack --ctstate INVALID \
	-j REJECT --reject-with tcp-reset || rg_bail "router: REJECT rule"
rg_router_conntrack nf_conntrack_tcp_timeout_established=5 nf_conntrack_tcp_loose=0 ||
	rg_bail "router: conntrack sysctls"
rg_daemon_up "rstguard -c (eviction idle_timeout 10 s) runs inline in the gateway" \
	-m detect -c "$CONF" -e "$EV2"
warm_up
run_eviction eviction 5308
sleep 0.5
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "phase 2: rstguard exits 0 on SIGTERM"

# ----------------------------------------------------------------------------------------------
# inline checks, offline runs, comparison

# inline_check NAME PORT CAUSE N_CAUSE N_FORGED: the scenario's inline events hold N_CAUSE rst
# events of cause CAUSE and N_FORGED forged ones (the ports of the server identify the scenario).
inline_check() {
	local name=$1 port=$2 cause=$3 want=$4 wantf=$5 ev=$EV1 n nf
	[ "$name" = eviction ] && ev=$EV2
	n=$(($(rg_events_count "$ev" rst "src_port=$port" "rst.cause=$cause") +
		$(rg_events_count "$ev" rst "dest_port=$port" "rst.cause=$cause")))
	nf=$(($(rg_events_count "$ev" rst "src_port=$port" rst.forged=true) +
		$(rg_events_count "$ev" rst "dest_port=$port" rst.forged=true)))
	if [ "$n" = "$want" ] && [ "$nf" = "$wantf" ]; then
		rg_pass "$name: inline: $want rst event(s) of cause $cause, $wantf forged"
	else
		rg_fail "$name: inline: $want rst event(s) of cause $cause, $wantf forged" \
			"found $n of cause $cause, $nf forged:"
		rg_events_show "$ev" rst "src_port=$port"
		rg_events_show "$ev" rst "dest_port=$port"
	fi
}

for s in "${SCENARIOS[@]}"; do
	read -r name port <<<"$s"
	case $name in
	refused | refused6) inline_check "$name" "$port" refused 1 0 ;;
	server_abort | client_abort) inline_check "$name" "$port" abort 1 0 ;;
	unread_data) inline_check "$name" "$port" unread_data 1 0 ;;
	inject_ttl) inline_check "$name" "$port" injected 1 1 ;;
	inject_burst) inline_check "$name" "$port" injected 3 3 ;;
	eviction)
		inline_check "$name" "$port" idle_eviction 1 0
		;;
	esac
done

for s in "${SCENARIOS[@]}"; do
	read -r name port <<<"$s"
	ev=$EV1
	cargs=()
	if [ "$name" = eviction ]; then
		ev=$EV2
		cargs=(-c "$CONF")
	fi
	off=$RG_TMP/$name.offline.json
	if [ -s "$RG_TMP/$name.pcap" ] &&
		timeout 30 "$RSTGUARD" -r "$RG_TMP/$name.pcap" "${cargs[@]}" -e "$off" --summary json \
			2>"$RG_TMP/$name.summary"; then
		rg_pass "$name: rstguard -r of the capture ($("$RG_PY" "$PCAPTOOL" info "$RG_TMP/$name.pcap" |
			sed 's/.*"packets": \([0-9]*\).*/\1/') packets) exits 0"
	else
		rg_fail "$name: rstguard -r of the capture exits 0" "$(cat "$RG_TMP/$name.summary" 2>/dev/null)"
	fi
	if out=$("$RG_PY" "$RG_TMP/compare.py" "$ev" "$off" "$port" 2>&1); then
		rg_pass "$name: offline equals inline (cause, forged, evidence of every RST; evictions)"
		printf '%s\n' "$out" | rg_diag
	else
		rg_fail "$name: offline equals inline (cause, forged, evidence of every RST; evictions)"
		printf '%s\n' "$out" | rg_diag
	fi
	if [ -n "${RG_FIXTURE_OUT:-}" ]; then
		mkdir -p "$RG_FIXTURE_OUT"
		cp "$RG_TMP/$name.pcap" "$RG_FIXTURE_OUT/$name.pcap"
		grep -E "\"(src|dest)_port\":$port," "$ev" >"$RG_TMP/$name.inline.json"
		"$RG_PY" "$PCAPTOOL" stable "$RG_TMP/$name.inline.json" >"$RG_FIXTURE_OUT/$name.inline"
		"$RG_PY" "$PCAPTOOL" stable "$off" >"$RG_FIXTURE_OUT/$name.offline"
		[ "$name" = eviction ] && cp "$CONF" "$RG_FIXTURE_OUT/$name.conf"
	fi
done
