#!/bin/bash
# ipv6.sh: detect_basic.sh's scenario over IPv6 (2001:db8:1::2 -> 2001:db8:3::2 through the
# gateway's ip6tables NFQUEUE rule): a bulk transfer arrives intact, a refused connection and
# SO_LINGER 0 aborts from each side give exactly one rst event each, with the right cause and
# the IPv6 endpoints as rstguard prints them; SIGTERM: exit 0, flow events for every connection.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/basic.sh
. "$RG_LIB/basic.sh"

rg_basic_test 6
