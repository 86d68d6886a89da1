#!/bin/bash
# flood.sh: floods through the live daemon in enforce mode (issue 14), flows.max 4096.
#   1. A spoofed SYN flood of RG_FLOOD_N (2.1M, at 15k packets/s: below what the daemon handles
#      on a busy 2-core machine, so the queue stays short) distinct flows (tests/tools/flood: sources
#      198.19.0.0/16 x ports, from the client namespace) while a legitimate connection exchanges
#      an echo every 0.3 s. Mid-flood a forged RST (TTL 40) is sent at the legitimate flow from the
#      router. The queue holds 32768 packets (1.6 s of the flood) so that the daemon being
#      descheduled for a moment on a busy machine does not make the kernel fail open. Checks: the daemon saw >= 2M flows, the table stayed within flows.max, RSS grew by
#      at most flows.max x 160 bytes (docs/performance.md: 156 bytes per flow all-in) + 2 MiB,
#      the forged RST was judged forged and dropped (its alert event was not rate-limited away),
#      the legitimate connection completed every round (never reset, never stalled).
#   2. A RST flood (200k RSTs of flows nobody saw): the routine event budget holds (events
#      written <= burst + rate x seconds), so the event file grows by a bounded amount.
#   3. A forged-RST flood at a live connection (20k RSTs copying the server's TTL, DF and window,
#      in the window): holds stay within detector.max_pending, confirmation probes on the wire
#      (counted with tcpdump on gw's router side, minus the client's own ACKs) stay within
#      detector.confirm_rate x (seconds + 1), and a genuine RST (a refused connection) during it
#      crosses the gateway within detector.hold_max_ms (+ 100 ms of scheduling slack).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

FLOOD=${RG_FLOOD:-${RG_BUILDDIR:-$RG_SRCDIR}/tests/tools/flood}
N=${RG_FLOOD_N:-2100000}
PPS=${RG_FLOOD_PPS:-15000}
FLOWS_MAX=4096
EV_RATE=100
EV_BURST=200
CONFIRM_RATE=100
HOLD_MAX=200
MAX_PENDING=256
PORT=5301        # the legitimate connection
PORT3=5302       # the connection of the forged-RST flood
[ -x "$FLOOD" ] || { echo "1..0 # SKIP $FLOOD not built"; exit 77; }

rg_setup --queue-num "$RG_QUEUE_NUM"
EV=$RG_TMP/events.json
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS=$EV
cat >"$CONF" <<EOF
mode = "enforce";
queue = { num = $RG_QUEUE_NUM; maxlen = 32768; rcvbuf = 67108864; };
flows = { max = $FLOWS_MAX; };
events = { path = "$EV"; rate = $EV_RATE; burst = $EV_BURST; };
detector = { confirm_rate = $CONFIRM_RATE; hold_max_ms = $HOLD_MAX; max_pending = $MAX_PENDING; };
EOF
rg_plan 13
rg_daemon_up "rstguard runs in enforce mode with flows.max $FLOWS_MAX" -c "$CONF"
# The flood's sources are not routed back; the server ignores them rather than answering into
# the void (what reaches the gateway is the point, not the server's replies).
rg_ns "$RG_SERVER" iptables -A INPUT -s 198.19.0.0/16 -j DROP

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$RG_DAEMON_PID/status"; }
counters() {
	local n
	n=$(grep -c 'flows: created' "$RG_DAEMON_LOG")
	rg_daemon_signal USR1
	for _ in $(seq 1 50); do
		[ "$(grep -c 'flows: created' "$RG_DAEMON_LOG")" -gt "$n" ] && break
		sleep 0.1
	done
	sleep 0.2
}
num() { grep -o "$1" "$RG_DAEMON_LOG" | tail -n 1 | grep -o '[0-9][0-9]*' | tail -n 1; }

# capture_seq PORT: from gw's router side, the server's latest segment on PORT with data:
# prints "SEQ_END ACK WIN" (SEQ_END: the client's RCV.NXT after it).
capture_seq() {
	rg_ns "$RG_GW" timeout 5 tcpdump -i "$RG_IF_GW_R" -n -S -c 1 -l \
		"tcp src port $1 and src host $RG_SERVER4 and tcp[tcpflags] & tcp-push != 0" 2>/dev/null |
		sed -n 's/.*seq [0-9]*:\([0-9]*\), ack \([0-9]*\), win \([0-9]*\).*/\1 \2 \3/p'
}

# ---- 1. SYN flood with a legitimate connection
secs=$(( N / PPS + 15 ))
# At least 0.3 s a round: the rounds outlast the flood (its forged RST comes halfway). The
# deadline (whole-process alarm) covers the server too.
RG_APP_DEADLINE=$((secs * 3))
rg_serve echo "$RG_SERVER" "$RG_SERVER4" "$PORT" echo || rg_bail "the echo server did not start"
rg_bg legit "$RG_CLIENT" echo-client --to "$RG_SERVER4" --port "$PORT" \
	--rounds $(( (N / PPS + 5) * 10 / 3 )) --idle 0.3
sleep 1
rss0=$(rss)
t0=$(date +%s)
ip netns exec "$RG_CLIENT" "$FLOOD" syn -d "$RG_SERVER4" -p 7998 -n "$N" -r "$PPS" \
	>"$RG_TMP/flood1.out" 2>&1 &
fpid=$!
rssmax=$rss0
inj=""
for _ in $(seq 1 $((secs * 2))); do
	rg__alive "$fpid" || break
	r=$(rss); [ "${r:-0}" -gt "$rssmax" ] && rssmax=$r
	# Halfway: the forged RST at the legitimate flow (from the router, TTL 40: a stranger).
	if [ -z "$inj" ] && [ $(( $(date +%s) - t0 )) -ge $(( N / PPS / 2 )) ]; then
		read -r seqend ackn _ <<<"$(capture_seq "$PORT")"
		cport=$(ss -Htn -N "$RG_CLIENT" "dst $RG_SERVER4:$PORT" 2>/dev/null | awk '{split($4, a, ":"); print a[2]; exit}')
		if [ -n "${seqend:-}" ] && [ -n "${cport:-}" ]; then
			rg_ns "$RG_ROUTER" "$FLOOD" rst-at -d "$RG_CLIENT4" -p "$cport" -s "$RG_SERVER4" \
				-S "$PORT" --seq "$seqend" --ack "$ackn" -n 1 --ttl 40 >"$RG_TMP/inj.out" 2>&1
			inj="$cport $seqend"
		else
			inj="failed: seq '${seqend:-}' port '${cport:-}'"
		fi
	fi
	sleep 0.5
done
rg_wait_pid "$fpid" 30 >/dev/null
t1=$(date +%s)
counters
created=$(num 'flows: created [0-9]*')
active=$(num 'active [0-9]* of')
evicted=$(num 'evicted [0-9]*, reused')
rg_diag "flood: $(cat "$RG_TMP/flood1.out"); $((t1 - t0)) s; forged RST at port/seq: $inj"
rg_diag "$(grep 'flows: created' "$RG_DAEMON_LOG" | tail -n 1)"
if [ "${created:-0}" -ge 2000000 ]; then
	rg_pass "the daemon saw $created flows (>= 2M distinct spoofed SYNs)"
else
	rg_fail "the daemon saw >= 2M flows" "created ${created:-?} (the rest failed open: the daemon fell behind)"
fi
if [ "${active:-99999999}" -le "$FLOWS_MAX" ] && [ "${evicted:-0}" -gt 0 ]; then
	rg_pass "the flow table stayed within flows.max ($active active of $FLOWS_MAX, $evicted evicted)"
else
	rg_fail "the flow table stayed within flows.max" "active ${active:-?}, evicted ${evicted:-?}"
fi
limit=$(( FLOWS_MAX * 160 / 1024 + 2048 ))
if [ $((rssmax - rss0)) -le "$limit" ]; then
	rg_pass "RSS flat during the flood: $rss0 KiB before, at most $rssmax KiB (limit + $limit KiB)"
else
	rg_fail "RSS flat during the flood" "before $rss0 KiB, max $rssmax KiB, allowed growth $limit KiB"
fi
if rg_wait_app legit $((secs * 2)); then
	rg_pass "the legitimate connection completed all $(rg_app_field legit rounds_done) echo rounds (never reset)"
else
	rg_fail "the legitimate connection completed all its echo rounds"
	rg_app_diag legit
fi
sleep 1.5   # let the routine event budget refill for the flow's close event
counters
forged=$(num 'forged [0-9]*, dropped')
dropped=$(sed -n 's/.*forged [0-9]*, dropped \([0-9]*\),.*/\1/p' "$RG_DAEMON_LOG" | tail -n 1)
n_alert=$(rg_events_count "$EV" rst "rst.forged=true" "src_port=$PORT" "dest_ip=$RG_CLIENT4")
if [ "${forged:-0}" -ge 1 ] && [ "${dropped:-0}" -ge 1 ] && [ "$n_alert" -ge 1 ]; then
	rg_pass "the forged RST at the legitimate flow was caught during the flood (forged $forged, dropped $dropped, $n_alert alert event)"
else
	rg_fail "the forged RST at the legitimate flow was caught during the flood" \
		"forged ${forged:-?} dropped ${dropped:-?} alert events $n_alert; injected: $inj"
fi
n_mid=$(rg_events_count "$EV" flow "src_port=$PORT" "flow.midstream=true")
n_mid2=$(rg_events_count "$EV" flow "dest_port=$PORT" "flow.midstream=true")
if [ "$((n_mid + n_mid2))" = 0 ]; then
	rg_pass "the legitimate flow was never forgotten and picked up mid-stream"
else
	rg_fail "the legitimate flow was never forgotten and picked up mid-stream" "midstream flow events: $((n_mid + n_mid2))"
fi

# ---- 2. RST flood: 200k RSTs for flows nobody saw
counters
w0=$(num 'events: written [0-9]*')
sz0=$(stat -c %s "$EV")
t0=$(date +%s.%N)
rg_ns "$RG_CLIENT" "$FLOOD" rst -d "$RG_SERVER4" -p 7997 -n 200000 -r 40000 >"$RG_TMP/flood2.out" 2>&1
t1=$(date +%s.%N)
counters
w1=$(num 'events: written [0-9]*')
sz1=$(stat -c %s "$EV")
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", b - a + 2}')
bound=$(( EV_BURST + EV_RATE * el ))
if [ $((w1 - w0)) -le "$bound" ]; then
	rg_pass "RST flood: $((w1 - w0)) events written for 200k RSTs (bound burst + rate x ${el}s = $bound), event file + $((sz1 - sz0)) bytes"
else
	rg_fail "RST flood: the routine event budget held" "written $((w1 - w0)), bound $bound"
fi
rg_diag "$(grep 'events: written' "$RG_DAEMON_LOG" | tail -n 1)"

# ---- 3. forged-RST flood at a live connection
RG_APP_DEADLINE=60
rg_serve echo3 "$RG_SERVER" "$RG_SERVER4" "$PORT3" echo || rg_bail "the echo server did not start"
capture_seq "$PORT3" >"$RG_TMP/seq3" &
cs=$!
sleep 1
rg_bg legit3 "$RG_CLIENT" echo-client --to "$RG_SERVER4" --port "$PORT3" --rounds 2 --idle 6
rg_wait_pid "$cs" 10 >/dev/null
read -r seqend ackn win <"$RG_TMP/seq3"
cport=$(ss -Htn -N "$RG_CLIENT" "dst $RG_SERVER4:$PORT3" 2>/dev/null | awk '{split($4, a, ":"); print a[2]; exit}')
[ -n "${seqend:-}" ] && [ -n "${cport:-}" ] || rg_bail "no sequence number for the forged-RST flood (seq '${seqend:-}', port '${cport:-}')"
counters
held0=$(sed -n 's/.*, held \([0-9]*\),.*/\1/p' "$RG_DAEMON_LOG" | tail -n 1)
probes0=$(num 'confirmation probes: sent [0-9]*')
# Probes leave gw toward the server on its router side; the client's own ACKs are counted where
# they leave the client.
rg_ns "$RG_GW" timeout 90 tcpdump -U -i "$RG_IF_GW_R" -n -Q out -w "$RG_TMP/probes.pcap" \
	"tcp dst port $PORT3 and src host $RG_CLIENT4" 2>"$RG_TMP/td1.err" &
td1=$!
rg_ns "$RG_CLIENT" timeout 90 tcpdump -U -i "$RG_IF_CLIENT" -n -Q out -w "$RG_TMP/client.pcap" \
	"tcp dst port $PORT3" 2>"$RG_TMP/td2.err" &
td2=$!
rg_ns "$RG_GW" timeout 90 tcpdump -U -i any -n -tt -w "$RG_TMP/genuine.pcap" \
	"tcp port 7996 and tcp[tcpflags] & tcp-rst != 0" 2>"$RG_TMP/td3.err" &
td3=$!
for _ in $(seq 1 50); do
	[ "$(grep -c 'listening on' "$RG_TMP"/td[123].err 2>/dev/null | awk -F: '{s += $2} END {print s}')" = 3 ] && break
	sleep 0.1
done
t0=$(date +%s.%N)
# In the window, copying what the server's segments look like at the gateway (TTL one below the
# router's own packets: 63, DF, the server's window): the packet alone cannot tell.
rg_ns "$RG_ROUTER" "$FLOOD" rst-at -d "$RG_CLIENT4" -p "$cport" -s "$RG_SERVER4" -S "$PORT3" \
	--seq "$((seqend + 1))" --step 1 --ack "$ackn" -n 20000 -r 5000 --ttl 63 --df --win "${win:-502}" \
	>"$RG_TMP/flood3.out" 2>&1 &
f3=$!
sleep 1
rg_app refused "$RG_CLIENT" --timeout 2 connect-refused --to "$RG_SERVER4" --port 7996
refused_st=$?
rg_wait_pid "$f3" 30 >/dev/null
t1=$(date +%s.%N)
sleep 1
kill -INT "$td1" "$td2" "$td3" 2>/dev/null
rg_wait_pid "$td1" 5 >/dev/null; rg_wait_pid "$td2" 5 >/dev/null; rg_wait_pid "$td3" 5 >/dev/null
counters
held1=$(sed -n 's/.*, held \([0-9]*\),.*/\1/p' "$RG_DAEMON_LOG" | tail -n 1)
probes1=$(num 'confirmation probes: sent [0-9]*')
el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", b - a + 1.999}')
# (A capture cut short by its tcpdump's end loses at most its last packet: read what is there.)
wire=$("$RG_PY" - "$RG_TMP/probes.pcap" "$RG_TMP/client.pcap" 2>"$RG_TMP/wire.err" <<'PYEOF'
import sys
from collections import Counter
from scapy.all import PcapReader, TCP
def packets(path):
    try:
        with PcapReader(path) as r:
            for p in r:
                yield p
    except Exception as e:
        print("%s: %s" % (path, e), file=sys.stderr)
def key(p):
    return (p[TCP].sport, p[TCP].seq, p[TCP].ack, int(p[TCP].flags))
gw = Counter(key(p) for p in packets(sys.argv[1]) if TCP in p)
cl = Counter(key(p) for p in packets(sys.argv[2]) if TCP in p)
print(sum((gw - cl).values()), sum(cl.values()))
PYEOF
)
[ -s "$RG_TMP/wire.err" ] && rg_diag_file "$RG_TMP/wire.err" "reading the probe captures"
read -r wire_probes client_pkts <<<"$wire"
rg_diag "forged-RST flood: $(cat "$RG_TMP/flood3.out"); held $((held1 - held0)), probes counted $((probes1 - probes0)), on the wire $wire_probes (client's own packets $client_pkts)"
rg_diag "$(grep 'rst [0-9]*:' "$RG_DAEMON_LOG" | tail -n 1)"
rg_diag "$(grep 'confirmation probes' "$RG_DAEMON_LOG" | tail -n 1)"
pbound=$(( CONFIRM_RATE * (el + 1) ))
if [ "${wire_probes:-999999}" -le "$pbound" ] && [ "${wire_probes:-x}" = "$((probes1 - probes0))" ]; then
	rg_pass "forged-RST flood: $wire_probes probes on the wire (the daemon counted the same; bound confirm_rate x $((el + 1)) s = $pbound)"
else
	rg_fail "forged-RST flood: probes bounded by confirm_rate" \
		"on the wire ${wire_probes:-?}, daemon $((probes1 - probes0)), bound $pbound"
fi
pend=$(grep -o 'pending [0-9]*' "$RG_DAEMON_LOG" | tail -n 1)
delay=$("$RG_PY" - "$RG_TMP/genuine.pcap" 2>"$RG_TMP/delay.err" <<'PYEOF'
import sys
from scapy.all import PcapReader, TCP
def packets(path):
    try:
        with PcapReader(path) as r:
            for p in r:
                yield p
    except Exception as e:
        print("%s: %s" % (path, e), file=sys.stderr)
first, last = {}, {}
for p in packets(sys.argv[1]):
    if TCP in p:
        k = (p[TCP].sport, p[TCP].dport, p[TCP].seq)
        first.setdefault(k, p.time)
        last[k] = p.time
d = [float(last[k] - first[k]) for k in first]
print("%d %.0f" % (len(d), max(d) * 1000 if d else -1))
PYEOF
)
[ -s "$RG_TMP/delay.err" ] && rg_diag_file "$RG_TMP/delay.err" "reading the genuine RST capture"
read -r ngen dms <<<"$delay"
if [ "$refused_st" = 0 ] && [ "${ngen:-0}" -ge 1 ] && [ "${dms:-99999}" -le $((HOLD_MAX + 100)) ]; then
	rg_pass "a genuine RST during the forged-RST flood crossed the gateway in $dms ms (hold_max_ms $HOLD_MAX)"
else
	rg_fail "a genuine RST during the forged-RST flood crossed the gateway within hold_max_ms" \
		"refused connect: $(cat "$RG_TMP/refused.json" 2>/dev/null); RSTs seen $ngen, delay $dms ms"
fi
if rg_wait_app legit3 30; then
	rg_diag "the connection under the forged-RST flood survived (both echo rounds)"
else
	rg_diag "the connection under the forged-RST flood did not survive: $(cat "$RG_TMP/legit3.json")"
fi
rg_diag "${pend:-}"

if rg_daemon_stop 10; then
	rg_pass "the daemon exits 0 after the floods"
else
	rg_fail "the daemon exits 0 after the floods" "exit $RG_DAEMON_RC"
fi
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "no sanitizer finding in the daemon's log"
else
	rg_pass "no sanitizer finding in the daemon's log"
fi
rg_check_events "$EV"
