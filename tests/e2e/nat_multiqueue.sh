#!/bin/bash
# nat_multiqueue.sh: a masquerading gateway with two queues (issue 12, docs/nat.md "Several
# queues"). --queue-balance would hash the address pair, and the two halves of a masqueraded
# connection ({client, server} inside, {server, gateway} outside) would usually land in
# different queues, each thread holding one half. The documented HMARK rules hash only the
# address beyond the gateway (the server): as the destination on the inside interface, as the
# source on the outside one, so both halves of a connection get the same mark and the per-mark
# NFQUEUE rules send them to the same queue. Sixteen servers (12 IPv4, 4 IPv6) each refuse a
# connection from the client: every RST must be one refused event from the server to the
# client's inside address with its nat object (the halves were joined in one thread), both
# queues must have carried traffic, and no queue may have seen a translated half whose other
# half it never saw.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

N4=12
N6=4
rg_setup_net
rg_gw_masquerade 20000-29999 || rg_bail "cannot install the masquerade rules"
for t in iptables ip6tables; do
	ipt=(timeout 10 ip netns exec "$RG_GW" "$t" -w 5 -t raw -A PREROUTING -p tcp)
	"${ipt[@]}" -i "$RG_IF_GW_C" -j HMARK --hmark-tuple dst --hmark-mod 2 --hmark-offset 100 \
		--hmark-rnd 0x5eed || rg_skip "iptables -j HMARK unavailable"
	"${ipt[@]}" -i "$RG_IF_GW_R" -j HMARK --hmark-tuple src --hmark-mod 2 --hmark-offset 100 \
		--hmark-rnd 0x5eed || rg_bail "cannot add the HMARK rule"
	"${ipt[@]}" -m mark --mark 100 -j NFQUEUE --queue-num 0 || rg_skip "iptables -j NFQUEUE unavailable"
	"${ipt[@]}" -m mark --mark 101 -j NFQUEUE --queue-num 1 || rg_bail "cannot add the NFQUEUE rule"
done
for i in $(seq 1 $N4); do
	rg_ns "$RG_SERVER" ip addr add "198.18.3.$((10 + i))/24" dev "$RG_IF_SERVER" || rg_bail "address"
done
for i in $(seq 1 $N6); do
	rg_ns "$RG_SERVER" ip -6 addr add "2001:db8:3::$((10 + i))/64" dev "$RG_IF_SERVER" nodad || rg_bail "address"
done
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV
CFG=$RG_TMP/rstguard.conf
printf 'queue = { num = 0; count = 2; };\n' >"$CFG"

rg_plan 6

if rg_daemon_start -c "$CFG" -m detect -e "$EV" && rg_wait_queue_bound 1 5; then
	rg_pass "rstguard binds queues 0 and 1 (queue.count = 2) behind the HMARK rules"
else
	rg_fail "rstguard binds queues 0 and 1 (queue.count = 2) behind the HMARK rules"
	rg_bail "the daemon did not start"
fi

bad=()
for i in $(seq 1 $((N4 + N6))); do
	if [ "$i" -le $N4 ]; then
		srv=198.18.3.$((10 + i)) cli=$RG_CLIENT4 gw=$RG_GW_R4
	else
		srv=2001:db8:3::$((10 + i - N4)) cli=$RG_CLIENT6 gw=$RG_GW_R6
	fi
	rg_app "ref$i" "$RG_CLIENT" connect-refused --to "$srv" --port 9
	cport=$(rg_app_field "ref$i" sport)
	[ "$(rg_app_field "ref$i" outcome)" = refused ] || bad+=("$srv: the client did not see ECONNREFUSED")
	rg_wait_events "$EV" 1 5 rst "src_ip=$srv" >/dev/null
	n=$(rg_events_count "$EV" rst rst.cause=refused "src_ip=$srv" "dest_ip=$cli" "dest_port=${cport:-0}" \
		nat.type=snat "nat.dest_ip=$gw" "nat.dest_port>=20000" "nat.dest_port<=29999")
	[ "$n" = 1 ] || bad+=("$srv: $n refused events with the client's inside port ${cport:-?} and the nat object")
done
if [ ${#bad[@]} -eq 0 ]; then
	rg_pass "$((N4 + N6)) refused connections to $((N4 + N6)) servers: each one refused event, joined (nat object)"
else
	rg_fail "each refused connection: one refused event, joined (nat object)" "${bad[@]}"
	rg_events_show "$EV" rst
fi

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits 0"
q0=$(sed -n 's/.*info: queue 0: packets \([0-9]*\) .*/\1/p' "$RG_DAEMON_LOG" | tail -n 1)
q1=$(sed -n 's/.*info: queue 1: packets \([0-9]*\) .*/\1/p' "$RG_DAEMON_LOG" | tail -n 1)
[ "${q0:-0}" -gt 0 ] && [ "${q1:-0}" -gt 0 ]
rg_ok $? "both queues carried traffic (queue 0: ${q0:-?} packets, queue 1: ${q1:-?})"
line=$(grep -o 'nat: lookups .*' "$RG_DAEMON_LOG" | tail -n 1)
[[ $line == *"joined $((N4 + N6)) (other half unseen 0)"* ]]
rg_ok $? "each connection joined in the queue that saw its other half ($line)"
rg_check_events "$EV"
