#!/bin/bash
# keepalive.sh: rstguard keeps idle flows alive through a load balancer that forgets them. The
# router forgets a flow after T = 10 s of silence and answers its next packet with a RST.
# rstguard runs with eviction.keepalive = true and the LB's timeout given as an override for
# the server network and port 7101 only (probe_lead automatic: a probe every 0.8 x T = 8 s).
# In parallel:
#   A  port 7101, silent 3 x T = 30 s, then an echo exchange (both directions);
#   B  port 7101, two rounds of 15 s of silence, each followed by an echo exchange;
#   C  port 7102 (not covered by the override: no probes), silent 12 s: the control, it must
#      get the LB's RST, which shows that A and B survived thanks to the probes.
# For A and B: the exchanges work, every byte arrives exactly once (echo compared byte for
# byte, EOF right after it, the server's count and sha256 of what it received), not a single
# segment reached the client's socket while it was silent (the probes' answers are taken out
# of the stream), the LB never found one of their packets INVALID, and rstguard reports no rst
# or eviction for them; its exit statistics show probes sent (at least 2 per flow) all answered,
# and the gateway's queue dropped exactly the answers (detect mode drops nothing else).
# RG_KA_FAMILY=6 (keepalive6.sh) runs the same over IPv6. RG_KA_NAT=1 (nat_keepalive.sh) makes
# the gateway masquerade its clients (rg_gw_masquerade) with eviction.probe_side = "both": the
# probes must leave as rstguard saw each side's packets (the client's inside tuple; the server's
# answers to the gateway's outside address and NAT port) so that conntrack translates them, and
# the client-side probes must reach the client's socket (counted there instead of zero).
# Runtime about 35 s.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/lb.sh
. "$RG_LIB/lb.sh"

FAM=${RG_KA_FAMILY:-4}
NAT=${RG_KA_NAT:-0}
SIDE=server
[ "$NAT" = 1 ] && SIDE=both
T=10
P_KA=7101      # covered by the override: kept alive
P_CTL=7102     # not covered: the control
IDLE_A=$((3 * T))
IDLE_B=15
ROUNDS_B=2
IDLE_C=12
if [ "$FAM" = 6 ]; then
	SRV=$RG_SERVER6
	NET=2001:db8:3::/64
else
	SRV=$RG_SERVER4
	NET=198.18.3.0/24
fi

lb_begin "$T" 19
lb_invalid rst "$P_KA" || rg_bail "could not add the LB's REJECT rule"
lb_invalid rst "$P_CTL" || rg_bail "could not add the LB's REJECT rule"
if [ "$NAT" = 1 ]; then
	rg_gw_masquerade 20000-29999 || rg_bail "could not make the gateway masquerade"
fi

cat >"$CONF" <<EOF
mode = "detect";
eviction = {
	keepalive = true;
	probe_side = "$SIDE";
	overrides = ( { network = "$NET"; port = $P_KA; idle_timeout = $T; } );
};
EOF

LABEL=""
[ "$NAT" = 1 ] && LABEL=" masquerade"
rg_daemon_up "IPv$FAM$LABEL: rstguard (keepalive, probe_side $SIDE, override $NET port $P_KA idle_timeout $T) binds queue $RG_QUEUE_NUM" \
	-c "$CONF" -e "$EV"

lb_serve ska "$RG_SERVER" "$SRV" "$P_KA" --count 2 || rg_bail "server on port $P_KA"
lb_serve sctl "$RG_SERVER" "$SRV" "$P_CTL" || rg_bail "server on port $P_CTL"
lb_client ca "$RG_CLIENT" --to "$SRV" --port "$P_KA" --idle "$IDLE_A" --bytes 3000
lb_client cb "$RG_CLIENT" --to "$SRV" --port "$P_KA" --idle "$IDLE_B" --rounds "$ROUNDS_B" --bytes 1500
lb_client cc "$RG_CLIENT" --to "$SRV" --port "$P_CTL" --idle "$IDLE_C" --expect reset

# check_kept NAME DESC: the four points of one kept-alive connection.
check_kept() {
	local name=$1 desc=$2 cport sent sha segs pport
	rg_app_ok "$name" 60 \
		"IPv$FAM $desc: the exchanges after the silence work in both directions, echoed byte for byte, no extra bytes"
	cport=$(rg_app_field "$name" sport)
	sent=$(rg_app_field "$name" sent)
	sha=$(rg_app_field "$name" sha256_sent)
	# Through the NAT the server sees the NAT port: its report is the one with our bytes' hash.
	pport=$cport
	if [ "$NAT" = 1 ]; then
		for _ in $(seq 1 30); do
			pport=$("$RG_PY" "$RG_EVQ" get "$RG_TMP/ska.json" peer_port "sha256=$sha" 2>/dev/null | tail -n 1)
			[ -n "$pport" ] && break
			sleep 0.1
		done
	fi
	lb_wait_server ska "$pport"
	if [ -n "$sent" ] && [ "$(lb_server_field ska "$pport" bytes)" = "$sent" ] &&
		[ "$(lb_server_field ska "$pport" bytes_out)" = "$sent" ] &&
		[ "$(lb_server_field ska "$pport" sha256)" = "$sha" ] &&
		[ "$(lb_server_field ska "$pport" ok)" = true ] &&
		{ [ "$NAT" = 0 ] || [ "$pport" != "$cport" ]; }; then
		rg_pass "IPv$FAM $desc: the server received exactly the $sent bytes sent (sha256) and sent as many back"
	else
		rg_fail "IPv$FAM $desc: the server received exactly the bytes sent and sent as many back" \
			"client: $(cat "$RG_TMP/$name.json")" "server: $(cat "$RG_TMP/ska.json")"
	fi
	segs=$(rg_app_field "$name" idle_segs_in)
	if [ "$SIDE" = both ]; then
		# The server-impersonating probes crossed the NAT back to the client's inside address.
		if [[ $segs =~ ^\[[1-9][0-9]*(,\ [1-9][0-9]*)*\]$ ]]; then
			rg_pass "IPv$FAM $desc: the probes in the server's name reached the client's socket in each silence ($segs)"
		else
			rg_fail "IPv$FAM $desc: the probes in the server's name reached the client's socket in each silence" \
				"segments received per silence (tcpi_segs_in): '$segs'"
		fi
	else
	case $segs in
	"[0]" | "[0, 0]") rg_pass "IPv$FAM $desc: no segment reached the client's socket while it was silent ($segs)" ;;
	*) rg_fail "IPv$FAM $desc: no segment reached the client's socket while it was silent" \
		"segments received per silence (tcpi_segs_in): '$segs'" ;;
	esac
	fi
	rg_is "$(lb_conn_events "$EV" "$cport" "$P_KA" eviction)/$(lb_conn_events "$EV" "$cport" "$P_KA" rst)" \
		0/0 "IPv$FAM $desc: no eviction and no rst event"
}

rg_app_ok cc 40 \
	"IPv$FAM control, port $P_CTL (no probes): after $IDLE_C s of silence the write gets the LB's RST"
check_kept cb "B, $ROUNDS_B x $IDLE_B s of silence"
check_kept ca "A, $IDLE_A s of silence"

rg_is "$(lb_invalid_hits "$FAM" "$P_KA")" 0 "IPv$FAM: the LB found no packet of the kept-alive flows INVALID"
hits=$(lb_invalid_hits "$FAM" "$P_CTL")
if [ "${hits:-0}" -ge 1 ]; then
	rg_pass "IPv$FAM: the LB did forget the control flow ($hits INVALID packets answered with RST)"
else
	rg_fail "IPv$FAM: the LB did forget the control flow" "INVALID packets on port $P_CTL: '$hits'"
fi

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits with status 0"

line=$(lb_last_run_log | grep -o 'keepalive probes: sent [0-9]*, answered [0-9]*, unanswered [0-9]*, answered by rst [0-9]*, rate-limited [0-9]*, send errors [0-9]*' | tail -n 1)
re='sent ([0-9]+), answered ([0-9]+), unanswered ([0-9]+), answered by rst ([0-9]+), rate-limited ([0-9]+), send errors ([0-9]+)'
answered=""
if [[ $line =~ $re ]] && [ "${BASH_REMATCH[1]}" -ge 4 ] && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[1]}" ] &&
	[ "${BASH_REMATCH[3]}${BASH_REMATCH[4]}${BASH_REMATCH[6]}" = 000 ]; then
	answered=${BASH_REMATCH[2]}
	rg_pass "IPv$FAM exit log: ${BASH_REMATCH[1]} probes sent (at least 2 per kept-alive flow), all answered, none by a RST, no send errors"
else
	rg_fail "IPv$FAM exit log: probes sent >= 4, answered == sent, 0 unanswered, 0 by rst, 0 send errors" \
		"line: '$line'"
fi
# Detect mode drops nothing but the answers to its own probes.
dropped=$(lb_last_run_log | sed -n "s/.*queue $RG_QUEUE_NUM: packets .*, dropped \([0-9]*\),.*/\1/p" | tail -n 1)
if [ -n "$answered" ] && [ "$dropped" = "$answered" ]; then
	rg_pass "IPv$FAM exit log: the queue dropped exactly the $dropped probe answers, nothing else"
else
	rg_fail "IPv$FAM exit log: the queue dropped exactly the probe answers" \
		"queue drops '$dropped', probes answered '$answered'"
fi
line=$(lb_last_run_log | grep -o 'evictions: rst [0-9]*, black hole [0-9]*' | tail -n 1)
case $line in
"evictions: rst "[01]", black hole 0") rg_pass "IPv$FAM exit log: no black hole, at most the control's RST eviction ($line)" ;;
*) rg_fail "IPv$FAM exit log: no black hole, at most the control's RST eviction" "line: '$line'" ;;
esac

rg_check_events "$EV"

lb_finish
