#!/bin/bash
# demo.sh: see rstguard work in under a minute, from a fresh clone, as root:
#     tests/demo.sh   (as root)
# It installs what is missing (tests/install-deps.sh), builds rstguard in the source tree if it
# is missing or older than its sources, builds a throw-away test network of four network
# namespaces (client - gw - router - server, tests/lib/netns.sh), runs rstguard on the gateway in
# detect mode with its events printed here as they are written, and makes real traffic with a
# headline before each step: genuine RSTs, then an on-path injector's forged RST, flagged in
# detect mode and dropped after a restart in enforce mode (the transfer completes), then asks the
# running daemon for its counters and flows with rstguardctl. Everything lives in the namespaces and is deleted at the end, also
# on Ctrl-C or failure: nothing is left in the root namespace (no links, routes, rules, sysctls).
#
# Environment: RSTGUARD=/path/to/rstguard uses that binary and skips the build.
# shellcheck source-path=SCRIPTDIR
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
else
	B="" D="" N=""
fi
say() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
note() { printf '   %s%s%s\n' "$D" "$*" "$N"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root: it creates network namespaces and iptables rules inside them"

bash "$ROOT/tests/install-deps.sh" || die "could not install the dependencies"

# Build in the source tree, only when needed.
if [ -z "${RSTGUARD:-}" ]; then
	bin=$ROOT/src/rstguard
	if [ ! -x "$bin" ] || [ -n "$(find src configure.ac Makefile.am -newer "$bin" \( -name '*.[ch]' -o -name '*.ac' -o -name '*.am' \) 2>/dev/null | head -n 1)" ]; then
		say "building rstguard (autoreconf, configure, make)"
		blog=$(mktemp "${TMPDIR:-/tmp}/rstguard-build.XXXXXX")
		# build STEP...: run quietly, show the end of the output if it fails.
		build() {
			"$@" >>"$blog" 2>&1 && return 0
			tail -n 30 "$blog" >&2
			rm -f "$blog"
			die "'$*' failed"
		}
		if [ ! -f Makefile ]; then
			build autoreconf -fi
			build ./configure
		fi
		build make -j2
		rm -f "$blog"
	fi
	RSTGUARD=$bin
fi
RSTGUARDCTL=$(dirname "$RSTGUARD")/rstguardctl
[ -x "$RSTGUARDCTL" ] || die "rstguardctl not found next to $RSTGUARD"
export RSTGUARD RG_SRCDIR=$ROOT

# shellcheck source=lib/netns.sh
. "$ROOT/tests/lib/netns.sh"
# shellcheck source=lib/rstcase.sh
. "$ROOT/tests/lib/rstcase.sh"   # the on-path injector

START=$SECONDS
EV=""
shown=0

# wait_new_events N: wait (bounded) for at least $1 new events and a moment for more; they are
# already on the terminal (tee), this only paces the narration.
wait_new_events() {
	local want=$(($1 + shown))
	if ! rg_wait_events "$EV" "$want" 5 'event_type?'; then
		note "(expected an event within 5 s; none came)"
	fi
	sleep 0.2
	shown=$(rg_events_count "$EV" 'event_type?')
}

say "building the test network: client - gw - router - server (network namespaces ${RG_PREFIX}*)"
rg_require_root_net
rg_net_up || die "could not build the test network"
rg_queue_rule --queue-num "$RG_QUEUE_NUM" || die "iptables -j NFQUEUE does not work here"
note "client $RG_CLIENT4 / $RG_CLIENT6   server $RG_SERVER4 / $RG_SERVER6"
note "gw: iptables -t raw -A PREROUTING -p tcp -j NFQUEUE --queue-num $RG_QUEUE_NUM (and ip6tables)"

say "starting rstguard on the gateway: rstguard -m detect -e -   (events below are its stdout)"
EV=$RG_DAEMON_OUT
RG_DIAG_EVENTS=$EV
RG_DAEMON_TEE=1
rg_daemon_start -m detect -e - || die "rstguard did not start"
note "bound to queue $RG_QUEUE_NUM ($(rg_queue_line "$RG_QUEUE_NUM" | awk '{print "netlink port id " $2 ", copy range " $5 " bytes"}'))"

say "a normal transfer: 5 MB from client to server, closed with FINs (no RST, so no event)"
rg_serve bulk "$RG_SERVER" "$RG_SERVER4" 5001 bulk-sink || die "the server did not start"
if rg_app bulkc "$RG_CLIENT" bulk --to "$RG_SERVER4" --port 5001 --bytes 5000000; then
	note "client sent 5000000 bytes; the server got the same sha256 ($(rg_app_field bulkc mbit_s) Mbit/s)"
else
	note "the transfer failed: $(cat "$RG_TMP/bulkc.json")"
fi
rg_wait_app bulk 5

say "a connection to a closed port: the server refuses it (RST/ACK answering the SYN)"
rg_app refused "$RG_CLIENT" connect-refused --to "$RG_SERVER4" --port 5002
st=$?
wait_new_events 1
[ "$st" = 0 ] && note "client: connect() to $RG_SERVER4 port 5002 failed with ECONNREFUSED"

say "the server aborts a connection with SO_LINGER 0: a RST inside an established flow"
rg_serve abort "$RG_SERVER" "$RG_SERVER4" 5003 linger-abort || die "the server did not start"
rg_app abortc "$RG_CLIENT" expect-reset --to "$RG_SERVER4" --port 5003
st=$?
rg_wait_app abort 5
wait_new_events 1
[ "$st" = 0 ] && note "client: sent a request, recv() failed with ECONNRESET"

say "IPv6: the client connects to [$RG_SERVER6], gets its reply, then aborts (SO_LINGER 0)"
rg_serve v6 "$RG_SERVER" "$RG_SERVER6" 5004 expect-abort || die "the server did not start"
rg_app v6c "$RG_CLIENT" linger-abort-client --to "$RG_SERVER6" --port 5004
st=$?
rg_wait_app v6 5
st2=$?
wait_new_events 1
[ "$st" = 0 ] && note "client: request and reply over IPv6, then close() with SO_LINGER 0"
[ "$st2" = 0 ] && note "server: recv() failed with ECONNRESET"

# inject PORT: the server answers 200 kB 0.4 s after the request; an on-path injector in the
# router forges the server's RST (TTL 40, DF clear) the moment it sees "GET /forbidden".
inject() {
	rg_app_serve "slow$1" "$RG_SERVER" slow-serve --bind "$RG_SERVER4" --port "$1" --delay 0.4 \
		--bytes 200000 || die "the server did not start"
	rg_inject_start "inj$1" "$1" bare-ttl || die "the injector did not start"
	rg_app "fetch$1" "$RG_CLIENT" fetch --to "$RG_SERVER4" --port "$1" --bytes 200000 --expect "$2"
	local st=$?
	rg_wait_app "inj$1" 10
	rg_wait_app "slow$1" 10
	wait_new_events 2
	return $st
}

say "an on-path injector forges the server's RST (TTL 40, DF clear): flagged as forged"
if inject 5005 reset; then
	note "client: recv() failed with ECONNRESET (detect mode lets the forged RST through)"
fi
note "the event says forged, cause injected, the evidence (ttl far from the server's baseline,"
note "df, window_foreign), and would_drop: what enforce mode would do; then the client's stack"
note "answers the server's next segment with a genuine RST (closed_socket)"

say "restarting rstguard in enforce mode: rstguard -m enforce -e -"
rg_daemon_stop 5 >/dev/null
# Its control socket in the demo's temporary directory (the default, /run/rstguard/rstguard.sock,
# may belong to another rstguard on this machine).
SOCK=$RG_TMP/rstguard.sock
printf 'control = { socket = "%s"; };\n' "$SOCK" >"$RG_TMP/demo.conf"
rg_daemon_start -c "$RG_TMP/demo.conf" -m enforce -e - || die "rstguard did not start"

say "the same injection in enforce mode: the forged RST is dropped, the transfer completes"
if inject 5006 complete; then
	note "client: received all 200000 bytes (sha256 checked) and a normal FIN close"
else
	note "the transfer did not complete: $(cat "$RG_TMP/fetch5006.json")"
fi

say "asking the running daemon: rstguardctl stats (every counter, the kernel's queue counters too)"
for _ in $(seq 1 20); do [ -S "$SOCK" ] && break; sleep 0.1; done
timeout 10 "$RSTGUARDCTL" -S "$SOCK" stats | sed 's/^/     | /'
note "forged: detected 1, dropped 1: the injected RST of the enforce run (this daemon's counters)"

say "rstguardctl flows: the live table, most recent first, with each side's TTL / IP ID baselines"
timeout 10 "$RSTGUARDCTL" -S "$SOCK" flows --limit 10 | sed 's/^/     | /'
note "the forged RST claimed TTL 40 while the server's packets arrive with 63: that is the ttl signal"

say "stopping rstguard (SIGTERM): it reports the flows it still tracks"
flows_before=$(rg_events_count "$EV" flow)
if rg_daemon_stop 5; then
	note "rstguard exited with status 0"
else
	note "rstguard exit status: $RG_DAEMON_RC"
fi
rg_wait_events "$EV" $((flows_before + 1)) 3 flow || true
sleep 0.2
note "its log (stderr):"
sed 's/^/     | /' "$RG_DAEMON_LOG" | grep -v '^     | ====' | tail -n 12

say "tearing the network down"
rg_net_down
left=$(timeout 5 ip netns list | awk -v p="$RG_PREFIX" 'index($1, p) == 1')
if [ -z "$left" ]; then
	note "namespaces deleted; nothing was ever created in the root namespace"
else
	note "left over: $left"
fi
note "done in $((SECONDS - START)) s"
