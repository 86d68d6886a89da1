#!/usr/bin/python3
"""inject: an on-path RST injector for rstguard's end-to-end tests (scapy).

Run it inside the ROUTER namespace of tests/lib/netns.sh, listening on the router's gw-facing
interface (g0), e.g.
    ip netns exec rgtNNN-r /usr/bin/python3 inject.py --iface g0 --port 5101 \
        --profile gfw2006 --ready-file /tmp/x/inj.ready

It watches the interface (both directions: the client's packets come in from gw, the server's
go out to gw) for a client segment to --port whose payload contains --marker (the trigger, by
default b"GET /forbidden"), then at once sends forged RSTs computed from the trigger, the way an
on-path censor does: toward the client seq = trigger.ack (the client's RCV.NXT) and
ack = trigger.seq + len; toward the server seq = trigger.seq + len and ack = trigger.ack.

Placement: the RSTs are sent at layer 2 out of g0 to the gateway's MAC (learnt from the
trigger's source MAC), whatever their IP destination. So both directions cross the gateway:
one toward the client is forwarded by gw to the client; one toward the server is forwarded by gw
back to the router and on to the server. The gateway, where rstguard runs, sees every injected
RST exactly once. The router does not forward (so does not decrement) its own packets: a TTL
set here is the TTL the gateway sees. Server packets are sniffed here as they leave toward gw,
i.e. after the router's decrement, which is also what the gateway sees.

Profiles (IPv4 and IPv6; the IP ID and DF parts apply to IPv4 only):
  bare-ttl     one bare RST (flags R, no ACK) toward the client, seq = trigger.ack, TTL 40
               (--ttl), DF clear, IP ID scapy's default
  gfw2006      three RST/ACKs toward the client at seq +0, +1460, +4380 (Clayton et al. 2006),
               scapy defaults (TTL 64, IP ID 1, DF clear)
  mimic        one RST/ACK toward the client with the server's TTL (as gw sees it), DF and
               window, but an IP ID that is not the server's counter (random, far from it)
  both-ends    one RST/ACK toward the client (claiming the server) and one toward the server
               (claiming the client), scapy defaults
  --after-ack  (any profile) inject only after the server acknowledged the trigger, so that the
               server stays silent after the RST until its application answers
  mimic-exact  one RST/ACK toward the client copying everything of the server's, IP ID = the
               server's last + 2 (a plausible next value whether or not the server's ACK of
               the trigger passed the gateway first; + 1 would repeat that ACK's IP ID):
               nothing in the packet gives it away; only the server talking on after it (the
               race) can

  handshake    (trigger: the client's SYN to --port, not the marker) one RST/ACK toward the
               client "from the server" answering the SYN before the real SYN-ACK: ack = the
               client's ISN (not ISN + 1), IP ID, DF and window copied from the SYN, TTL 60
               (the middlebox of Zeek's rst-inject-rae.pcap)
  gfw-type1    one bare RST toward the client (GFW type I, S&P 2025): IP ID 0, DF clear, TTL
               4 above the server's as seen, window 8192, seq = the client's RCV.NXT
  signed       a copy of the server's RST/ACK (TTL, DF, window, IP ID + 2) carrying a TCP-MD5
               option on a connection that uses none: the client discards it, the server
               talks on
  oow          one RST/ACK toward the client 10 MiB beyond its RCV.NXT (out of window, ignored),
               TTL 6 below the server's, DF clear

Scapy's default IP ID is 1. When 1 happens to be a plausible next value of the claimed sender's
IP ID counter (it lies within 1100 after the last one sniffed, a 1.7 % chance), the IP ID would
look genuine by luck and the test would flake; then the IP ID is moved half the space away
and the packet's record says "ipid_adjusted": true.

Output (stdout), JSON lines: one {"injected": {...}} per packet sent (family, direction
toclient/toserver, src, sport, dst, dport, seq, ack, flags, ttl, ipid, df, window, t_ms after
the trigger), then a final {"cmd": "inject", "ok": ..., "profile": ..., "trigger": {...},
"server": {...}, "client": {...}, "count": N}. Exit 0 when the trigger came and everything
was sent, 1 when the trigger never came within --timeout, 2 on usage errors.
"""

import argparse
import json
import os
import random
import select
import sys
import time

PROFILES = ("bare-ttl", "gfw2006", "mimic", "both-ends", "mimic-exact", "handshake", "gfw-type1",
            "signed", "oow")
SCAPY_DEFAULT_IPID = 1
PLAUSIBLE_IPID_SPAN = 1100  # rstguard takes up to 1024 ahead of the last IP ID as genuine


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def write_ready(path):
    if not path:
        return
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.replace(path + ".tmp", path)


def ipid_far_from(last, want):
    """want, unless it looks like the next value of a counter that was at last."""
    if last is None:
        return want, False
    if (want - last) & 0xFFFF <= PLAUSIBLE_IPID_SPAN:
        return (last + 0x8000) & 0xFFFF, True
    return want, False


def random_ipid_far_from(last, rnd):
    while True:
        v = rnd.randrange(1, 0x10000)
        if last is None or 2048 < (v - last) & 0xFFFF < 0x10000 - 2048:
            return v


class Side:
    """What was sniffed of one sender (its latest non-RST packet)."""

    def __init__(self):
        self.pkts = 0
        self.ttl = None
        self.ipid = None
        self.df = None
        self.win = None

    def learn(self, ip, tcp, v6):
        self.pkts += 1
        self.ttl = ip.hlim if v6 else ip.ttl
        if not v6:
            self.ipid = ip.id
            self.df = bool(int(ip.flags) & 0x2)
        self.win = tcp.window

    def as_dict(self):
        return {"pkts": self.pkts, "ttl": self.ttl, "ipid": self.ipid, "df": self.df,
                "win": self.win}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iface", default="g0", help="the router's gw-facing interface")
    ap.add_argument("--port", type=int, required=True, help="the server's port")
    ap.add_argument("--marker", default="GET /forbidden", help="trigger payload substring")
    ap.add_argument("--profile", choices=PROFILES, required=True)
    ap.add_argument("--ttl", type=int, default=40, help="bare-ttl: TTL / hop limit")
    ap.add_argument("--timeout", type=float, default=20.0, help="give up waiting for the trigger")
    ap.add_argument("--ready-file", default="", help="written once the interface is watched")
    ap.add_argument("--seed", type=int, default=None, help="random IP IDs (mimic)")
    ap.add_argument("--after-ack", action="store_true",
                    help="inject only once the server acknowledged the trigger (at most 1 s "
                         "later), so that the server has nothing left to send until it answers")
    args = ap.parse_args(argv)

    # scapy is slow to import: the ready file tells the test when we listen.
    from scapy.all import IP, IPv6, TCP, Ether, conf, get_if_hwaddr  # noqa: E402

    conf.verb = 0
    rnd = random.Random(args.seed)
    marker = args.marker.encode()
    my_mac = get_if_hwaddr(args.iface)
    listen = conf.L2listen(iface=args.iface)
    out = conf.L2socket(iface=args.iface)
    server, client = Side(), Side()
    write_ready(args.ready_file)

    trigger = None
    deadline = time.monotonic() + args.timeout
    while trigger is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([listen], [], [], min(left, 0.5))
        if not r:
            continue
        pkt = listen.recv()
        if pkt is None or TCP not in pkt:
            continue
        v6 = IPv6 in pkt
        if not v6 and IP not in pkt:
            continue
        ip = pkt[IPv6] if v6 else pkt[IP]
        tcp = pkt[TCP]
        if int(tcp.flags) & 0x04:  # RSTs (ours among them) teach nothing
            continue
        if tcp.sport == args.port:
            server.learn(ip, tcp, v6)
        elif tcp.dport == args.port:
            payload = bytes(tcp.payload)
            if args.profile == "handshake":
                if int(tcp.flags) & 0x12 == 0x02:   # the client's SYN
                    trigger = (pkt, ip, tcp, v6, 0, time.monotonic())
                continue
            if marker in payload:
                trigger = (pkt, ip, tcp, v6, len(payload), time.monotonic())
            else:
                client.learn(ip, tcp, v6)
    if trigger is None:
        emit({"cmd": "inject", "ok": False, "profile": args.profile,
              "error": "no trigger within %gs" % args.timeout,
              "server": server.as_dict(), "client": client.as_dict()})
        return 1

    pkt, ip, tcp, v6, plen, t0 = trigger
    if args.after_ack:
        # The server's (delayed) ACK of the trigger: after it the server is silent until its
        # application answers, and it is the server's latest packet (the IP ID to mimic).
        want = (tcp.seq + plen) & 0xFFFFFFFF
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            r, _, _ = select.select([listen], [], [], 0.05)
            if not r:
                continue
            q = listen.recv()
            if q is None or TCP not in q or q[TCP].sport != args.port:
                continue
            qip = q[IPv6] if IPv6 in q else q[IP]
            if int(q[TCP].flags) & 0x04:
                continue
            server.learn(qip, q[TCP], IPv6 in q)
            if ((q[TCP].ack - want) & 0xFFFFFFFF) < 0x80000000:
                break
    # The gateway is the other end of the link: the trigger's sender, or (a client beyond the
    # router, talking to a port the gateway forwards) its receiver.
    gw_mac = pkt[Ether].dst if pkt[Ether].src == my_mac else pkt[Ether].src
    cli, srv = ip.src, ip.dst
    cport = tcp.sport
    to_client_seq = tcp.ack                        # the client's RCV.NXT
    to_client_ack = (tcp.seq + plen) & 0xFFFFFFFF  # the client's SND.NXT
    packets = []

    def build(direction, seq, ack, flags, ttl=64, ipid=None, df=False, window=8192,
              adjust_from=None, options=None):
        """One RST; ipid None = scapy's default, moved away from adjust_from if plausible."""
        rec = {"family": 6 if v6 else 4, "direction": direction, "flags": flags,
               "seq": seq & 0xFFFFFFFF, "ack": ack & 0xFFFFFFFF, "ttl": ttl, "window": window}
        if direction == "toclient":
            rec.update(src=srv, sport=args.port, dst=cli, dport=cport)
        else:
            rec.update(src=cli, sport=cport, dst=srv, dport=args.port)
        if v6:
            l3 = IPv6(src=rec["src"], dst=rec["dst"], hlim=ttl)
        else:
            adjusted = False
            if ipid is None:
                ipid, adjusted = ipid_far_from(adjust_from, SCAPY_DEFAULT_IPID)
            rec.update(ipid=ipid, df=df, ipid_adjusted=adjusted)
            l3 = IP(src=rec["src"], dst=rec["dst"], ttl=ttl, id=ipid, flags="DF" if df else 0)
        l4 = TCP(sport=rec["sport"], dport=rec["dport"], seq=rec["seq"], ack=rec["ack"],
                 flags=flags, window=window, options=options or [])
        if options:
            rec["options"] = [o[0] for o in options]
        packets.append((Ether(src=my_mac, dst=gw_mac) / l3 / l4, rec))

    p = args.profile
    if p == "bare-ttl":
        build("toclient", to_client_seq, 0, "R", ttl=args.ttl, adjust_from=server.ipid)
    elif p == "gfw2006":
        for off in (0, 1460, 4380):
            build("toclient", to_client_seq + off, to_client_ack, "RA", adjust_from=server.ipid)
    elif p == "mimic":
        build("toclient", to_client_seq, to_client_ack, "RA", ttl=server.ttl,
              ipid=None if v6 else random_ipid_far_from(server.ipid, rnd),
              df=bool(server.df), window=server.win)
    elif p == "both-ends":
        build("toclient", to_client_seq, to_client_ack, "RA", adjust_from=server.ipid)
        build("toserver", to_client_ack, to_client_seq, "RA", adjust_from=client.ipid)
    elif p == "mimic-exact":
        build("toclient", to_client_seq, to_client_ack, "RA", ttl=server.ttl,
              ipid=None if v6 else ((server.ipid or 0) + 2) & 0xFFFF,
              df=bool(server.df), window=server.win)
    elif p == "handshake":
        build("toclient", 0, tcp.seq, "RA", ttl=60, ipid=None if v6 else ip.id,
              df=(not v6) and bool(int(ip.flags) & 0x2), window=tcp.window)
    elif p == "gfw-type1":
        build("toclient", to_client_seq, 0, "R", ttl=min((server.ttl or 60) + 4, 255),
              ipid=None if v6 else 0, df=False, window=8192)
    elif p == "signed":
        build("toclient", to_client_seq, to_client_ack, "RA", ttl=server.ttl,
              ipid=None if v6 else ((server.ipid or 0) + 2) & 0xFFFF,
              df=bool(server.df), window=server.win,
              options=[("NOP", None), ("NOP", None), ("MD5", bytes(range(16)))])
    elif p == "oow":
        build("toclient", to_client_seq + 10 * 1024 * 1024, to_client_ack, "RA",
              ttl=max((server.ttl or 64) - 6, 1), df=False, adjust_from=server.ipid)

    for frame, rec in packets:
        out.send(frame)
        rec["t_ms"] = round((time.monotonic() - t0) * 1000, 2)
        emit({"injected": rec})
    emit({"cmd": "inject", "ok": True, "profile": p, "count": len(packets),
          "trigger": {"src": cli, "sport": cport, "dst": srv, "dport": args.port,
                      "seq": tcp.seq, "ack": tcp.ack, "len": plen},
          "server": server.as_dict(), "client": client.as_dict()})
    listen.close()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
