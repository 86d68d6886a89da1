#!/bin/bash
# bypass_kill.sh: with `-j NFQUEUE --queue-bypass`, traffic survives the daemon dying.
# A paced bulk transfer (about 3 s) runs through the gateway; once part of it went through the
# daemon, rstguard is killed with SIGKILL (no cleanup at all). The kernel unbinds the queue, the
# bypass flag lets packets through, and the transfer must still complete byte-for-byte (TCP
# retransmits what was held in the queue at the kill). New connections keep working too.
# Control: the same rule without --queue-bypass and nobody bound drops everything, so the
# bypass flag, not luck, is what kept the transfer alive.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

BYTES=${RG_BYPASS_BYTES:-180000000}   # at RATE: about 3 s
RATE=${RG_BYPASS_RATE:-60000000}      # bytes/s
KILL_AT=$((BYTES / 4))
PORT=5001

rg_setup --bypass --queue-num "$RG_QUEUE_NUM"
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV

rg_plan 6

rg_daemon_up "rstguard binds queue $RG_QUEUE_NUM behind a --queue-bypass rule" -m detect -e "$EV"

rg_serve sink "$RG_SERVER" "$RG_SERVER4" "$PORT" bulk-sink || rg_bail "the sink did not start"
rg_bg bulkc "$RG_CLIENT" bulk --to "$RG_SERVER4" --port "$PORT" \
	--bytes "$BYTES" --rate "$RATE" --progress-file "$RG_TMP/progress"

# Wait (bounded, 15 s) until a quarter of the data went through, then kill the daemon.
progress=0
for _ in $(seq 1 150); do
	progress=$(cat "$RG_TMP/progress" 2>/dev/null || echo 0)
	[ "${progress:-0}" -ge "$KILL_AT" ] && break
	rg__alive "${RG_PIDS[bulkc]}" || break
	sleep 0.1
done
seq=$(rg_queue_seq "$RG_QUEUE_NUM")
rg_daemon_kill9
if [ "${progress:-0}" -ge "$KILL_AT" ] && [ "${progress:-0}" -lt "$BYTES" ] && [ "${seq:-0}" -gt 0 ]; then
	rg_pass "SIGKILL during the transfer ($progress of $BYTES bytes sent, $seq packets queued so far)"
else
	rg_fail "SIGKILL during the transfer" \
		"progress $progress of $BYTES (kill wanted at $KILL_AT), queue id sequence '${seq:-}'"
fi

if rg_wait_queue_unbound "$RG_QUEUE_NUM" 3; then
	rg_pass "the kernel unbound queue $RG_QUEUE_NUM when the daemon died"
else
	rg_fail "the kernel unbound queue $RG_QUEUE_NUM when the daemon died" \
		"queue line: '$(rg_queue_line "$RG_QUEUE_NUM")'"
fi

ok=1
rg_wait_app bulkc 40 || ok=0
rg_wait_app sink 10 || ok=0
if [ "$ok" = 1 ]; then
	rg_pass "the transfer completes intact after the kill (sha256 match, $(rg_app_field bulkc seconds) s)"
else
	rg_fail "the transfer completes intact after the kill"
	rg_app_diag bulkc
	rg_app_diag sink
fi

if rg_app after "$RG_CLIENT" --timeout 3 connect-refused --to "$RG_SERVER4" --port 5002; then
	rg_pass "a new connection after the kill gets through (the server's RST comes back)"
else
	rg_fail "a new connection after the kill gets through (the server's RST comes back)"
	rg_app_diag after
fi

# Control: no bypass, nobody bound -> the SYN is dropped, connect() times out.
rg_queue_rule_clear || rg_bail "could not remove the queue rule"
rg_queue_rule --queue-num "$RG_QUEUE_NUM" || rg_bail "could not install the control rule"
if rg_app control "$RG_CLIENT" --timeout 2 connect-timeout --to "$RG_SERVER4" --port 5002; then
	rg_pass "control: without --queue-bypass and no daemon the same connection gets no answer"
else
	rg_fail "control: without --queue-bypass and no daemon the same connection gets no answer"
	rg_app_diag control
fi
