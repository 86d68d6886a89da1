#!/bin/bash
# eviction.sh: idle evictions by a load balancer, without keepalive. The router forgets a flow
# after T = 10 s of silence (conntrack, tcp_loose 0); a packet of a forgotten flow gets a RST
# (REJECT --reject-with tcp-reset, ports 7001 and 7003) or vanishes (DROP, port 7002).
#   detect mode, RST:   a connection idle 13 s gets the LB's RST on its next write (ECONNRESET);
#                       rstguard reports the RST as cause idle_eviction, not forged, accepted,
#                       and one eviction event, kind rst, idle >= T, detected by traffic;
#   detect, black hole: the write after 13 s is retransmitted into silence; the eviction event
#                       (kind blackhole, 2 retransmits) is written while the client is still
#                       waiting for its answer (6 s), i.e. while it retransmits;
#   enforce mode, RST:  the LB's RST is still accepted (verdict accept, the client gets
#                       ECONNRESET as it would without rstguard), with the same events.
# Both runs use --idle-timeout 10 (the configured middlebox timeout). Runtime about 45 s.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/lb.sh
. "$RG_LIB/lb.sh"

T=10          # the load balancer's idle timeout, and rstguard's --idle-timeout
IDLE=13       # the clients' silence: longer than T
WAIT=6        # how long a client waits for the echo after its silence
P_RST=7001    # LB answers a forgotten flow with a RST
P_HOLE=7002   # LB drops a forgotten flow's packets
P_ENF=7003    # RST, during the enforce-mode run

lb_begin "$T" 22
EV2=$RG_TMP/events-enforce.json
RG_DIAG_EVENTS="$EV $EV2"
lb_invalid rst "$P_RST,$P_ENF" || rg_bail "could not add the LB's REJECT rule"
lb_invalid drop "$P_HOLE" || rg_bail "could not add the LB's DROP rule"

# ---- run 1: detect mode -----------------------------------------------------------------------

rg_daemon_up "rstguard -m detect --idle-timeout $T binds queue $RG_QUEUE_NUM in the gateway" \
	-m detect -e "$EV" --idle-timeout "$T"

lb_serve srst "$RG_SERVER" "$RG_SERVER4" "$P_RST" || rg_bail "server on port $P_RST"
lb_serve shole "$RG_SERVER" "$RG_SERVER4" "$P_HOLE" || rg_bail "server on port $P_HOLE"
lb_client crst "$RG_CLIENT" --to "$RG_SERVER4" --port "$P_RST" --idle "$IDLE" \
	--read-timeout "$WAIT" --expect reset
lb_client chole "$RG_CLIENT" --to "$RG_SERVER4" --port "$P_HOLE" --idle "$IDLE" \
	--read-timeout "$WAIT" --expect timeout

# The black hole: from the client's resumption on, poll the event file while the client still
# waits for its echo (it retransmits meanwhile). The event counts only if it is in the file
# while the client process is still alive (checked after the count).
seen_alive=0
for i in $(seq 1 $(((IDLE + 10) * 10))); do
	[ -s "$RG_TMP/chole.mark" ] && break
	rg__alive "${RG_PIDS[chole]}" || break
	sleep 0.1
done
for i in $(seq 1 $(((WAIT + 2) * 20))); do
	n=$(rg_events_count "$EV" eviction "dest_port=$P_HOLE" eviction.kind=blackhole)
	if [ "$n" -ge 1 ]; then
		rg__alive "${RG_PIDS[chole]}" && seen_alive=1
		break
	fi
	rg__alive "${RG_PIDS[chole]}" || break
	sleep 0.05
done

rg_app_ok crst $((IDLE + WAIT + 10)) \
	"RST: after ${IDLE} s of silence the client's write gets ECONNRESET (the LB's RST)"
CPORT_RST=$(rg_app_field crst sport)
rg_expect_rst "RST" "$EV" "$RG_SERVER4" "$P_RST" "$RG_CLIENT4" "$CPORT_RST" \
	rst.cause=idle_eviction rst.forged=false verdict=accept rst.would_drop=false \
	rst.direction=toclient
lb_expect_events "RST: one eviction event, client -> server, kind rst, idle in [$T, $((IDLE + 1))], timeout $T, detected by traffic, network 198.18.3.0/24" \
	"$EV" 1 eviction "src_ip=$RG_CLIENT4" "src_port=$CPORT_RST" "dest_ip=$RG_SERVER4" \
	"dest_port=$P_RST" eviction.kind=rst "eviction.idle>=$T" "eviction.idle<=$((IDLE + 1))" \
	eviction.timeout="$T" eviction.detected_by=traffic eviction.learned.network=198.18.3.0/24 \
	"eviction.learned.min_evicted>=$T"

rg_wait_app chole $((IDLE + WAIT + 10))
st=$?
CPORT_HOLE=$(rg_app_field chole sport)
retrans=$(rg_app_field chole total_retrans)
if [ "$st" = 0 ] && [ "${retrans:-0}" -ge 2 ]; then
	rg_pass "black hole: the write after ${IDLE} s of silence is retransmitted ($retrans times) and never answered (${WAIT} s)"
else
	rg_fail "black hole: the write after ${IDLE} s of silence is retransmitted and never answered" \
		"$(cat "$RG_TMP/chole.json" "$RG_TMP/chole.err" 2>/dev/null)"
fi
rg_is "$seen_alive" 1 "black hole: the eviction event is in the file while the client still waits for its answer"

# The same from the timestamps: resumption <= event < the client's giving up.
ts=$("$RG_PY" "$RG_EVQ" get "$EV" timestamp eviction "dest_port=$P_HOLE" | head -n 1)
resume=$(rg_app_field chole resume_time)
fail=$(rg_app_field chole fail_time)
ev_t=""
[ -n "$ts" ] && ev_t=$(lb_epoch "$ts")
if [ -n "$ev_t" ] && [ -n "$resume" ] && [ -n "$fail" ] && lb_fcmp "$ev_t" ">=" "$resume" &&
	lb_fcmp "$ev_t" "<=" "$(awk -v r="$resume" 'BEGIN {printf "%.6f", r + 3}')" && lb_fcmp "$ev_t" "<" "$fail"; then
	rg_pass "black hole: event at +$(awk -v a="$ev_t" -v b="$resume" 'BEGIN {printf "%.3f", a - b}') s after the resumption, before the client gave up at +$(awk -v a="$fail" -v b="$resume" 'BEGIN {printf "%.3f", a - b}') s"
else
	rg_fail "black hole: event within 3 s of the resumption and before the client gave up" \
		"event timestamp '$ts' ($ev_t), resumption $resume, client gave up $fail"
fi
lb_expect_events "black hole: one eviction event, kind blackhole, 2 retransmits, idle in [$T, $((IDLE + 1))], timeout $T, detected by traffic" \
	"$EV" 1 eviction "src_ip=$RG_CLIENT4" "src_port=$CPORT_HOLE" "dest_ip=$RG_SERVER4" \
	"dest_port=$P_HOLE" eviction.kind=blackhole eviction.retransmits=2 "eviction.idle>=$T" \
	"eviction.idle<=$((IDLE + 1))" eviction.timeout="$T" eviction.detected_by=traffic \
	eviction.learned.network=198.18.3.0/24
rg_is "$(lb_conn_events "$EV" "$CPORT_HOLE" "$P_HOLE" rst)" 0 "black hole: no rst event on that connection"
rg_is "$(rg_events_count "$EV" eviction)" 2 "run 1: no other eviction events"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "run 1: SIGTERM: rstguard exits with status 0"
line=$(lb_last_run_log | grep -o 'evictions: rst [0-9]*, black hole [0-9]*' | tail -n 1)
rg_is "$line" "evictions: rst 1, black hole 1" "run 1: the exit statistics count one RST and one black-hole eviction"

# ---- run 2: enforce mode ----------------------------------------------------------------------

rg_kill_all   # run 1's servers (their connections are dead anyway)
rg_daemon_up "rstguard -m enforce --idle-timeout $T binds queue $RG_QUEUE_NUM" \
	-m enforce -e "$EV2" --idle-timeout "$T"
lb_serve senf "$RG_SERVER" "$RG_SERVER4" "$P_ENF" || rg_bail "server on port $P_ENF"
lb_client cenf "$RG_CLIENT" --to "$RG_SERVER4" --port "$P_ENF" --idle "$IDLE" \
	--read-timeout "$WAIT" --expect reset
rg_app_ok cenf $((IDLE + WAIT + 10)) \
	"enforce: the client still gets ECONNRESET after ${IDLE} s of silence (the RST is not dropped)"
CPORT_ENF=$(rg_app_field cenf sport)
rg_expect_rst "enforce" "$EV2" "$RG_SERVER4" "$P_ENF" "$RG_CLIENT4" "$CPORT_ENF" \
	rst.cause=idle_eviction rst.forged=false verdict=accept rst.would_drop=false rst.held=false
lb_expect_events "enforce: one eviction event, kind rst, idle >= $T" "$EV2" 1 eviction \
	"src_port=$CPORT_ENF" "dest_port=$P_ENF" eviction.kind=rst "eviction.idle>=$T" \
	eviction.detected_by=traffic

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "run 2: SIGTERM: rstguard exits with status 0"

if out=$("$RG_PY" "$RG_EVQ" validate "$EV" 2>&1 && "$RG_PY" "$RG_EVQ" validate "$EV2" 2>&1); then
	rg_pass "all event lines of both runs are JSON objects of the documented shape"
else
	rg_fail "all event lines of both runs are JSON objects of the documented shape"
	printf '%s\n' "$out" | head -n 30 | rg_diag
fi

lb_finish
