#!/usr/bin/python3
"""mknfq.py: write the seed corpus of fuzz/fuzz_nfq.c (fuzz/corpus/nfq/): datagrams of the
NFQUEUE netlink socket built the way the kernel builds them (net/netfilter/nfnetlink_queue.c,
nfqnl_build_packet_message): an nlmsghdr of type NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, an
nfgenmsg, then the attributes NFQA_PACKET_HDR, NFQA_IFINDEX_INDEV, NFQA_HWADDR, NFQA_TIMESTAMP,
NFQA_PAYLOAD, NFQA_CAP_LEN (for GSO packets) and NFQA_SKB_INFO, each 4-byte aligned. The packets
are real ones: the IP packets of tests/fixtures/refused.pcap (a SYN and the RST answering it),
plus an IPv6 packet. Also: three messages in one datagram, an ack (NLMSG_ERROR 0), an error,
a message without a packet header, a truncated message. Run from the source tree:

    python3 fuzz/mknfq.py && python3 fuzz/mkcorpus.py   (the second lists the files)"""
import os
import struct

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(TOP, "fuzz", "corpus", "nfq")
NFQA_PACKET_HDR, NFQA_TIMESTAMP, NFQA_IFINDEX_INDEV = 1, 4, 5
NFQA_HWADDR, NFQA_PAYLOAD, NFQA_CAP_LEN, NFQA_SKB_INFO = 9, 10, 16, 17
NLMSG_ERROR = 2


def attr(t, payload):
    a = struct.pack("=HH", 4 + len(payload), t) + payload
    return a + b"\0" * (-len(a) % 4)


def packet_msg(pid, ip, family=2, caplen=None, ts=(1796500000, 123456), queue=0):
    proto = 0x0800 if family == 2 else 0x86DD
    body = struct.pack("!BBH", family, 0, queue)                       # nfgenmsg
    body += attr(NFQA_PACKET_HDR, struct.pack("!IHB", pid, proto, 0))  # id, hw_protocol, hook
    body += attr(NFQA_IFINDEX_INDEV, struct.pack("!I", 3))
    body += attr(NFQA_HWADDR, struct.pack("!HH", 6, 0) + bytes.fromhex("0200000001020000"))
    if ts:
        body += attr(NFQA_TIMESTAMP, struct.pack("!QQ", ts[0], ts[1]))
    body += attr(NFQA_PAYLOAD, ip)
    if caplen is not None:
        body += attr(NFQA_CAP_LEN, struct.pack("!I", caplen))
        body += attr(NFQA_SKB_INFO, struct.pack("!I", 2))              # NFQA_SKB_GSO
    hdr = struct.pack("=IHHII", 16 + len(body), (3 << 8) | 0, 0, 0, 0)
    return hdr + body


def read_pcap_ip(path):
    data = open(path, "rb").read()
    link = struct.unpack("<I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        out.append(frame[14:] if link == 1 else frame)
    return out


def ipv6_syn():
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, 5 << 4, 2, 64800, 0, 0)
    return struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + bytes(15) + b"\1" + bytes(15) + b"\2" + tcp


def main():
    os.makedirs(OUT, exist_ok=True)
    ips = read_pcap_ip(os.path.join(TOP, "tests", "fixtures", "refused.pcap"))
    seeds = {}
    seeds["seed-syn"] = packet_msg(1, ips[0])
    seeds["seed-rst"] = packet_msg(2, ips[1] if len(ips) > 1 else ips[0])
    seeds["seed-ipv6"] = packet_msg(3, ipv6_syn(), family=10)
    seeds["seed-gso"] = packet_msg(4, ips[0], caplen=64000, ts=None)
    seeds["seed-three"] = b"".join(packet_msg(10 + i, ip) for i, ip in enumerate(ips[:3]))
    ack = struct.pack("=IHHII", 36, NLMSG_ERROR, 0, 7, 0) + struct.pack("=i", 0) + struct.pack("=IHHII", 16, 0x0302, 5, 7, 0)
    seeds["seed-ack"] = ack
    seeds["seed-error"] = struct.pack("=IHHII", 36, NLMSG_ERROR, 0, 8, 0) + struct.pack("=i", -2) + struct.pack("=IHHII", 16, 0x0301, 5, 8, 0)
    nohdr = struct.pack("!BBH", 2, 0, 0) + attr(NFQA_PAYLOAD, ips[0])
    seeds["seed-no-packet-hdr"] = struct.pack("=IHHII", 16 + len(nohdr), 0x0300, 0, 0, 0) + nohdr
    seeds["seed-truncated"] = packet_msg(5, ips[0])[:50]
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
