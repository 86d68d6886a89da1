#!/bin/bash
# eviction_learn.sh: rstguard learns a path's idle timeout from the silences flows survive and
# the ones that get them evicted. The load balancer in the router forgets flows after T = 10 s
# (RST on the next packet); rstguard is NOT told T (no idle_timeout; eviction.watch_min_gap = 2
# so that silences of a few seconds are watched). Four connections, in parallel, exchange data,
# fall silent for 5.5, 8.5, 11.3 and 14.3 s and talk again: the first two must work, the last
# two get the LB's RST. At exit rstguard logs
#   eviction: 198.18.3.0/24: idle timeout between A s (longest survived, 2 times) and B s
#   (shortest evicted, 2 times)
# and A <= T <= B with B - A <= the probe interval, defined here as the spacing of the silences
# tried: 3 s (the pair around T is 2.8 s apart, so that timer jitter and the log's rounding to
# 0.1 s cannot push the measured bracket past 3 s). Runtime about 20 s.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/lb.sh
. "$RG_LIB/lb.sh"

T=10
INTERVAL=3
GAPS=(5.5 8.5 11.3 14.3)
PORT=7011

lb_begin "$T" $((1 + 3 * ${#GAPS[@]} + 5 + 2))
lb_invalid rst || rg_bail "could not add the LB's REJECT rule"

cat >"$CONF" <<EOF
mode = "detect";
eviction = { watch_min_gap = 2; };
EOF

rg_daemon_up "rstguard (eviction.watch_min_gap = 2, no idle_timeout) binds queue $RG_QUEUE_NUM" \
	-c "$CONF" -e "$EV"

lb_serve srv "$RG_SERVER" "$RG_SERVER4" "$PORT" --count "${#GAPS[@]}" || rg_bail "server"
for g in "${GAPS[@]}"; do
	if lb_fcmp "$g" "<" "$T"; then want=ok; else want=reset; fi
	lb_client "c$g" "$RG_CLIENT" --to "$RG_SERVER4" --port "$PORT" --idle "$g" \
		--read-timeout 6 --expect "$want"
done

for g in "${GAPS[@]}"; do
	rg_wait_app "c$g" 30
	st=$?
	cport=$(rg_app_field "c$g" sport)
	if lb_fcmp "$g" "<" "$T"; then
		rg_ok "$st" "silence of $g s (< T): the exchange after it works, exactly echoed" \
			"$(cat "$RG_TMP/c$g.json" "$RG_TMP/c$g.err" 2>/dev/null)"
		# The server's side of the survivor: it got exactly what the client sent.
		sent=$(rg_app_field "c$g" sent)
		sha=$(rg_app_field "c$g" sha256_sent)
		lb_wait_server srv "$cport"
		if [ "$(lb_server_field srv "$cport" bytes)" = "$sent" ] &&
			[ "$(lb_server_field srv "$cport" sha256)" = "$sha" ] && [ -n "$sent" ]; then
			rg_pass "silence of $g s: the server received exactly the $sent bytes sent (sha256)"
		else
			rg_fail "silence of $g s: the server received exactly the bytes sent" \
				"client: $(cat "$RG_TMP/c$g.json")" "server: $(cat "$RG_TMP/srv.json")"
		fi
		rg_is "$(lb_conn_events "$EV" "$cport" "$PORT" eviction)/$(lb_conn_events "$EV" "$cport" "$PORT" rst)" \
			0/0 "silence of $g s: no eviction and no rst event"
	else
		rg_ok "$st" "silence of $g s (> T): the write after it gets the LB's RST (ECONNRESET)" \
			"$(cat "$RG_TMP/c$g.json" "$RG_TMP/c$g.err" 2>/dev/null)"
		lb_expect_events "silence of $g s: one eviction event, kind rst, idle within 0.5 s of $g" \
			"$EV" 1 eviction "src_port=$cport" "dest_port=$PORT" eviction.kind=rst \
			"eviction.idle>=$(awk -v g="$g" 'BEGIN {print g - 0.5}')" \
			"eviction.idle<=$(awk -v g="$g" 'BEGIN {print g + 0.5}')" eviction.detected_by=traffic \
			eviction.learned.network=198.18.3.0/24
		lb_expect_events "silence of $g s: the LB's RST is one rst event, cause idle_eviction, not forged, accepted" \
			"$EV" 1 rst "src_ip=$RG_SERVER4" "src_port=$PORT" "dest_port=$cport" \
			rst.cause=idle_eviction rst.forged=false verdict=accept
	fi
done

# The last eviction (14.3 s) already knows the bracket: survived 8.5 s, evicted at 11.3 s.
last=${GAPS[${#GAPS[@]} - 1]}
cport=$(rg_app_field "c$last" sport)
ms=$("$RG_PY" "$RG_EVQ" get "$EV" eviction.learned.max_survived eviction "src_port=$cport" | head -n 1)
me=$("$RG_PY" "$RG_EVQ" get "$EV" eviction.learned.min_evicted eviction "src_port=$cport" | head -n 1)
if [ -n "$ms" ] && [ -n "$me" ] && lb_fcmp "$ms" "<=" "$T" && lb_fcmp "$me" ">=" "$T" &&
	lb_fcmp "$(awk -v a="$ms" -v b="$me" 'BEGIN {printf "%.3f", b - a}')" "<=" "$INTERVAL"; then
	rg_pass "the last eviction event's learned bracket: max_survived $ms <= $T <= min_evicted $me"
else
	rg_fail "the last eviction event's learned bracket: max_survived <= $T <= min_evicted, within $INTERVAL s" \
		"max_survived '$ms', min_evicted '$me'"
fi

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits with status 0"

line=$(lb_last_run_log | grep 'eviction: 198\.18\.3\.0/24: idle timeout between' | tail -n 1)
re='between ([0-9.]+) s \(longest survived, ([0-9]+) times\) and ([0-9.]+) s \(shortest evicted, ([0-9]+) times\)'
if [[ $line =~ $re ]]; then
	A=${BASH_REMATCH[1]}
	B=${BASH_REMATCH[3]}
	counts="${BASH_REMATCH[2]}/${BASH_REMATCH[4]}"
else
	A="" B="" counts=""
fi
if [ -n "$A" ] && lb_fcmp "$A" "<=" "$T" && lb_fcmp "$B" ">=" "$T"; then
	rg_pass "exit log: idle timeout between $A s and $B s brackets the LB's $T s"
else
	rg_fail "exit log: the learned idle timeout brackets the LB's $T s" "line: '$line'"
fi
if [ -n "$A" ] && lb_fcmp "$(awk -v a="$A" -v b="$B" 'BEGIN {printf "%.3f", b - a}')" "<=" "$INTERVAL" &&
	[ "$counts" = 2/2 ]; then
	rg_pass "exit log: the bracket is at most one probe interval ($INTERVAL s) wide, from 2 survived and 2 evicted silences"
else
	rg_fail "exit log: the bracket is at most $INTERVAL s wide, 2 survived and 2 evicted" "line: '$line'"
fi

rg_check_events "$EV"

lb_finish
