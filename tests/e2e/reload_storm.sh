#!/bin/bash
# reload_storm.sh: reloads as a careless or hostile operator gives them (issue 14).
#   100 SIGHUPs with a valid config, 50 ms apart -> the daemon's open file descriptors
#                                                   (/proc/PID/fd) are the same before and after
#   200 SIGHUPs in 2 s with a valid config        -> still running and bound, every reload
#                                                   logged or coalesced, fds unchanged
#   50 SIGHUPs with a broken config               -> every one refused, the old config kept
#                                                   (the next event goes to the old events.path)
# Throughout, a connection exchanges an echo every 0.2 s: it completes every round and its flow
# is never forgotten (no mid-stream pickup), and refused connections keep giving rst events
# (verdicts go on). signals.sh covers single reloads (valid, broken, @include of a directory).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_setup --queue-num "$RG_QUEUE_NUM"
EV=$RG_TMP/events.json
OTHER=$RG_TMP/other-events.json
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS=$EV
PORT=5401

write_conf() {
	cat >"$CONF.tmp" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
events = { path = "$EV"; rate = $1; burst = 5000; };
EOF
	mv "$CONF.tmp" "$CONF"
}
write_broken_conf() {
	cat >"$CONF.tmp" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
events = { path = "$OTHER"; rate = "fast"; };
EOF
	mv "$CONF.tmp" "$CONF"
}
fds() { find "/proc/$RG_DAEMON_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fdlist() { ls -l "/proc/$RG_DAEMON_PID/fd" 2>/dev/null | awk 'NR > 1 {print $NF}' | sort | tr '\n' ' '; }
reloads() { grep -c 'configuration reloaded' "$RG_DAEMON_LOG"; }
refused() { grep -c 'reload failed' "$RG_DAEMON_LOG"; }
N=0
probe() {
	local cport
	N=$((N + 1))
	rg_app "refused$N" "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5409 || return 1
	cport=$(rg_app_field "refused$N" sport)
	rg_wait_events "$EV" 1 5 rst rst.cause=refused "dest_port=$cport"
}

rg_plan 11
write_conf 1000
rg_daemon_up "rstguard runs with a config file" -c "$CONF"
rg_serve echo "$RG_SERVER" "$RG_SERVER4" "$PORT" echo || rg_bail "the echo server did not start"
RG_APP_DEADLINE=90
rg_bg legit "$RG_CLIENT" echo-client --to "$RG_SERVER4" --port "$PORT" --rounds 100 --idle 0.2
sleep 1
fd0=$(fds)
list0=$(fdlist)

# 100 reloads, 50 ms apart, alternating two valid configs
r0=$(reloads)
for i in $(seq 1 100); do
	write_conf $((1000 + i % 2))
	rg_daemon_signal HUP
	sleep 0.05
done
sleep 1
r1=$(reloads)
fd1=$(fds)
if [ "$fd1" = "$fd0" ] && [ "$(fdlist)" = "$list0" ]; then
	rg_pass "100 reloads: the daemon's file descriptors are the same ($fd0 before, $fd1 after)"
else
	rg_fail "100 reloads: the daemon's file descriptors are the same" "before $fd0: $list0" "after $fd1: $(fdlist)"
fi
if [ $((r1 - r0)) -ge 1 ] && rg_daemon_alive; then
	rg_pass "100 SIGHUPs: $((r1 - r0)) reloads logged (signals arriving during a reload coalesce)"
else
	rg_fail "100 SIGHUPs gave reloads" "reloads logged: $((r1 - r0))"
fi

# a storm: 200 SIGHUPs in 2 s
for i in $(seq 1 200); do
	rg_daemon_signal HUP
	sleep 0.01
done
sleep 1
if rg_daemon_alive && [ -n "$(rg_queue_line)" ] && [ "$(fds)" = "$fd0" ]; then
	rg_pass "200 SIGHUPs in 2 s: still running, bound, $(fds) file descriptors ($(( $(reloads) - r1 )) reloads logged)"
else
	rg_fail "200 SIGHUPs in 2 s: still running, bound, fds unchanged" \
		"alive $(rg_daemon_alive && echo yes || echo no), queue '$(rg_queue_line)', fds $(fds) (was $fd0)"
fi
if probe; then
	rg_pass "verdicts go on after the storm: a refused connection gives its rst event"
else
	rg_fail "verdicts go on after the storm: a refused connection gives its rst event"
fi

# 50 SIGHUPs with a broken config
f0=$(refused)
write_broken_conf
for i in $(seq 1 50); do
	rg_daemon_signal HUP
	sleep 0.02
done
sleep 1
f1=$(refused)
if rg_daemon_alive && [ $((f1 - f0)) -ge 1 ] && [ ! -e "$OTHER" ] && probe; then
	rg_pass "50 SIGHUPs with a broken config: $((f1 - f0)) refused reloads, the old config kept (events still in the old file)"
else
	rg_fail "50 SIGHUPs with a broken config keep the old config" \
		"alive $(rg_daemon_alive && echo yes || echo no), refused $((f1 - f0)), $OTHER exists: $([ -e "$OTHER" ] && echo yes || echo no)"
fi
if [ "$(fds)" = "$fd0" ]; then
	rg_pass "file descriptors unchanged after the refused reloads ($(fds))"
else
	rg_fail "file descriptors unchanged after the refused reloads" "before $fd0: $list0" "after $(fds): $(fdlist)"
fi

if rg_wait_app legit 60; then
	rg_pass "the connection across all the reloads completed its $(rg_app_field legit rounds_done) echo rounds"
else
	rg_fail "the connection across all the reloads completed its echo rounds"
	rg_app_diag legit
fi
write_conf 1000
if rg_daemon_stop 10; then
	rg_pass "the daemon exits 0 on SIGTERM"
else
	rg_fail "the daemon exits 0 on SIGTERM" "exit $RG_DAEMON_RC"
fi
n_mid=$(( $(rg_events_count "$EV" flow "dest_port=$PORT" "flow.midstream=true") + $(rg_events_count "$EV" flow "src_port=$PORT" "flow.midstream=true") ))
n_fl=$(rg_events_count "$EV" flow "dest_port=$PORT")
if [ "$n_mid" = 0 ] && [ "$n_fl" = 1 ]; then
	rg_pass "the connection's flow survived every reload (one flow event, not mid-stream)"
else
	rg_fail "the connection's flow survived every reload" "flow events $n_fl, mid-stream $n_mid"
fi
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "no sanitizer finding in the daemon's log"
else
	rg_pass "no sanitizer finding in the daemon's log"
fi
