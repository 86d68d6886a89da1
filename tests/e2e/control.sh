#!/bin/bash
# control.sh: the control socket and rstguardctl against a live daemon on the test network.
#
# Part 1 (root daemon, detect mode, control.group a throw-away group):
#   - the socket: created with its missing parent directory, a socket, mode 0660, the group;
#   - traffic of known shape moves the counters by exactly that much: N refused connections ->
#     stats says N refused; an on-path injector's forged RSTs (tests/lib/inject.py) -> forged
#     detected = the number it sent; a bulk transfer's flow is listed by flows with its TTL
#     baselines, and the filters (--ip, --port, --state, --limit) select what they say;
#   - every command in text and --json (status, stats, flows, timeouts, reload, metrics);
#   - reload through the socket: a good config (mode enforce, applied, status says so) and a
#     broken one (refused with file:line errors, exit 1, the running config kept);
#   - hostile clients: a malformed request, an oversized one, a slow one (refused after the
#     5 s request timeout) while a transfer crosses the gateway and other clients are served;
#     an unknown command; too many clients;
#   - permissions: a process outside the socket's group cannot connect (exit 3), one in it can;
#   - at exit the socket is removed.
# Part 2 (privilege drop): started as root with user = "nobody": the daemon and every thread
#   run as uid 65534 with CAP_NET_ADMIN and CAP_NET_RAW only (/proc/PID/task/*/status), the
#   verdicts still flow (a transfer completes, a refused connection is counted), a reload
#   through the socket and one by SIGHUP still work, and the socket is removed at exit.
# Part 3 (as the shipped unit runs it: DynamicUser=, AmbientCapabilities=, RuntimeDirectory=):
#   started as nobody with the two capabilities ambient and a runtime directory it owns, with
#   user = "nobody" (nothing to drop): the socket is created there, answers, verdicts flow.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/rstcase.sh
. "$RG_LIB/rstcase.sh"

RSTGUARDCTL=${RSTGUARDCTL:-$(dirname "$RSTGUARD")/rstguardctl}
N_REFUSED=3
GRP=rgctl$$

rg_setup
[ -x "$RSTGUARDCTL" ] || rg_bail "rstguardctl not built ($RSTGUARDCTL)"
command -v groupadd >/dev/null && command -v setpriv >/dev/null ||
	rg_bail "groupadd and setpriv are needed (passwd, util-linux)"

# Socket directory outside RG_TMP (0700): other users must be able to reach the socket, so that
# only the socket's own mode and group decide. Removed at exit, with the throw-away group.
SOCKDIR=$(mktemp -d /tmp/rgctl.XXXXXX) || rg_bail "mktemp"
chmod 755 "$SOCKDIR"
cleanup_ctl() {
	rm -rf "$SOCKDIR"
	getent group "$GRP" >/dev/null && groupdel "$GRP"
}
RG_CLEANUP_HOOK=cleanup_ctl   # run by netns.sh's exit trap
groupadd "$GRP" || rg_bail "groupadd $GRP"
GID=$(getent group "$GRP" | cut -d: -f3)
# A copy of rstguardctl any user may run (the build tree may not be reachable).
cp "$RSTGUARDCTL" "$SOCKDIR/rstguardctl" && chmod 755 "$SOCKDIR/rstguardctl"
CTLBIN=$SOCKDIR/rstguardctl
SOCK=$SOCKDIR/run/ctl.sock
CONF=$SOCKDIR/rstguard.conf
EV=$RG_TMP/events.json
RG_DIAG_EVENTS=$EV

# Closed and closing flows are kept 10 min (not 10 s) so that flows still lists them at the end.
write_conf() {   # write_conf MODE [EXTRA LINES]
	printf 'mode = "%s";\ncontrol = { socket = "%s"; group = "%s"; };\nflows = { timeout = { closed = 600; closing = 600; }; };\n%s\n' \
		"$1" "$SOCK" "$GRP" "${2:-}" >"$CONF"
	chmod 644 "$CONF"
}
ctl() { timeout 20 "$CTLBIN" -S "$SOCK" "$@"; }
# jq-free JSON reads: jget FILE EXPR (python expression on the object d).
jget() { "$RG_PY" -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
# raw LABEL PYTHON: talk to the socket with a python snippet (s: a connected socket); prints
# what the snippet prints.
raw() {
	timeout 20 "$RG_PY" - "$SOCK" "$2" <<'PY' >"$RG_TMP/raw-$1.out" 2>&1
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(12)
s.connect(sys.argv[1])
def answer():
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(65536)
        if not c:
            break
        buf += c
    return buf.decode(errors="replace").strip()
def closed():
    try:
        return s.recv(1) == b""
    except OSError:
        return True
exec(sys.argv[2])
PY
}

rg_plan 68

# ---- part 1: a root daemon in detect mode

write_conf detect
rg_daemon_up "rstguard starts with control.socket in a directory that does not exist yet" -c "$CONF" -e "$EV"
for _ in $(seq 1 30); do [ -S "$SOCK" ] && break; sleep 0.1; done
rg_ok "$([ -S "$SOCK" ]; echo $?)" "the socket and its parent directory are created"
rg_is "$(stat -c '%a %G' "$SOCK" 2>/dev/null)" "660 $GRP" "the socket's mode is 0660 and its group control.group"

# Traffic of known shape.
for i in $(seq 1 $N_REFUSED); do
	rg_app "ref$i" "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port $((6000 + i))
done
rg_serve bulk "$RG_SERVER" "$RG_SERVER4" 5001 bulk-sink || rg_bail "server"
rg_app bulkc "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5001 --bytes 300000
rg_ok $? "a bulk transfer crosses the gateway"
rg_wait_app bulk 5
rg_app_serve slow "$RG_SERVER" slow-serve --bind "$RG_SERVER4" --port 5005 --delay 0.4 --bytes 200000 || rg_bail "server"
rg_inject_start inj 5005 bare-ttl || rg_bail "injector"
rg_app fetch "$RG_CLIENT" fetch --to "$RG_SERVER4" --port 5005 --bytes 200000 --expect reset
rg_wait_app inj 10
rg_wait_app slow 10
N_INJ=$(rg_inject_count inj)
rg_wait_events "$EV" "$((N_REFUSED))" 5 rst rst.cause=refused || true
rg_wait_events "$EV" "$N_INJ" 5 rst forged=true || true
sleep 0.5

# status
ctl status >"$RG_TMP/status.txt" 2>&1
rg_ok $? "status: exit 0" "$(cat "$RG_TMP/status.txt")"
ctl --json status >"$RG_TMP/status.json" 2>&1
rg_is "$(jget "$RG_TMP/status.json" '(d["ok"], d["mode"], d["queue_count"], d["config_file"], d["last_reload"])')" \
	"(True, 'detect', 1, '$CONF', 'never')" "status --json: mode, queues, config file, no reload yet"
rg_ok "$(grep -qE '^mode +detect$' "$RG_TMP/status.txt"; echo $?)" "status text shows the mode" "$(cat "$RG_TMP/status.txt")"

# stats: exact counts
ctl --json stats >"$RG_TMP/stats.json" 2>&1
rg_ok $? "stats --json: exit 0" "$(head -c 500 "$RG_TMP/stats.json")"
rg_is "$(jget "$RG_TMP/stats.json" 'd["rst"]["refused"]')" "$N_REFUSED" "stats: exactly the $N_REFUSED refused connections sent are counted as refused"
rg_ok "$([ "$N_INJ" -ge 1 ]; echo $?)" "the injector forged at least one RST ($N_INJ)"
rg_is "$(jget "$RG_TMP/stats.json" 'd["forged"]["detected"]')" "$N_INJ" "stats: forged detected = the $N_INJ RSTs the injector sent"
rg_is "$(jget "$RG_TMP/stats.json" 'd["forged"]["would_drop"]')" "$N_INJ" "stats: would_drop = the same (detect mode)"
rg_is "$(jget "$RG_TMP/stats.json" 'd["forged"]["dropped"]')" "0" "stats: nothing dropped in detect mode"
rg_is "$(jget "$RG_TMP/stats.json" '(d["queues"][0]["queue"], "kernel_queue_dropped" in d["queues"][0], "kernel_user_dropped" in d["queues"][0], "kernel_waiting" in d["queues"][0])')" \
	"($RG_QUEUE_NUM, True, True, True)" "stats: the kernel's own counters of the queue are there"
rg_is "$(jget "$RG_TMP/stats.json" 'd["events"]["written"] >= '"$((N_REFUSED + N_INJ))")" "True" "stats: events written counted"
ctl stats >"$RG_TMP/stats.txt" 2>&1
rg_ok "$(grep -qE "^  refused +$N_REFUSED\$" "$RG_TMP/stats.txt" && grep -qE "^  detected +$N_INJ\$" "$RG_TMP/stats.txt"; echo $?)" \
	"stats text: refused $N_REFUSED, forged detected $N_INJ" "$(head -n 60 "$RG_TMP/stats.txt")"

# flows
ctl --json flows --port 5001 >"$RG_TMP/flows.json" 2>&1
rg_is "$(jget "$RG_TMP/flows.json" '(d["matched"], d["flows"][0]["src_ip"], d["flows"][0]["dest_ip"], d["flows"][0]["dest_port"])')" \
	"(1, '$RG_CLIENT4', '$RG_SERVER4', 5001)" "flows --port 5001: the bulk transfer's flow"
# The client is one hop away (TTL 64 at the gateway), the server two (64 - 1 at the router).
rg_is "$(jget "$RG_TMP/flows.json" '(d["flows"][0]["toserver"]["ttl_base"], d["flows"][0]["toclient"]["ttl_base"], d["flows"][0]["toserver"]["pkts"] > 10)')" \
	"(64, 63, True)" "flows: per-direction TTL baselines and packets"
rg_is "$(jget "$RG_TMP/flows.json" 'd["flows"][0]["toserver"]["ipid_habit"] in ("incrementing", "constant", "random", "unknown") and d["flows"][0]["idle_ms"] >= 0')" \
	"True" "flows: IP ID habit and idle time"
ctl --json flows --ip "$RG_CLIENT4" --limit 2 >"$RG_TMP/flows2.json" 2>&1
rg_is "$(jget "$RG_TMP/flows2.json" '(d["matched"] >= '"$((N_REFUSED + 2))"', d["listed"], len(d["flows"]), d["flows"][0]["idle_ms"] <= d["flows"][1]["idle_ms"])')" \
	"(True, 2, 2, True)" "flows --ip --limit 2: every flow of the client matched, 2 listed, most recent first"
ctl --json flows --state closed >"$RG_TMP/flows3.json" 2>&1
rg_is "$(jget "$RG_TMP/flows3.json" 'all(f["state"] == "closed" for f in d["flows"]) and d["matched"] >= '"$N_REFUSED")" \
	"True" "flows --state closed: only closed flows, the refused ones among them"
ctl flows --port 5001 >"$RG_TMP/flows.txt" 2>&1
rg_ok "$(grep -q "$RG_CLIENT4:[0-9]* *$RG_SERVER4:5001" "$RG_TMP/flows.txt"; echo $?)" "flows text: the flow's line" "$(cat "$RG_TMP/flows.txt")"
ctl flows --state bogus >"$RG_TMP/flows-bad.txt" 2>&1
rg_is "$?" 1 "flows --state bogus: refused by the daemon (exit 1)"
ctl flows --port 0 >/dev/null 2>&1
rg_is "$?" 2 "flows --port 0: usage error (exit 2)"

# timeouts
ctl --json timeouts >"$RG_TMP/to.json" 2>&1
rg_is "$(jget "$RG_TMP/to.json" '(d["ok"], type(d["networks"]).__name__)')" "(True, 'list')" "timeouts --json: a list of networks"
ctl timeouts >"$RG_TMP/to.txt" 2>&1
rg_ok $? "timeouts text: exit 0" "$(cat "$RG_TMP/to.txt")"

# metrics: the Prometheus text (metrics.c), with the same counts as stats
ctl metrics >"$RG_TMP/metrics.txt" 2>&1
rg_ok "$(grep -q '^# TYPE rstguard_' "$RG_TMP/metrics.txt" &&
	grep -qx "rstguard_rsts_total{cause=\"refused\"} $N_REFUSED" "$RG_TMP/metrics.txt" &&
	grep -qx "rstguard_forged_rsts_total{action=\"detected\"} $N_INJ" "$RG_TMP/metrics.txt"; echo $?)" \
	"metrics: Prometheus text, $N_REFUSED refused and $N_INJ forged as stats says" \
	"$(grep -E 'rsts_total|^# TYPE' "$RG_TMP/metrics.txt" | head -n 20)"
ctl --json metrics >"$RG_TMP/metrics.json" 2>&1
rg_is "$(jget "$RG_TMP/metrics.json" '(d["ok"], d["metrics"].startswith("# HELP rstguard_"))')" "(True, True)" "metrics --json: the text in a JSON string"

# reload: good, then broken
write_conf enforce
ctl reload >"$RG_TMP/reload.txt" 2>&1
rg_is "$?" 0 "reload of a good config: exit 0"
ctl --json status >"$RG_TMP/status2.json" 2>&1
rg_is "$(jget "$RG_TMP/status2.json" '(d["mode"], d["last_reload_result"])')" "('enforce', 'applied')" "after the reload: mode enforce, reload applied"
printf 'mode = "enforce";\ncontrol = { socket = "%s"; group = "%s"; };\nqueue = { maxlen = 1; };\nbogus = 1;\n' "$SOCK" "$GRP" >"$CONF"
ctl reload >"$RG_TMP/reload2.txt" 2>&1
rg_is "$?" 1 "reload of a broken config: exit 1"
rg_ok "$(grep -q "$CONF:3: queue.maxlen" "$RG_TMP/reload2.txt" && grep -q "$CONF:4: unknown key 'bogus'" "$RG_TMP/reload2.txt"; echo $?)" \
	"reload: the errors, with file and line" "$(cat "$RG_TMP/reload2.txt")"
ctl --json reload >"$RG_TMP/reload2.json" 2>&1
rg_is "$(jget "$RG_TMP/reload2.json" '(d["ok"], len(d["errors"]))')" "(False, 2)" "reload --json: ok false and both errors"
ctl --json status >"$RG_TMP/status3.json" 2>&1
rg_is "$(jget "$RG_TMP/status3.json" '(d["mode"], d["last_reload_result"])')" "('enforce', 'rejected')" "the running config is kept, the rejection shown"
write_conf enforce

# hostile clients
raw malformed 's.sendall(b"this is not json\n"); print(answer()); print(closed())'
rg_is "$(head -n 1 "$RG_TMP/raw-malformed.out" | cut -c1-50)" '{"ok":false,"error":"malformed request: not a JSON' "a malformed request is refused"
rg_is "$(sed -n 2p "$RG_TMP/raw-malformed.out")" "True" "... and its connection closed"
raw oversized 's.sendall(b"{\"command\":\"" + b"x" * 5000); print(answer()); print(closed())'
rg_is "$(head -n 1 "$RG_TMP/raw-oversized.out")" '{"ok":false,"error":"request too long"}' "a request over 4096 bytes is refused"
raw nested 's.sendall(b"{\"command\":{\"a\":1}}\n"); print(answer())'
rg_is "$(cat "$RG_TMP/raw-nested.out")" '{"ok":false,"error":"malformed request: nested values are not accepted"}' "a nested request is refused"
raw unknown 's.sendall(b"{\"command\":\"shutdown\"}\n"); print(answer())'
rg_is "$(cat "$RG_TMP/raw-unknown.out")" "{\"ok\":false,\"error\":\"unknown command 'shutdown'\"}" "an unknown command is refused"
raw two 's.sendall(b"{\"command\":\"status\"}\n{\"command\":\"timeouts\"}\n"); buf = b""
while buf.count(b"\n") < 2:
    c = s.recv(65536)
    if not c:
        break
    buf += c
a, b = (buf.split(b"\n") + [b"", b""])[:2]
print(buf.count(b"\n")); print(b"version" in a and b"networks" in b)'
rg_is "$(sed -n 2p "$RG_TMP/raw-two.out")" "True" "two requests on one connection get two answers"
# A slow client: half a request, then silence; meanwhile traffic and other clients go on.
raw slow 't = time.time(); s.sendall(b"{\"command\":"); print(answer()); print(round(time.time() - t))' &
slowpid=$!
sleep 0.5
rg_serve bulk2 "$RG_SERVER" "$RG_SERVER4" 5002 bulk-sink || rg_bail "server"
rg_app bulk2c "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5002 --bytes 2000000
rg_ok $? "a transfer completes while a slow client holds a connection"
rg_wait_app bulk2 5
ctl status >/dev/null 2>&1
rg_is "$?" 0 "other clients are served meanwhile"
wait "$slowpid"
rg_is "$(head -n 1 "$RG_TMP/raw-slow.out")" '{"ok":false,"error":"request timeout"}' "the slow request is refused after the timeout"
rg_is "$(sed -n 2p "$RG_TMP/raw-slow.out")" "5" "... 5 s after it began"
# Too many clients: 20 idle connections besides raw's own; the 17th and later are told so.
raw many 'c = [socket.socket(socket.AF_UNIX) for _ in range(20)]
[x.connect(sys.argv[1]) for x in c]
time.sleep(0.5)
busy = 0
for x in c:
    x.setblocking(False)
    try:
        busy += b"too many clients" in x.recv(200)
    except BlockingIOError:
        pass
print(busy)'
rg_is "$(cat "$RG_TMP/raw-many.out")" "5" "beyond 16 clients, connections are refused with an answer"

# permissions
setpriv --reuid=65534 --regid=65534 --clear-groups "$CTLBIN" -S "$SOCK" status >"$RG_TMP/nobody.txt" 2>&1
rg_is "$?" 3 "a user outside the socket's group cannot connect (exit 3)"
rg_ok "$(grep -q 'Permission denied' "$RG_TMP/nobody.txt"; echo $?)" "... and is told why" "$(cat "$RG_TMP/nobody.txt")"
setpriv --reuid=65534 --regid=65534 --groups="$GID" "$CTLBIN" -S "$SOCK" status >/dev/null 2>&1
rg_is "$?" 0 "a member of the socket's group can"

rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "the daemon exits 0"
rg_ok "$([ ! -e "$SOCK" ]; echo $?)" "the socket is removed at exit"

# ---- part 2: the privilege drop

rm -rf "$SOCKDIR/run"
write_conf detect 'user = "nobody";'
EV2=$SOCKDIR/ev2
mkdir -m 777 "$EV2"
rg_daemon_up "rstguard starts as root with user = nobody" -c "$CONF" -e "$EV2/events.json"
for _ in $(seq 1 30); do [ -S "$SOCK" ] && break; sleep 0.1; done
PID=$RG_DAEMON_PID
ids=$(for t in /proc/"$PID"/task/*/status; do awk '/^(Uid|Gid|Groups|CapEff|CapPrm|CapInh|CapBnd|CapAmb):/ { printf "%s %s %s;", $1, $2, $3 }' "$t"; echo; done | sort -u)
rg_is "$(wc -l <<<"$ids")" 1 "every thread of the daemon has the same ids and capabilities" "$ids"
rg_ok "$(grep -qE 'Uid: 65534 65534;Gid: 65534 65534;Groups: *;' <<<"$ids"; echo $?)" "it runs as nobody:nogroup without supplementary groups" "$ids"
# CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13.
rg_ok "$(grep -qE 'CapInh: 0+ *;CapPrm: 0000000000003000 *;CapEff: 0000000000003000 *;' <<<"$ids"; echo $?)" \
	"with CAP_NET_ADMIN and CAP_NET_RAW only (permitted and effective, none inheritable)" "$ids"
rg_ok "$(grep -qE 'CapBnd: 0+ *;CapAmb: 0+ *;' <<<"$ids"; echo $?)" "an empty bounding set, no ambient capabilities" "$ids"
rg_app refd "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 6100
rg_serve bulk3 "$RG_SERVER" "$RG_SERVER4" 5003 bulk-sink || rg_bail "server"
rg_app bulk3c "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5003 --bytes 1000000
rg_ok $? "verdicts still flow after the drop: a transfer completes"
rg_wait_app bulk3 5
sleep 0.3
ctl --json stats >"$RG_TMP/stats4.json" 2>&1
rg_is "$(jget "$RG_TMP/stats4.json" '(d["rst"]["refused"], d["queues"][0]["verdict_errors"])')" "(1, 0)" \
	"the refused connection is counted, no verdict error"
write_conf enforce 'user = "nobody";'
ctl reload >/dev/null 2>&1
rg_is "$?" 0 "a reload through the socket works as nobody"
write_conf detect 'user = "nobody";'
rg_daemon_signal HUP
sleep 0.5
ctl --json status >"$RG_TMP/status5.json" 2>&1
rg_is "$(jget "$RG_TMP/status5.json" '(d["mode"], d["last_reload_result"], d["uid"])')" "('detect', 'applied', 65534)" "a reload by SIGHUP works too"
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "the unprivileged daemon exits 0"
rg_ok "$([ ! -e "$SOCK" ]; echo $?)" "and removes its socket"

# ---- part 3: as systemd starts it (a non-root user with ambient capabilities)

rm -rf "$SOCKDIR/run"
mkdir -m 755 "$SOCKDIR/run" && chown 65534:65534 "$SOCKDIR/run"   # RuntimeDirectory=
printf 'control = { socket = "%s"; };\nuser = "nobody";\n' "$SOCK" >"$CONF"
WRAP=$SOCKDIR/as-systemd
printf '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw "%s" "$@"\n' "$RSTGUARD" >"$WRAP"
chmod 755 "$WRAP"
REAL=$RSTGUARD
RSTGUARD=$WRAP
rg_daemon_up "rstguard starts as nobody with CAP_NET_ADMIN and CAP_NET_RAW ambient" -c "$CONF" -e -
RSTGUARD=$REAL
for _ in $(seq 1 30); do [ -S "$SOCK" ] && break; sleep 0.1; done
rg_is "$(stat -c '%a %u' "$SOCK" 2>/dev/null)" "660 65534" "the socket is created in the runtime directory, owned by the user"
ctl --json status >"$RG_TMP/status6.json" 2>&1
rg_is "$(jget "$RG_TMP/status6.json" '(d["ok"], d["uid"])')" "(True, 65534)" "status answers; the daemon runs as nobody"
rg_serve bulk4 "$RG_SERVER" "$RG_SERVER4" 5004 bulk-sink || rg_bail "server"
rg_app bulk4c "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5004 --bytes 1000000
rg_ok $? "verdicts flow: a transfer completes"
rg_wait_app bulk4 5
ctl reload >/dev/null 2>&1
rg_is "$?" 0 "a reload through the socket works"
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "it exits 0"
rg_ok "$([ ! -e "$SOCK" ]; echo $?)" "and removes its socket"
