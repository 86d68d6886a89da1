#!/usr/bin/python3
"""hostile_pkts.py: craft malformed and odd TCP/IP packets and send them at layer 2.

    hostile_pkts.py --iface IF --dst-mac MAC --src4 A --dst4 B --src6 A6 --dst6 B6 --port P
                    [--list]

Sent as Ethernet frames (sendp), so nothing in the sender's kernel fixes lengths or checksums.
Every packet goes to PORT on the destination, where nothing listens: the far end answers with
at most a RST, which the sender's kernel ignores, so a run is the same every time. Prints one
JSON line: {"sent": N, "by_group": {...}}; --list prints each packet's group and summary instead.

Groups (issue 14, "hostile traffic through the live daemon"):
  ip_trunc    IPv4 headers cut short, IHL below 5 or beyond the packet, total length beyond or
              below the frame (most are dropped by the gateway's kernel before the queue)
  ip_opts     IHL 15 with 40 bytes of options (NOPs, EOL, a record-route)
  tcp_trunc   the TCP header cut short (1, 10, 19 bytes)
  doff        data offset 0..4 (below the header), 6..15 beyond the segment
  tcp_opts    options of length 0, 1, 255; MSS of length 2; a timestamp of length 9; SACK
              of 3 bytes; EOL followed by junk; an option running past the header; MD5 / AO
  flags       every value of the flags byte (256), plus the reserved bits and NS
  csum        valid segments (SYN, RST, RST+ACK, data) with a wrong TCP checksum; a wrong IPv4
              header checksum
  frag4       IPv4 fragments of TCP: 8-byte fragments, a first fragment shorter than the TCP
              header, overlapping fragments, a lone middle fragment, offset-1 fragment
  ip6_ext     IPv6: hop-by-hop, routing (types 0, 2, 4 with segments left 0), destination options,
              chains of 2, 10 and 40 extension headers, fragment headers (atomic, real fragments,
              first fragment without the TCP header), an unknown next header, No Next Header,
              truncated extension headers, payload length beyond the frame
  flags6      every flag combination over IPv6 (256)
"""
import argparse
import json
import sys

from scapy.all import (  # noqa: E402
    Ether, IP, IPv6, TCP, Raw, IPOption_NOP, IPOption_EOL, IPOption_RR,
    IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
    IPv6ExtHdrSegmentRouting, fragment, sendp, conf)


def build(a):
    out = []          # (group, packet or bytes above Ethernet, ethertype)

    def add(group, pkt, etype=None):
        out.append((group, pkt, etype))

    sp = 40000
    dp = a.port

    def tcp(flags="S", **kw):
        nonlocal sp
        sp += 1
        return TCP(sport=sp, dport=dp, flags=flags, seq=1000 + sp, **kw)

    ip4 = lambda **kw: IP(src=a.src4, dst=a.dst4, **kw)          # noqa: E731
    ip6 = lambda **kw: IPv6(src=a.src6, dst=a.dst6, **kw)        # noqa: E731

    # --- IPv4 headers
    good = bytes(ip4() / tcp())
    for cut in (1, 10, 19):
        add("ip_trunc", good[:cut], 0x0800)
    for ihl in (0, 1, 4):
        b = bytearray(bytes(ip4() / tcp()))
        b[0] = 0x40 | ihl
        add("ip_trunc", bytes(b), 0x0800)
    # IHL 15 but only 20 bytes of header before TCP: the header swallows the TCP header
    b = bytearray(bytes(ip4() / tcp()))
    b[0] = 0x4f
    add("ip_trunc", bytes(IP(bytes(b))), 0x0800)  # checksum left as computed for IHL 5
    b2 = IP(bytes(b))
    del b2.chksum
    add("ip_trunc", bytes(b2), 0x0800)
    # total length beyond and below the frame
    add("ip_trunc", bytes(ip4(len=200) / tcp()), 0x0800)
    add("ip_trunc", bytes(ip4(len=30) / tcp()), 0x0800)
    add("ip_trunc", bytes(ip4(len=40) / tcp() / Raw(b"x" * 30)), 0x0800)  # trailing bytes
    add("ip_trunc", bytes(ip4(version=6) / tcp()), 0x0800)                # version 6 in IPv4
    # --- IPv4 options
    add("ip_opts", ip4(options=[IPOption_NOP()] * 40) / tcp())
    add("ip_opts", ip4(options=[IPOption_EOL()] + [IPOption_NOP()] * 39) / tcp())
    add("ip_opts", ip4(options=[IPOption_RR(routers=["198.18.0.1"] * 9)]) / tcp())

    # --- TCP header cut short
    for cut in (1, 10, 19):
        add("tcp_trunc", ip4(proto=6) / Raw(bytes(tcp("SA"))[:cut]))
    for cut in (1, 10, 19):
        b = ip4(proto=6) / Raw(bytes(tcp("R"))[:cut])
        add("tcp_trunc", b)
    # --- data offset
    for doff in list(range(0, 5)) + list(range(6, 16)):
        t = tcp("A")
        t.dataofs = doff
        add("doff", ip4() / t)
        t2 = tcp("R")
        t2.dataofs = doff
        add("doff", ip4() / t2 / Raw(b"y" * 12))

    # --- TCP options, raw bytes (padded to a multiple of 4 by scapy when given as bytes)
    raw_opts = [
        b"\x02\x00\x05\xb4",                   # MSS, length 0
        b"\x02\x01\x05\xb4",                   # MSS, length 1
        b"\x02\x02\x00\x00",                   # MSS, length 2 (no value)
        b"\x08\x00" + b"\x00" * 10,            # timestamp, length 0
        b"\x08\x01" + b"\x00" * 10,            # timestamp, length 1
        b"\x08\x09" + b"\x00" * 10,            # timestamp, length 9
        b"\x08\xff" + b"\x00" * 10,            # timestamp, length 255
        b"\xfe\xff" + b"\x00" * 2,             # experimental, length 255
        b"\x05\x03\x00\x00",                   # SACK, 3 bytes
        b"\x05\x0a" + b"\x00" * 6,             # SACK, length 10 (not 2 + 8n)
        b"\x04\x00\x00\x00",                   # SACK permitted, length 0
        b"\x03\x00\x07\x00",                   # window scale, length 0
        b"\x03\x03\xff\x00",                   # window scale 255
        b"\x00\xff\xff\xff",                   # EOL then junk
        b"\x01" * 39 + b"\x02",                # NOPs then an MSS kind with no length byte
        b"\x13\x12" + b"\x00" * 16,            # TCP-MD5
        b"\x13\xff" + b"\x00" * 2,             # TCP-MD5, length 255
        b"\x1d\x04\x00\x00",                   # TCP-AO, too short
        b"\x1e\x00\x00\x00",                   # MPTCP, length 0
        b"\xff" * 40,                          # all 255
        b"\x00" * 40,                          # all EOL
    ]
    for ro in raw_opts:
        for fl in ("S", "R", "PA"):
            t = tcp(fl)
            t.options = []
            pkt = bytearray(bytes(ip4() / t))
            # splice the raw options in: data offset and lengths recomputed by scapy
            opts = ro + b"\x00" * (-len(ro) % 4)
            opts = opts[:40]
            b = IP(bytes(pkt))
            b[TCP].remove_payload()
            b = ip4() / TCP(sport=b[TCP].sport, dport=dp, flags=fl, seq=b[TCP].seq,
                            dataofs=5 + len(opts) // 4) / Raw(opts)
            # Raw after TCP with dataofs > 5: the bytes are the options
            add("tcp_opts", b)

    # --- every flag combination (IPv4 and IPv6); ack and seq fixed per port
    for f in range(256):
        add("flags", ip4() / tcp(flags=f, ack=7, window=512) / Raw(b"z" * (f % 3)))
    for f in range(8):  # the reserved bits and NS (scapy's flags field is 9 bits)
        t = tcp(flags="A", ack=7)
        t.reserved = f
        add("flags", ip4() / t)
        t6 = tcp(flags=0x100 | (f & 0xff), ack=7)
        add("flags", ip4() / t6)
    for f in range(256):
        add("flags6", ip6() / tcp(flags=f, ack=7, window=512))

    # --- bad checksums
    for fl in ("S", "R", "RA", "PA"):
        add("csum", ip4() / tcp(fl, ack=9, chksum=0x1234) / Raw(b"c" * (4 if fl == "PA" else 0)))
        add("csum", ip6() / tcp(fl, ack=9, chksum=0x1234))
    add("csum", ip4(chksum=0x1234) / tcp("R"))
    add("csum", ip4(chksum=0) / tcp("S"))

    # --- IPv4 fragments of TCP
    whole = ip4(id=4242, flags=0) / tcp("PA", ack=5) / Raw(b"F" * 64)
    for fr in fragment(whole, fragsize=8):
        add("frag4", fr)
    whole2 = ip4(id=4243) / tcp("R") / Raw(b"G" * 32)
    b = bytes(whole2)
    # first fragment with only 8 bytes of the TCP header, then the rest
    f1 = ip4(id=4243, flags="MF", frag=0, proto=6) / Raw(b[20:28])
    f2 = ip4(id=4243, flags=0, frag=1, proto=6) / Raw(b[28:])
    add("frag4", f1)
    add("frag4", f2)
    # overlapping: offset-1 fragment rewriting the ports/flags
    add("frag4", ip4(id=4244, flags="MF", frag=0, proto=6) / Raw(bytes(tcp("S"))[:16]))
    add("frag4", ip4(id=4244, flags=0, frag=1, proto=6) / Raw(bytes(tcp("R"))[8:20] + b"H" * 4))
    # a lone middle fragment and a lone last fragment
    add("frag4", ip4(id=4245, flags="MF", frag=3, proto=6) / Raw(b"M" * 16))
    add("frag4", ip4(id=4246, flags=0, frag=100, proto=6) / Raw(b"L" * 16))
    # DF + MF, a zero-length fragment
    add("frag4", ip4(id=4247, flags="DF+MF", frag=0, proto=6) / Raw(bytes(tcp("S"))))
    add("frag4", ip4(id=4248, flags="MF", frag=0, proto=6))

    # --- IPv6 extension headers
    add("ip6_ext", ip6() / IPv6ExtHdrHopByHop() / tcp())
    add("ip6_ext", ip6() / IPv6ExtHdrHopByHop(options=[]) / IPv6ExtHdrDestOpt() / tcp("R"))
    for rtype in (0, 2, 4):
        rh = IPv6ExtHdrRouting(type=rtype, segleft=0, addresses=[a.dst6])
        if rtype == 4:
            rh = IPv6ExtHdrSegmentRouting(segleft=0, addresses=[a.dst6])
        add("ip6_ext", ip6() / rh / tcp())
        add("ip6_ext", ip6() / rh / tcp("RA", ack=3))
    add("ip6_ext", ip6() / IPv6ExtHdrDestOpt() / tcp())
    for n in (2, 10, 40):
        p = ip6()
        for _ in range(n):
            p = p / IPv6ExtHdrDestOpt()
        add("ip6_ext", p / tcp("S"))
        add("ip6_ext", p / tcp("R"))
    # fragment headers
    add("ip6_ext", ip6() / IPv6ExtHdrFragment(id=77, m=0, offset=0) / tcp())      # atomic
    w6 = ip6() / IPv6ExtHdrFragment(id=78) / tcp("PA", ack=1) / Raw(b"S" * 200)
    from scapy.all import fragment6
    for fr in fragment6(w6, 120):
        add("ip6_ext", fr)
    add("ip6_ext", ip6() / IPv6ExtHdrFragment(id=79, m=1, offset=0, nh=6) / Raw(b"\x9c\x40"))
    add("ip6_ext", ip6() / IPv6ExtHdrFragment(id=80, m=0, offset=5, nh=6) / Raw(b"T" * 16))
    # unknown next header, No Next Header, truncated chains, payload length beyond the frame
    add("ip6_ext", ip6(nh=253) / Raw(bytes(tcp())))
    add("ip6_ext", ip6(nh=59) / Raw(bytes(tcp())))
    add("ip6_ext", ip6(nh=60) / Raw(b"\x06\x05\x00\x00"))                        # DO len 48, 4 bytes
    add("ip6_ext", ip6(nh=0) / Raw(b"\x06"))                                      # HBH, 1 byte
    add("ip6_ext", ip6(nh=60) / Raw(b"\x06\x00" + b"\x01\x04\x00\x00\x00\x00") / Raw(bytes(tcp())[:10]))
    add("ip6_ext", ip6(plen=400) / tcp())
    add("ip6_ext", ip6(plen=5) / tcp())
    add("ip6_ext", ip6(nh=6) / Raw(b""))
    return out


def frame(a, pkt, etype):
    src = a.src_mac
    if isinstance(pkt, (bytes, bytearray)):
        return Ether(dst=a.dst_mac, src=src, type=etype) / Raw(bytes(pkt))
    return Ether(dst=a.dst_mac, src=src) / pkt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--src-mac", default=None)
    ap.add_argument("--src4", required=True)
    ap.add_argument("--dst4", required=True)
    ap.add_argument("--src6", required=True)
    ap.add_argument("--dst6", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    conf.verb = 0
    if a.src_mac is None:
        from scapy.all import get_if_hwaddr
        a.src_mac = get_if_hwaddr(a.iface)
    pkts = build(a)
    by = {}
    frames = []
    for g, p, e in pkts:
        by[g] = by.get(g, 0) + 1
        frames.append(frame(a, p, e))
    if a.list:
        for (g, _, _), f in zip(pkts, frames):
            print(g, f.summary())
        return 0
    sendp(frames, iface=a.iface, verbose=False)
    print(json.dumps({"sent": len(frames), "by_group": by}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
