#!/bin/bash
# soak.sh: steady flow churn through the daemon for a long time, sampling its memory, file
# descriptors and flow table into a CSV. Not part of `make check` (it runs for minutes to hours).
#
#   bench/soak.sh [-d SECONDS] [-i INTERVAL] [-c CONCURRENCY] [--on MS] [--off MS]
#                 [--flows-max N] [-o CSV]
#
# The test network of the end-to-end tests (tests/lib/netns.sh: client - gw - router - server,
# deleted at exit); rstguard in gw, detect mode, flows.max N (default 65536), events to a file.
# bench/churn (server in `server`, client in `client`) opens, uses and closes connections: it runs
# for ON ms (default 200) with CONCURRENCY (1) connections in parallel, then pauses OFF ms (800),
# so the load is a modest, steady fraction of what the machine can do. Every 20th round one
# refused connection adds a RST (and its events). Every INTERVAL (30) s the daemon is sent
# SIGUSR1 and one CSV row is written:
#   seconds,rss_kb,fds,flows_active,flows_capacity,flows_created,packets,rst,events_written,conns
# conns is the number of connections churn completed so far. A last summary line (first, last and
# largest RSS, fd counts) goes to stdout. Exit 1 when the daemon died.
set -u
RG_SRCDIR=${RG_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=../tests/lib/netns.sh
. "$RG_SRCDIR/tests/lib/netns.sh"

DURATION=1800
INTERVAL=30
CONC=1
ON_MS=200
OFF_MS=800
FLOWS_MAX=65536
CSV=""
while [ $# -gt 0 ]; do
	case $1 in
	-d) DURATION=$2; shift 2 ;;
	-i) INTERVAL=$2; shift 2 ;;
	-c) CONC=$2; shift 2 ;;
	--on) ON_MS=$2; shift 2 ;;
	--off) OFF_MS=$2; shift 2 ;;
	--flows-max) FLOWS_MAX=$2; shift 2 ;;
	-o) CSV=$2; shift 2 ;;
	*) echo "usage: $0 [-d SECONDS] [-i INTERVAL] [-c CONCURRENCY] [--on MS] [--off MS] [--flows-max N] [-o CSV]" >&2; exit 2 ;;
	esac
done

CHURN=${RG_CHURN:-${RG_BUILDDIR:-$RG_SRCDIR}/bench/churn}
[ -x "$CHURN" ] || { echo "soak: $CHURN missing (run make)" >&2; exit 2; }

rg_setup --queue-num "$RG_QUEUE_NUM"
[ -n "$CSV" ] || CSV=$RG_TMP/soak.csv
EV=$RG_TMP/events.json
CONF=$RG_TMP/rstguard.conf
cat >"$CONF" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
flows = { max = $FLOWS_MAX; };
events = { path = "$EV"; };
EOF
rg_daemon_start -c "$CONF" || { echo "soak: the daemon did not start" >&2; exit 1; }
# `ip netns exec` execs the daemon, so the pid is the daemon's own.
PID=$RG_DAEMON_PID

ip netns exec "$RG_SERVER" "$CHURN" server -b "$RG_SERVER4" -p 7000 -T 1 >"$RG_TMP/server.out" 2>&1 &
RG_PIDS[server]=$!
sleep 0.5

# The load, in the background: bounded rounds of churn client, then a pause.
(
	i=0
	end=$(( $(date +%s) + DURATION ))
	while [ "$(date +%s)" -lt "$end" ]; do
		timeout 10 ip netns exec "$RG_CLIENT" "$CHURN" client -s "$RG_SERVER4" -p 7000 \
			-c "$CONC" -t "$(awk -v m="$ON_MS" 'BEGIN{printf "%.3f", m/1000}')" 2>/dev/null |
			sed -n 's/.*conns=\([0-9]*\).*/\1/p' >>"$RG_TMP/conns"
		i=$((i + 1))
		if [ $((i % 20)) = 0 ]; then
			rg_app refused "$RG_CLIENT" --timeout 2 connect-refused --to "$RG_SERVER4" --port 7999 || true
		fi
		sleep "$(awk -v m="$OFF_MS" 'BEGIN{printf "%.3f", m/1000}')"
	done
) &
RG_PIDS[load]=$!

echo "seconds,rss_kb,fds,flows_active,flows_capacity,flows_created,packets,rst,events_written,conns" >"$CSV"
start=$(date +%s)
sample() {
	local now rss fds line flows pkts rst ev conns
	now=$(( $(date +%s) - start ))
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null)
	fds=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	: >"$RG_DAEMON_LOG.mark"
	kill -USR1 "$PID" 2>/dev/null
	sleep 0.5
	line=$(grep 'flows: created' "$RG_DAEMON_LOG" | tail -n 1)
	flows=$(sed -n 's/.*flows: created \([0-9]*\).*active \([0-9]*\) of \([0-9]*\).*/\2,\3,\1/p' <<<"$line")
	pkts=$(grep -o 'packets [0-9]*: tcp' "$RG_DAEMON_LOG" | tail -n 1 | awk '{print $2}' | tr -d :)
	rst=$(grep -o 'rst [0-9]*:' "$RG_DAEMON_LOG" | tail -n 1 | tr -dc 0-9)
	ev=$(grep -o 'events: written [0-9]*' "$RG_DAEMON_LOG" | tail -n 1 | awk '{print $3}')
	conns=$(awk '{s += $1} END {print s + 0}' "$RG_TMP/conns" 2>/dev/null)
	echo "$now,${rss:-},$fds,${flows:-,,},${pkts:-},${rst:-},${ev:-},${conns:-0}" >>"$CSV"
}
sample
while rg__alive "${RG_PIDS[load]}"; do
	for _ in $(seq 1 "$INTERVAL"); do
		rg__alive "${RG_PIDS[load]}" || break
		sleep 1
	done
	rg_daemon_alive || { echo "soak: the daemon died" >&2; cat "$CSV"; exit 1; }
	sample
done
cat "$CSV"
awk -F, 'NR == 2 {f = $2; fd1 = $3} NR > 1 {l = $2; fdl = $3; if ($2 > m) m = $2}
	END {printf "rss_kb first %s last %s max %s; fds first %s last %s\n", f, l, m, fd1, fdl}' "$CSV"
rg_daemon_stop 10
echo "daemon exit: $RG_DAEMON_RC"
