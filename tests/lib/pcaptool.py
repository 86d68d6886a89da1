#!/usr/bin/python3
"""pcaptool: rewrite pcap captures for rstguard's offline tests (pure Python, no scapy).

    pcaptool.py info IN                      JSON: link type, packets, snaplen, precision
    pcaptool.py vlan IN OUT [--tag TPID:VID]...   Ethernet: push VLAN tags (outermost first;
                                             default one 802.1Q tag, 0x8100:100)
    pcaptool.py sll IN OUT                   Ethernet -> Linux cooked v1 (DLT_LINUX_SLL, 113)
    pcaptool.py sll2 IN OUT                  Ethernet -> Linux cooked v2 (DLT_LINUX_SLL2, 276)
    pcaptool.py raw IN OUT                   Ethernet -> raw IP (DLT_RAW, 101)
    pcaptool.py null IN OUT [--loop]         Ethernet -> BSD loopback (DLT_NULL 0, host-order
                                             family; --loop: DLT_LOOP 108, network order)
    pcaptool.py pcapng IN OUT                the same packets as pcapng (one interface)
    pcaptool.py nano IN OUT                  nanosecond-resolution pcap (magic a1b23c4d)
    pcaptool.py swap IN OUT                  opposite byte order (a big-endian file here)
    pcaptool.py cut IN OUT --skip N [--count M]   drop the first N packets (mid-stream start)
    pcaptool.py snaplen IN OUT --snaplen N   cut every packet to N captured bytes (the original
                                             length is kept, as tcpdump -s N does)
    pcaptool.py truncate IN OUT --record K [--in-header]
                                             the file ends inside record K (1-based): in its
                                             data, or with --in-header inside its 16-byte header
    pcaptool.py corrupt IN OUT --magic       a file whose magic number is wrong
    pcaptool.py corrupt IN OUT --caplen K    record K claims an impossible captured length
    pcaptool.py linktype IN OUT --set N      the same records under another link type number
    pcaptool.py stable EVENTS                rstguard's events reduced to the stable fields of
                                             rst and eviction events, one JSON object a line
                                             (the format of tests/fixtures/*.expected)

Reading accepts classic pcap in either byte order and either time resolution; writing produces
a little-endian microsecond pcap unless asked otherwise (nano, swap, pcapng).
"""

import json
import struct
import sys

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D

DLT_NULL = 0
DLT_EN10MB = 1
DLT_RAW = 101
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_LINUX_SLL2 = 276

AF_INET = 2
AF_INET6 = 10  # Linux's value: DLT_NULL carries the writer's own AF_ numbers


class Capture:
    def __init__(self, linktype=DLT_EN10MB, snaplen=262144, nano=False, big=False):
        self.linktype = linktype
        self.snaplen = snaplen
        self.nano = nano
        self.big = big
        self.version = (2, 4)
        self.records = []  # (sec, frac, origlen, data): frac in us or ns as self.nano says


def read_pcap(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 24:
        raise ValueError("%s: too short for a pcap header" % path)
    for endian in ("<", ">"):
        magic = struct.unpack(endian + "I", buf[:4])[0]
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise ValueError("%s: not a classic pcap file (magic %s)" % (path, buf[:4].hex()))
    vmaj, vmin, _tz, _sig, snaplen, linktype = struct.unpack(endian + "HHiIII", buf[4:24])
    cap = Capture(linktype & 0x0FFFFFFF, snaplen, magic == MAGIC_NS, endian == ">")
    cap.version = (vmaj, vmin)
    off = 24
    n = 0
    while off < len(buf):
        n += 1
        if off + 16 > len(buf):
            raise ValueError("%s: record %d: truncated header" % (path, n))
        sec, frac, incl, orig = struct.unpack(endian + "IIII", buf[off:off + 16])
        off += 16
        if off + incl > len(buf):
            raise ValueError("%s: record %d: truncated data" % (path, n))
        cap.records.append((sec, frac, orig, buf[off:off + incl]))
        off += incl
    return cap


def pcap_bytes(cap):
    e = ">" if cap.big else "<"
    out = [struct.pack(e + "IHHiIII", MAGIC_NS if cap.nano else MAGIC_US, cap.version[0],
                       cap.version[1], 0, 0, cap.snaplen, cap.linktype)]
    for sec, frac, orig, data in cap.records:
        out.append(struct.pack(e + "IIII", sec, frac, len(data), orig))
        out.append(data)
    return b"".join(out)


def write_pcap(path, cap):
    with open(path, "wb") as f:
        f.write(pcap_bytes(cap))


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def pcapng_bytes(cap):
    """SHB, one IDB (with if_tsresol for nanoseconds), one EPB per packet."""
    def block(btype, body):
        body = pad4(body)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    opts = b""
    if cap.nano:
        opts = struct.pack("<HH", 9, 1) + pad4(b"\x09") + struct.pack("<HH", 0, 0)
    out.append(block(1, struct.pack("<HHI", cap.linktype, 0, cap.snaplen) + opts))
    scale = 1000000000 if cap.nano else 1000000
    for sec, frac, orig, data in cap.records:
        ts = sec * scale + frac
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
                         + pad4(data)))
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# link-layer rewrites (from Ethernet)

def need_ethernet(cap):
    if cap.linktype != DLT_EN10MB:
        raise ValueError("input must be Ethernet (link type 1), not %d" % cap.linktype)


def eth_split(frame):
    """(dst, src, ethertype, payload) of an Ethernet frame, VLAN tags skipped."""
    dst, src = frame[0:6], frame[6:12]
    off = 12
    etype = struct.unpack("!H", frame[off:off + 2])[0]
    while etype in (0x8100, 0x88A8, 0x9100) and off + 6 <= len(frame):
        off += 4
        etype = struct.unpack("!H", frame[off:off + 2])[0]
    return dst, src, etype, frame[off + 2:]


def map_frames(cap, linktype, fn, grow=0):
    """Rewrite each frame with fn(frame) -> new frame; the original length follows the change."""
    out = Capture(linktype, cap.snaplen + grow, cap.nano, cap.big)
    for sec, frac, orig, data in cap.records:
        new = fn(data)
        out.records.append((sec, frac, max(orig + len(new) - len(data), len(new)), new))
    return out


def do_vlan(cap, tags):
    need_ethernet(cap)
    hdr = b"".join(struct.pack("!HH", tpid, vid & 0x0FFF) for tpid, vid in tags)
    return map_frames(cap, DLT_EN10MB, lambda f: f[:12] + hdr + f[12:], 4 * len(tags))


def do_sll(cap, v2):
    need_ethernet(cap)
    # Frames from the MAC seen first are "received" (0); the others "sent by us" (4), as a
    # capture on one interface of a router would show them.
    first_src = cap.records[0][3][6:12] if cap.records else b""

    def conv(f):
        _dst, src, etype, payload = eth_split(f)
        ptype = 0 if src == first_src else 4
        if v2:
            # protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address
            return struct.pack("!HHIHBB", etype, 0, 2, 1, ptype, 6) + src + b"\0\0" + payload
        return struct.pack("!HHH", ptype, 1, 6) + src + b"\0\0" + struct.pack("!H", etype) + payload

    return map_frames(cap, DLT_LINUX_SLL2 if v2 else DLT_LINUX_SLL, conv, 6)


def do_raw(cap):
    need_ethernet(cap)
    return map_frames(cap, DLT_RAW, lambda f: eth_split(f)[3])


def do_null(cap, loop):
    need_ethernet(cap)

    def conv(f):
        payload = eth_split(f)[3]
        fam = AF_INET6 if payload and payload[0] >> 4 == 6 else AF_INET
        return struct.pack("!I" if loop else "<I", fam) + payload

    return map_frames(cap, DLT_LOOP if loop else DLT_NULL, conv)


# ---------------------------------------------------------------------------------------------
# events

def stable(path):
    """The stable fields of rst and eviction events, as tests/fixtures/*.expected has them."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            ev = json.loads(line)
            et = ev.get("event_type")
            if et not in ("rst", "eviction"):
                continue
            out = {k: ev.get(k) for k in ("event_type", "src_ip", "src_port", "dest_ip", "dest_port")}
            if et == "rst":
                r = ev.get("rst", {})
                out.update(cause=r.get("cause"), forged=r.get("forged"),
                           evidence=r.get("evidence"), verdict=ev.get("verdict"))
                if r.get("revised"):
                    out.update(revised=True)
            else:
                out.update(kind=ev.get("eviction", {}).get("kind"))
            lines.append(json.dumps(out, separators=(", ", ": ")))
    return lines


# ---------------------------------------------------------------------------------------------

def usage():
    sys.stderr.write(__doc__)
    sys.exit(2)


def opt(args, name, default=None, conv=str):
    if name in args:
        i = args.index(name)
        if i + 1 >= len(args):
            usage()
        v = args[i + 1]
        del args[i:i + 2]
        return conv(v)
    return default


def flag(args, name):
    if name in args:
        args.remove(name)
        return True
    return False


def main(argv):
    if not argv:
        usage()
    cmd, args = argv[0], list(argv[1:])
    if cmd == "stable":
        if len(args) != 1:
            usage()
        for line in stable(args[0]):
            print(line)
        return 0
    if cmd == "info":
        cap = read_pcap(args[0])
        print(json.dumps({"linktype": cap.linktype, "packets": len(cap.records),
                          "snaplen": cap.snaplen, "nano": cap.nano, "big_endian": cap.big}))
        return 0
    tags = []
    while "--tag" in args:
        t = opt(args, "--tag")
        tpid, _, vid = t.partition(":")
        tags.append((int(tpid, 16), int(vid or "0")))
    skip = opt(args, "--skip", 0, int)
    count = opt(args, "--count", None, int)
    snap = opt(args, "--snaplen", None, int)
    record = opt(args, "--record", None, int)
    caplen_rec = opt(args, "--caplen", None, int)
    linktype = opt(args, "--set", None, int)
    in_header = flag(args, "--in-header")
    magic = flag(args, "--magic")
    loop = flag(args, "--loop")
    if len(args) != 2:
        usage()
    src, dst = args
    cap = read_pcap(src)

    if cmd == "vlan":
        out = do_vlan(cap, tags or [(0x8100, 100)])
    elif cmd in ("sll", "sll2"):
        out = do_sll(cap, cmd == "sll2")
    elif cmd == "raw":
        out = do_raw(cap)
    elif cmd == "null":
        out = do_null(cap, loop)
    elif cmd == "nano":
        out = Capture(cap.linktype, cap.snaplen, True, cap.big)
        out.records = [(s, fr if cap.nano else fr * 1000, o, d) for s, fr, o, d in cap.records]
    elif cmd == "swap":
        out = cap
        out.big = not cap.big
    elif cmd == "cut":
        out = Capture(cap.linktype, cap.snaplen, cap.nano, cap.big)
        out.records = cap.records[skip:] if count is None else cap.records[skip:skip + count]
    elif cmd == "snaplen":
        if snap is None:
            usage()
        out = Capture(cap.linktype, snap, cap.nano, cap.big)
        out.records = [(s, fr, o, d[:snap]) for s, fr, o, d in cap.records]
    elif cmd == "linktype":
        if linktype is None:
            usage()
        out = cap
        out.linktype = linktype
    elif cmd == "pcapng":
        with open(dst, "wb") as f:
            f.write(pcapng_bytes(cap))
        return 0
    elif cmd == "truncate":
        if record is None or not 1 <= record <= len(cap.records):
            sys.exit("pcaptool: --record must name one of the %d records" % len(cap.records))
        whole = pcap_bytes(cap)
        off = 24
        for s, fr, o, d in cap.records[:record - 1]:
            off += 16 + len(d)
        data_len = len(cap.records[record - 1][3])
        end = off + 7 if in_header else off + 16 + max(1, data_len // 2)
        with open(dst, "wb") as f:
            f.write(whole[:end])
        return 0
    elif cmd == "corrupt":
        whole = bytearray(pcap_bytes(cap))
        if magic:
            whole[0:4] = b"\x0b\xad\xca\xfe"
        elif caplen_rec is not None:
            off = 24
            for s, fr, o, d in cap.records[:caplen_rec - 1]:
                off += 16 + len(d)
            struct.pack_into(">I" if cap.big else "<I", whole, off + 8, 0x7FFFFFF0)
        else:
            usage()
        with open(dst, "wb") as f:
            f.write(whole)
        return 0
    else:
        usage()
    write_pcap(dst, out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, OSError) as e:
        sys.stderr.write("pcaptool: %s\n" % e)
        sys.exit(1)
