#!/bin/bash
# rules.sh: --print-rules and --install-rules (rules.install). The daemon, started in the test's
# gateway namespace, adds chain RSTGUARD to the raw table (iptables and ip6tables), jumped to
# from PREROUTING, replacing a stale chain left by an earlier run; traffic is verdicted through
# those rules (refused connections give rst events, IPv4 and IPv6); at exit the chain and the
# jump are gone. queue.count = 2 from a file gives --queue-balance; after kill -9 the rules stay
# (bypass: traffic still flows) and the next start replaces them.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_require_daemon
rg_require_root_net
rg_init
EV=$RG_TMP/events.json
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS=$EV
PORT=5002   # nothing listens there: every connection is refused

rg_plan 22

# ---- --print-rules (no network needed)
out=$("$RSTGUARD" --print-rules -q 7 2>&1)
n=$(grep -c -- '^iptables -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num 7 --queue-bypass$' <<<"$out")
n6=$(grep -c -- '^ip6tables -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num 7 --queue-bypass$' <<<"$out")
nft=$(grep -c 'meta l4proto tcp queue num 7 bypass' <<<"$out")
rg_is "$n $n6 $nft" "1 1 1" "--print-rules -q 7: iptables, ip6tables and nft rules, with bypass"
nfp=$(grep -c -- '-m bpf --object-pinned [^ ]* -j NFQUEUE --queue-num 7 --queue-bypass$' <<<"$out")
rg_is "$nfp" 2 "--print-rules: the fast-path form for both families"
printf 'queue = { num = 4; count = 3; };\n' >"$CONF"
out=$("$RSTGUARD" --print-rules -c "$CONF" 2>&1)
n=$(grep -c -- '-j NFQUEUE --queue-balance 4:6 --queue-bypass$' <<<"$out")
nft=$(grep -c 'queue num 4-6 bypass' <<<"$out")
rg_is "$n $nft" "4 1" "--print-rules with queue.count = 3: --queue-balance 4:6, nft num 4-6"

rg_setup_net

# chain_rules TOOL: the rules of chain RSTGUARD (iptables -S form), or "absent".
chain_rules() {
	rg_ns "$RG_GW" "$1" -w 5 -t raw -S "$RULES_CHAIN" 2>/dev/null | grep -v '^-N' || true
	rg_ns "$RG_GW" "$1" -w 5 -t raw -S "$RULES_CHAIN" >/dev/null 2>&1 || echo absent
}
# jumps TOOL: how many PREROUTING rules jump to RSTGUARD.
jumps() {
	rg_ns "$RG_GW" "$1" -w 5 -t raw -S PREROUTING 2>/dev/null | grep -c -- "-j $RULES_CHAIN\$"
}
RULES_CHAIN=RSTGUARD
# wait_added N: the daemon logged its Nth "rules: added" (it adds them just after binding).
wait_added() {
	local i
	for i in $(seq 1 50); do
		[ "$(grep -c 'rules: added chain' "$RG_DAEMON_LOG")" -ge "$1" ] && return 0
		sleep 0.1
	done
	rg_diag "the daemon did not log 'rules: added' ($1) within 5 s"
	return 1
}

# refused NAME ADDR: one refused connection; 0 when its rst event (cause refused) shows up.
refused() {
	local name=$1 addr=$2 cport
	rg_app "$name" "$RG_CLIENT" connect-refused --to "$addr" --port "$PORT" || return 1
	cport=$(rg_app_field "$name" sport)
	rg_wait_events "$EV" 1 5 rst rst.cause=refused "dest_port=$cport"
}

# ---- a stale chain from a crashed run, with a rule of its own and two jumps
for t in iptables ip6tables; do
	rg_ns "$RG_GW" "$t" -w 5 -t raw -N "$RULES_CHAIN" &&
		rg_ns "$RG_GW" "$t" -w 5 -t raw -A "$RULES_CHAIN" -p udp -j ACCEPT &&
		rg_ns "$RG_GW" "$t" -w 5 -t raw -A PREROUTING -p tcp -j "$RULES_CHAIN" &&
		rg_ns "$RG_GW" "$t" -w 5 -t raw -A PREROUTING -p tcp -j "$RULES_CHAIN" ||
		rg_bail "could not create the stale chain ($t)"
done

rg_daemon_up "rstguard --install-rules binds queue $RG_QUEUE_NUM" -m detect -e "$EV" --install-rules
wait_added 1

want="-A $RULES_CHAIN -p tcp -j NFQUEUE --queue-num $RG_QUEUE_NUM --queue-bypass"
rg_is "$(chain_rules iptables)" "$want" "iptables: chain $RULES_CHAIN holds the queue rule only (stale rule gone)"
rg_is "$(chain_rules ip6tables)" "$want" "ip6tables: chain $RULES_CHAIN holds the queue rule only"
rg_is "$(jumps iptables) $(jumps ip6tables)" "1 1" "one jump from PREROUTING per family (stale jumps replaced)"
first=$(rg_ns "$RG_GW" iptables -w 5 -t raw -S PREROUTING | sed -n 2p)
rg_is "$first" "-A PREROUTING -p tcp -j $RULES_CHAIN" "the jump is the first rule of raw PREROUTING"

refused r4 "$RG_SERVER4"
rg_ok $? "IPv4 refused connection verdicted through the installed rule (rst event)"
refused r6 "$RG_SERVER6"
rg_ok $? "IPv6 refused connection verdicted through the installed rule (rst event)"
pk=$(rg_ns "$RG_GW" iptables -w 5 -t raw -L "$RULES_CHAIN" -v -x -n | awk '/NFQUEUE/ {print $1}')
[ "${pk:-0}" -gt 0 ]
rg_ok $? "iptables counters: $pk packets matched the queue rule"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: exit 0"
rg_is "$(chain_rules iptables) $(chain_rules ip6tables)" "absent absent" "chain $RULES_CHAIN removed at exit (both families)"
rg_is "$(jumps iptables) $(jumps ip6tables)" "0 0" "no jump left in PREROUTING"
rg_app after "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port "$PORT"
rg_ok $? "traffic flows after exit"

# ---- rules.install from the file, two queues; kill -9 leaves the rules (bypass), the next
# start replaces them
cat >"$CONF" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; count = 2; };
events = { path = "$EV"; };
rules = { install = true; };
EOF
rg_daemon_up "rstguard with rules.install and queue.count = 2 starts" -c "$CONF"
wait_added 2
want="-A $RULES_CHAIN -p tcp -j NFQUEUE --queue-balance $RG_QUEUE_NUM:$((RG_QUEUE_NUM + 1)) --queue-bypass"
rg_is "$(chain_rules iptables)" "$want" "rules.install: --queue-balance over the two queues"
kill -KILL "$RG_DAEMON_PID"
rg_wait_pid "$RG_DAEMON_PID" 5 >/dev/null 2>&1
wait "$RG_DAEMON_PID" 2>/dev/null
RG_DAEMON_PID=""
rg_wait_queue_unbound "$RG_QUEUE_NUM" 2 || true
rg_is "$(jumps iptables)" 1 "after kill -9 the rules remain"
rg_app killed "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port "$PORT"
rg_ok $? "after kill -9 traffic still flows (--queue-bypass)"
rg_daemon_up "restart after kill -9" -c "$CONF"
wait_added 3
rg_is "$(jumps iptables) $(jumps ip6tables)" "1 1" "the restart replaced the stale rules (one jump per family)"
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC $(chain_rules iptables) $(chain_rules ip6tables)" "0 absent absent" "exit 0 and the rules removed"
