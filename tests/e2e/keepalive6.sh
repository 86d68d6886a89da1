#!/bin/bash
# keepalive6.sh: keepalive.sh over IPv6 (2001:db8:1::2 -> 2001:db8:3::2 through the gateway's
# ip6tables NFQUEUE rule and the router's ip6tables load balancer; the override names
# 2001:db8:3::/64): probes keep idle flows alive, the answers never reach the client, the
# control flow is forgotten by the LB.
export RG_KA_FAMILY=6
exec bash "$(dirname "$0")/keepalive.sh" "$@"
