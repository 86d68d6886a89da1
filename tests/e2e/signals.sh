#!/bin/bash
# signals.sh: rstguard's signal handling on a live gateway.
#   SIGHUP + a valid changed config   -> still running, the log says it reloaded
#   SIGHUP + a broken config          -> still running, errors logged as FILE:LINE, old config kept
#   SIGHUP + an @include of a directory -> still running (libconfig's scanner would exit(2)),
#                                          the error logged as FILE:LINE, old config kept
#   mv events.json away + SIGHUP      -> the next event lands in a fresh events.json (logrotate)
#   SIGTERM                           -> exit 0 within 5 s, queue unbound
# Refused connections (one RST each) are the probe traffic: each must give one event.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"

rg_setup --queue-num "$RG_QUEUE_NUM"
EV=$RG_TMP/events.json
OTHER=$RG_TMP/other-events.json
CONF=$RG_TMP/rstguard.conf
RG_DIAG_EVENTS="$EV $EV.1 $OTHER"
PORT=5002   # nothing listens there: every connection is refused

# write_conf RATE: a valid configuration with the events in $EV.
write_conf() {
	cat >"$CONF.tmp" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
events = {
	path = "$EV";
	rate = $1;
	burst = 5000;
};
log = { target = "stderr"; level = "info"; };
EOF
	mv "$CONF.tmp" "$CONF"
}

# write_broken_conf: two errors (lines 4 and 6); its events.path differs, so a daemon that
# applied part of it would start writing to $OTHER.
write_broken_conf() {
	cat >"$CONF.tmp" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
events = {
	no_such_key = 1;
	path = "$OTHER";
	rate = "fast";
};
EOF
	mv "$CONF.tmp" "$CONF"
}

# write_include_dir_conf: a file whose @include names a directory (line 3).
write_include_dir_conf() {
	mkdir -p "$RG_TMP/conf.d"
	cat >"$CONF.tmp" <<EOF
mode = "detect";
queue = { num = $RG_QUEUE_NUM; };
@include "$RG_TMP/conf.d"
events = { path = "$OTHER"; };
EOF
	mv "$CONF.tmp" "$CONF"
}

N_REFUSED=0
PROBE_MSG=""
# probe FILE: make one refused connection; 0 when its rst event shows up in FILE within 5 s
# (PROBE_MSG says what went wrong otherwise).
probe() {
	local f=$1 cport name
	N_REFUSED=$((N_REFUSED + 1))
	name=refused$N_REFUSED
	if ! rg_app "$name" "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port "$PORT"; then
		PROBE_MSG="the connection was not refused: $(cat "$RG_TMP/$name.json" "$RG_TMP/$name.err")"
		return 1
	fi
	cport=$(rg_app_field "$name" sport)
	if ! rg_wait_events "$f" 1 5 rst rst.cause=refused "dest_port=$cport"; then
		PROBE_MSG="no rst event for client port $cport in $f within 5 s"
		return 1
	fi
	return 0
}

# log_since OFFSET: what the daemon logged after byte OFFSET.
log_since() {
	tail -c +"$(($1 + 1))" "$RG_DAEMON_LOG"
}

log_size() {
	stat -c %s "$RG_DAEMON_LOG" 2>/dev/null || echo 0
}

# wait_log OFFSET REGEX: bounded (5 s) wait for a log line after OFFSET matching REGEX.
wait_log() {
	local i
	for i in $(seq 1 50); do
		log_since "$1" | grep -qiE -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# still_running DESC
still_running() {
	sleep 0.5
	if rg_daemon_alive && [ -n "$(rg_queue_line "$RG_QUEUE_NUM")" ]; then
		rg_pass "$1"
	else
		rg_fail "$1" "alive: $(rg_daemon_alive && echo yes || echo no); queue line: '$(rg_queue_line "$RG_QUEUE_NUM")'"
	fi
}

# hup_logs RUNNING_DESC LOG_DESC PATTERN...: SIGHUP; the daemon is still running and bound
# (RUNNING_DESC), and its log since the signal matches every PATTERN (LOG_DESC).
hup_logs() {
	local running=$1 desc=$2 off p
	shift 2
	off=$(log_size)
	rg_daemon_signal HUP
	still_running "$running"
	for p in "$@"; do
		if ! wait_log "$off" "$p"; then
			rg_fail "$desc" "log after SIGHUP:"
			log_since "$off" | tail -n 20 | rg_diag
			return
		fi
	done
	rg_pass "$desc"
}

# old_config_kept DESC: after a refused reload, the next event still goes to $EV and nothing of
# the new file was applied ($OTHER, its events.path, was not created).
old_config_kept() {
	local desc=$1 before
	before=$(rg_events_count "$EV" rst)
	if ! probe "$EV"; then
		rg_fail "$desc" "$PROBE_MSG"
	elif [ -e "$OTHER" ]; then
		rg_fail "$desc" "$OTHER exists: part of the refused config was applied"
	elif [ "$(rg_events_count "$EV" rst)" -ne $((before + 1)) ]; then
		rg_fail "$desc" "expected $((before + 1)) rst events in $EV, found $(rg_events_count "$EV" rst)"
	else
		rg_pass "$desc"
	fi
}

write_conf 1000

rg_plan 15

rg_daemon_up "rstguard -c FILE binds queue $RG_QUEUE_NUM" -c "$CONF"

desc="a refused connection gives an rst event in the configured events.path"
if probe "$EV"; then rg_pass "$desc"; else rg_fail "$desc" "$PROBE_MSG"; fi

# A valid change.
write_conf 2000
hup_logs "SIGHUP with a valid changed config (events.rate 2000): still running and bound" \
	"the log says the configuration was reloaded" 'reload'

# A broken file: errors logged with their lines, the running configuration kept.
write_broken_conf
hup_logs "SIGHUP with a broken config: still running and bound" \
	"the reload errors are logged as FILE:LINE ($CONF:4 and :6)" "$CONF:4: " "$CONF:6: "
old_config_kept "old config kept: the next event still goes to the old events.path"

# An @include of a directory: the daemon must survive it (libconfig alone would exit(2)).
write_include_dir_conf
hup_logs "SIGHUP with an @include of a directory: still running and bound" \
	"the bad @include is logged as $CONF:3 and the reload refused" \
	"$CONF:3: @include \"$RG_TMP/conf.d\": cannot read: is a directory" \
	'reload failed: keeping the running configuration'
old_config_kept "old config kept after the bad @include: the next event still goes to $EV"

# Log rotation: move the file away, SIGHUP, the next event goes to a new file of the same name.
write_conf 1000
mv "$EV" "$EV.1"
rotated=$(rg_events_count "$EV.1" rst)
off=$(log_size)
rg_daemon_signal HUP
wait_log "$off" 'reload|reopen' || true
sleep 0.3
desc="after mv events.json events.json.1 and SIGHUP, the next event is in a new events.json"
if ! probe "$EV"; then
	rg_fail "$desc" "$PROBE_MSG"
elif [ "$(rg_events_count "$EV" rst)" -ne 1 ]; then
	# Only rst events are counted: a flow of an earlier probe may expire at any time.
	rg_fail "$desc" "the new file should hold just that rst event, it holds $(rg_events_count "$EV" rst)"
else
	rg_pass "$desc"
fi
n=$(rg_events_count "$EV.1" rst)
rg_is "$n" "$rotated" "the rotated events.json.1 got no new rst events"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "SIGTERM: exit status 0 within 5 s"
if rg_wait_queue_unbound "$RG_QUEUE_NUM" 2; then
	rg_pass "queue $RG_QUEUE_NUM unbound after SIGTERM"
else
	rg_fail "queue $RG_QUEUE_NUM unbound after SIGTERM" "queue line: '$(rg_queue_line "$RG_QUEUE_NUM")'"
fi

if out=$("$RG_PY" "$RG_EVQ" validate "$EV" 2>&1) && out1=$("$RG_PY" "$RG_EVQ" validate "$EV.1" 2>&1); then
	rg_pass "both event files hold only well-formed events"
else
	rg_fail "both event files hold only well-formed events"
	printf '%s\n' "${out:-}" "${out1:-}" | head -n 30 | rg_diag
fi
