#!/bin/bash
# diskfull.sh: the event file on a full filesystem. A short write must not leave a torn line
# that the next event completes into non-JSON, and the loss counter must count events lost.
#   events.json on a 64 KiB tmpfs, the rest of it filled -> refused connections (rst events)
#   free the space -> more refused connections -> SIGTERM
#   every line of events.json is JSON of the documented shape; the log's "lost to write errors"
#   equals the events written into the buffer minus the lines in the file; the failure and the
#   recovery are each logged once.
# The tmpfs lives in a private mount namespace: the script re-runs itself under `unshare -m`,
# so the mount disappears with the test whatever happens.
# shellcheck source-path=SCRIPTDIR
set -u
if [ "${RG_DISKFULL_NS:-}" != 1 ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
	RG_DISKFULL_NS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_setup --queue-num "$RG_QUEUE_NUM"
[ "${RG_DISKFULL_NS:-}" = 1 ] || rg_skip "unshare -m unavailable"
SMALL=$RG_TMP/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=64k,mode=0755 rgtest "$SMALL" || rg_skip "cannot mount a tmpfs"
unmount_small() { umount -l "$SMALL" 2>/dev/null; }
RG_CLEANUP_HOOK=unmount_small
EV=$SMALL/events.json
RG_DIAG_EVENTS=$EV
PORT=5002   # nothing listens there: every connection is refused
N_FULL=30   # refused connections while the disk is full
N_AFTER=5   # after space is freed

cat >"$RG_TMP/rstguard.conf" <<EOF
queue = { num = $RG_QUEUE_NUM; };
events = { path = "$EV"; rate = 100000; burst = 100000; };
EOF

N_REFUSED=0
# refused N: N refused connections, one after the other.
refused() {
	local i
	for i in $(seq 1 "$1"); do
		N_REFUSED=$((N_REFUSED + 1))
		rg_app "refused$N_REFUSED" "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port "$PORT" ||
			rg_diag "connection $N_REFUSED was not refused"
	done
}

rg_plan 7

rg_daemon_up "rstguard binds queue $RG_QUEUE_NUM, events on a 64 KiB tmpfs" -c "$RG_TMP/rstguard.conf"
refused 1
rg_wait_events "$EV" 1 5 rst || rg_bail "no rst event before the disk was filled"

# Fill the filesystem: what is left is the rest of the event file's last page, so the first
# events fit and a later one is cut short by ENOSPC.
dd if=/dev/zero of="$SMALL/filler" bs=4k count=64 2>/dev/null
rg_diag "filesystem full: $(df --output=avail -B1 "$SMALL" | tail -n 1 | tr -d ' ') bytes available, events.json $(stat -c %s "$EV") bytes"
refused "$N_FULL"
sleep 1.5          # the writer drains its rings at least every second
rm -f "$SMALL/filler"
refused "$N_AFTER"
sleep 1.5
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: exit status 0"

rg_check_events "$EV"

lines=$(wc -l <"$EV")
tail_byte=$(tail -c 1 "$EV" | od -An -c | tr -d ' ')
rg_is "$tail_byte" '\n' "the file ends with a whole line"

re='events: written ([0-9]+), rate-limited ([0-9]+) \(alerts [0-9]+\), ring full ([0-9]+), lost to write errors ([0-9]+)'
stats=$(grep -E "$re" "$RG_DAEMON_LOG" | tail -n 1)
if [[ $stats =~ $re ]]; then
	written=${BASH_REMATCH[1]} limited=${BASH_REMATCH[2]} full=${BASH_REMATCH[3]} lost=${BASH_REMATCH[4]}
	rg_diag "written $written, rate-limited $limited, ring full $full, lost $lost, lines in file $lines"
	if [ "$lost" -gt 0 ] && [ "$((written - lines))" -eq "$lost" ]; then
		rg_pass "lost to write errors ($lost) = events written ($written) - lines in the file ($lines)"
	else
		rg_fail "lost to write errors ($lost) = events written ($written) - lines in the file ($lines), and > 0"
	fi
else
	rg_fail "the counters line reports events lost to write errors" "$(grep 'events:' "$RG_DAEMON_LOG")"
fi

n_fail=$(grep -c 'writing events to .*events are lost until it works again' "$RG_DAEMON_LOG")
rg_is "$n_fail" 1 "the write failure is logged once"
n_back=$(grep -c 'writing events to .* again (' "$RG_DAEMON_LOG")
after=$(rg_events_count "$EV" rst)
if [ "$n_back" -eq 1 ] && [ "$after" -ge "$((1 + N_AFTER))" ]; then
	rg_pass "the recovery is logged once and the events after it are in the file"
else
	rg_fail "the recovery is logged once and the events after it are in the file" \
		"recovery lines: $n_back; rst events in the file: $after (want >= $((1 + N_AFTER)))"
fi
