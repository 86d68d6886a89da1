#!/bin/bash
# multiqueue.sh: queue.count = 2 with --queue-balance 0:1. The kernel spreads host pairs over the
# two queues (hash of the addresses, both directions of a pair together); rstguard runs one
# thread per queue. Twelve client addresses each make a refused connection and a small
# transfer: both queues see traffic, every RST gives exactly one event, every connection one
# flow event, and at SIGTERM both queues are unbound.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

PAIRS=12   # 12 host pairs: all on one queue by chance with probability 2^-11
rg_setup --queue-balance 0:1
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV
CFG=$RG_TMP/rstguard.conf
printf 'queue = { num = 0; count = 2; };\n' >"$CFG"

rg_plan 8

for i in $(seq 1 $PAIRS); do
	rg_ns "$RG_CLIENT" ip addr add "198.18.1.$((100 + i))/24" dev "$RG_IF_CLIENT"
done

if rg_daemon_start -c "$CFG" -m detect -e "$EV" && rg_wait_queue_bound 1 5; then
	rg_pass "rstguard binds queues 0 and 1 (queue.count = 2)"
else
	rg_fail "rstguard binds queues 0 and 1 (queue.count = 2)"
	rg_bail "the daemon did not start"
fi

rg_serve sink "$RG_SERVER" 0.0.0.0 8080 bulk-sink --count "$PAIRS" || rg_bail "server"

# From each source address: a connection to a closed port (refused), then 200 kB to the sink.
rg_ns "$RG_CLIENT" "$RG_PY" - "$PAIRS" "$RG_SERVER4" >"$RG_TMP/clients.out" 2>&1 <<'PY'
import hashlib, json, socket, sys
pairs, server = int(sys.argv[1]), sys.argv[2]
refused = sent = 0
for i in range(1, pairs + 1):
    src = "198.18.1.%d" % (100 + i)
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    try:
        s.connect((server, 9))
    except ConnectionRefusedError:
        refused += 1
    finally:
        s.close()
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((server, 8080))
    s.sendall(b"x" * 200000)
    s.shutdown(socket.SHUT_WR)
    s.recv(4096)
    s.close()
    sent += 1
print(json.dumps({"refused": refused, "sent": sent}))
PY
rg_is "$(tr -d ' ' <"$RG_TMP/clients.out")" "{\"refused\":$PAIRS,\"sent\":$PAIRS}" \
	"$PAIRS clients: every connection to the closed port refused, every transfer done"
rg_wait_app sink 20 >/dev/null

q0=$(rg_queue_seq 0)
q1=$(rg_queue_seq 1)
if [ "${q0:-0}" -gt 0 ] && [ "${q1:-0}" -gt 0 ]; then
	rg_pass "both queues carried traffic (ids $q0 and $q1)"
else
	rg_fail "both queues carried traffic" "queue 0: '$(rg_queue_line 0)' queue 1: '$(rg_queue_line 1)'"
fi
drops="$(rg_queue_drops 0) $(rg_queue_drops 1)"
rg_is "$drops" "0 0 0 0" "no queue drops and no user drops on either queue"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: rstguard exits with status 0"
if rg_wait_queue_unbound 0 2 && rg_wait_queue_unbound 1 2; then
	rg_pass "both queues unbound after exit"
else
	rg_fail "both queues unbound after exit"
fi

refused=$("$RG_PY" "$RG_EVQ" count "$EV" rst rst.cause=refused 2>/dev/null || echo "?")
rg_is "$refused" "$PAIRS" "exactly one refused rst event per client address, whichever queue it took"
flows=$(grep -c '"event_type":"flow"' "$EV")
rg_is "$flows" $((2 * PAIRS)) "one flow event per connection (2 x $PAIRS)"

