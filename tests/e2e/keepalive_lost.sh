#!/bin/bash
# keepalive_lost.sh: keepalive probes that come too late find the eviction themselves, before
# the application notices. The router forgets flows after T = 10 s, but rstguard is told 15 s
# (eviction.idle_timeout = 15, keepalive on, probe_lead automatic: the first probe at 12 s, when
# the LB has already forgotten the flow; probe_retries 3). Two connections fall silent for 20 s:
#   port 7201, the LB answers a forgotten flow with a RST: the probe (impersonating the client)
#     gets the LB's RST, which travels on to the client. rstguard reports an eviction, kind rst,
#     detected by the probe, and the RST as cause idle_eviction, not forged, accepted; the
#     client's write after its silence fails with ECONNRESET.
#   port 7202, the LB drops a forgotten flow's packets: three probes go unanswered; rstguard
#     reports an eviction, kind blackhole, detected by the probe, 3 unanswered probes, before
#     the client even resumes; the client's write after its silence is never answered.
# Exit statistics: probes sent 4, answered 0, unanswered 3, answered by rst 1. Runtime ~30 s.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/lb.sh
. "$RG_LIB/lb.sh"

T=10          # the LB's real timeout
CFG_T=15      # what rstguard is told: too long, probes every 12 s
IDLE=20
WAIT=4
P_RST=7201
P_HOLE=7202

lb_begin "$T" 17
lb_invalid rst "$P_RST" || rg_bail "could not add the LB's REJECT rule"
lb_invalid drop "$P_HOLE" || rg_bail "could not add the LB's DROP rule"

cat >"$CONF" <<EOF
mode = "detect";
eviction = { idle_timeout = $CFG_T; keepalive = true; };
EOF

rg_daemon_up "rstguard (keepalive, idle_timeout $CFG_T; the LB's is $T) binds queue $RG_QUEUE_NUM" \
	-c "$CONF" -e "$EV"

lb_serve srst "$RG_SERVER" "$RG_SERVER4" "$P_RST" || rg_bail "server on port $P_RST"
lb_serve shole "$RG_SERVER" "$RG_SERVER4" "$P_HOLE" || rg_bail "server on port $P_HOLE"
lb_client crst "$RG_CLIENT" --to "$RG_SERVER4" --port "$P_RST" --idle "$IDLE" \
	--read-timeout "$WAIT" --expect reset
lb_client chole "$RG_CLIENT" --to "$RG_SERVER4" --port "$P_HOLE" --idle "$IDLE" \
	--read-timeout "$WAIT" --expect timeout

rg_app_ok crst $((IDLE + WAIT + 10)) \
	"RST: the client's write after ${IDLE} s of silence fails with ECONNRESET"
CPORT_RST=$(rg_app_field crst sport)
lb_expect_events "RST: one eviction event, kind rst, detected by the probe, timeout $CFG_T, idle in [$T, $CFG_T]" \
	"$EV" 1 eviction "src_ip=$RG_CLIENT4" "src_port=$CPORT_RST" "dest_ip=$RG_SERVER4" \
	"dest_port=$P_RST" eviction.kind=rst eviction.detected_by=probe eviction.timeout="$CFG_T" \
	"eviction.idle>=$T" "eviction.idle<=$CFG_T"
rg_expect_rst "RST" "$EV" "$RG_SERVER4" "$P_RST" "$RG_CLIENT4" "$CPORT_RST" \
	rst.cause=idle_eviction rst.forged=false verdict=accept
# The probe found it while the client was still silent.
lb_reported_before_resume "RST: the eviction was reported before the client resumed" "$EV" \
	"$P_RST" crst

rg_app_ok chole $((IDLE + WAIT + 10)) \
	"black hole: the client's write after ${IDLE} s of silence is never answered"
CPORT_HOLE=$(rg_app_field chole sport)
lb_expect_events "black hole: one eviction event, kind blackhole, detected by the probe, 3 unanswered probes, timeout $CFG_T" \
	"$EV" 1 eviction "src_ip=$RG_CLIENT4" "src_port=$CPORT_HOLE" "dest_ip=$RG_SERVER4" \
	"dest_port=$P_HOLE" eviction.kind=blackhole eviction.detected_by=probe eviction.retransmits=3 \
	eviction.timeout="$CFG_T" "eviction.idle>=$T" "eviction.idle<=$IDLE"
lb_reported_before_resume "black hole: the eviction was reported before the client resumed" "$EV" \
	"$P_HOLE" chole
rg_is "$(lb_conn_events "$EV" "$CPORT_HOLE" "$P_HOLE" rst)" 0 "black hole: no rst event on that connection"
segs=$(rg_app_field chole idle_segs_in)
rg_is "$segs" "[0]" "black hole: nothing reached the client's socket while it was silent"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits with status 0"
line=$(lb_last_run_log | grep -o 'keepalive probes: sent [0-9]*, answered [0-9]*, unanswered [0-9]*, answered by rst [0-9]*' | tail -n 1)
rg_is "$line" "keepalive probes: sent 4, answered 0, unanswered 3, answered by rst 1" \
	"exit log: 1 probe answered by the LB's RST, 3 into the black hole"
line=$(lb_last_run_log | grep -o 'evictions: rst [0-9]*, black hole [0-9]*' | tail -n 1)
rg_is "$line" "evictions: rst 1, black hole 1" "exit log: one RST and one black-hole eviction"

rg_check_events "$EV"

lb_finish
