#!/bin/bash
# nat_keepalive6.sh: nat_keepalive.sh over IPv6 masquerade (ip6tables MASQUERADE to ports
# 20000-29999 in the gateway, the router's ip6tables load balancer beyond it).
export RG_KA_NAT=1 RG_KA_FAMILY=6
exec bash "$(dirname "$0")/keepalive.sh" "$@"
