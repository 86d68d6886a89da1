#!/usr/bin/python3
"""tcpapp: small real-socket endpoints for rstguard's end-to-end tests.

Run inside a network namespace with Debian's /usr/bin/python3, e.g.
    ip netns exec NS /usr/bin/python3 tcpapp.py serve --bind 198.18.3.2 --port 5001 --mode bulk-sink
    ip netns exec NS /usr/bin/python3 tcpapp.py bulk --to 198.18.3.2 --port 5001 --bytes 20000000

Every subcommand is bounded: each socket has a timeout (--timeout) and the whole process an
alarm (--deadline), so a test can never hang on it. Each prints one JSON line per result on
stdout ({"cmd": ..., "ok": true|false, ...}) and exits 0 when the outcome was the expected one,
1 when it was not, 2 on usage errors, 3 when the deadline fired.

Servers write READY (the word "ready") to --ready-file once they listen, so the shell can wait for
that instead of racing the client against listen().

New subcommands (scapy injectors, probes) go into COMMANDS at the bottom: one function each,
taking the parsed arguments and returning (ok, result_dict).
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
import time

# The bulk stream: slices of one pseudo-random block at offsets that rotate by a prime, so the
# stream is reproducible from the seed, cheap to produce at GB/s and not periodic at any small
# boundary (a duplicated or reordered segment changes the digest).
BLOCK_SIZE = 1 << 20
CHUNK = 64 * 1024
SEED = 20261125
REQUEST = b"GET /rstguard-e2e HTTP/1.0\r\n\r\n"
REPLY = b"OK rstguard-e2e\n"


def emit(obj):
    """One JSON line on stdout, flushed at once (the shell may be polling the file)."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listen_on(addr, port, backlog=16):
    """A listening TCP socket on addr:port (IPv6 sockets take IPv6 only)."""
    fam = family_of(addr)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    ls.bind((addr, port))
    ls.listen(backlog)
    return ls


def err_name(exc):
    code = getattr(exc, "errno", None)
    if isinstance(exc, socket.timeout):
        return "ETIMEDOUT(socket timeout)"
    if code is None:
        return type(exc).__name__
    return errno.errorcode.get(code, str(code))


class Stream:
    """Deterministic byte stream of a given length."""

    def __init__(self, total, seed=SEED):
        rnd = random.Random(seed)
        self.block = rnd.randbytes(BLOCK_SIZE + CHUNK)
        self.total = total

    def chunks(self):
        sent = 0
        i = 0
        view = memoryview(self.block)
        while sent < self.total:
            n = min(CHUNK, self.total - sent)
            off = (i * 7919 * 13) % BLOCK_SIZE
            yield view[off:off + n]
            sent += n
            i += 1


def write_ready(path):
    """Atomically create the readiness file (write + rename) so a poller never sees half of it."""
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("ready\n")
    os.replace(tmp, path)


def set_linger_abort(sock):
    """SO_LINGER {on, 0}: close() then sends a RST instead of a FIN (tcp_send_active_reset)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def make_client(args):
    """A socket bound to an ephemeral port first, so the result can name the client port
    even when connect() fails (the events are matched on it)."""
    fam = family_of(args.to)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    if args.source:
        s.bind((args.source, args.source_port))
    else:
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", args.source_port))
    return s


def sport_of(sock):
    try:
        return sock.getsockname()[1]
    except OSError:
        return None


def recv_line(sock, limit=4096):
    """Read up to a newline (or EOF, or limit bytes)."""
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        d = sock.recv(limit - len(buf))
        if not d:
            break
        buf += d
    return buf


# ---------------------------------------------------------------------------------------------
# servers

def serve_one(mode, conn, peer, args):
    """Handle one accepted connection; returns (ok, result)."""
    conn.settimeout(args.timeout)
    res = {"peer": peer[0], "peer_port": peer[1], "mode": mode}
    try:
        if mode == "bulk-sink":
            h = hashlib.sha256()
            n = 0
            while True:
                d = conn.recv(1 << 18)
                if not d:
                    break
                h.update(d)
                n += len(d)
            res.update(bytes=n, sha256=h.hexdigest())
            conn.sendall((json.dumps({"bytes": n, "sha256": h.hexdigest()}) + "\n").encode())
            conn.shutdown(socket.SHUT_WR)
            conn.close()
            return True, res
        if mode == "echo":
            n = 0
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                conn.sendall(d)
                n += len(d)
            res.update(bytes=n)
            conn.close()
            return True, res
        if mode == "linger-abort":
            # Read the request, answer it, give the client time to acknowledge the answer, then
            # abort: the kernel sends RST/ACK with seq = SND.NXT. Answering first keeps this
            # apart from a close with unread data (a RST as the first reaction to data just
            # received looks the same on the wire); waiting for the ACK keeps it to one RST
            # (an ACK reaching the aborted socket would get a second, passive RST).
            req = recv_line(conn)
            res.update(request_bytes=len(req))
            if args.reply:
                conn.sendall(REPLY)
            if args.pause > 0:
                time.sleep(args.pause)
            set_linger_abort(conn)
            conn.close()
            return len(req) > 0, res
        if mode == "unread-close":
            # Read only part of what the client sent, then close normally: with unread data in
            # the receive queue the kernel sends a RST instead of a FIN (RFC 2525).
            got = 0
            while got < args.read_bytes:
                d = conn.recv(args.read_bytes - got)
                if not d:
                    break
                got += len(d)
            res.update(read_bytes=got)
            if args.settle > 0:
                time.sleep(args.settle)  # let the rest of the client's data arrive unread
            conn.close()
            return got > 0, res
        if mode == "expect-abort":
            # Answer the request, then read (whatever the client still sends) until the
            # client's SO_LINGER 0 abort: ECONNRESET.
            req = recv_line(conn)
            res.update(request_bytes=len(req))
            if req:
                conn.sendall(REPLY)
            extra = 0
            ok = False
            try:
                while True:
                    d = conn.recv(4096)
                    if not d:
                        res.update(outcome="eof")
                        break
                    extra += len(d)
            except ConnectionResetError as e:
                res.update(outcome="reset", error=err_name(e))
                ok = True
            res.update(extra_bytes=extra)
            conn.close()
            return ok, res
        if mode == "keep-open":
            # Hold the connection without reading for --hold seconds (or until the peer goes).
            end = time.monotonic() + args.hold
            conn.settimeout(0.2)
            outcome = "held"
            while time.monotonic() < end:
                try:
                    d = conn.recv(65536, socket.MSG_PEEK)
                    if not d:
                        outcome = "eof"
                        break
                    time.sleep(0.2)
                except socket.timeout:
                    continue
                except ConnectionResetError as e:
                    outcome = "reset"
                    res.update(error=err_name(e))
                    break
            res.update(outcome=outcome)
            conn.close()
            return True, res
        raise ValueError("unknown mode " + mode)
    except OSError as e:
        res.update(error=err_name(e))
        try:
            conn.close()
        except OSError:
            pass
        return False, res


def cmd_serve(args):
    ls = listen_on(args.bind, args.port)
    ls.settimeout(args.accept_timeout)
    write_ready(args.ready_file)
    all_ok = True
    for _ in range(args.count):
        try:
            conn, peer = ls.accept()
        except OSError as e:
            emit({"cmd": "serve", "mode": args.mode, "ok": False, "error": "accept: " + err_name(e)})
            return False, None
        ok, res = serve_one(args.mode, conn, peer, args)
        res.update(cmd="serve", ok=ok)
        emit(res)
        all_ok = all_ok and ok
    ls.close()
    return all_ok, None


# ---------------------------------------------------------------------------------------------
# clients

def cmd_bulk(args):
    """Send --bytes of the deterministic stream, half-close, and check the server's digest."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "bytes": args.bytes}
    stream = Stream(args.bytes)
    h = hashlib.sha256()
    sent = 0
    t0 = time.monotonic()
    last_progress = 0.0
    try:
        s.connect((args.to, args.port))
        res["sport"] = sport_of(s)
        for c in stream.chunks():
            s.sendall(c)
            h.update(c)
            sent += len(c)
            now = time.monotonic()
            if args.rate > 0:
                # Pace to --rate bytes/s so the transfer lasts a known time.
                ahead = sent / args.rate - (now - t0)
                if ahead > 0:
                    time.sleep(ahead)
            if args.progress_file and now - last_progress >= 0.1:
                with open(args.progress_file + ".tmp", "w") as f:
                    f.write("%d\n" % sent)
                os.replace(args.progress_file + ".tmp", args.progress_file)
                last_progress = now
        s.shutdown(socket.SHUT_WR)
        report = recv_line(s, 1 << 16)
        s.close()
    except OSError as e:
        res.update(ok=False, sent=sent, error=err_name(e), sport=res.get("sport") or sport_of(s))
        return False, res
    dt = time.monotonic() - t0
    res.update(sent=sent, sha256=h.hexdigest(), seconds=round(dt, 3),
               mbit_s=round(sent * 8 / dt / 1e6, 1) if dt > 0 else None)
    try:
        rep = json.loads(report.decode())
    except ValueError:
        res.update(error="bad report from server: %r" % report[:200])
        return False, res
    res.update(server_bytes=rep.get("bytes"), server_sha256=rep.get("sha256"))
    ok = rep.get("bytes") == args.bytes and rep.get("sha256") == h.hexdigest()
    return ok, res


def connect_failing(args, expected, outcome, with_error):
    """Connect and expect the attempt to fail with exception class expected: ok then, with
    outcome (and the error's name when with_error) in the result; a connection that succeeds
    or fails otherwise is not ok."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    try:
        s.connect((args.to, args.port))
        res.update(outcome="connected")
        s.close()
        return False, res
    except expected as e:
        res.update(outcome=outcome)
        if with_error:
            res.update(error=err_name(e))
        return True, res
    except OSError as e:
        res.update(outcome="other", error=err_name(e))
        return False, res


def cmd_connect_refused(args):
    """Connect to a port with no listener: the server's kernel answers RST/ACK -> ECONNREFUSED."""
    return connect_failing(args, ConnectionRefusedError, "refused", True)


def cmd_connect_timeout(args):
    """Connect and expect no answer at all (the path drops packets): ok on a timeout."""
    return connect_failing(args, socket.timeout, "timeout", False)


def cmd_expect_reset(args):
    """Against a linger-abort server: send the request, read what comes (the reply), and
    expect ECONNRESET."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    got = b""
    try:
        s.connect((args.to, args.port))
        s.sendall(REQUEST)
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
            res.update(reply_bytes=len(got))
        # EOF: the server closed normally (FIN), which is not what this checks. (Sending more
        # to provoke a RST would be another kind of RST, so that is not tried.)
        res.update(outcome="eof")
        return False, res
    except ConnectionResetError as e:
        res.update(outcome="reset", error=err_name(e))
        return True, res
    except OSError as e:
        res.update(outcome="other", error=err_name(e))
        return False, res
    finally:
        s.close()


def cmd_linger_abort_client(args):
    """Client-side abort: request, wait for the reply (so the flow is established with data both
    ways), send a last message ("QUIT", like a health checker), give the server time to
    acknowledge it, then close with SO_LINGER 0 -> the client's kernel sends RST/ACK.
    The last message keeps this apart from a close with unread data (a RST as the first
    reaction to the reply would look like that); the pause keeps it to one RST."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    try:
        s.connect((args.to, args.port))
        s.sendall(REQUEST)
        rep = recv_line(s)
        res.update(reply_bytes=len(rep))
        if args.bye:
            s.sendall(b"QUIT\r\n")
        if args.pause > 0:
            time.sleep(args.pause)
        set_linger_abort(s)
        s.close()
        res.update(outcome="aborted")
        return rep == REPLY, res
    except OSError as e:
        res.update(outcome="other", error=err_name(e))
        s.close()
        return False, res


def cmd_echo_client(args):
    """Rounds of request/echo with --idle seconds of silence between them; reports how the
    connection fared (for idle-eviction scenarios). ok when every round was echoed."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s), "rounds_done": 0}
    try:
        s.connect((args.to, args.port))
        for i in range(args.rounds):
            if i > 0 and args.idle > 0:
                time.sleep(args.idle)
            msg = b"round %d\n" % i
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = s.recv(len(msg) - len(got))
                if not d:
                    raise ConnectionAbortedError(errno.ECONNABORTED, "EOF")
                got += d
            if got != msg:
                res.update(outcome="corrupt")
                return False, res
            res["rounds_done"] = i + 1
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        res.update(outcome="done")
        return True, res
    except OSError as e:
        res.update(outcome="error", error=err_name(e))
        s.close()
        return False, res


# ---------------------------------------------------------------------------------------------
# scenario endpoints of forged.sh and causes.sh (forged-RST injection and the RST cause taxonomy)

TRIGGER_PATH = "/forbidden"


def errno_name(exc):
    """errno name of an OSError; a Python socket timeout (no errno) is "socket-timeout", kept
    apart from a kernel ETIMEDOUT (keepalive or retransmission timeout), which has errno 110."""
    code = getattr(exc, "errno", None)
    if code is None:
        return "socket-timeout" if isinstance(exc, socket.timeout) else type(exc).__name__
    return errno.errorcode.get(code, str(code))


def stream_digest(nbytes, seed):
    h = hashlib.sha256()
    for c in Stream(nbytes, seed).chunks():
        h.update(c)
    return h.hexdigest()


def cmd_slow_serve(args):
    """The slow server of the injection scenarios. Per connection: answer "PING n" lines with
    "PONG n" (so that both senders show a few packets: TTL, IP ID and DF baselines), and a
    "GET <path>" line, after --delay seconds (so an on-path injector always beats the answer),
    with --bytes of the deterministic stream (seed --seed); then half-close and wait for the
    client's EOF. Reports how far it got: outcome "sent" (all sent, client closed), or the
    error that stopped it (ECONNRESET / EPIPE when a RST killed the connection)."""
    ls = listen_on(args.bind, args.port)
    ls.settimeout(args.accept_timeout)
    write_ready(args.ready_file)
    all_ok = True
    for _ in range(args.count):
        try:
            conn, peer = ls.accept()
        except OSError as e:
            emit({"cmd": "slow-serve", "ok": False, "error": "accept: " + errno_name(e)})
            return False, None
        conn.settimeout(args.timeout)
        res = {"cmd": "slow-serve", "peer": peer[0], "peer_port": peer[1], "pings": 0, "sent": 0,
               "request": None, "outcome": None}
        buf = b""
        try:
            while res["request"] is None:
                d = conn.recv(4096)
                if not d:
                    res["outcome"] = "eof-before-request"
                    break
                buf += d
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip()
                    if line.startswith(b"PING"):
                        conn.sendall(b"PONG" + line[4:] + b"\n")
                        res["pings"] += 1
                    elif line.startswith(b"GET "):
                        res["request"] = line.decode(errors="replace")
                        break
            if res["request"] is not None:
                time.sleep(args.delay)
                for c in Stream(args.bytes, args.seed).chunks():
                    conn.sendall(c)
                    res["sent"] += len(c)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
                res["outcome"] = "sent"
        except OSError as e:
            res["outcome"] = errno_name(e)
        conn.close()
        ok = res["outcome"] == "sent" if args.expect == "sent" else res["outcome"] is not None
        res["ok"] = ok
        emit(res)
        all_ok = all_ok and ok
    ls.close()
    return all_ok, None


def cmd_fetch(args):
    """Client of slow-serve: --pings ping-pongs, then "GET <path>", then read the answer to
    EOF and check its length and sha256 (the stream of --bytes, seed --seed). outcome:
    "complete" (intact answer and a normal FIN close), "reset" (ECONNRESET), "short",
    "corrupt", or another error. ok when the outcome is --expect."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s), "received": 0}
    h = hashlib.sha256()
    try:
        s.connect((args.to, args.port))
        res["sport"] = sport_of(s)
        for i in range(args.pings):
            s.sendall(b"PING %d\n" % i)
            want = b"PONG %d\n" % i
            got = b""
            while len(got) < len(want):
                d = s.recv(len(want) - len(got))
                if not d:
                    raise ConnectionAbortedError(errno.ECONNABORTED, "EOF during pings")
                got += d
            if got != want:
                res.update(outcome="corrupt", error="bad pong %r" % got)
                return False, res
            if args.ping_gap > 0:
                time.sleep(args.ping_gap)
        s.sendall(("GET %s HTTP/1.0\n" % args.path).encode())
        res["request_sent"] = True
        while True:
            d = s.recv(1 << 18)
            if not d:
                break
            h.update(d)
            res["received"] += len(d)
        s.close()
    except OSError as e:
        res.update(outcome="reset" if isinstance(e, ConnectionResetError) else "error",
                   error=errno_name(e))
        s.close()
        return args.expect == res["outcome"], res
    digest = h.hexdigest()
    res.update(sha256=digest)
    if res["received"] != args.bytes:
        res.update(outcome="short")
    elif digest != stream_digest(args.bytes, args.seed):
        res.update(outcome="corrupt")
    else:
        res.update(outcome="complete")
    return args.expect == res["outcome"], res


def cmd_send_expect_reset(args):
    """Send --bytes at once, then read: against a server that reads only part of it and closes
    (unread data), the client gets ECONNRESET. outcome: reset / eof / the error."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    try:
        s.connect((args.to, args.port))
        s.sendall(Stream(args.bytes).block[:args.bytes])
        res["sent"] = args.bytes
        while True:
            d = s.recv(4096)
            if not d:
                res.update(outcome="eof")
                break
    except OSError as e:
        res.update(outcome="reset" if isinstance(e, ConnectionResetError) else "error",
                   error=errno_name(e))
    s.close()
    return res["outcome"] == "reset", res


def cmd_send_after_fin(args):
    """Send the request, read until the server's FIN, then keep sending (--sends messages,
    --gap s apart): the server has closed fully, so its kernel answers with a RST and a later
    send fails (EPIPE on Linux: the RST hit a CLOSE_WAIT socket). outcome: the errno name of
    the first failed send, or "all-sent"."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s), "sends_ok": 0}
    try:
        s.connect((args.to, args.port))
        s.sendall(REQUEST)
        while True:
            d = s.recv(4096)
            if not d:
                break
        res["fin"] = True
    except OSError as e:
        res.update(outcome="error-before-fin", error=errno_name(e))
        s.close()
        return False, res
    try:
        for _ in range(args.sends):
            s.sendall(b"more data after your FIN\n")
            res["sends_ok"] += 1
            time.sleep(args.gap)
        res.update(outcome="all-sent")
    except OSError as e:
        res.update(outcome=errno_name(e))
    s.close()
    return res["outcome"] == args.expect, res


def cmd_connect_giveup(args):
    """Connect, but give up after --give-up seconds (the application's connect timeout) and
    close the half-open socket; when the SYN-ACK comes later, the kernel answers it with a
    RST (no socket). outcome: "gave-up" or what happened instead."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    s.settimeout(args.give_up)
    try:
        s.connect((args.to, args.port))
        res.update(outcome="connected")
    except socket.timeout as e:
        res.update(outcome="gave-up" if getattr(e, "errno", None) is None else errno_name(e))
    except OSError as e:
        res.update(outcome=errno_name(e))
    s.close()
    return res["outcome"] == "gave-up", res


def cmd_keepalive_client(args):
    """Connect, send the request, let it be acknowledged, write --ready-file ("sport N"), wait
    for --go-file (the test makes the server vanish meanwhile), then turn on keepalive
    (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT) and wait in recv: with the peer gone, the probes go
    unanswered and the kernel resets the connection, recv failing with ETIMEDOUT."""
    s = make_client(args)
    res = {"to": args.to, "port": args.port, "sport": sport_of(s)}
    try:
        s.connect((args.to, args.port))
        res["sport"] = sport_of(s)
        s.sendall(REQUEST)
        time.sleep(0.2)
        # The ready file names the client port (the test needs it for its firewall rules).
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("sport %d\n" % res["sport"])
        os.replace(args.ready_file + ".tmp", args.ready_file)
        end = time.monotonic() + args.go_timeout
        while not os.path.exists(args.go_file):
            if time.monotonic() > end:
                res.update(outcome="no-go")
                s.close()
                return False, res
            time.sleep(0.02)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, args.idle)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, args.intvl)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, args.cnt)
        t0 = time.monotonic()
        d = s.recv(4096)
        res.update(outcome="data" if d else "eof")
    except OSError as e:
        res.update(outcome=errno_name(e))
        if "t0" in locals():
            res["after_s"] = round(time.monotonic() - t0, 2)
    s.close()
    return res["outcome"] == "ETIMEDOUT", res


def cmd_listen(args):
    """Listen for --seconds, accept and close whatever comes; reports how many."""
    ls = listen_on(args.bind, args.port)
    write_ready(args.ready_file)
    end = time.monotonic() + args.seconds
    accepted = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        ls.settimeout(left)
        try:
            c, _ = ls.accept()
            accepted += 1
            c.close()
        except socket.timeout:
            break
    ls.close()
    return True, {"bind": args.bind, "port": args.port, "accepted": accepted}

# ---------------------------------------------------------------------------------------------

def add_client_opts(p):
    p.add_argument("--to", required=True, help="server address")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="", help="local address to bind")
    p.add_argument("--source-port", type=int, default=0)


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=10.0, help="per-socket-operation timeout (s)")
    ap.add_argument("--deadline", type=float, default=60.0, help="whole-process alarm (s)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("serve", help="listen and handle --count connections in --mode")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", required=True,
                   choices=["bulk-sink", "echo", "linger-abort", "unread-close", "expect-abort",
                            "keep-open"])
    p.add_argument("--count", type=int, default=1, help="connections to serve, one after another")
    p.add_argument("--ready-file", default="", help="written once the socket listens")
    p.add_argument("--accept-timeout", type=float, default=30.0)
    p.add_argument("--read-bytes", type=int, default=4096, help="unread-close: bytes to read")
    p.add_argument("--settle", type=float, default=0.3, help="unread-close: wait before close")
    p.add_argument("--hold", type=float, default=10.0, help="keep-open: seconds to hold")
    p.add_argument("--no-reply", dest="reply", action="store_false",
                   help="linger-abort: abort right after reading the request, no answer")
    p.add_argument("--pause", type=float, default=0.3,
                   help="linger-abort: seconds between the answer and the abort")

    p = sub.add_parser("bulk", help="send --bytes, check the server's sha256")
    add_client_opts(p)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--rate", type=float, default=0, help="pace to this many bytes/s (0: no limit)")
    p.add_argument("--progress-file", default="", help="bytes sent so far, updated every 0.1 s")

    for name, hlp in (("connect-refused", "expect ECONNREFUSED"),
                      ("connect-timeout", "expect no answer (timeout)"),
                      ("expect-reset", "request, then expect ECONNRESET")):
        add_client_opts(sub.add_parser(name, help=hlp))

    p = sub.add_parser("linger-abort-client", help="request, reply, QUIT, abort with SO_LINGER 0")
    add_client_opts(p)
    p.add_argument("--no-bye", dest="bye", action="store_false",
                   help="abort right after the reply, without the last message")
    p.add_argument("--pause", type=float, default=0.3,
                   help="seconds between the last message and the abort")

    p = sub.add_parser("echo-client", help="echo rounds with idle gaps")
    add_client_opts(p)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--idle", type=float, default=0.0)

    # scenario endpoints of forged.sh and causes.sh
    p = sub.add_parser("slow-serve", help="PING/PONG, then answer GET after --delay with --bytes")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--ready-file", default="")
    p.add_argument("--accept-timeout", type=float, default=30.0)
    p.add_argument("--delay", type=float, default=0.4, help="seconds between request and answer")
    p.add_argument("--bytes", type=int, default=200000)
    p.add_argument("--seed", type=int, default=SEED + 1)
    p.add_argument("--expect", choices=["sent", "any"], default="any",
                   help="sent: ok only when the whole answer went out and the client closed")

    p = sub.add_parser("fetch", help="PING/PONG, GET, read the answer, check its sha256")
    add_client_opts(p)
    p.add_argument("--pings", type=int, default=5)
    p.add_argument("--ping-gap", type=float, default=0.0)
    p.add_argument("--path", default=TRIGGER_PATH)
    p.add_argument("--bytes", type=int, default=200000)
    p.add_argument("--seed", type=int, default=SEED + 1)
    p.add_argument("--expect", choices=["complete", "reset"], default="complete")

    p = sub.add_parser("send-expect-reset", help="send --bytes, expect ECONNRESET (unread data)")
    add_client_opts(p)
    p.add_argument("--bytes", type=int, default=5000)

    p = sub.add_parser("send-after-fin", help="request, wait for FIN, send more: expect EPIPE")
    add_client_opts(p)
    p.add_argument("--sends", type=int, default=5)
    p.add_argument("--gap", type=float, default=0.1)
    p.add_argument("--expect", default="EPIPE")

    p = sub.add_parser("connect-giveup", help="connect with a short timeout, then close")
    add_client_opts(p)
    p.add_argument("--give-up", type=float, default=0.5)

    p = sub.add_parser("keepalive-client", help="request, then keepalive until ETIMEDOUT")
    add_client_opts(p)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--go-file", required=True)
    p.add_argument("--go-timeout", type=float, default=10.0)
    p.add_argument("--idle", type=int, default=1)
    p.add_argument("--intvl", type=int, default=1)
    p.add_argument("--cnt", type=int, default=2)

    p = sub.add_parser("listen", help="listen for --seconds, accept and close")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--ready-file", default="")
    return ap


COMMANDS = {
    "serve": cmd_serve,
    "bulk": cmd_bulk,
    "connect-refused": cmd_connect_refused,
    "connect-timeout": cmd_connect_timeout,
    "expect-reset": cmd_expect_reset,
    "linger-abort-client": cmd_linger_abort_client,
    "echo-client": cmd_echo_client,
    "slow-serve": cmd_slow_serve,
    "fetch": cmd_fetch,
    "send-expect-reset": cmd_send_expect_reset,
    "send-after-fin": cmd_send_after_fin,
    "connect-giveup": cmd_connect_giveup,
    "keepalive-client": cmd_keepalive_client,
    "listen": cmd_listen,
}


def main(argv):
    args = build_parser().parse_args(argv)

    def on_alarm(_sig, _frm):
        emit({"cmd": args.cmd, "ok": False, "error": "deadline of %gs exceeded" % args.deadline})
        os._exit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.deadline)
    ok, res = COMMANDS[args.cmd](args)
    if res is not None:
        res.update(cmd=args.cmd, ok=bool(ok))
        emit(res)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
