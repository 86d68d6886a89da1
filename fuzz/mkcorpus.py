#!/usr/bin/python3
"""mkcorpus.py: regenerate the seed corpora of fuzz/corpus/ from the project's fixtures, and
fuzz/corpus.am (the list of corpus files for the distribution). Run from the source tree:

    python3 fuzz/mkcorpus.py

Seeds (files named seed-*; regressions found by fuzzing are added by hand as crash-* and are
kept): offline: the captures of tests/fixtures/ and some of tests/fixtures/synth/, and one
capture rewritten by tests/lib/pcaptool.py into the other link types and pcapng; packet: the
distinct IP packets of the small captures; engine: each small capture as a packet sequence
(fuzz/fuzz_engine.c's input format) in several configurations; config: conf/rstguard.conf, the
fixtures' configurations and a few hand-written ones (@include, errors)."""
import os
import struct
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(TOP, "fuzz", "corpus")
FIX = os.path.join(TOP, "tests", "fixtures")
SYNTH = ["gfw_type1", "handshake_inject", "late_race", "lb_idle_rst", "oow_inject", "signed_rst",
         "v6_abort", "linux_active_reset"]
SMALL = ["client_abort", "eviction", "inject_burst", "inject_ttl", "refused", "refused6",
         "server_abort", "unread_data"]


def read_pcap(path):
    """(linktype, [(ts_us, frame)]) of a classic little-endian microsecond pcap."""
    data = open(path, "rb").read()
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xa1b2c3d4, path
    off, recs = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        recs.append((sec * 1000000 + usec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype, recs


def ip_of(linktype, frame):
    if linktype == 1:
        off = 12
        etype = struct.unpack(">H", frame[off:off + 2])[0]
        while etype in (0x8100, 0x88a8):
            off += 4
            etype = struct.unpack(">H", frame[off:off + 2])[0]
        return frame[off + 2:] if etype in (0x0800, 0x86dd) else None
    if linktype == 101:
        return frame
    return None


def write(target, name, blob):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def clock_step(delta_us):
    ms = delta_us // 1000
    if ms < 200:
        return ms
    return min(252, 199 + max(1, (ms + 2500) // 5000))


def engine_input(cfg0, cfg1, recs):
    out = bytearray([cfg0, cfg1])
    prev = recs[0][0] if recs else 0
    for ts, pkt in recs:
        out.append(clock_step(ts - prev))
        out += struct.pack(">H", len(pkt)) + pkt
        prev = ts
    return bytes(out)


def main():
    for target in ("offline", "packet", "engine", "config"):
        d = os.path.join(OUT, target)
        if os.path.isdir(d):
            for n in os.listdir(d):
                if n.startswith("seed-"):
                    os.unlink(os.path.join(d, n))

    # offline
    for n in SMALL:
        write("offline", "seed-%s.pcap" % n, open(os.path.join(FIX, n + ".pcap"), "rb").read())
    for n in SYNTH:
        write("offline", "seed-synth-%s.pcap" % n, open(os.path.join(FIX, "synth", n + ".pcap"), "rb").read())
    write("offline", "seed-nflog-real.pcap", open(os.path.join(FIX, "linktypes", "nflog.pcap"), "rb").read())
    variants = [("vlan", ["vlan", "--tag", "88a8:200", "--tag", "8100:100"]), ("sll", ["sll"]),
                ("sll2", ["sll2"]), ("raw", ["raw"]), ("null", ["null"]), ("nflog", ["nflog", "--batch"]),
                ("nflog-big", ["nflog", "--big", "--range", "60"]), ("ppp", ["ppp", "--linktype", "9"]),
                ("ppp-hdlc", ["ppp", "--linktype", "50", "--framing", "hdlc"]),
                ("cisco", ["ppp", "--linktype", "104", "--framing", "cisco"]), ("pppoe", ["pppoe", "--ethernet"]),
                ("pcapng", ["mixed", "--sections", "2"]), ("pcapng-big", ["mixed", "--big"])]
    src = os.path.join(FIX, "inject_ttl.pcap")
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in variants:
            out = os.path.join(tmp, name)
            cmd = [sys.executable, os.path.join(TOP, "tests", "lib", "pcaptool.py"), args[0], src, out] + args[1:]
            subprocess.run(cmd, check=True)
            write("offline", "seed-inject_ttl-%s" % name, open(out, "rb").read())

    # packet and engine
    seen = set()
    for n in SMALL:
        lt, recs = read_pcap(os.path.join(FIX, n + ".pcap"))
        pkts = [(ts, ip_of(lt, fr)) for ts, fr in recs]
        pkts = [(ts, p) for ts, p in pkts if p]
        for i, (_, p) in enumerate(pkts):
            if p not in seen:
                seen.add(p)
                write("packet", "seed-%s-%02d" % (n, i), p)
        # enforce holding everything; detect; enforce + confirmation on the batch path; keepalive
        for tag, c0, c1 in (("enforce", 0x09, 0x0f), ("detect", 0x00, 0x0f),
                            ("confirm", 0x83, 0x03), ("keepalive", 0x15, 0x00)):
            write("engine", "seed-%s-%s" % (n, tag), engine_input(c0, c1, pkts))
    # a reload to detect mode in the middle of a held RST's wait
    lt, recs = read_pcap(os.path.join(FIX, "inject_ttl.pcap"))
    pkts = [(ts, ip_of(lt, fr)) for ts, fr in recs]
    blob = engine_input(0x09, 0x0f, [(ts, p) for ts, p in pkts if p])
    write("engine", "seed-inject_ttl-reload", blob + bytes([254, 0, 0]))

    # config
    write("config", "seed-rstguard.conf", open(os.path.join(TOP, "conf", "rstguard.conf"), "rb").read())
    write("config", "seed-eviction.conf", open(os.path.join(FIX, "eviction.conf"), "rb").read())
    write("config", "seed-include.conf",
          b'mode = "enforce";\n@include "@@"\nflows = { max = 4096; };\n%%\n'
          b'detector = { threshold = 3; hold_max_ms = 500; };\npolicy = { protect = [ "10.0.0.0/8", "2001:db8::/32" ]; };\n')
    write("config", "seed-include-loop.conf", b'@include "@@"\n%%\n@include "@@"\n')
    write("config", "seed-errors.conf",
          b'mode = "sometimes";\nqueue = { num = 70000; count = "x"; bogus = 1; };\n'
          b'events = { rate = 10; burst = 1; };\neviction = { keepalive = true; };\n')
    write("config", "seed-overrides.conf",
          b'eviction = { idle_timeout = 300; keepalive = true; probe_side = "both";\n'
          b'  overrides = ( { network = "192.0.2.0/24"; port = 443; idle_timeout = 60; },\n'
          b'                { network = "2001:db8::/48"; idle_timeout = 120; } ); };\n'
          b'policy = { exempt = [ "198.51.100.7/32" ]; exempt_ports = [ 22, 179 ];\n'
          b'  actions = { injected = "drop"; invalid_seq = "accept"; }; };\n')

    # control: request lines, valid and not (the socket's own seeds; see fuzz_control.c)
    for name, line in [
            ("seed-status", b'{"command":"status"}'),
            ("seed-stats", b'{"command":"stats"}'),
            ("seed-flows", b'{"command":"flows","ip":"198.18.1.2","port":443,"state":"established","limit":10}'),
            ("seed-flows-v6", b'{ "command" : "flows", "ip" : "2001:db8:1::2", "limit" : 1000 }'),
            ("seed-flows-bad", b'{"command":"flows","ip":"999.1.1.1","port":0,"limit":1001}'),
            ("seed-timeouts", b'{"command":"timeouts"}'),
            ("seed-reload", b'{"command":"reload"}'),
            ("seed-metrics", b'{"command":"metrics"}'),
            ("seed-unknown", b'{"command":"shutdown","now":true}'),
            ("seed-escapes", b'{"command":"st\\u0061ts","x":"a\\"b\\\\c\\/\\n","n":-12,"f":false}'),
            ("seed-nested", b'{"command":{"a":[1,2,{"b":null}]}}'),
            ("seed-garbage", b'{"command":"stats"}\x00\xff{')]:
        write("control", name, line)

    # corpus.am
    files = []
    for target in sorted(os.listdir(OUT)):
        for n in sorted(os.listdir(os.path.join(OUT, target))):
            files.append("fuzz/corpus/%s/%s" % (target, n))
    with open(os.path.join(TOP, "fuzz", "corpus.am"), "w") as f:
        f.write("# Generated by fuzz/mkcorpus.py: the corpus files of fuzz/corpus/ for EXTRA_DIST.\n")
        f.write("FUZZ_CORPUS = \\\n")
        f.write(" \\\n".join("\t" + x for x in files) + "\n")


if __name__ == "__main__":
    main()
