#!/bin/bash
# nat_lookup.sh: src/nat.c against the kernel's conntrack on a NAT gateway (issue 12), through
# tests/nat_probe run inside the gateway namespace. No rstguard daemon, no NFQUEUE.
#
#   inside ----------------- gw ----------------- outside
#   eth0            c0                r0                eth0
#   198.18.1.2      198.18.1.1        198.18.2.1        198.18.2.2
#   2001:db8:1::2   2001:db8:1::1     2001:db8:2::1     2001:db8:2::2
#
# gw masquerades inside -> outside (IPv4 and IPv6) to ports 20000-29999, so the NAT port always
# differs from the client's (40001-40003), and forwards its port 8080 to the inside host's 80
# (DNAT). Checked: a masqueraded connection is found by the server's reply tuple as seen at the
# gateway (server -> gw outside address, NAT port) and gives the inside client's original tuple,
# both families, and by its original tuple too; a bare SYN (dropped in raw PREROUTING, so
# conntrack never saw it, as when rstguard holds it in the queue) misses; a port forward is found
# by the inside server's reply tuple; a connection in conntrack zone 5 misses in zone 0 and is
# found in zone 5; answers left behind by earlier requests are dropped, not taken; NEW events
# carry the NAT tuple. Then the cost: median/p99 of 1000 lookups of a hit and of a miss, and the
# first lookup on a fresh socket, as TAP diagnostics.
#
# Namespaces are "rgn<PID>-<role>" (not netns.sh's "rgt": this test builds its own network and
# leaves other tests' namespaces alone); the EXIT trap deletes them. Nothing touches the root
# namespace's firewall.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

NAT_PROBE=${NAT_PROBE:-${RG_BUILDDIR:-$RG_SRCDIR}/tests/nat_probe}
RG_PREFIX="rgn$$-"
N_IN=${RG_PREFIX}in
N_GW=${RG_PREFIX}gw
N_OUT=${RG_PREFIX}out
RG_GW=$N_GW     # for netns.sh's failure dump

IN4=198.18.1.2
GW_IN4=198.18.1.1
GW_OUT4=198.18.2.1
OUT4=198.18.2.2
IN6=2001:db8:1::2
GW_IN6=2001:db8:1::1
GW_OUT6=2001:db8:2::1
OUT6=2001:db8:2::2
BENCH_N=${RG_NAT_BENCH_N:-1000}

rg_require_root_net
[ -x "$NAT_PROBE" ] || rg_skip "tests/nat_probe not built ($NAT_PROBE)"

# Leftovers of an earlier run of this test that was killed (its PID is gone).
nat_reap_stale() {
	local ns pid
	for ns in $(timeout 5 ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		rgn[0-9]*-*) ;;
		*) continue ;;
		esac
		pid=${ns#rgn}
		pid=${pid%%-*}
		if [ "$pid" != "$$" ] && ! kill -0 "$pid" 2>/dev/null; then
			rg__ns_kill_and_delete "$ns"
		fi
	done
}

# nat_net_up: the three namespaces. Returns 2 when namespaces cannot be made at all.
nat_net_up() {
	local ns
	rg_init
	nat_reap_stale
	timeout 5 ip netns add "$N_IN" 2>/dev/null || return 2
	RG_NET_IS_UP=1
	timeout 5 ip netns add "$N_GW" || return 1
	timeout 5 ip netns add "$N_OUT" || return 1
	for ns in "$N_IN" "$N_GW" "$N_OUT"; do
		timeout 5 ip -n "$ns" link set lo up || return 1
		rg__sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 || return 1
	done
	rg__sysctl "$N_GW" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
	rg__veth "$N_IN" eth0 "$N_GW" c0 || return 1
	rg__veth "$N_GW" r0 "$N_OUT" eth0 || return 1
	rg__addr "$N_IN" eth0 "$IN4/24" "$IN6/64" || return 1
	rg__addr "$N_GW" c0 "$GW_IN4/24" "$GW_IN6/64" || return 1
	rg__addr "$N_GW" r0 "$GW_OUT4/24" "$GW_OUT6/64" || return 1
	rg__addr "$N_OUT" eth0 "$OUT4/24" "$OUT6/64" || return 1
	# The outside knows no route to the inside: only translated traffic can come back.
	timeout 5 ip -n "$N_IN" route add default via "$GW_IN4" || return 1
	timeout 5 ip -n "$N_IN" -6 route add default via "$GW_IN6" || return 1
	rg__wait_link "$N_IN" eth0 || return 1
	rg__wait_link "$N_GW" c0 || return 1
	rg__wait_link "$N_GW" r0 || return 1
	rg__wait_link "$N_OUT" eth0 || return 1
	for ns in "$N_IN" "$N_GW" "$N_OUT"; do
		rg__wait_no_tentative "$ns" || return 1
	done
	return 0
}

# nat_rules: the gateway's NAT, the bare-SYN trap and the zone, in gw only.
nat_rules() {
	local t
	for t in iptables ip6tables; do
		rg_ns "$N_GW" "$t" -w 5 -t nat -A POSTROUTING -o r0 -p tcp -j MASQUERADE \
			--to-ports 20000-29999 || return 1
		# A SYN to port 81 is dropped before conntrack sees it.
		rg_ns "$N_GW" "$t" -w 5 -t raw -A PREROUTING -i c0 -p tcp --dport 81 -j DROP || return 1
		# Port 82 lives in conntrack zone 5, both directions.
		rg_ns "$N_GW" "$t" -w 5 -t raw -A PREROUTING -i c0 -p tcp --dport 82 -j CT --zone 5 || return 1
		rg_ns "$N_GW" "$t" -w 5 -t raw -A PREROUTING -i r0 -p tcp --sport 82 -j CT --zone 5 || return 1
	done
	rg_ns "$N_GW" iptables -w 5 -t nat -A PREROUTING -i r0 -p tcp --dport 8080 -j DNAT \
		--to-destination "$IN4:80" || return 1
	rg_ns "$N_GW" ip6tables -w 5 -t nat -A PREROUTING -i r0 -p tcp --dport 8080 -j DNAT \
		--to-destination "[$IN6]:80" || return 1
}

# ct_reply_dport FAMILY(ipv4|ipv6) ORIG_SPORT ORIG_DPORT: the reply tuple's destination port
# (the NAT port) of gw's established TCP entry with that original source and destination port.
ct_reply_dport() {
	nat_ct_list | awk -v fam="$1" -v sp="$2" -v dp="$3" '
		$1 == fam && $3 == "tcp" {
			n = 0; s = ""; d = ""; rd = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^sport=/) { n++; if (n == 1) s = substr($i, 7) }
				if ($i ~ /^dport=/) { if (n == 1) d = substr($i, 7); else if (n == 2) rd = substr($i, 7) }
			}
			if (s == sp && d == dp && $0 ~ /ESTABLISHED/) { print rd; exit }
		}'
}

# gw's conntrack table, /proc format ("ipv4 2 tcp 6 TIMEOUT STATE src= dst= sport= dport= ...").
nat_ct_list() {
	if rg_ns "$N_GW" test -r /proc/net/nf_conntrack; then
		rg_ns "$N_GW" cat /proc/net/nf_conntrack
	elif command -v conntrack >/dev/null 2>&1; then
		# conntrack -L -o extended prints the same fields.
		rg_ns "$N_GW" conntrack -L -o extended 2>/dev/null
	fi
}

# wait_nat_port VAR FAMILY SPORT DPORT: bounded wait (5 s) for the entry; sets VAR.
wait_nat_port() {
	local i p=""
	for i in $(seq 1 50); do
		p=$(ct_reply_dport "$2" "$3" "$4")
		[ -n "$p" ] && break
		sleep 0.1
	done
	printf -v "$1" '%s' "$p"
}

# probe NAME ARGS...: nat_probe in gw, output in $RG_TMP/NAME.out; returns its status.
probe() {
	local name=$1
	shift
	timeout 60 ip netns exec "$N_GW" "$NAT_PROBE" "$@" >"$RG_TMP/$name.out" 2>&1
}

# expect_found DESC NAME WANT...: the probe output NAME has a "found" line with every WANT word.
expect_found() {
	local desc=$1 name=$2 w line missing=""
	shift 2
	line=$(grep '^found ' "$RG_TMP/$name.out" | head -n 1)
	for w in "$@"; do
		case " $line " in
		*" $w "*) ;;
		*) missing="$missing $w" ;;
		esac
	done
	if [ -n "$line" ] && [ -z "$missing" ]; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "missing:$missing" "probe said: $(cat "$RG_TMP/$name.out")"
	fi
}

expect_miss() {
	local desc=$1 name=$2 st=$3
	if [ "$st" -eq 1 ] && grep -qx 'miss' "$RG_TMP/$name.out"; then
		rg_pass "$desc"
	else
		rg_fail "$desc" "status $st, probe said: $(cat "$RG_TMP/$name.out")"
	fi
}

# field NAME KEY: value of KEY=... on the probe's first line that has it.
field() {
	grep -o "\b$2=[^ ]*" "$RG_TMP/$1.out" | head -n 1 | cut -d= -f2
}

nat_net_up
st=$?
[ "$st" -eq 2 ] && rg_skip "cannot create network namespaces"
[ "$st" -ne 0 ] && rg_bail "could not build the test network"
nat_rules 2>"$RG_TMP/rules.err" ||
	rg_skip "iptables NAT/CT targets unavailable: $(head -n 1 "$RG_TMP/rules.err")"

if ! rg_ns "$N_GW" test -r /proc/net/nf_conntrack && ! command -v conntrack >/dev/null 2>&1; then
	rg_skip "cannot list conntrack entries: no /proc/net/nf_conntrack and no conntrack(8)"
fi

rg_plan 26

# ---- events first, so that they see every connection ----
timeout 60 ip netns exec "$N_GW" "$NAT_PROBE" events 50 >"$RG_TMP/events.out" 2>&1 </dev/null &
RG_PIDS[events]=$!
for i in $(seq 1 50); do
	grep -q '^subscribed' "$RG_TMP/events.out" 2>/dev/null && break
	sleep 0.1
done
if grep -q '^subscribed' "$RG_TMP/events.out"; then
	rg_pass "subscribed to conntrack NEW and DESTROY events in gw"
else
	rg_fail "subscribed to conntrack NEW and DESTROY events in gw" "$(cat "$RG_TMP/events.out")"
fi

# ---- connections held open: two rounds of echo, HOLD seconds apart ----
# (The whole test takes well under HOLD; every helper is killed at exit anyway.)
HOLD=45
RG_APP_DEADLINE=$((HOLD + 30))
# serve NAME NS ADDR PORT: an echo server whose socket timeout outlasts the idle gap.
serve() {
	local i
	rg_bg "$1" "$2" --timeout $((HOLD + 15)) serve --bind "$3" --port "$4" --mode echo \
		--ready-file "$RG_TMP/$1.ready"
	for i in $(seq 1 50); do
		[ -s "$RG_TMP/$1.ready" ] && return 0
		sleep 0.1
	done
	rg_app_diag "$1"
	return 1
}
# hold NAME NS FROM TO PORT SPORT
hold() {
	rg_bg "$1" "$2" --timeout $((HOLD + 15)) echo-client --source "$3" --to "$4" --port "$5" \
		--source-port "$6" --rounds 2 --idle "$HOLD"
}
ok=0
serve srv4 "$N_OUT" "$OUT4" 80 && serve srv6 "$N_OUT" "$OUT6" 80 &&
	serve srvz "$N_OUT" "$OUT4" 82 &&
	serve fwd4 "$N_IN" "$IN4" 80 && serve fwd6 "$N_IN" "$IN6" 80 && ok=1
[ "$ok" = 1 ] || rg_bail "servers did not start"
hold cli4 "$N_IN" "$IN4" "$OUT4" 80 40001
hold cli6 "$N_IN" "$IN6" "$OUT6" 80 40001
hold cliz "$N_IN" "$IN4" "$OUT4" 82 40003
hold ext4 "$N_OUT" "$OUT4" "$GW_OUT4" 8080 50001
hold ext6 "$N_OUT" "$OUT6" "$GW_OUT6" 8080 50001
# The bare SYN: dropped in gw's raw PREROUTING, the client gives up after 1 s.
rg_bg syn "$N_IN" --timeout 1 connect-timeout --to "$OUT4" --port 81 --source-port 40002

wait_nat_port P4 ipv4 40001 80
wait_nat_port P6 ipv6 40001 80
wait_nat_port PZ ipv4 40003 82
wait_nat_port F4 ipv4 50001 8080
wait_nat_port F6 ipv6 50001 8080
if [ -n "$P4" ] && [ -n "$P6" ] && [ -n "$PZ" ] && [ -n "$F4" ] && [ -n "$F6" ] &&
	[ "$P4" -ge 20000 ] && [ "$P4" -le 29999 ] && [ "$P6" -ge 20000 ] && [ "$P6" -le 29999 ]; then
	rg_pass "gw conntrack: masqueraded to ports $P4 (IPv4), $P6 (IPv6), $PZ (zone 5); port forwards established"
else
	rg_fail "gw conntrack: connections masqueraded into 20000-29999, port forwards established" \
		"P4='$P4' P6='$P6' PZ='$PZ' F4='$F4' F6='$F6'"
	nat_ct_list | rg_diag
	for a in cli4 cli6 cliz ext4 ext6; do rg_app_diag "$a"; done
	rg_bail "no connections to look up"
fi

# ---- masquerade: by the reply tuple as seen (server -> gw outside address, NAT port) ----
probe m4 lookup "$OUT4" 80 "$GW_OUT4" "$P4"
rg_ok $? "IPv4 masquerade: the server's answer tuple is found" "$(cat "$RG_TMP/m4.out")"
expect_found "IPv4 masquerade: original = the inside client's tuple, reply = as it arrives" m4 \
	"orig=$IN4:40001->$OUT4:80" "reply=$OUT4:80->$GW_OUT4:$P4" translated=1 dir=reply zone=0
probe m4o lookup "$IN4" 40001 "$OUT4" 80
expect_found "IPv4 masquerade: the client's own tuple finds the same entry (dir=orig)" m4o \
	"orig=$IN4:40001->$OUT4:80" "reply=$OUT4:80->$GW_OUT4:$P4" dir=orig "id=$(field m4 id)"
probe m6 lookup "$OUT6" 80 "$GW_OUT6" "$P6"
rg_ok $? "IPv6 masquerade: the server's answer tuple is found" "$(cat "$RG_TMP/m6.out")"
expect_found "IPv6 masquerade: original = the inside client's tuple, reply = as it arrives" m6 \
	"orig=[$IN6]:40001->[$OUT6]:80" "reply=[$OUT6]:80->[$GW_OUT6]:$P6" translated=1 dir=reply

# ---- a bare SYN misses ----
rg_wait_app syn 5
drops=$(rg_ns "$N_GW" iptables -w 5 -t raw -L PREROUTING -v -n -x |
	awk '$3 == "DROP" && /dpt:81/ {print $1; exit}')
if [ "${drops:-0}" -ge 1 ]; then
	rg_pass "the bare SYN reached gw and was dropped before conntrack ($drops packets)"
else
	rg_fail "the bare SYN reached gw and was dropped before conntrack" "counter: '$drops'"
fi
probe syn lookup "$IN4" 40002 "$OUT4" 81
expect_miss "a bare SYN's tuple misses (ENOENT: no entry before conntrack)" syn $?
probe nx6 lookup "$OUT6" 80 "$GW_OUT6" 29999
st=$?
[ "$P6" = 29999 ] && st=1 && echo miss >"$RG_TMP/nx6.out"
expect_miss "IPv6: an answer tuple to an unused NAT port misses" nx6 "$st"

# ---- DNAT port forward: by the inside server's reply tuple ----
probe f4 lookup "$IN4" 80 "$OUT4" 50001
expect_found "IPv4 port forward: found by the inside server's answer, original = the outside client's" f4 \
	"orig=$OUT4:50001->$GW_OUT4:8080" "reply=$IN4:80->$OUT4:50001" translated=1 dir=reply
probe f6 lookup "$IN6" 80 "$OUT6" 50001
expect_found "IPv6 port forward: found by the inside server's answer" f6 \
	"orig=[$OUT6]:50001->[$GW_OUT6]:8080" "reply=[$IN6]:80->[$OUT6]:50001" translated=1 dir=reply

# ---- zones ----
probe z0 lookup "$OUT4" 82 "$GW_OUT4" "$PZ"
expect_miss "zone 5 connection: misses when looked up in zone 0" z0 $?
probe z5 -z 5 lookup "$OUT4" 82 "$GW_OUT4" "$PZ"
expect_found "zone 5 connection: found with CTA_ZONE 5, the answer says zone 5" z5 \
	"orig=$IN4:40003->$OUT4:82" "reply=$OUT4:82->$GW_OUT4:$PZ" zone=5 dir=reply

# ---- stale answers: three GETs' answers left unread, as after timeouts ----
probe stale stale "$OUT4" 80 "$GW_OUT4" "$P4" "$IN4" 80 "$OUT4" 50001
for pass in inline drain; do
	line=$(grep "^stale pass=$pass result=" "$RG_TMP/stale.out")
	case $line in
	*"result=1 stale_dropped=6 found orig=$IN4:40001->$OUT4:80 reply=$OUT4:80->$GW_OUT4:$P4 "*)
		rg_pass "stale answers ($pass): the 3 late answers and ACKs dropped, the right entry taken" ;;
	*) rg_fail "stale answers ($pass): the 3 late answers and ACKs dropped, the right entry taken" \
		"$(cat "$RG_TMP/stale.out")" ;;
	esac
	if grep -q "^stale pass=$pass next=1 stale_dropped=0$" "$RG_TMP/stale.out"; then
		rg_pass "stale answers ($pass): the next lookup is clean"
	else
		rg_fail "stale answers ($pass): the next lookup is clean" "$(cat "$RG_TMP/stale.out")"
	fi
done

# ---- events: the NEW event carries the NAT tuple ----
want4="orig=$IN4:40001->$OUT4:80 reply=$OUT4:80->$GW_OUT4:$P4 translated=1"
want6="orig=[$IN6]:40001->[$OUT6]:80 reply=[$OUT6]:80->[$GW_OUT6]:$P6 translated=1"
if grep -qF "event new $want4" "$RG_TMP/events.out" && grep -qF "event new $want6" "$RG_TMP/events.out"; then
	rg_pass "NEW events carry both tuples of the masqueraded connections (IPv4 and IPv6)"
else
	rg_fail "NEW events carry both tuples of the masqueraded connections (IPv4 and IPv6)" \
		"$(cat "$RG_TMP/events.out")"
fi
if grep -qF "event new orig=$OUT4:50001->$GW_OUT4:8080 reply=$IN4:80->$OUT4:50001 translated=1" \
	"$RG_TMP/events.out"; then
	rg_pass "NEW event of the port forward"
else
	rg_fail "NEW event of the port forward" "$(cat "$RG_TMP/events.out")"
fi

# ---- the cost ----
probe bh bench "$BENCH_N" "$OUT4" 80 "$GW_OUT4" "$P4"
rg_is "$(field bh hits)/$(field bh errors)/$(field bh timeouts)" "$BENCH_N/0/0" \
	"$BENCH_N lookups of a hit: all hits"
rg_diag "hit:  median $(field bh median_us) us, p99 $(field bh p99_us) us, max $(field bh max_us) us ($BENCH_N lookups)"
probe bm bench "$BENCH_N" "$IN4" 40002 "$OUT4" 81
rg_is "$(field bm misses)/$(field bm errors)/$(field bm timeouts)" "$BENCH_N/0/0" \
	"$BENCH_N lookups of a miss: all misses"
rg_diag "miss: median $(field bm median_us) us, p99 $(field bm p99_us) us, max $(field bm max_us) us ($BENCH_N lookups)"
probe bh6 bench "$BENCH_N" "$OUT6" 80 "$GW_OUT6" "$P6"
rg_is "$(field bh6 hits)" "$BENCH_N" "$BENCH_N IPv6 lookups of a hit: all hits"
rg_diag "hit6: median $(field bh6 median_us) us, p99 $(field bh6 p99_us) us, max $(field bh6 max_us) us ($BENCH_N lookups)"
probe first first 50 "$OUT4" 80 "$GW_OUT4" "$P4"
if [ -n "$(field first socket_first_median_us)" ]; then
	rg_pass "first lookup on a fresh socket timed (50 sockets)"
else
	rg_fail "first lookup on a fresh socket timed (50 sockets)" "$(cat "$RG_TMP/first.out")"
fi
rg_diag "first call on a fresh socket (a miss, in NAT_Open): the process's first $(field first process_first_us) us;" \
	"  on later sockets median $(field first socket_first_median_us) us, max $(field first socket_first_max_us) us;" \
	"  the hit right after it: median $(field first next_median_us) us"

# ---- a destroy event: end the IPv4 port forward's client and the masqueraded one early ----
rg_ns "$N_GW" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=1 \
	net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 >/dev/null 2>&1
rg_app refused "$N_IN" --timeout 3 connect-refused --to "$OUT4" --port 9 --source-port 40009
rg_ok $? "a refused connection through the gateway (the server's RST)" "$(cat "$RG_TMP/refused.json" 2>/dev/null)"
got=""
for i in $(seq 1 100); do
	got=$(grep -F "event destroy orig=$IN4:40009->$OUT4:9 " "$RG_TMP/events.out")
	[ -n "$got" ] && break
	sleep 0.1
done
if [ -n "$got" ]; then
	rg_pass "DESTROY event of the refused connection (its NAT tuple: ${got#*reply=})"
else
	rg_fail "DESTROY event of the refused connection within 10 s" "$(tail -n 5 "$RG_TMP/events.out")"
fi

kill -TERM "${RG_PIDS[events]}" 2>/dev/null
rg_diag "$(grep -c '^event ' "$RG_TMP/events.out") events seen"
