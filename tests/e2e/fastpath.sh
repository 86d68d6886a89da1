#!/bin/bash
# fastpath.sh: --fast-path with --install-rules, started as an administrator would (ip netns exec,
# default pin directory /sys/fs/bpf/rstguard, which ip netns exec leaves without its bpffs: the
# daemon mounts one in its own mount namespace). The rules carry the bpf match; a 20 MB transfer
# arrives intact while the daemon sees only a small share of its packets (the program's
# counters, SIGUSR1); RSTs are still seen and classified; kill -9 leaves the rules, which let
# traffic through (bypass); a restart replaces them; SIGTERM removes them, and nothing is pinned
# in the root mount namespace. The rest of the e2e suite runs a second time with the fast path
# (RG_FASTPATH=1, make check-fastpath).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_require_daemon
rg_require_root_net
rg_init
# This test starts the daemon its own way: the RG_FASTPATH switch of the helpers must stay off.
RG_FASTPATH=0
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV
BYTES=20000000
PIN=/sys/fs/bpf/rstguard/selector

rg_plan 14
rg_setup_net

wait_log() {
	local i
	for i in $(seq 1 50); do
		[ "$(grep -c -- "$1" "$RG_DAEMON_LOG")" -ge "$2" ] && return 0
		sleep 0.1
	done
	rg_diag "the daemon did not log '$1' ($2) within 5 s"
	return 1
}

rg_daemon_up "rstguard --fast-path --install-rules binds queue $RG_QUEUE_NUM" -m enforce -e "$EV" \
	--fast-path --install-rules
wait_log 'rules: added chain' 1
want="-A RSTGUARD -p tcp -m bpf --object-pinned $PIN -j NFQUEUE --queue-num $RG_QUEUE_NUM --queue-bypass"
got4=$(rg_ns "$RG_GW" iptables -w 5 -t raw -S RSTGUARD | grep -- '^-A')
got6=$(rg_ns "$RG_GW" ip6tables -w 5 -t raw -S RSTGUARD | grep -- '^-A')
rg_is "$got4|$got6" "$want|$want" "the installed rules carry the fast-path match (both families)"

# A bulk transfer through the fast path.
rg_serve sink "$RG_SERVER" "$RG_SERVER4" 5001 bulk-sink || rg_bail "no server"
rg_app bulkc "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5001 --bytes "$BYTES"
st=$?
rg_wait_app sink 10 || st=1
rg_ok "$st" "bulk transfer of $BYTES bytes arrives intact through the fast path"

# Two RSTs the daemon must see and classify: a refused connection and a server abort.
rg_app refused "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5002
cport=$(rg_app_field refused sport)
rg_wait_events "$EV" 1 5 rst rst.cause=refused "dest_port=$cport"
rg_ok $? "refused connection: rst event with cause refused"
rg_serve ab "$RG_SERVER" "$RG_SERVER4" 5003 linger-abort || rg_bail "no server"
rg_app abc "$RG_CLIENT" expect-reset --to "$RG_SERVER4" --port 5003
rg_wait_app ab 10
cport=$(rg_app_field abc sport)
rg_wait_events "$EV" 1 5 rst rst.cause=abort "dest_port=$cport"
rg_ok $? "server abort after data: rst event with cause abort"

rg_daemon_signal USR1
wait_log 'fast path: seen' 1
line=$(grep 'fast path: seen' "$RG_DAEMON_LOG" | tail -n 1)
seen=$(sed -n 's/.*seen \([0-9]*\), queued \([0-9]*\).*/\1/p' <<<"$line")
queued=$(sed -n 's/.*seen \([0-9]*\), queued \([0-9]*\).*/\2/p' <<<"$line")
rg_diag "$line"
[ "${seen:-0}" -gt 0 ] && [ "${queued:-0}" -gt 0 ] && [ $((queued * 5)) -lt "$seen" ]
rg_ok $? "the program queued under a fifth of the packets it saw (seen ${seen:-?}, queued ${queued:-?})"
qseq=$(rg_queue_seq "$RG_QUEUE_NUM")
[ "${qseq:-0}" -gt 0 ] && [ "$qseq" -le "$queued" ]
rg_ok $? "the queue got what the program matched (queue id sequence ${qseq:-?} <= queued $queued)"
inroot=absent
[ -e "$PIN" ] && inroot=present
rg_is "$inroot" absent "nothing pinned in the test's own mount namespace (the daemon's /sys is its own)"

# kill -9: the rules (and the program they hold) stay; bypass lets traffic through.
kill -KILL "$RG_DAEMON_PID"
rg_wait_pid "$RG_DAEMON_PID" 5 >/dev/null 2>&1
RG_DAEMON_PID=""
rg_wait_queue_unbound "$RG_QUEUE_NUM" 2 || true
rg_app killed "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5002
rg_ok $? "after kill -9 traffic flows (--queue-bypass)"
rg_daemon_up "restart with the fast path after kill -9" -m enforce -e "$EV" --fast-path --install-rules
wait_log 'rules: added chain' 2
n=$(rg_ns "$RG_GW" iptables -w 5 -t raw -S PREROUTING | grep -c -- '-j RSTGUARD$')
rg_is "$n" 1 "the restart replaced the rules (one jump)"
rg_app again "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5002
cport=$(rg_app_field again sport)
rg_wait_events "$EV" 1 5 rst rst.cause=refused "dest_port=$cport"
rg_ok $? "after the restart RSTs reach the new daemon"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: exit 0"
n=$(rg_ns "$RG_GW" iptables -w 5 -t raw -S 2>/dev/null | grep -c RSTGUARD)
rg_is "$n" 0 "the rules are gone after exit"
