#!/bin/bash
# nat_keepalive.sh: keepalive.sh through a masquerading gateway (issue 12): the gateway
# translates its clients to its outside address and ports 20000-29999, the load balancer beyond
# it forgets idle flows after 10 s, rstguard probes both sides (eviction.probe_side = "both").
# The probes keep the flows alive only if each leaves as rstguard saw the packets of the side
# it imitates (the client's inside tuple; the server's answers to the NAT port), and their
# answers, whichever address they carry, are taken out of the stream.
export RG_KA_NAT=1
exec bash "$(dirname "$0")/keepalive.sh" "$@"
