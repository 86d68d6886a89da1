# shellcheck shell=bash
# rstcase.sh: helpers shared by the scenario tests forged.sh and causes.sh (source after
# netns.sh): the results file that tests/confusion.py reads, rstcheck.py's checks as TAP
# points, the on-path injector in the router, servers of tcpapp.py's scenario subcommands,
# and the daemon's counters from its log.
#
# Results: every scenario appends one JSON line per RST to a results file:
#   $RG_RESULTS           when set: that file;
#   $RG_RESULTS_DIR       when set: a new file $RG_RESULTS_DIR/TEST-DATE-PID.jsonl per run;
#   otherwise             $RG_TMP/results.jsonl (gone with the temp dir unless RG_KEEP_TMP=1).
# At the end a test prints tests/confusion.py's table of its own results as TAP comments.

RG_RSTCHECK=$RG_LIB/rstcheck.py
RG_INJECT=$RG_LIB/inject.py
RG_CONFUSION=$RG_SRCDIR/tests/confusion.py
RG_TEST_NAME=$(basename "$0" .sh)
RG_RESULTS_FILE=""

# rg_results_init: choose RG_RESULTS_FILE (see above). Needs RG_TMP (after rg_net_up).
rg_results_init() {
	if [ -n "${RG_RESULTS:-}" ]; then
		RG_RESULTS_FILE=$RG_RESULTS
		mkdir -p "$(dirname "$RG_RESULTS_FILE")"
	elif [ -n "${RG_RESULTS_DIR:-}" ]; then
		mkdir -p "$RG_RESULTS_DIR" || rg_bail "cannot create RG_RESULTS_DIR $RG_RESULTS_DIR"
		RG_RESULTS_FILE=$RG_RESULTS_DIR/$RG_TEST_NAME-$(date +%Y%m%dT%H%M%S)-$$.jsonl
	else
		RG_RESULTS_FILE=$RG_TMP/results.jsonl
	fi
	: >>"$RG_RESULTS_FILE" || rg_bail "cannot write the results file $RG_RESULTS_FILE"
	rg_diag "scenario results: $RG_RESULTS_FILE"
}

# rg_results_table: tests/confusion.py over this run's results, as TAP comments.
rg_results_table() {
	timeout 30 "$RG_PY" "$RG_CONFUSION" "$RG_RESULTS_FILE" 2>&1 | rg_diag
}

RG__CK_KIND=""
RG__CK_DESC=""
RG__CK_DIAG=()
RG__CK_N=0

rg__check_flush() {
	[ -z "$RG__CK_KIND" ] && return 0
	RG__CK_N=$((RG__CK_N + 1))
	if [ "$RG__CK_KIND" = PASS ]; then
		rg_pass "$RG__CK_DESC"
	else
		rg_fail "$RG__CK_DESC" "${RG__CK_DIAG[@]}"
	fi
	RG__CK_KIND=""
	RG__CK_DIAG=()
}

# rg_check NPOINTS PREFIX SUBCOMMAND ARGS...: run tests/lib/rstcheck.py SUBCOMMAND ARGS (with
# the results file and test name added) and print its checks as exactly NPOINTS TAP points,
# each description prefixed with PREFIX (points it failed to print are failures).
rg_check() {
	local want=$1 prefix=$2 kind text
	shift 2
	timeout 60 "$RG_PY" "$RG_RSTCHECK" "$@" --test "$RG_TEST_NAME" --results "$RG_RESULTS_FILE" \
		>"$RG_TMP/rstcheck.out" 2>"$RG_TMP/rstcheck.err"
	RG__CK_N=0
	RG__CK_KIND=""
	RG__CK_DIAG=()
	while IFS=$'\t' read -r kind text; do
		case $kind in
		PASS | FAIL)
			rg__check_flush
			if [ "$RG__CK_N" -ge "$want" ]; then
				RG__CK_KIND=""
				continue
			fi
			RG__CK_KIND=$kind
			RG__CK_DESC="$prefix$text"
			;;
		DIAG) [ -n "$RG__CK_KIND" ] && RG__CK_DIAG+=("$text") ;;
		esac
	done <"$RG_TMP/rstcheck.out"
	rg__check_flush
	while [ "$RG__CK_N" -lt "$want" ]; do
		RG__CK_N=$((RG__CK_N + 1))
		rg_fail "${prefix}rstcheck check $RG__CK_N of $want was not printed" \
			"$(tail -n 15 "$RG_TMP/rstcheck.err" 2>/dev/null)"
	done
}

# rg_inject_start NAME PORT PROFILE [INJECT ARGS...]: tests/lib/inject.py in the router,
# watching its gw-facing interface for the trigger to PORT; waits (bounded, 15 s: scapy is
# slow to import) until it listens. Its output lands in $RG_TMP/NAME.json; wait for it with
# rg_wait_app NAME.
rg_inject_start() {
	local name=$1 port=$2 profile=$3
	shift 3
	rm -f "$RG_TMP/$name.ready"
	timeout 60 ip netns exec "$RG_ROUTER" "$RG_PY" "$RG_INJECT" --iface "$RG_IF_ROUTER_G" \
		--port "$port" --profile "$profile" --timeout 40 --ready-file "$RG_TMP/$name.ready" "$@" \
		>"$RG_TMP/$name.json" 2>"$RG_TMP/$name.err" </dev/null &
	RG_PIDS["$name"]=$!
	for _ in $(seq 1 150); do
		[ -s "$RG_TMP/$name.ready" ] && return 0
		rg__alive "${RG_PIDS[$name]}" || break
		sleep 0.1
	done
	rg_diag "injector $name ($profile, port $port) never became ready"
	rg_diag_file "$RG_TMP/$name.err" "$name stderr" 10
	return 1
}

# rg_inject_count NAME: how many RSTs the injector sent.
rg_inject_count() {
	grep -c '"injected"' "$RG_TMP/$1.json" 2>/dev/null || echo 0
}

# rg_app_serve NAME NS SUBCOMMAND ARGS...: a tcpapp.py server subcommand that takes
# --ready-file, in the background; waits (bounded, 5 s) until it listens.
rg_app_serve() {
	local name=$1 ns=$2
	shift 2
	rm -f "$RG_TMP/$name.ready"
	rg_bg "$name" "$ns" "$@" --ready-file "$RG_TMP/$name.ready"
	for _ in $(seq 1 50); do
		[ -s "$RG_TMP/$name.ready" ] && return 0
		rg__alive "${RG_PIDS[$name]}" || break
		sleep 0.1
	done
	rg_diag "server $name ($*) never became ready"
	rg_diag_file "$RG_TMP/$name.err" "$name stderr" 10
	return 1
}

# rg_daemon_counters: from the daemon's log, the counters it logged at its last exit:
# RG_CNT_RST, RG_CNT_FORGED, RG_CNT_DROPPED, RG_CNT_WOULD, RG_CNT_HELD, RG_CNT_RACES and
# RG_CNT_LINE (the whole line); empty when the line is missing. Only the part of the log
# after the last start is read.
# shellcheck disable=SC2034 # the RG_CNT_* are read by the tests
rg_daemon_counters() {
	local line
	line=$(awk '/^==== .* start: /{buf=""} /rstguard: info: rst [0-9]+:/{buf=$0} END{print buf}' \
		"$RG_DAEMON_LOG" 2>/dev/null)
	RG_CNT_LINE=${line#rstguard: info: }
	RG_CNT_RST=$(sed -n 's/.*info: rst \([0-9]*\):.*/\1/p' <<<"$line")
	RG_CNT_FORGED=$(sed -n 's/.*; forged \([0-9]*\),.*/\1/p' <<<"$line")
	RG_CNT_DROPPED=$(sed -n 's/.*, dropped \([0-9]*\),.*/\1/p' <<<"$line")
	RG_CNT_WOULD=$(sed -n 's/.*, would drop \([0-9]*\).*/\1/p' <<<"$line")
	RG_CNT_HELD=$(sed -n 's/.*, held \([0-9]*\).*/\1/p' <<<"$line")
	RG_CNT_RACES=$(sed -n 's/.*, races \([0-9]*\).*/\1/p' <<<"$line")
}

# rg_json_field FILE FIELD: FIELD of the last JSON line of FILE that has it (e.g. a tcpapp or
# injector result).
rg_json_field() {
	"$RG_PY" - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
val = ""
try:
    for line in open(sys.argv[1]):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        cur = obj
        for part in sys.argv[2].split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is not None:
            val = cur
except OSError:
    pass
print(json.dumps(val) if isinstance(val, (dict, list, bool)) else val)
EOF
}
