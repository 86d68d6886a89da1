#!/bin/bash
# evidence.sh: evidence captures (evidence.dir) end to end, in detect mode.
#   A  forged RSTs from the on-path injector (tests/lib/inject.py: P1 bare-ttl, one RST; P2
#      gfw2006, three): every forged rst event carries an "evidence" path; the file is there
#      (0640, in a directory created 0750); `tcpdump -r` reads it and shows that RST; and
#      `rstguard -r` on the file alone judges that RST the same (forged, same cause, same
#      verdict): the capture holds the flow from its handshake. No other rst event has a path.
#   B  the size cap: 150 forged RSTs (TTL and DF foreign, half the sequence space away, so the
#      server ignores them and the connection lives on) with evidence.max_bytes = 65536: each
#      gets its capture, the oldest are removed, the directory stays under the cap; counters.
#   C  a full disk: the same flood into a 64 KiB tmpfs: every RST is still judged and reported,
#      the captures that did not fit are counted as errors (logged once), and no partial file is
#      left behind.
#   D  an eviction's capture (evidence.evictions), offline from tests/fixtures/eviction.pcap: the
#      eviction event names it, it ends in the RST, and rstguard -r on it finds the eviction again.
# The tmpfs lives in a private mount namespace: the script re-runs itself under `unshare -m`
# (as diskfull.sh does), so the mount disappears with the test whatever happens.
# shellcheck source-path=SCRIPTDIR
set -u
if [ "${RG_EVIDENCE_NS:-}" != 1 ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
	RG_EVIDENCE_NS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/rstcase.sh
. "$RG_LIB/rstcase.sh"

rg_setup --queue-num "$RG_QUEUE_NUM"
[ "${RG_EVIDENCE_NS:-}" = 1 ] || rg_skip "unshare -m unavailable"
command -v tcpdump >/dev/null 2>&1 || rg_bail "tcpdump is needed (tests/install-deps.sh)"
rg__sysctl "$RG_GW" net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
	net.ipv4.conf.r0.send_redirects=0 || true
rg_results_init

BYTES=200000
N_FLOOD=150
CAP=65536

rg_plan 25

# ---- helpers

# The flooder: in the client, one connection to a keep-open server, its next sequence number
# learnt from its own first data segment, then N RSTs toward the server with TTL 40 and DF
# clear (the client sends TTL 64 with DF), sequence numbers half the space away: out of any
# window, so the server's stack ignores them (RFC 5961 3.2), while rstguard judges each forged.
cat >"$RG_TMP/flood.py" <<'EOF'
import json, socket, sys, time
from scapy.all import AsyncSniffer, IP, TCP, conf
srv, port, n, iface = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conf.verb = 0
out = {"ok": False, "sent": 0}
s = socket.create_connection((srv, port), timeout=5)
sport = s.getsockname()[1]
sn = AsyncSniffer(iface=iface, count=1,
                  filter="tcp and src port %d and dst port %d and tcp[tcpflags] & tcp-push != 0" % (sport, port))
sn.start()
time.sleep(1.0)
s.sendall(b"hello\n")
sn.join(timeout=5)
if sn.results:
    p = sn.results[0]
    nxt = (p[TCP].seq + len(bytes(p[TCP].payload))) % 2**32
    l3 = conf.L3socket()
    for i in range(n):
        l3.send(IP(src=p[IP].src, dst=srv, ttl=40, flags=0) /
                TCP(sport=sport, dport=port, flags="R", seq=(nxt + 2**31 + 1000 * i) % 2**32, window=0))
        out["sent"] += 1
        time.sleep(0.01)
    l3.close()
    time.sleep(0.5)
    s.sendall(b"still here\n")   # the connection lived through it
    out["ok"] = True
s.close()
out["sport"] = sport
print(json.dumps(out))
EOF

# The checks of the captures named by the events (run A): prints "PASS|FAIL<TAB>text" lines.
cat >"$RG_TMP/evcheck.py" <<'EOF'
import json, os, stat, subprocess, sys
events, rstguard, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
evs = [json.loads(l) for l in open(events) if l.strip()]
rsts = [e for e in evs if e.get("event_type") == "rst"]
forged = [e for e in rsts if e["rst"]["forged"]]
def out(ok, text, diag=()):
    print("%s\t%s" % ("PASS" if ok else "FAIL", text))
    for d in diag:
        print("DIAG\t%s" % d)
bad = [e["rst"]["seq"] for e in forged if not os.path.isfile(e.get("evidence", ""))]
bad += ["genuine %s has one" % e["rst"]["seq"] for e in rsts if not e["rst"]["forged"] and "evidence" in e]
out(forged and not bad, "each of the %d forged rst events names an existing capture, no other has one" %
    len(forged), [str(b) for b in bad])
bad = []
for e in forged:
    f = e.get("evidence", "")
    st = os.stat(f) if os.path.isfile(f) else None
    dst = os.stat(os.path.dirname(f)) if st else None
    if st is None or stat.S_IMODE(st.st_mode) != 0o640 or stat.S_IMODE(dst.st_mode) != 0o750:
        bad.append("%s: %s" % (f, "missing" if st is None else "%o in %o" % (st.st_mode, dst.st_mode)))
out(forged and not bad, "captures are mode 0640 in a directory made 0750", bad)
bad = []
for e in forged:
    f = e.get("evidence", "")
    r = subprocess.run(["tcpdump", "-nn", "-S", "-r", f], capture_output=True, text=True, timeout=20)
    want = "seq %d" % e["rst"]["seq"]
    hit = [l for l in r.stdout.splitlines() if "Flags [R" in l and want in l and
           (".%d >" % e["src_port"]) in l]
    if r.returncode != 0 or not hit:
        bad.append("%s: tcpdump rc %d, no line with Flags [R and %s: %s" %
                   (f, r.returncode, want, (r.stdout + r.stderr)[-300:]))
    else:
        print("DIAG\t%s: %d packets; %s" % (os.path.basename(f), len(r.stdout.splitlines()), hit[-1]))
out(forged and not bad, "tcpdump -r reads each capture and shows its RST (same seq, same sender)", bad)
bad = []
for i, e in enumerate(forged):
    f = e.get("evidence", "")
    o = os.path.join(tmp, "offline-%d.json" % i)
    r = subprocess.run([rstguard, "-r", f, "-e", o], capture_output=True, text=True, timeout=30)
    again = []
    if r.returncode == 0:
        again = [x for x in map(json.loads, open(o)) if x.get("event_type") == "rst" and
                 x["rst"]["seq"] == e["rst"]["seq"] and x["src_port"] == e["src_port"] and
                 not x["rst"].get("revised")]
    if (len(again) != 1 or not again[0]["rst"]["forged"] or again[0]["rst"]["cause"] != e["rst"]["cause"] or
            again[0]["verdict"] != e["verdict"] or again[0]["rst"].get("midstream")):
        bad.append("%s: rc %d, live %s/%s/%s, offline %s" % (f, r.returncode, e["rst"]["cause"], e["verdict"],
                   e["rst"]["evidence"], [(x["rst"]["cause"], x["verdict"], x["rst"]["evidence"]) for x in again]))
    else:
        print("DIAG\tlive %s %s, offline %s %s" % (e["rst"]["cause"], e["rst"]["evidence"], again[0]["rst"]["cause"],
                                                   again[0]["rst"]["evidence"]))
out(forged and not bad, "rstguard -r on each capture alone: the same RST forged, same cause and verdict, not mid-stream", bad)
EOF

# ev_counters: the daemon's last "evidence: ..." counter line into EV_W EV_S EV_E EV_R.
ev_counters() {
	local line
	line=$(grep 'info: evidence: written' "$RG_DAEMON_LOG" | tail -n 1)
	EV_LINE=${line#*info: }
	EV_W=$(sed -n 's/.*written \([0-9]*\),.*/\1/p' <<<"$line")
	EV_S=$(sed -n 's/.*skipped (rate or size) \([0-9]*\),.*/\1/p' <<<"$line")
	EV_E=$(sed -n 's/.*lost to write errors \([0-9]*\),.*/\1/p' <<<"$line")
	EV_R=$(sed -n 's/.*old removed \([0-9]*\) bytes.*/\1/p' <<<"$line")
}

# dir_ok DIR: every file in DIR is a capture tcpdump reads whole; sets DIR_FILES, DIR_BYTES.
dir_ok() {
	local f rc=0
	DIR_FILES=0
	DIR_BYTES=0
	for f in "$1"/*; do
		[ -e "$f" ] || continue
		DIR_FILES=$((DIR_FILES + 1))
		DIR_BYTES=$((DIR_BYTES + $(stat -c %s "$f")))
		if ! tcpdump -nn -r "$f" >/dev/null 2>"$RG_TMP/tcpdump.err" || grep -qi 'truncated' "$RG_TMP/tcpdump.err"; then
			rg_diag "$f: $(head -c 300 "$RG_TMP/tcpdump.err")"
			rc=1
		fi
	done
	return $rc
}

# flood PORT: the keep-open server and the flooder (one TAP point).
flood() {
	local port=$1 sent
	rg_app_serve "keep-$port" "$RG_SERVER" serve --mode keep-open --hold 30 --bind "$RG_SERVER4" --port "$port" ||
		rg_diag "keep-open server on $port not ready"
	timeout 90 ip netns exec "$RG_CLIENT" "$RG_PY" "$RG_TMP/flood.py" "$RG_SERVER4" "$port" "$N_FLOOD" \
		"$RG_IF_CLIENT" >"$RG_TMP/flood-$port.json" 2>"$RG_TMP/flood-$port.err"
	sent=$(rg_json_field "$RG_TMP/flood-$port.json" sent)
	if [ "$(rg_json_field "$RG_TMP/flood-$port.json" ok)" = true ] && [ "$sent" = "$N_FLOOD" ]; then
		rg_pass "$port: the flooder sent $N_FLOOD forged RSTs on one connection, which lived on"
	else
		rg_fail "the flooder sent $N_FLOOD forged RSTs on one connection" \
			"$(cat "$RG_TMP/flood-$port.json" 2>/dev/null)" "$(tail -n 5 "$RG_TMP/flood-$port.err")"
	fi
	rg_kill_all 2>/dev/null || true
}

# ---- A: injected RSTs, their captures, read back

EVDIR=$RG_TMP/captures/evidence   # its parent exists, it does not: rstguard creates it
mkdir -p "$RG_TMP/captures"
EV=$RG_TMP/events-a.json
RG_DIAG_EVENTS=$EV
cat >"$RG_TMP/a.conf" <<EOF
evidence = { dir = "$EVDIR"; packets = 4096; };
EOF
rg_daemon_up "A: rstguard (detect, evidence.dir) binds queue $RG_QUEUE_NUM" -m detect -e "$EV" -c "$RG_TMP/a.conf"

PORT=5300
for prof in bare-ttl gfw2006; do
	PORT=$((PORT + 1))
	rg_app_serve "srv-$prof" "$RG_SERVER" slow-serve --bind "$RG_SERVER4" --port "$PORT" --delay 0.4 \
		--bytes "$BYTES" || rg_diag "server $prof not ready"
	rg_inject_start "inj-$prof" "$PORT" "$prof" || rg_diag "injector $prof not ready"
	rg_app "cli-$prof" "$RG_CLIENT" fetch --to "$RG_SERVER4" --port "$PORT" --bytes "$BYTES" --expect reset
	rg_wait_app "inj-$prof" 45
	rg_wait_app "srv-$prof" 15
	n=$(rg_inject_count "inj-$prof")
	if [ "$n" -gt 0 ]; then
		rg_pass "A: the $prof injector sent $n RST(s)"
	else
		rg_fail "A: the $prof injector sent its RSTs"
		rg_app_diag "inj-$prof"
	fi
done
sleep 0.5
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "A: SIGTERM: exit status 0"
rg_check_events "$EV"
rg_events_show "$EV" rst
timeout 120 "$RG_PY" "$RG_TMP/evcheck.py" "$EV" "$RSTGUARD" "$RG_TMP" >"$RG_TMP/evcheck.out" 2>"$RG_TMP/evcheck.err"
n=0
while IFS=$'\t' read -r kind text; do
	case $kind in
	PASS) n=$((n + 1)); rg_pass "A: $text" ;;
	FAIL) n=$((n + 1)); rg_fail "A: $text" ;;
	DIAG) rg_diag "$text" ;;
	esac
done <"$RG_TMP/evcheck.out"
while [ "$n" -lt 4 ]; do
	n=$((n + 1))
	rg_fail "A: capture check $n was not printed" "$(tail -n 10 "$RG_TMP/evcheck.err")"
done
ev_counters
forged=$(rg_events_count "$EV" rst rst.forged=true)
if [ "$EV_W" = "$forged" ] && [ "$EV_E" = 0 ] && [ "$EV_S" = 0 ]; then
	rg_pass "A: counters: $EV_LINE"
else
	rg_fail "A: counters: written = $forged forged RSTs, no error, none skipped" "$EV_LINE"
fi

# ---- B: the size cap

EVDIR_B=$RG_TMP/captures-b
EV=$RG_TMP/events-b.json
RG_DIAG_EVENTS=$EV
cat >"$RG_TMP/b.conf" <<EOF
evidence = { dir = "$EVDIR_B"; max_bytes = $CAP; rate = 10000; };
EOF
rg_daemon_up "B: rstguard (evidence.max_bytes $CAP) binds queue $RG_QUEUE_NUM" -m detect -e "$EV" -c "$RG_TMP/b.conf"
flood 5400
sleep 0.5
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "B: SIGTERM: exit status 0"
rg_check_events "$EV"
forged=$(rg_events_count "$EV" rst rst.forged=true)
with=$(rg_events_count "$EV" rst rst.forged=true evidence?)
if [ "$forged" -ge "$N_FLOOD" ] && [ "$with" = "$forged" ]; then
	rg_pass "B: $forged forged rst events, each with a capture path"
else
	rg_fail "B: $N_FLOOD forged rst events, each with a capture path" "forged $forged, with a path $with"
fi
if dir_ok "$EVDIR_B" && [ "$DIR_BYTES" -le "$CAP" ] && [ "$DIR_FILES" -lt "$forged" ] && [ "$DIR_FILES" -gt 0 ]; then
	rg_pass "B: the directory holds $DIR_FILES whole captures, $DIR_BYTES bytes <= $CAP"
else
	rg_fail "B: the directory stays under $CAP bytes with whole captures only" \
		"files $DIR_FILES, bytes $DIR_BYTES, forged $forged"
fi
ev_counters
if [ "$EV_W" = "$forged" ] && [ "${EV_R:-0}" -gt 0 ] && [ "$EV_E" = 0 ] && [ "$EV_S" = 0 ]; then
	rg_pass "B: counters: $EV_LINE"
else
	rg_fail "B: counters: written $forged, old captures removed, no error, none skipped" "$EV_LINE"
fi

# ---- C: a full disk

SMALL=$RG_TMP/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=64k,mode=0755 rgevidence "$SMALL" || rg_bail "cannot mount a tmpfs"
unmount_small() { umount -l "$SMALL" 2>/dev/null; }
RG_CLEANUP_HOOK=unmount_small
EV=$RG_TMP/events-c.json
RG_DIAG_EVENTS=$EV
cat >"$RG_TMP/c.conf" <<EOF
evidence = { dir = "$SMALL/ev"; max_bytes = 2147483647; rate = 10000; };
EOF
rg_daemon_up "C: rstguard (evidence.dir on a 64 KiB tmpfs) binds queue $RG_QUEUE_NUM" -m detect -e "$EV" -c "$RG_TMP/c.conf"
flood 5500
sleep 0.5
rg_daemon_stop 5
rg_is "$RG_DAEMON_RC" 0 "C: SIGTERM: exit status 0"
forged=$(rg_events_count "$EV" rst rst.forged=true)
if [ "$forged" -ge "$N_FLOOD" ]; then
	rg_pass "C: every RST still judged and reported: $forged forged rst events"
else
	rg_fail "C: every RST still judged and reported" "forged rst events $forged, want >= $N_FLOOD"
fi
ev_counters
nlog=$(grep -c 'evidence: cannot write' "$RG_DAEMON_LOG")
if [ "${EV_E:-0}" -gt 0 ] && [ "$((EV_W + EV_E + EV_S))" = "$forged" ] && [ "$nlog" = 1 ]; then
	rg_pass "C: captures lost to the full disk counted ($EV_LINE), logged once"
else
	rg_fail "C: captures lost to the full disk counted and logged once" "$EV_LINE" "forged $forged, logged $nlog times"
fi
if dir_ok "$SMALL/ev" && [ "$DIR_FILES" = "$EV_W" ]; then
	rg_pass "C: $DIR_FILES whole captures on the full disk, no partial file"
else
	rg_fail "C: only whole captures on the full disk" "files $DIR_FILES, written $EV_W"
fi

# ---- D: an eviction's capture (evidence.evictions), offline: no network needed

EVDIR_D=$RG_TMP/captures-d
cat "$RG_SRCDIR/tests/fixtures/eviction.conf" >"$RG_TMP/d.conf"
echo "evidence = { dir = \"$EVDIR_D\"; evictions = true; };" >>"$RG_TMP/d.conf"
"$RSTGUARD" -r "$RG_SRCDIR/tests/fixtures/eviction.pcap" -c "$RG_TMP/d.conf" -e "$RG_TMP/events-d.json" \
	2>"$RG_TMP/d.err"
cap=$("$RG_PY" "$RG_EVQ" get "$RG_TMP/events-d.json" evidence 2>/dev/null | head -n 1)
n_ev=$(rg_events_count "$RG_TMP/events-d.json" eviction evidence?)
if [ "$n_ev" = 1 ] && [ -f "$cap" ] && tcpdump -nn -r "$cap" 2>/dev/null | tail -n 1 | grep -q 'Flags \[R\]'; then
	rg_pass "D: rstguard -r with evidence.evictions: the eviction event names a capture ending in the RST"
else
	rg_fail "D: the eviction event names a capture ending in the RST" "evictions with a path: $n_ev, path '$cap'" \
		"$(tail -n 3 "$RG_TMP/d.err")"
fi
"$RSTGUARD" -r "$cap" -c "$RG_SRCDIR/tests/fixtures/eviction.conf" -e "$RG_TMP/events-d2.json" 2>/dev/null
n_rst=$(rg_events_count "$RG_TMP/events-d2.json" rst rst.cause=idle_eviction)
n_evi=$(rg_events_count "$RG_TMP/events-d2.json" eviction)
if [ "$n_rst" = 1 ] && [ "$n_evi" = 1 ]; then
	rg_pass "D: rstguard -r on that capture alone finds the eviction again (rst cause idle_eviction)"
else
	rg_fail "D: rstguard -r on the capture finds the eviction again" "idle_eviction rsts $n_rst, evictions $n_evi"
fi
