#!/bin/bash
# metrics.sh: the Prometheus metrics of a live daemon, end to end.
#
# rstguard runs in gw with metrics.listen on gw's own address (198.18.1.1:9471, then
# [2001:db8:1::1]:9471) and metrics.textfile in the test's directory, written every second. Known
# traffic crosses it: M connections to a closed port of the server (M refused RSTs) and N
# connections each hit by one forged RST from the on-path injector in the router
# (tests/lib/inject.py, profile bare-ttl: TTL 40, conclusive). The metrics must say exactly M and
# N, over HTTP and in the textfile; a real Prometheus server (/usr/bin/prometheus, run in gw with
# a 1 s scrape interval and its storage in the test's directory) scrapes the daemon and its HTTP
# API must give back the forged-RST counter; promtool finds the live exposition clean. In
# enforce mode (over IPv6) the forged RSTs (profile mimic: nothing in the packet gives it away,
# so each is held and its claimed sender probed) are dropped, and the metrics say so, the
# hold-time histogram included. The counters
# also agree with the daemon's exit log line; a listen address that is not local stops the
# start-up with a message; idle, oversized and garbage requests do not stop the listener.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/rstcase.sh
. "$RG_LIB/rstcase.sh"

PROMQ=$RG_LIB/promq.py
N_FORGED=3        # connections hit by one forged RST each (detect run)
N_REFUSED=4       # connections to a closed port
N_ENFORCE=2       # forged RSTs in the enforce run
BYTES=200000
LISTEN4=$RG_GW_C4:9471
LISTEN6="[$RG_GW_C6]:9471"
PROM_LISTEN=127.0.0.1:9090

command -v prometheus >/dev/null 2>&1 || rg_skip "prometheus not installed (apt-get install prometheus)"
command -v promtool >/dev/null 2>&1 || rg_skip "promtool not installed (apt-get install prometheus)"
rg_setup --queue-num "$RG_QUEUE_NUM"
echo 'metrics = { listen = "127.0.0.1:1"; };' >"$RG_TMP/probe.conf"
"$RSTGUARD" -t -c "$RG_TMP/probe.conf" >/dev/null 2>&1 ||
	rg_skip "rstguard built without libmicrohttpd (no metrics.listen)"
rg_results_init
rg_plan 26

TEXTDIR=$RG_TMP/textfile
TEXTFILE=$TEXTDIR/rstguard.prom
mkdir -p "$TEXTDIR"
mkconf() {  # mkconf FILE LISTEN [TEXTFILE]
	cat >"$1" <<EOF
metrics = {
	listen = "$2";
	textfile = "${3:-$TEXTFILE}";
	interval = 1;
};
EOF
}
CONF4=$RG_TMP/metrics4.conf
CONF6=$RG_TMP/metrics6.conf
mkconf "$CONF4" "$LISTEN4"
mkconf "$CONF6" "$LISTEN6"

# promq ARGS...: tests/lib/promq.py in gw (where the listener and Prometheus are).
promq() {
	timeout 60 ip netns exec "$RG_GW" "$RG_PY" "$PROMQ" "$@"
}
# metric_is SOURCE NAME LABELS WANT DESC: one TAP point, the sample reaches WANT (bounded wait).
metric_is() {
	local src=$1 name=$2 labels=$3 want=$4 desc=$5 out
	# shellcheck disable=SC2086 # LABELS is a list of label=value words
	out=$(promq wait "$src" "$name" $labels --want "$want" --timeout 10)
	rg_ok $? "$desc" "$name{$labels}: $out"
}
# metrics_are SOURCE DESC NAME:LABELS:WANT...: one TAP point, every sample has its value.
metrics_are() {
	local src=$1 desc=$2 spec name labels want out bad=()
	shift 2
	for spec in "$@"; do
		IFS=: read -r name labels want <<<"$spec"
		# shellcheck disable=SC2086
		out=$(promq wait "$src" "$name" $labels --want "$want" --timeout 10) ||
			bad+=("$name{$labels} want $want: $out")
	done
	if [ ${#bad[@]} -eq 0 ]; then rg_pass "$desc"; else rg_fail "$desc" "${bad[@]}"; fi
}

# inject_one NAME PORT SERVER PROFILE EXPECT: a slow server, the injector (PROFILE) armed for
# it, the client's fetch expecting EXPECT (reset or complete). Returns 0 when the injector sent
# one RST and the client saw EXPECT.
inject_one() {
	local name=$1 port=$2 srv=$3 profile=$4 expect=$5 n
	rg_app_serve "srv-$name" "$RG_SERVER" slow-serve --bind "$srv" --port "$port" \
		--delay 0.4 --bytes "$BYTES" || return 1
	rg_inject_start "inj-$name" "$port" "$profile" || return 1
	rg_app "cli-$name" "$RG_CLIENT" fetch --to "$srv" --port "$port" --bytes "$BYTES" --expect "$expect"
	local cst=$?
	rg_wait_app "inj-$name" 45
	rg_wait_app "srv-$name" 15
	n=$(rg_inject_count "inj-$name")
	[ "$cst" -eq 0 ] && [ "$n" = 1 ] && return 0
	rg_diag "$name: client status $cst, injector sent $n RST(s)"
	rg_app_diag "cli-$name"
	rg_app_diag "inj-$name"
	return 1
}

# ---- a listen address that is not local stops the start-up

bad_conf=$RG_TMP/bad-listen.conf
mkconf "$bad_conf" "198.18.9.9:9471"
timeout 20 ip netns exec "$RG_GW" "$RSTGUARD" -c "$bad_conf" -q $((RG_QUEUE_NUM + 7)) -e /dev/null \
	>/dev/null 2>"$RG_TMP/bad-listen.err"
st=$?
if [ "$st" -eq 1 ] && grep -q 'metrics.listen: cannot listen on 198.18.9.9:9471' "$RG_TMP/bad-listen.err"; then
	rg_pass "metrics.listen on an address gw does not have: exit 1, 'cannot listen' logged"
else
	rg_fail "metrics.listen on an address gw does not have: exit 1, 'cannot listen' logged" \
		"exit $st" "$(cat "$RG_TMP/bad-listen.err")"
fi

# ---- detect mode over IPv4, scraped by Prometheus

rg_daemon_up "rstguard -m detect binds queue $RG_QUEUE_NUM and listens on $LISTEN4" \
	-m detect -e "$RG_TMP/events-detect.json" -c "$CONF4"
URL4=http://$LISTEN4/metrics

out=$(promq get "$URL4" --out "$RG_TMP/scrape0.prom")
rg_is "$out" '{"status": 200, "content_type": "text/plain; version=0.0.4; charset=utf-8"}' \
	"GET /metrics: 200, text/plain; version=0.0.4"
out=$(promtool check metrics <"$RG_TMP/scrape0.prom" 2>&1)
rg_ok $? "promtool check metrics: the live exposition is clean ($(wc -l <"$RG_TMP/scrape0.prom") lines)" "$out"
a=$(promq get "http://$LISTEN4/")
b=$(promq get "$URL4" --method POST)
if [[ $a == *'"status": 404'* ]] && [[ $b == *'"status": 405'* ]]; then
	rg_pass "another path is 404, another method 405"
else
	rg_fail "another path is 404, another method 405" "GET /: $a" "POST /metrics: $b"
fi

# Prometheus in gw, scraping the daemon every second.
mkdir -p "$RG_TMP/prometheus"
cat >"$RG_TMP/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rstguard
    static_configs:
      - targets: ['$LISTEN4']
EOF
timeout 300 ip netns exec "$RG_GW" prometheus --config.file="$RG_TMP/prometheus/prometheus.yml" \
	--storage.tsdb.path="$RG_TMP/prometheus/data" --web.listen-address="$PROM_LISTEN" \
	--log.level=warn >"$RG_TMP/prometheus.out" 2>"$RG_TMP/prometheus.err" </dev/null &
RG_PIDS[prometheus]=$!
# Wait for its listening socket without connecting: a connection refused on gw's loopback would
# be a RST the daemon counts (cause refused), and this test counts those exactly.
for _ in $(seq 1 300); do
	[ -n "$(ip netns exec "$RG_GW" ss -Hltn "sport = :${PROM_LISTEN##*:}" 2>/dev/null)" ] && break
	rg__alive "${RG_PIDS[prometheus]}" || break
	sleep 0.1
done
out=$(promq query "http://$PROM_LISTEN" 'up{job="rstguard"}' --want 1 --timeout 30)
rg_ok $? "a real Prometheus server scrapes the daemon (up{job=\"rstguard\"} = 1)" "$out" \
	"$(tail -n 5 "$RG_TMP/prometheus.err")"

ok=1
for i in $(seq 1 "$N_REFUSED"); do
	rg_app "refused-$i" "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER4" --port $((6000 + i)) || ok=0
done
rg_ok $((1 - ok)) "$N_REFUSED connections to a closed port refused"

ok=1
for i in $(seq 1 "$N_FORGED"); do
	inject_one "d$i" $((5200 + i)) "$RG_SERVER4" bare-ttl reset || ok=0
done
rg_ok $((1 - ok)) "$N_FORGED connections each reset by one forged RST (bare-ttl) in detect mode"

metric_is "$URL4" rstguard_forged_rsts_total "action=detected" "$N_FORGED" \
	"HTTP: rstguard_forged_rsts_total{action=\"detected\"} is $N_FORGED"
metrics_are "$URL4" "HTTP: injected $N_FORGED, refused $N_REFUSED, would_drop $N_FORGED, dropped 0, none held" \
	"rstguard_rsts_total:cause=injected:$N_FORGED" "rstguard_rsts_total:cause=refused:$N_REFUSED" \
	"rstguard_forged_rsts_total:action=would_drop:$N_FORGED" "rstguard_forged_rsts_total:action=dropped:0" \
	"rstguard_held_rsts_total::0" "rstguard_rst_hold_seconds_count::0"
metrics_are "$TEXTFILE" "textfile: forged detected $N_FORGED, injected $N_FORGED, refused $N_REFUSED" \
	"rstguard_forged_rsts_total:action=detected:$N_FORGED" "rstguard_rsts_total:cause=injected:$N_FORGED" \
	"rstguard_rsts_total:cause=refused:$N_REFUSED"
perm=$(stat -c %a "$TEXTFILE" 2>/dev/null)
left=$(find "$TEXTDIR" -name '*.tmp' | wc -l)
rg_ok "$([ "$perm" = 644 ] && [ "$left" = 0 ]; echo $?)" \
	"textfile: mode 0644, no temporary file left beside it" "mode $perm, $left temporary files"
# The kernel's own counters for our queue, and ours, are there.
promq get "$URL4" --out "$RG_TMP/scrape1.prom" >/dev/null
k=$(promq value "$RG_TMP/scrape1.prom" rstguard_kernel_queue_waiting "queue=$RG_QUEUE_NUM")
p=$(promq value "$RG_TMP/scrape1.prom" rstguard_queue_packets_total "queue=$RG_QUEUE_NUM")
rg_ok "$([ -n "$k" ] && [ "${p:-0}" -gt 0 ]; echo $?)" \
	"queue $RG_QUEUE_NUM: the kernel's counters (waiting $k) and ours (packets $p)"

out=$(promq query "http://$PROM_LISTEN" 'rstguard_forged_rsts_total{job="rstguard",action="detected"}' \
	--want "$N_FORGED" --timeout 30)
rg_ok $? "Prometheus' HTTP API: rstguard_forged_rsts_total{action=\"detected\"} = $N_FORGED" "$out"
out=$(promq query "http://$PROM_LISTEN" 'sum(rstguard_rsts_total{job="rstguard",cause=~"refused|injected"})' \
	--want $((N_FORGED + N_REFUSED)) --timeout 30)
rg_ok $? "Prometheus' HTTP API: refused + injected RSTs = $((N_FORGED + N_REFUSED))" "$out"

# Hostile clients (after the exact counts: their connections cross the queue too).
out=$(promq hostile "$RG_GW_C4" "${LISTEN4##*:}")
rg_ok $? "40 idle connections, 64 KiB of headers, garbage: refused, and the listener serves on" "$out"

# SIGTERM: the exit counters agree with the last metrics.
promq get "$URL4" --out "$RG_TMP/scrape-last.prom" >/dev/null
rg_daemon_stop 5
st=$?
rg_daemon_counters
m_forged=$(promq value "$RG_TMP/scrape-last.prom" rstguard_forged_rsts_total action=detected)
m_would=$(promq value "$RG_TMP/scrape-last.prom" rstguard_forged_rsts_total action=would_drop)
rg_ok "$([ "$st" -eq 0 ] && [ "$RG_CNT_FORGED" = "$m_forged" ] && [ "$RG_CNT_WOULD" = "$m_would" ] &&
	[ "$RG_CNT_DROPPED" = 0 ]; echo $?)" \
	"detect run: exit 0; the exit log's forged ($RG_CNT_FORGED) and would drop ($RG_CNT_WOULD) are the metrics'" \
	"exit $RG_DAEMON_RC; metrics: forged $m_forged, would_drop $m_would" "log: $RG_CNT_LINE"
# Without a daemon bound, the queue rule would drop gw's own TCP (Prometheus' API included).
rg_queue_rule_clear || rg_bail "cannot remove the queue rules"
out=$(promq get "$URL4")
rg_ok "$([[ $out == *'refused'* ]]; echo $?)" "after exit nothing listens on $LISTEN4 (connection refused)" "$out"
out=$(promq query "http://$PROM_LISTEN" 'up{job="rstguard"}' --want 0 --timeout 15)
rg_ok $? "Prometheus sees the target go down (up = 0)" "$out"
kill -TERM "${RG_PIDS[prometheus]}" 2>/dev/null
rg_wait_app prometheus 15
rg_queue_rule --queue-num "$RG_QUEUE_NUM" || rg_bail "cannot restore the queue rules"

# ---- enforce mode over IPv6: the forged RSTs are dropped

rg_daemon_up "rstguard -m enforce binds queue $RG_QUEUE_NUM and listens on $LISTEN6" \
	-m enforce -e "$RG_TMP/events-enforce.json" -c "$CONF6"
URL6="http://$LISTEN6/metrics"
ok=1
for i in $(seq 1 "$N_ENFORCE"); do
	inject_one "e$i" $((5300 + i)) "$RG_SERVER4" mimic complete || ok=0
done
rg_ok $((1 - ok)) "$N_ENFORCE transfers complete despite one forged RST each (mimic: held, enforce mode)"
metrics_are "$URL6" "HTTP over IPv6: forged detected, dropped, injected $N_ENFORCE; $N_ENFORCE probes answered by ack" \
	"rstguard_forged_rsts_total:action=detected:$N_ENFORCE" "rstguard_forged_rsts_total:action=dropped:$N_ENFORCE" \
	"rstguard_rsts_total:cause=injected:$N_ENFORCE" \
	"rstguard_confirm_probes_sent_total::$N_ENFORCE" "rstguard_confirm_probes_total:outcome=ack:$N_ENFORCE"
promq get "$URL6" --out "$RG_TMP/scrape-enforce.prom" >/dev/null
held=$(promq value "$RG_TMP/scrape-enforce.prom" rstguard_held_rsts_total)
hcount=$(promq value "$RG_TMP/scrape-enforce.prom" rstguard_rst_hold_seconds_count)
hinf=$(promq value "$RG_TMP/scrape-enforce.prom" rstguard_rst_hold_seconds_bucket le=+Inf)
rg_ok "$([ "${held:-0}" -ge "$N_ENFORCE" ] && [ "$hcount" = "$hinf" ] && [ "$hcount" = "$held" ]; echo $?)" \
	"held RSTs ($held, at least $N_ENFORCE) are all in the hold-time histogram (count $hcount)" \
	"held $held, count $hcount, +Inf bucket $hinf"
out=$(promtool check metrics <"$RG_TMP/scrape-enforce.prom" 2>&1)
rg_ok $? "promtool check metrics: the enforce run's exposition is clean" "$out"
# A reload applies a new textfile at once and keeps the listener (restart only), saying so.
mkconf "$CONF6" "$LISTEN4" "$TEXTDIR/reloaded.prom"
rg_daemon_signal HUP
out=$(promq wait "$TEXTDIR/reloaded.prom" rstguard_forged_rsts_total action=dropped --want "$N_ENFORCE" --timeout 10)
st=$?
out2=$(promq get "$URL6")
rg_ok "$([ $st -eq 0 ] && [[ $out2 == *'"status": 200'* ]] &&
	grep -q 'reload: metrics.listen changed: requires restart' "$RG_DAEMON_LOG"; echo $?)" \
	"SIGHUP: the new metrics.textfile is written, the listener stays on $LISTEN6 (requires restart)" \
	"textfile: $out" "listener: $out2"
rg_daemon_stop 5
st=$?
rg_daemon_counters
rg_ok "$([ "$st" -eq 0 ] && [ "$RG_CNT_DROPPED" = "$N_ENFORCE" ]; echo $?)" \
	"enforce run: exit 0, the exit log says dropped $N_ENFORCE too" "exit $RG_DAEMON_RC; log: $RG_CNT_LINE"
