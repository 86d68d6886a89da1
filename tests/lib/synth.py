#!/usr/bin/python3
"""synth: deterministic synthetic captures of documented RST behaviours, for rstguard.

    synth.py OUTDIR      write every tests/fixtures/synth/NAME.pcap into OUTDIR
    synth.py --list      print each fixture's name and a one-line description

Each fixture imitates, packet by packet, one behaviour documented elsewhere (the source is named
in the fixture's docstring and in tests/fixtures/synth/README.md): an injector's RST, or a genuine RST
of a stack whose IP ID / TTL / DF habits differ from Linux's. The files are Ethernet,
microsecond pcaps as tcpdump writes them on the gateway's client-facing interface:

  * the gateway sits between the clients (198.18.1.0/24, 2001:db8:1::/48) and the servers
    (198.18.3.0/24, 2001:db8:3::/48); client frames go client MAC -> gateway MAC, everything
    toward a client (server packets, injected packets) gateway MAC -> client MAC;
  * client packets have their TTL at origin (not yet forwarded); server packets have crossed
    12 hops (Linux/BSD origin 64 -> 52 here);
  * client <-> gateway round trip 0.2 ms, gateway <-> server 21-43 ms (per fixture), so
    timing-based evidence means something;
  * sequence numbers, ports, IP ID starts and TCP timestamp offsets come from a
    random.Random seeded by the fixture's name (zlib.crc32), timestamps from a fixed epoch:
    the same bytes on every run.

Only scapy's packet building is used (python3-scapy from Debian); checksums are computed by
scapy when each frame is turned into bytes, and the file is written with pcaptool.
"""

import os
import random
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcaptool  # noqa: E402

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

EPOCH = 1735732800  # 2025-01-01 12:00:00 UTC: every capture starts here
GW_MAC = "02:00:5e:00:00:01"
FIXTURES = []


def fixture(fn):
    FIXTURES.append(fn)
    return fn


# ---------------------------------------------------------------------------------------------
# IP ID generators: one object per (sender, policy)

class PerSocket:
    """Linux connected socket: inet_id, random start, +1 per segment (ip_select_ident_segs)."""

    def __init__(self, start):
        self.v = start & 0xFFFF

    def next(self):
        v = self.v
        self.v = (self.v + 1) & 0xFFFF
        return v

    def peek_last(self):
        return (self.v - 1) & 0xFFFF


class Zero:
    """FreeBSD/XNU with rfc6864=1 on DF packets; Linux control-socket RSTs and SYN-ACKs."""

    def next(self):
        return 0


class RandomId:
    """OpenBSD ip_randomid(): a fresh random, non-zero value per packet."""

    def __init__(self, rnd):
        self.rnd = rnd

    def next(self):
        return self.rnd.randrange(1, 0x10000)


class HostWide(PerSocket):
    """Old Windows: one counter for every packet the host sends, whatever the connection."""


# ---------------------------------------------------------------------------------------------
# the capture

class Capture:
    def __init__(self, snaplen=262144):
        self.frames = []  # (t_us, order, bytes)
        self.snaplen = snaplen

    def add(self, t_ms, frame):
        self.frames.append((int(round(t_ms * 1000)), len(self.frames), bytes(frame)))

    def write(self, path):
        cap = pcaptool.Capture(pcaptool.DLT_EN10MB, self.snaplen)
        for t_us, _n, data in sorted(self.frames):
            sec, us = divmod(t_us, 1000000)
            cap.records.append((EPOCH + sec, us, len(data), data[:self.snaplen]))
        pcaptool.write_pcap(path, cap)


class Side:
    """One end of a connection as it sends: addresses, stack habits, TCP state."""

    def __init__(self, ip, port, ttl, ipid, df=True, isn=0, win=64240, ts=None, mac=None):
        self.ip, self.port, self.ttl, self.ipid, self.df = ip, port, ttl, ipid, df
        self.isn = isn & 0xFFFFFFFF
        self.snd_nxt = self.isn
        self.win = win          # raw 16-bit window field of established segments
        self.ts = ts            # None, or (offset, hz): TSval = offset + t * hz
        self.mac = mac          # the client's MAC (clients only)
        self.last_tsval = 0
        self.last_id = None

    def tsval(self, t_ms):
        off, hz = self.ts
        return (off + int(t_ms * hz / 1000.0)) & 0xFFFFFFFF


class Conn:
    """A TCP connection seen at the gateway: c = client side, s = server side."""

    def __init__(self, cap, c, s, v6=False):
        self.cap, self.c, self.s, self.v6 = cap, c, s, v6

    def peer(self, side):
        return self.s if side is self.c else self.c

    def frame(self, t_ms, side, flags, seq, ack, payload=b"", win=None, options=None,
              ipid=None, ttl=None, df=None):
        """Put one segment from side on the wire at gateway time t_ms (ms). Returns its IP ID."""
        peer = self.peer(side)
        if side.mac is not None:           # from a client: client MAC -> gateway
            eth = Ether(src=side.mac, dst=GW_MAC)
        else:                              # toward a client, forwarded by the gateway
            eth = Ether(src=GW_MAC, dst=peer.mac)
        ttl = side.ttl if ttl is None else ttl
        if self.v6:
            l3 = IPv6(src=side.ip, dst=peer.ip, hlim=ttl)
            ident = None
        else:
            ident = side.ipid.next() if ipid is None else ipid
            df = side.df if df is None else df
            l3 = IP(src=side.ip, dst=peer.ip, ttl=ttl, id=ident, flags="DF" if df else 0)
        l4 = TCP(sport=side.port, dport=peer.port, seq=seq & 0xFFFFFFFF,
                 ack=ack & 0xFFFFFFFF if "A" in flags else 0, flags=flags,
                 window=side.win if win is None else win, options=options or [])
        pkt = eth / l3 / l4
        if payload:
            pkt = pkt / Raw(payload)
        self.cap.add(t_ms, pkt)
        return ident

    def ts_opts(self, t_ms, side, tsecr=None):
        if side.ts is None:
            return []
        v = side.tsval(t_ms)
        side.last_tsval = v
        peer = self.peer(side)
        return [("NOP", None), ("NOP", None),
                ("Timestamp", (v, peer.last_tsval if tsecr is None else tsecr))]

    def send(self, t_ms, side, flags="A", payload=b"", ack=None, seq=None, win=None,
             tsecr=None, **kw):
        """A segment in the connection's own stream: seq = SND.NXT, ack = the peer's SND.NXT
        (everything delivered) unless told otherwise; SND.NXT advances by its length."""
        peer = self.peer(side)
        seq = side.snd_nxt if seq is None else seq
        ack = peer.snd_nxt if ack is None else ack
        opts = self.ts_opts(t_ms, side, tsecr) if "R" not in flags else []
        ident = self.frame(t_ms, side, flags, seq, ack, payload, win, opts, **kw)
        if ident is not None:
            side.last_id = ident
        end = seq + len(payload) + ("S" in flags) + ("F" in flags)
        if ((end - side.snd_nxt) & 0xFFFFFFFF) < 0x80000000:
            side.snd_nxt = end & 0xFFFFFFFF
        return ident

    # -- common exchanges -----------------------------------------------------------------

    def handshake_linux(self, t0, rtt, c_syn_win=64240, s_syn_win=65160, mss=1460,
                        c_wscale=7, s_wscale=7):
        """Linux to Linux: SYN (MSS, SACK_PERM, TS, NOP, WS; tcp_syn_options), SYN-ACK from the
        request socket (IP ID 0, DF: tcp_v4_send_synack/ip_build_and_send_pkt), ACK."""
        c = self.c
        c.last_tsval = c.tsval(t0) if c.ts else 0
        opts = [("MSS", mss), ("SAckOK", b"")]
        if c.ts:
            opts.append(("Timestamp", (c.last_tsval, 0)))
        opts += [("NOP", None), ("WScale", c_wscale)]
        self.frame(t0, c, "S", c.isn, 0, win=c_syn_win, options=opts)
        c.snd_nxt = c.isn + 1
        t = t0 + rtt
        self.synack_linux(t, s_syn_win, mss, s_wscale)
        t += 0.2
        self.send(t, c)
        return t

    def synack_linux(self, t, win=65160, mss=1460, wscale=7):
        c, s = self.c, self.s
        sopts = [("MSS", mss)]
        if c.ts and s.ts:
            s.last_tsval = s.tsval(t)
            sopts += [("SAckOK", b""), ("Timestamp", (s.last_tsval, c.last_tsval)),
                      ("NOP", None), ("WScale", wscale)]
        else:
            sopts += [("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None),
                      ("WScale", wscale)]
        self.frame(t, s, "SA", s.isn, c.snd_nxt, win=win, options=sopts,
                   ipid=0 if not self.v6 else None)
        s.snd_nxt = s.isn + 1

    def exchange(self, t, request, response_len, rtt, think=0.3, seg=1448, spacing=0.12):
        """Client request, server response in MSS-sized segments, client ACKs (every second
        segment and the last, tcp_ack_snd_check's "more than one full frame" rule).
        Returns the gateway time of the client's last ACK."""
        self.send(t, self.c, "PA", request)
        t += rtt + think
        body = response_len if isinstance(response_len, bytes) else response_bytes(response_len)
        n = 0
        for off in range(0, len(body), seg):
            chunk = body[off:off + seg]
            last = off + seg >= len(body)
            self.send(t, self.s, "PA" if last else "A", chunk)
            n += 1
            if n % 2 == 0 or last:
                self.send(t + 0.2, self.c)
            t += spacing
        return t - spacing + 0.2


def response_bytes(n):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
    body_len = max(0, n - len(head % 0) - 2)
    head = head % body_len
    body = (b"synthetic response body, rstguard test fixture. " * (n // 48 + 2))
    return (head + body)[:n]


def request_bytes(path, host="www.example.test"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: synth/1\r\nAccept: */*\r\n\r\n"
            % (path, host)).encode()


def rnd_for(name):
    return random.Random(zlib.crc32(name.encode()))


def client_mac(n):
    return "02:00:00:01:00:%02x" % n


def linux_client(r, ip="198.18.1.2", mac=1, ttl=64, ts_hz=1000, win=502):
    """A Linux >= 5.17 client: per-socket IP ID from get_random_u16(), DF, TTL 64, TCP
    timestamps with a per-connection random offset (tcp_v4_connect, secure_tcp_ts_off)."""
    return Side(ip, r.randrange(32768, 61000), ttl, PerSocket(r.randrange(0x10000)), True,
                r.getrandbits(32), win, (r.getrandbits(32), ts_hz), client_mac(mac))


def linux_server(r, ip="198.18.3.2", port=443, ttl=52, win=509):
    """A Linux server 12 hops away: SYN-ACK ID 0; the child socket's inet_id starts at
    get_random_u16() (tcp_v4_syn_recv_sock) and counts per segment; DF; timestamps."""
    return Side(ip, port, ttl, PerSocket(r.randrange(0x10000)), True, r.getrandbits(32), win,
                (r.getrandbits(32), 1000))


# ---------------------------------------------------------------------------------------------
# A. injections

@fixture
def synth_handshake_inject(cap):
    """SYN answered 8 ms later by a RST/ACK with ack = ISN, IP ID and window copied from the
    SYN, TTL 3 below the server's; the real SYN-ACK 30 ms later; the connection works."""
    # Zeek's testing/btest/Traces/tcp/rst-inject-rae.pcap as described in
    # shared/research/forged-rst.md: RST/ACK with the SYN's IP ID and window, ack = SYN seq,
    # TTL 46 against the server's 49. A Linux client in SYN_SENT finds ack = ISS unacceptable
    # (RFC 9293 3.10.7.3: SEG.ACK =< ISS; tcp_rcv_synsent_state_process -> reset_and_undo)
    # and, the segment being a RST, sends nothing back: the handshake goes on.
    r = rnd_for("synth_handshake_inject")
    c = linux_client(r)
    s = linux_server(r, port=80)
    k = Conn(cap, c, s)
    t0 = 1000.0
    syn_id = c.ipid.v
    c.last_tsval = c.tsval(t0)
    k.frame(t0, c, "S", c.isn, 0, win=64240, options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (c.last_tsval, 0)), ("NOP", None),
        ("WScale", 7)])
    c.snd_nxt = c.isn + 1
    # the injected RST/ACK: seq 0 as a refusal would have, ack = ISN (not ISN + 1)
    k.frame(t0 + 8.0, s, "RA", 0, c.isn, win=64240, ipid=syn_id, ttl=s.ttl - 3, df=True)
    t = t0 + 38.0
    k.synack_linux(t)
    t += 0.2
    k.send(t, c)
    t = k.exchange(t + 0.1, request_bytes("/index.html"), 3000, 38.0)
    # the client closes first; the server answers with FIN/ACK (its app closes at once)
    t += 2.0
    k.send(t, c, "FA")
    t += 38.0
    k.send(t, s, "FA")
    k.send(t + 0.2, c)


@fixture
def synth_handshake_inject2(cap):
    """SYN answered 2.6 ms later by an effective RST/ACK (ack = ISN+1) carrying a TS option
    whose TSecr the client never sent; the real SYN-ACK meets a socketless client RST."""
    # Injector timing: the Henan firewall's trigger-to-RST p50 of 2.6 ms (gfw-report
    # sp25-regional, shared/research/forged-rst.md). A genuine refusal (tcp_v4_send_reset)
    # carries no timestamp option at all. The TSecr is ISN-time TSval + 5: not a value the
    # client sent (it sent only its SYN's), yet inside [retrans_stamp, now], so Linux's
    # tcp_rcv_synsent_state_process (PAWSACTIVEREJECTED check precedes the RST branch)
    # accepts the RST and the connection dies (tcp_reset). The real SYN-ACK then finds no
    # socket: tcp_v4_send_reset answers with seq = its ack, flags R only, IP ID 0, DF
    # (control socket, 431280eebed9).
    r = rnd_for("synth_handshake_inject2")
    c = linux_client(r)
    s = linux_server(r, port=443)
    k = Conn(cap, c, s)
    t0 = 1000.0
    c.last_tsval = c.tsval(t0)
    syn_ts = c.last_tsval
    k.frame(t0, c, "S", c.isn, 0, win=64240, options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (syn_ts, 0)), ("NOP", None),
        ("WScale", 7)])
    c.snd_nxt = c.isn + 1
    k.frame(t0 + 2.6, s, "RA", 0, c.snd_nxt, win=0, ipid=0, ttl=s.ttl, df=True,
            options=[("NOP", None), ("NOP", None),
                     ("Timestamp", (r.getrandbits(32), (syn_ts + 5) & 0xFFFFFFFF))])
    t = t0 + 2.6 + 40.0
    k.synack_linux(t)
    k.frame(t + 0.2, c, "R", c.snd_nxt, 0, win=0, ipid=0, df=True)  # = the SYN-ACK's ack


@fixture
def synth_late_race(cap):
    """Linux to Linux, four exchanges; a perfect copy of the server's RST/ACK (no options);
    the server sends new data 1.0 s later and the reset client answers with a bare RST."""
    # The race of Weaver, Sommer, Paxson (NDSS 2009): only the claimed sender talking on after
    # its own RST (DATA_SEQ_RST) reveals an injector that copies everything else; here it
    # speaks only after 1.0 s, past any hold (tests/lib/inject.py mimic-exact, IP ID +1 here).
    # The server streams events (one a second); the censor keys on the fourth one.
    r = rnd_for("synth_late_race")
    c = linux_client(r)
    s = linux_server(r, port=8080)
    k = Conn(cap, c, s)
    rtt = 24.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, request_bytes("/events"), 900, rtt)
    for i in range(3):
        t += 1000.0
        k.send(t, s, "PA", b"event: tick\ndata: %d\n\n" % i + b"x" * 200)
        t += 0.2
        k.send(t, c)
    t += 1000.0
    k.send(t, s, "PA", b"event: news\ndata: forbidden-keyword\n\n" + b"y" * 300)
    k.send(t + 0.2, c)
    # the injector, on the server's side of the path, 2 ms after the trigger
    k.frame(t + 2.0, s, "RA", s.snd_nxt, c.snd_nxt, win=s.win,
            ipid=(s.ipid.peek_last() + 1) & 0xFFFF, ttl=s.ttl, df=True)
    t += 1000.0
    k.send(t, s, "PA", b"event: tick\ndata: 4\n\n" + b"x" * 200)
    # the client's socket is gone: tcp_v4_send_reset, seq = the segment's ack
    k.frame(t + 0.2, c, "R", c.snd_nxt, 0, win=0, ipid=0, df=True)


@fixture
def synth_gfw_type1(cap):
    """A request, then a bare RST (R only) claiming the server: IP ID 0, DF clear, TTL 4
    off, window 8192, exact seq; both ends were reset, so silence follows."""
    # GFW type I (gfw-report, S&P 2025 sp25-regional fingerprints; forged-rst.md table):
    # flags RST, IP ID 0, DF clear, sent to both ends. Trigger-to-RST 15 ms (GFW p50). The
    # copy toward the server does not cross this gateway.
    r = rnd_for("synth_gfw_type1")
    c = linux_client(r)
    s = linux_server(r, port=80)
    k = Conn(cap, c, s)
    rtt = 32.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, request_bytes("/"), 2500, rtt)
    t += 800.0
    k.send(t, c, "PA", request_bytes("/search?q=forbidden-keyword"))
    k.frame(t + 15.0, s, "R", s.snd_nxt, 0, win=8192, ipid=0, ttl=s.ttl + 4, df=False)


@fixture
def synth_vendor_constant(cap):
    """Three client/server pairs, each hit within 5 s by a RST/ACK claiming its server with
    IP ID 0x3412, window 1024, DF clear, the server's TTL and a stale seq; servers go on."""
    # A constant-IP-ID injector (the GFW III / Henan rows of forged-rst.md have constant or
    # narrow-range IDs; this one is a made-up vendor constant). Stale seq: RCV.NXT - 2896 and
    # the like, outside the receive window, so Linux drops it silently
    # (tcp_validate_incoming: !tcp_sequence and RST -> discard, RFC 9293 3.10.7.4).
    r = rnd_for("synth_vendor_constant")
    pairs = [("198.18.1.21", "198.18.3.31", 52, 2896, 0.0),
             ("198.18.1.22", "198.18.3.32", 47, 4344, 1700.0),
             ("198.18.1.23", "198.18.3.33", 55, 5792, 3900.0)]
    for n, (cip, sip, sttl, back, delay) in enumerate(pairs):
        c = linux_client(r, ip=cip, mac=0x21 + n)
        s = linux_server(r, ip=sip, port=443, ttl=sttl)
        while abs(s.ipid.v - 0x3412) < 4096:  # the servers never use the constant
            s.ipid.v = r.randrange(0x10000)
        k = Conn(cap, c, s)
        rtt = 22.0 + 6 * n
        t = k.handshake_linux(1000.0 + delay, rtt)
        # a download: the server streams, the client acknowledges
        k.send(t + 0.1, c, "PA", request_bytes("/video/seg%d.ts" % n))
        t += 0.1 + rtt + 0.3
        for i in range(24):
            k.send(t, s, "A", response_bytes(1448))
            if i % 2:
                k.send(t + 0.2, c)
            if i == 13:
                k.frame(t + 0.5, s, "RA", s.snd_nxt - back, c.snd_nxt, win=1024,
                        ipid=0x3412, ttl=sttl, df=False)
            t += 25.0
        k.send(t, s, "FA")
        k.send(t + 0.2, c, "FA")
        k.send(t + 0.2 + rtt, s)


@fixture
def synth_signed_rst(cap):
    """A RST/ACK claiming the server with a TCP-MD5 option (kind 19) on a connection that
    never used MD5; the client drops it unseen and the server sends new data 50 ms later."""
    # RFC 2385 section 2 / RFC 5925: a host without a key for the peer discards segments with
    # the option; Linux tcp_inbound_md5_hash: !hash_expected && hash_location ->
    # LINUX_MIB_TCPMD5UNEXPECTED, drop. Otherwise the copy is exact (seq = SND.NXT, TTL, DF,
    # window, IP ID last + 1): the option and the race give it away.
    r = rnd_for("synth_signed_rst")
    c = linux_client(r)
    s = linux_server(r, port=443)
    k = Conn(cap, c, s)
    rtt = 28.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, request_bytes("/a"), 1200, rtt)
    t += 300.0
    k.send(t, c, "PA", request_bytes("/forbidden"))
    k.frame(t + 6.0, s, "RA", s.snd_nxt, c.snd_nxt, win=s.win,
            ipid=(s.ipid.peek_last() + 1) & 0xFFFF, ttl=s.ttl, df=True,
            options=[("NOP", None), ("NOP", None), ("MD5", bytes(r.getrandbits(8)
                                                                  for _ in range(16)))])
    t2 = t + 6.0 + 50.0
    body = response_bytes(2600)
    k.send(t2, s, "A", body[:1448])
    k.send(t2 + 0.12, s, "PA", body[1448:])
    k.send(t2 + 0.32, c)
    t = t2 + 1500.0
    k.send(t, c, "FA")
    k.send(t + rtt, s, "FA")
    k.send(t + rtt + 0.2, c)


@fixture
def synth_oow_inject(cap):
    """An injected RST/ACK at RCV.NXT + 10 MB, TTL 6 off, DF clear; the client drops it
    silently and the connection goes on to a normal close."""
    # Out of window: tcp_validate_incoming discards a RST failing tcp_sequence with no
    # challenge ACK (RFC 5961 section 3.2 applies to in-window RSTs only).
    r = rnd_for("synth_oow_inject")
    c = linux_client(r)
    s = linux_server(r, port=443)
    k = Conn(cap, c, s)
    rtt = 30.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, request_bytes("/one"), 4000, rtt)
    t += 200.0
    k.send(t, c, "PA", request_bytes("/two"))
    k.frame(t + 9.0, s, "RA", s.snd_nxt + 10 * 1024 * 1024, c.snd_nxt, win=8192,
            ipid=r.randrange(0x10000), ttl=s.ttl - 6, df=False)
    t += rtt + 0.3
    body = response_bytes(3000)
    k.send(t, s, "A", body[:1448])
    k.send(t + 0.12, s, "A", body[1448:2896])
    k.send(t + 0.32, c)
    k.send(t + 0.24, s, "PA", body[2896:])
    k.send(t + 0.44, c)
    t += 1000.0
    k.send(t, c, "FA")
    k.send(t + rtt, s, "FA")
    k.send(t + rtt + 0.2, c)


# ---------------------------------------------------------------------------------------------
# B. genuine RSTs of other stacks

@fixture
def synth_windows_hostwide(cap):
    """An old-Windows client (TTL 128, DF, one global IP ID counter) with two interleaved
    connections; it aborts the idle one: RST/ACK ID = host's latest + 3, ~1200 past that
    connection's own last ID. Captured to 128 bytes (tcpdump -s 128)."""
    # Global counter: the idle-scan literature and Klein & Pinkas 2019 for pre-Windows-8
    # stacks (ip-id-and-ttl-by-stack.md); DefaultTTL 128. SYN: window 8192, MSS, NOP, WS 8,
    # NOP, NOP, SACK_PERM, no timestamps. Abortive close (SO_LINGER 0 / closesocket): RST/ACK
    # seq = SND.NXT, window 0. The +3 stands for LAN packets that do not cross the gateway.
    r = rnd_for("synth_windows_hostwide")
    host = HostWide(r.randrange(0x10000))
    mac = client_mac(0x30)
    cA = Side("198.18.1.30", 49702, 128, host, True, r.getrandbits(32), 256, None, mac)
    cB = Side("198.18.1.30", 49705, 128, host, True, r.getrandbits(32), 256, None, mac)
    sA = Side("198.18.3.40", 443, 52, PerSocket(r.randrange(0x10000)), True,
              r.getrandbits(32), 501)
    sB = Side("198.18.3.41", 8443, 52, PerSocket(r.randrange(0x10000)), True,
              r.getrandbits(32), 2049)
    kA, kB = Conn(cap, cA, sA), Conn(cap, cB, sB)
    win_syn = [("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None),
               ("SAckOK", b"")]

    def hs(k, t, rtt):
        c = k.c
        k.frame(t, c, "S", c.isn, 0, win=8192, options=win_syn)
        c.snd_nxt = c.isn + 1
        k.synack_linux(t + rtt, win=64240)
        k.send(t + rtt + 0.2, c)
        return t + rtt + 0.2

    rtt = 26.0
    t = hs(kA, 1000.0, rtt)
    t = kA.exchange(t + 0.1, request_bytes("/inbox"), 5000, rtt)
    t = hs(kB, t + 150.0, rtt)
    # B: an upload of 1200 full segments, paced at 0.15 ms; the server ACKs every second
    kB.send(t + 0.1, cB, "PA", b"POST /upload HTTP/1.1\r\nHost: files.example.test\r\n"
            b"Content-Length: 1752000\r\n\r\n")
    t += 0.3
    chunk = b"U" * 1460
    acks = []
    for i in range(1200):
        kB.send(t, cB, "A", chunk)
        if i % 2:
            acks.append((t + rtt, cB.snd_nxt))
        t += 0.15
    for ta, a in acks:
        kB.send(ta, sB, "A", ack=a)
    kB.send(t + rtt + 0.5, sB, "PA", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    kB.send(t + rtt + 0.7, cB)
    # A: the client aborts; the host sent three packets elsewhere (its LAN) meanwhile
    host.v = (host.v + 3) & 0xFFFF
    kA.send(t + rtt + 5.0, cA, "RA", win=0)
    cap.snaplen = 128


@fixture
def synth_openbsd_random(cap):
    """An OpenBSD server (random IP ID on every packet, DF, TTL 64) aborting an idle
    connection: RST/ACK at SND.NXT with another random ID and no TS option."""
    # OpenBSD ip_output(): ip_id = htons(ip_randomid()) for every locally generated packet
    # (ip-id-and-ttl-by-stack.md). SYN-ACK options MSS, NOP, NOP, SACK_PERM, NOP, WS, NOP,
    # NOP, TS; tcp_output() adds no timestamp to a RST ((flags & TH_RST) == 0 test, 4.4BSD
    # lineage). tcp_drop() -> CLOSED -> tcp_output with tcp_outflags[CLOSED] = RST|ACK.
    r = rnd_for("synth_openbsd_random")
    c = linux_client(r)
    s = Side("198.18.3.50", 443, 52, RandomId(r), True, r.getrandbits(32), 256,
             (r.getrandbits(32), 1000))
    k = Conn(cap, c, s)
    rtt = 34.0
    t0 = 1000.0
    c.last_tsval = c.tsval(t0)
    k.frame(t0, c, "S", c.isn, 0, win=64240, options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (c.last_tsval, 0)), ("NOP", None),
        ("WScale", 7)])
    c.snd_nxt = c.isn + 1
    s.last_tsval = s.tsval(t0 + rtt)
    k.frame(t0 + rtt, s, "SA", s.isn, c.snd_nxt, win=16384, options=[
        ("MSS", 1460), ("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None),
        ("WScale", 6), ("NOP", None), ("NOP", None), ("Timestamp", (s.last_tsval,
                                                                    c.last_tsval))])
    s.snd_nxt = s.isn + 1
    t = t0 + rtt + 0.2
    k.send(t, c)
    t = k.exchange(t + 0.1, request_bytes("/status"), 2200, rtt)
    t = k.exchange(t + 400.0, request_bytes("/status"), 2200, rtt)
    # 5 s idle: the server's application times the client out and aborts (SO_LINGER 0)
    t += 5000.0
    k.send(t, s, "RA", win=s.win)


@fixture
def synth_freebsd_zero(cap):
    """A FreeBSD server (IP ID 0 on every DF packet) answers, closes; 2 s later the client
    reuses the connection and gets a bare RST (seq = the client's ack, ID 0, DF)."""
    # FreeBSD ip_fillid(): rfc6864=1 and DF -> ID 0; tcp_do_segment: data after the user
    # closed (SS_NOFDREF, state > CLOSE_WAIT) -> tcp_close, dropwithreset;
    # tcp_dropwithreset -> tcp_respond(..., th_ack, 0, TH_RST): seq = the ack, no ACK flag,
    # window 0, no options (the pcb is gone). SYN-ACK: window 65535, MSS, NOP, WS 6,
    # SACK_PERM, TS. The HTTP keep-alive race: the client had not read the FIN yet.
    r = rnd_for("synth_freebsd_zero")
    c = linux_client(r)
    s = Side("198.18.3.60", 80, 52, Zero(), True, r.getrandbits(32), 1026,
             (r.getrandbits(32), 1000))
    k = Conn(cap, c, s)
    rtt = 21.0
    t0 = 1000.0
    c.last_tsval = c.tsval(t0)
    k.frame(t0, c, "S", c.isn, 0, win=64240, options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (c.last_tsval, 0)), ("NOP", None),
        ("WScale", 7)])
    c.snd_nxt = c.isn + 1
    s.last_tsval = s.tsval(t0 + rtt)
    k.frame(t0 + rtt, s, "SA", s.isn, c.snd_nxt, win=65535, options=[
        ("MSS", 1460), ("NOP", None), ("WScale", 6), ("SAckOK", b""),
        ("Timestamp", (s.last_tsval, c.last_tsval))])
    s.snd_nxt = s.isn + 1
    t = t0 + rtt + 0.2
    k.send(t, c)
    t = k.exchange(t + 0.1, request_bytes("/robots.txt"), 1800, rtt)
    # the server's application closes right after the response (keep-alive timeout)
    t += 5000.0
    k.send(t, s, "FA")
    k.send(t + 0.2, c)
    t += 2000.0
    k.send(t, c, "PA", request_bytes("/favicon.ico"))
    k.frame(t + rtt, s, "R", s.snd_nxt, 0, win=0, ipid=0, df=True)  # = the client's ack


@fixture
def synth_linux_old_ctl(cap):
    """A 2017 Linux client closes while the server's data is in flight; its stack answers
    the three segments with bare RSTs (same seq, DF) whose IDs 40048-40050 come from the
    hashed generator, not the socket's counter."""
    # Before 431280eebed9 (2018) the per-netns control socket's RSTs asserted DF and took
    # their ID from the hashed generator (__ip_select_ident, one bucket per address pair:
    # consecutive values), as the real capture tls13draft16-ff52 shows. FIN_WAIT1 with
    # RCV_SHUTDOWN and new data: tcp_rcv_state_process -> LINUX_MIB_TCPABORTONDATA,
    # tcp_reset, return 1 -> tcp_v4_send_reset (seq = the segment's ack, R only); later
    # segments find no socket: tcp_v4_send_reset again. 2017 stack: SYN window 29200,
    # SYN-ACK 28960, TSval ticking at HZ 250 (Debian's CONFIG_HZ) from a per-connection
    # random offset (95a22caee396, Linux 4.10).
    r = rnd_for("synth_linux_old_ctl")
    c = Side("198.18.1.2", r.randrange(32768, 61000), 64, PerSocket(r.randrange(0x10000)),
             True, r.getrandbits(32), 229, (r.getrandbits(32), 250), client_mac(1))
    s = linux_server(r, port=443, win=235)
    while abs(c.ipid.v - 40048) < 8192:
        c.ipid.v = r.randrange(0x10000)
    k = Conn(cap, c, s)
    rtt = 36.0
    t = k.handshake_linux(1000.0, rtt, c_syn_win=29200, s_syn_win=28960)
    t = k.exchange(t + 0.1, b"\x16\x03\x01\x02\x00" + b"\x01" * 512, 2900, rtt)  # hello
    t = k.exchange(t + 0.2, b"\x17\x03\x03\x00\x40" + b"\x02" * 64, 2000, rtt)
    # the server streams a large response; the client reads two segments' worth and closes
    t = k.exchange(t + 0.2, b"\x17\x03\x03\x00\x80" + b"\x03" * 128, 2896, rtt)
    body = response_bytes(1448 * 3)
    fin_t = t + 1.0
    k.send(fin_t, c, "FA")
    fin_seq = c.snd_nxt - 1
    for i in range(3):  # sent by the server before the FIN reached it: ack = fin_seq
        k.send(fin_t + 0.3 + 0.15 * i, s, "A", body[1448 * i:1448 * (i + 1)], ack=fin_seq)
        k.frame(fin_t + 0.5 + 0.15 * i, c, "R", fin_seq, 0, win=0, ipid=40048 + i, df=True)


@fixture
def synth_linux_active_reset(cap):
    """A Linux server aborts (SO_LINGER 0) after its reply was acknowledged: RST/ACK at
    SND.NXT, IP ID = its counter + 1, DF, window nonzero, TS with TSecr = client's TSval."""
    # tcp_send_active_reset: tcp_init_nondata_skb(RST|ACK, tcp_acceptable_seq) and
    # tcp_transmit_skb: the socket's inet_id sequence, tcp_select_window, and
    # tcp_established_options (TS: TSecr = ts_recent). ip-id-and-ttl-by-stack.md,
    # rst-causes-and-eviction.md.
    r = rnd_for("synth_linux_active_reset")
    c = linux_client(r)
    s = linux_server(r, port=6379, win=507)
    k = Conn(cap, c, s)
    rtt = 29.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n", rtt)
    t = k.exchange(t + 2.0, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", 1300, rtt)
    t += 300.0
    opts = k.ts_opts(t, s)
    k.frame(t, s, "RA", s.snd_nxt, c.snd_nxt, win=s.win, options=opts)


@fixture
def synth_lb_idle_rst(cap):
    """400 s idle, then the client's next request gets a bare RST from a load balancer
    nearer than the server (TTL 56 against 52, RTT 14 ms against 30, IP ID 0, DF)."""
    # Idle eviction at a load balancer (AWS NLB: 350 s, rst-causes-and-eviction.md;
    # Weaver et al. 2009 on non-injector terminations). A Linux-based balancer with
    # REJECT --reject-with tcp-reset: nf_reject_ip_tcphdr_put (seq = the trigger's ack, R
    # only), nf_reject_iphdr_put (ID 0, DF, TTL from the route: 64 at origin, 8 hops here).
    r = rnd_for("synth_lb_idle_rst")
    c = linux_client(r)
    s = linux_server(r, ip="198.18.3.70", port=443)
    k = Conn(cap, c, s)
    rtt = 30.0
    t = k.handshake_linux(1000.0, rtt)
    t = k.exchange(t + 0.1, request_bytes("/api/session"), 1400, rtt)
    t = k.exchange(t + 50.0, request_bytes("/api/poll"), 600, rtt)
    t += 400000.0
    k.send(t, c, "PA", request_bytes("/api/poll"))
    k.frame(t + 14.0, s, "R", s.snd_nxt, 0, win=0, ipid=0, ttl=56, df=True)


@fixture
def synth_v6_abort(cap):
    """synth_linux_active_reset over IPv6 (hop limit 64 at origin, 52 here): the server's
    RST/ACK at SND.NXT with window and TS option, after its reply was acknowledged."""
    # As synth_linux_active_reset: tcp_send_active_reset via the socket (tcp_v6 transmit),
    # with timestamps; IPv6 MSS 1440.
    r = rnd_for("synth_v6_abort")
    c = linux_client(r, ip="2001:db8:1::2")
    s = linux_server(r, ip="2001:db8:3::2", port=443, win=507)
    k = Conn(cap, c, s, v6=True)
    rtt = 27.0
    t = k.handshake_linux(1000.0, rtt, mss=1440)
    t = k.exchange(t + 0.1, request_bytes("/v6"), 2600, rtt, seg=1428)
    t += 700.0
    opts = k.ts_opts(t, s)
    k.frame(t, s, "RA", s.snd_nxt, c.snd_nxt, win=s.win, options=opts)


# ---------------------------------------------------------------------------------------------

def describe(fn):
    return " ".join(fn.__doc__.split())


def main(argv):
    if argv == ["--list"]:
        for fn in FIXTURES:
            print("%-26s %s" % (fn.__name__, describe(fn)))
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    outdir = argv[0]
    os.makedirs(outdir, exist_ok=True)
    for fn in FIXTURES:
        cap = Capture()
        fn(cap)
        cap.write(os.path.join(outdir, fn.__name__[len("synth_"):] + ".pcap"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
