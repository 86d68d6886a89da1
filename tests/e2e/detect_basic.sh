#!/bin/bash
# detect_basic.sh: rstguard in detect mode on the gateway, IPv4. Real sockets make a bulk
# transfer, a refused connection and SO_LINGER 0 aborts from each side; the traffic must be
# untouched and each RST must give exactly one rst event with the right cause and endpoints.
# Then SIGTERM: exit 0, queue unbound, flow events for every connection.
# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../lib/netns.sh
. "$(dirname "$0")/../lib/netns.sh"
# shellcheck source=../lib/basic.sh
. "$RG_LIB/basic.sh"

rg_basic_test 4
