# shellcheck shell=bash
# nsbase.sh: namespace and process primitives shared by the end-to-end tests (tests/lib/netns.sh)
# and the network benchmark (bench/run.sh). No state, no traps, no TAP: each function does one
# bounded thing. Every external program that could block runs under `timeout`.

# rg__alive PID: running and not a zombie.
rg__alive() {
	local st
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	# The state follows the command name in parentheses (which may hold spaces).
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# rg__wait_gone PID TENTHS: bounded wait for a process to exit.
rg__wait_gone() {
	local i
	for i in $(seq 1 "$2"); do
		rg__alive "$1" || return 0
		sleep 0.1
	done
	! rg__alive "$1"
}

# rg__sysctl NS KEY=VALUE...
rg__sysctl() {
	local ns=$1
	shift
	timeout 5 ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# rg__veth NS_A DEV_A NS_B DEV_B: a veth pair created inside NS_A with its peer born in NS_B
# (never in the root namespace, not even for a moment).
rg__veth() {
	timeout 5 ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
}

# rg__wait_link NS DEV: bounded wait (5 s) until the link has carrier (LOWER_UP).
rg__wait_link() {
	local i
	for i in $(seq 1 50); do
		if timeout 5 ip -n "$1" -o link show dev "$2" 2>/dev/null | grep -q 'LOWER_UP'; then
			return 0
		fi
		sleep 0.1
	done
	echo "link $2 in $1 did not come up" >&2
	return 1
}

# rg__ns_kill_and_delete NS: kill what runs in the namespace (TERM, then KILL), delete it (which
# deletes its veths).
rg__ns_kill_and_delete() {
	local ns=$1 pids i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(timeout 5 ip netns pids "$ns" 2>/dev/null)
		[ -z "$pids" ] && break
		if [ "$i" -le 5 ]; then
			# shellcheck disable=SC2086 # a list of PIDs
			kill -TERM $pids 2>/dev/null
		else
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null
		fi
		sleep 0.1
	done
	timeout 10 ip netns del "$ns" 2>/dev/null
}

# rg__reap_stale TAG: remove the namespaces "<TAG><PID>-*" whose PID no longer exists (left by a
# run killed before its trap ran); TAG is rgt for the tests, rgb for the benchmark.
rg__reap_stale() {
	local tag=$1 ns pid
	for ns in $(timeout 5 ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"$tag"[0-9]*-*) ;;
		*) continue ;;
		esac
		pid=${ns#"$tag"}
		pid=${pid%%-*}
		if [ "$pid" != "$$" ] && ! kill -0 "$pid" 2>/dev/null; then
			rg__ns_kill_and_delete "$ns"
		fi
	done
}
