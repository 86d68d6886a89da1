#!/usr/bin/python3
"""idleapp: idle-then-talk endpoints for rstguard's eviction and keepalive tests.

Run inside a network namespace with Debian's /usr/bin/python3, e.g.
    ip netns exec NS /usr/bin/python3 idleapp.py --timeout 60 serve --bind 198.18.3.2 \\
        --port 7001 --count 4 --ready-file /tmp/x.ready
    ip netns exec NS /usr/bin/python3 idleapp.py client --to 198.18.3.2 --port 7001 \\
        --idle 13 --read-timeout 6 --expect reset

IPv6: give IPv6 addresses (--bind 2001:db8:3::2, --to 2001:db8:3::2); the family follows the
address.

The protocol is an echo: the client sends a message of --bytes deterministic pseudo-random bytes
(different for every round and connection), the server sends back exactly what it receives, and
the client reads back exactly as many bytes and compares them with what it sent. The client first
makes one exchange right after connecting, then for each of --rounds rounds idles --idle seconds,
sends a message and reads its echo. At the end it half-closes and reads until EOF: a single byte
more than the echoes is an error ("extra bytes"). The server reads until EOF, then reports what it
received (bytes and sha256); with --expect-bytes it also insists on that exact count.

During each idle period the client reads the kernel's count of segments received by its socket
(TCP_INFO tcpi_segs_in) before and after: "idle_segs_in" lists, per round, how many segments
reached the socket while the application was silent (0 when nothing leaked to it, e.g. when a
gateway takes the answers to its keepalive probes out of the stream).

Output: one JSON line per result on stdout. Client:
    {"cmd": "client", "ok": true|false, "error": null|"ECONNRESET"|"ETIMEDOUT"|..., "bytes": N,
     "sent": N, "sport": P, "rounds_done": K, "outcome": "ok"|error, "phase": "first"|"round"|
     "eof", "resume_time": EPOCH, "fail_time": EPOCH, "idle_segs_in": [...], "sha256_sent": ...}
  "ok" is true when every exchange completed exactly; "bytes" is what the client received.
Server: one line per connection, as each ends:
    {"cmd": "serve", "ok": ..., "error": ..., "bytes": N (received), "bytes_out": N, "sha256": ...,
     "peer": ADDR, "peer_port": P}

Exit status: 0 when the outcome was the expected one (--expect ok|reset|timeout|any for the
client; for the server every connection ok), 1 when not, 2 on usage errors, 3 when the
--deadline alarm fired. Every socket operation has a timeout (--timeout; the read after an idle
period --read-timeout), so nothing can hang.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

SEED = 20261125
EMIT_LOCK = threading.Lock()
TCP_INFO_SEGS_IN = 140   # offset of tcpi_segs_in in struct tcp_info (linux/tcp.h, since 4.2)
TCP_INFO_TOTAL_RETRANS = 100


def emit(obj):
    """One JSON line on stdout, flushed at once (the shell may be polling the file)."""
    with EMIT_LOCK:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def err_name(exc):
    if isinstance(exc, socket.timeout):
        return "ETIMEDOUT"
    code = getattr(exc, "errno", None)
    if code is None:
        return type(exc).__name__
    return errno.errorcode.get(code, str(code))


def write_file(path, text):
    """Atomically (write + rename), so a poller never sees half of it."""
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def tcp_info_u32(sock, offset):
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < offset + 4:
        return None
    return struct.unpack_from("I", raw, offset)[0]


def message(seed, sport, rnd, size):
    """The deterministic message of round rnd (0 = the exchange right after connecting)."""
    return random.Random("%d/%d/%d" % (seed, sport, rnd)).randbytes(size)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            raise ConnectionError(errno.EPIPE, "EOF after %d of %d bytes" % (len(buf), n))
        buf += d
    return bytes(buf)


# ---------------------------------------------------------------------------------------------
# server

def serve_conn(conn, peer, args, results):
    conn.settimeout(args.timeout)
    res = {"cmd": "serve", "peer": peer[0], "peer_port": peer[1], "error": None}
    h = hashlib.sha256()
    n_in = n_out = 0
    try:
        while True:
            d = conn.recv(65536)
            if not d:
                break
            h.update(d)
            n_in += len(d)
            conn.sendall(d)
            n_out += len(d)
        conn.shutdown(socket.SHUT_WR)
    except OSError as e:
        res["error"] = err_name(e)
    try:
        conn.close()
    except OSError:
        pass
    ok = res["error"] is None
    if ok and args.expect_bytes is not None and n_in != args.expect_bytes:
        ok = False
        res["error"] = "received %d bytes, expected %d" % (n_in, args.expect_bytes)
    res.update(ok=ok, bytes=n_in, bytes_out=n_out, sha256=h.hexdigest())
    emit(res)
    results.append(ok)


def cmd_serve(args):
    fam = family_of(args.bind)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    ls.bind((args.bind, args.port))
    ls.listen(64)
    ls.settimeout(args.accept_timeout)
    write_file(args.ready_file, "ready\n")
    threads, results = [], []
    for _ in range(args.count):
        try:
            conn, peer = ls.accept()
        except OSError as e:
            emit({"cmd": "serve", "ok": False, "error": "accept: " + err_name(e)})
            results.append(False)
            break
        t = threading.Thread(target=serve_conn, args=(conn, peer, args, results), daemon=True)
        t.start()
        threads.append(t)
    ls.close()
    for t in threads:
        t.join()
    return len(results) == args.count and all(results), None


# ---------------------------------------------------------------------------------------------
# client

def cmd_client(args):
    fam = family_of(args.to)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", args.source_port))
    sport = s.getsockname()[1]
    res = {"cmd": "client", "to": args.to, "port": args.port, "sport": sport, "error": None,
           "outcome": None, "phase": "connect", "rounds_done": 0, "idle": args.idle,
           "rounds": args.rounds, "resume_time": None, "fail_time": None, "idle_segs_in": []}
    h_sent, h_recv = hashlib.sha256(), hashlib.sha256()
    sent = got = 0

    def exchange(rnd):
        nonlocal sent, got
        msg = message(args.seed, sport, rnd, args.bytes)
        s.sendall(msg)
        h_sent.update(msg)
        sent += len(msg)
        back = recv_exact(s, len(msg))
        h_recv.update(back)
        got += len(back)
        if back != msg:
            raise ValueError("round %d: the echo differs from what was sent" % rnd)

    try:
        s.connect((args.to, args.port))
        res["phase"] = "first"
        exchange(0)
        for rnd in range(1, args.rounds + 1):
            res["phase"] = "idle"
            before = tcp_info_u32(s, TCP_INFO_SEGS_IN)
            time.sleep(args.idle)
            after = tcp_info_u32(s, TCP_INFO_SEGS_IN)
            res["idle_segs_in"].append(None if before is None or after is None else
                                       (after - before) & 0xffffffff)
            res["phase"] = "round"
            res["resume_time"] = round(time.time(), 6)
            write_file(args.mark_file, "%.6f %d\n" % (res["resume_time"], rnd))
            s.settimeout(args.read_timeout)
            exchange(rnd)
            s.settimeout(args.timeout)
            res["rounds_done"] = rnd
        # No extra bytes: after the last echo the server has nothing more to say.
        res["phase"] = "eof"
        s.shutdown(socket.SHUT_WR)
        extra = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            extra += d
        if extra:
            raise ValueError("%d extra bytes after the last echo" % len(extra))
        res["outcome"] = "ok"
    except (OSError, ValueError) as e:
        res["fail_time"] = round(time.time(), 6)
        res["error"] = err_name(e) if isinstance(e, OSError) else str(e)
        res["outcome"] = res["error"]
    res["total_retrans"] = tcp_info_u32(s, TCP_INFO_TOTAL_RETRANS)
    try:
        s.close()
    except OSError:
        pass
    res.update(ok=res["outcome"] == "ok", bytes=got, sent=sent,
               sha256_sent=h_sent.hexdigest(), sha256_recv=h_recv.hexdigest())
    want = {"ok": ("ok",), "reset": ("ECONNRESET",), "timeout": ("ETIMEDOUT",)}
    if args.expect == "any":
        expected = True
    else:
        expected = res["outcome"] in want[args.expect]
        if args.expect != "ok":
            # The failure must come on the first round after an idle period, not before.
            expected = expected and res["phase"] == "round" and res["rounds_done"] == 0
    res["expected"] = expected
    emit(res)
    return expected, None


# ---------------------------------------------------------------------------------------------

def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="per-socket-operation timeout (s)")
    ap.add_argument("--deadline", type=float, default=120.0, help="whole-process alarm (s)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("serve", help="echo server for --count concurrent connections")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--ready-file", default="", help="written once the socket listens")
    p.add_argument("--accept-timeout", type=float, default=30.0)
    p.add_argument("--expect-bytes", type=int, default=None,
                   help="a connection is ok only if it received exactly this many bytes")

    p = sub.add_parser("client", help="exchange, idle, exchange again")
    p.add_argument("--to", required=True, help="server address")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source-port", type=int, default=0)
    p.add_argument("--bytes", type=int, default=1000, help="size of each message")
    p.add_argument("--idle", type=float, default=0.0, help="seconds of silence before each round")
    p.add_argument("--rounds", type=int, default=1, help="idle-then-talk rounds")
    p.add_argument("--read-timeout", type=float, default=6.0,
                   help="timeout of the exchange after an idle period")
    p.add_argument("--mark-file", default="", help="written at each resumption: TIME ROUND")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--expect", choices=["ok", "reset", "timeout", "any"], default="ok")
    return ap


COMMANDS = {"serve": cmd_serve, "client": cmd_client}


def main(argv):
    args = build_parser().parse_args(argv)

    def on_alarm(_sig, _frm):
        emit({"cmd": args.cmd, "ok": False, "error": "deadline of %gs exceeded" % args.deadline,
              "bytes": None})
        os._exit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.deadline)
    ok, _ = COMMANDS[args.cmd](args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
