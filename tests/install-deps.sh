#!/bin/bash
# install-deps.sh: install what building rstguard and running its tests and demo need, from
# Debian's packages. Idempotent: packages already installed are not touched, and the package
# lists are refreshed (apt-get update) only when something is missing.
#   tests/install-deps.sh          install what is missing (needs root for that)
#   tests/install-deps.sh --check  only report what is missing (exit 1 if anything is)
set -u

PKGS=(
	# build
	build-essential autoconf automake libtool pkg-config
	libnetfilter-queue-dev libmnl-dev libnfnetlink-dev libconfig-dev
	# privilege drop (user = ...): keep CAP_NET_ADMIN and CAP_NET_RAW only
	libcap-ng-dev
	# the fast path (optional: configure builds without it): clang (below) and libbpf
	libbpf-dev
	# fuzzing (./configure --enable-fuzz, .ci/run): clang and its libFuzzer runtime
	# (libclang_rt.fuzzer-x86_64.a, which clang-14 only recommends)
	clang libclang-rt-14-dev
	# test network and traffic: namespaces, iptables NFQUEUE rules, sysctl, timeout, python tools
	iptables iproute2 procps coreutils psmisc python3 python3-scapy
	# metrics: the HTTP listener (libmicrohttpd), promtool and a Prometheus server for the tests
	libmicrohttpd-dev prometheus
	# benchmarks and debugging
	iperf3 libpcap-dev tcpdump ethtool
)

check_only=0
[ "${1:-}" = --check ] && check_only=1

missing=()
for p in "${PKGS[@]}"; do
	# "install ok installed" only: a removed package with its config left is "deinstall ...".
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi
echo "install-deps: missing: ${missing[*]}"
[ "$check_only" = 1 ] && exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root to install them (apt-get install ${missing[*]})" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Bounded: a stuck mirror must not hang a CI run forever.
timeout 600 apt-get update -q || { echo "install-deps: apt-get update failed" >&2; exit 1; }
timeout 1800 apt-get install -y -q --no-install-recommends "${missing[@]}" ||
	{ echo "install-deps: apt-get install failed" >&2; exit 1; }
echo "install-deps: installed ${missing[*]}"
