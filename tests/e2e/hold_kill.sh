#!/bin/bash
# hold_kill.sh: SIGKILL while a RST is held for confirmation (enforce mode, issue 14), with
# `-j NFQUEUE --queue-bypass`. bypass_kill.sh covers SIGKILL during a bulk transfer.
# Enforce mode, detector.confirm off and hold_min_ms = hold_max_ms = 1000, so a genuine RST on
# an established flow is held a whole second. While a paced bulk transfer (B) and an echo
# connection (E) run, and a third connection (C) sits established waiting to abort later, a
# server aborts connection A (SO_LINGER 0): its RST is held, and the daemon is killed with
# SIGKILL during that hold. Then:
#   - the kernel unbinds the queue; B completes byte for byte, E completes every round;
#   - the held RST was lost with the queue (the kernel drops what a dead consumer held); A's
#     client learns of the reset at its next send (the server's kernel answers it with a RST,
#     held up to 1 s by the restarted daemon, then let through);
#   - a restarted daemon picks up B, E and C mid-stream; C's client then aborts (RST): that RST
#     and every other one the second daemon sees is judged genuine (none forged, none dropped).
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

BYTES=${RG_HK_BYTES:-200000000}   # at RATE: about 10 s
RATE=${RG_HK_RATE:-20000000}

rg_setup --bypass --queue-num "$RG_QUEUE_NUM"
EV1=$RG_TMP/events1.json
EV2=$RG_TMP/events2.json
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS="$EV1 $EV2"
conf() {
	cat >"$CONF" <<EOF
mode = "enforce";
queue = { num = $RG_QUEUE_NUM; };
events = { path = "$1"; };
detector = { confirm = false; hold_min_ms = 1000; hold_max_ms = 1000; };
EOF
}
held() {
	local n
	n=$(grep -c 'rst [0-9]*:' "$RG_DAEMON_LOG")
	rg_daemon_signal USR1
	for _ in $(seq 1 20); do
		[ "$(grep -c 'rst [0-9]*:' "$RG_DAEMON_LOG")" -gt "$n" ] && break
		sleep 0.02
	done
	sed -n 's/.*, held \([0-9]*\),.*/\1/p' "$RG_DAEMON_LOG" | tail -n 1
}

rg_plan 11
conf "$EV1"
rg_daemon_up "rstguard runs in enforce mode (holds of 1 s, no probes) behind a --queue-bypass rule" -c "$CONF"

rg_serve sink "$RG_SERVER" "$RG_SERVER4" 5501 bulk-sink || rg_bail "the sink did not start"
rg_serve echo "$RG_SERVER" "$RG_SERVER4" 5502 echo || rg_bail "the echo server did not start"
rg_serve abortsrv "$RG_SERVER" "$RG_SERVER4" 5503 linger-abort || rg_bail "the abort server did not start"
rg_serve late "$RG_SERVER" "$RG_SERVER4" 5504 expect-abort || rg_bail "the echo server did not start"
RG_APP_DEADLINE=60
rg_bg bulkc "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5501 --bytes "$BYTES" --rate "$RATE" \
	--progress-file "$RG_TMP/progress"
rg_bg echoc "$RG_CLIENT" echo-client --to "$RG_SERVER4" --port 5502 --rounds 25 --idle 0.3
# C: established now, aborted by its client 5 s later (after the restart).
rg_bg latec "$RG_CLIENT" linger-abort-client --to "$RG_SERVER4" --port 5504 --pause 5
sleep 1

ip netns exec "$RG_CLIENT" timeout 30 tcpdump -i "$RG_IF_CLIENT" -n -U -w "$RG_TMP/a.pcap" "tcp port 5503" \
	2>/dev/null &
RG_PIDS[atd]=$!
sleep 0.5
# A: a raw client, so that it can send again after the kill (tcpapp's clients stop at the reset).
ip netns exec "$RG_CLIENT" timeout 30 "$RG_PY" - "$RG_SERVER4" >"$RG_TMP/a.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5503), timeout=5)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
print("reply", len(s.recv(4096)), flush=True)
time.sleep(3)           # the server aborts; its RST is held; the daemon is killed meanwhile
try:
    s.sendall(b"more\r\n")
    s.settimeout(5)
    d = s.recv(100)
    print("after", "eof" if not d else "data")
except ConnectionResetError:
    print("after reset")
except OSError as e:
    print("after error", e)
EOF
apid=$!
RG_PIDS[aclient]=$apid
# Poll (bounded, 5 s) until the abort's RST is held, then kill.
h=0
for _ in $(seq 1 100); do
	h=$(held)
	[ "${h:-0}" -ge 1 ] && break
	sleep 0.05
done
rg_daemon_kill9
if [ "${h:-0}" -ge 1 ]; then
	rg_pass "SIGKILL while a RST was held ($h held)"
else
	rg_fail "SIGKILL while a RST was held" "held counter never rose: $(grep 'rst [0-9]*:' "$RG_DAEMON_LOG" | tail -n 1)"
fi
if rg_wait_queue_unbound "$RG_QUEUE_NUM" 3; then
	rg_pass "the kernel unbound the queue"
else
	rg_fail "the kernel unbound the queue" "queue line: '$(rg_queue_line)'"
fi
sleep 0.5
conf "$EV2"
rg_daemon_up "a restarted daemon binds the queue while the connections run" -c "$CONF"

rg_diag "at the restart: $(cat "$RG_TMP/progress") of $BYTES bytes sent"
rg_wait_pid "$apid" 20 >/dev/null
if grep -q '^after reset' "$RG_TMP/a.out"; then
	rg_pass "A: the held RST was lost with the daemon; A's client learns of the reset at its next send"
else
	rg_fail "A: the client learns of the reset at its next send" "$(cat "$RG_TMP/a.out")"
fi
if rg_wait_app bulkc 60 && rg_wait_app sink 10; then
	rg_pass "B: the bulk transfer completes intact across the kill and the restart (sha256 match)"
else
	rg_fail "B: the bulk transfer completes intact"
	rg_app_diag bulkc
fi
if rg_wait_app echoc 40; then
	rg_pass "E: the echo connection completes all $(rg_app_field echoc rounds_done) rounds"
else
	rg_fail "E: the echo connection completes all its rounds"
	rg_app_diag echoc
fi
if rg_wait_app latec 30; then
	rg_pass "C: its client aborted after the restart"
else
	rg_fail "C: its client aborted after the restart"
	rg_app_diag latec
fi
sleep 1.5   # C's RST: held up to 1 s, then judged
rg_daemon_stop 10
cport=$(rg_app_field latec sport)
nc=$(rg_events_count "$EV2" rst "src_port=$cport" "rst.forged=false")
nforged=$(rg_events_count "$EV2" rst "rst.forged=true")
nmid=$(rg_events_count "$EV2" flow "flow.midstream=true")
if [ "$nc" -ge 1 ] && [ "$nforged" = 0 ]; then
	rg_pass "after the restart C's RST is genuine, and no RST at all is called forged ($(rg_events_count "$EV2" rst) rst events)"
else
	rg_fail "after the restart no RST is called forged" "C's genuine rst events $nc; forged events $nforged"
	rg_events_show "$EV2" rst | head -n 10 | rg_diag
fi
line=$(grep 'rst [0-9]*:' "$RG_DAEMON_LOG" | tail -n 1)
if [ "$nmid" -ge 2 ] && grep -q 'forged 0, dropped 0' <<<"$line"; then
	rg_pass "the restarted daemon picked up $nmid flows mid-stream, forged 0, dropped 0"
else
	rg_fail "the restarted daemon picked up flows mid-stream, forged 0, dropped 0" "midstream flow events $nmid" "$line"
fi
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$RG_DAEMON_LOG"; then
	rg_fail "no sanitizer finding in the daemon's log"
else
	rg_pass "no sanitizer finding in the daemon's log"
fi
