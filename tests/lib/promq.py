#!/usr/bin/python3
"""promq: the metrics end-to-end test's HTTP and exposition helper (standard library only).

  promq.py get URL [--method M] [--out FILE]
      one request; prints {"status": N, "content_type": "..."} and writes the body to FILE.
  promq.py value FILE NAME [LABEL=VALUE ...]
      the value of the sample NAME{labels} in the exposition FILE ('-': stdin), as an integer
      when it is one; exit 1 when there is no such sample, 2 when several match.
  promq.py wait URL_OR_FILE NAME [LABEL=VALUE ...] --want V [--timeout S]
      poll (every 0.2 s, at most S seconds) the exposition (an http:// URL or a file) until the
      sample equals V; prints {"ok": ..., "got": ..., "waited_s": ...}; exit 0 when it did.
  promq.py hostile HOST PORT
      hostile clients: more idle connections than the listener takes, a request with 64 KiB of
      headers, a request line of garbage; then an ordinary GET /metrics. Prints what each got
      and {"ok": ...}: ok when the oversized and garbage requests got no 200 and the GET after
      them did.
  promq.py query PROM_URL EXPR --want V [--timeout S]
      poll Prometheus' HTTP API (/api/v1/query) until the instant query EXPR gives one sample of
      value V; prints {"ok": ..., "got": ..., "result": ...}.
"""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse(text):
    """[(name, {labels}, value string)] of the exposition's samples."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise ValueError("bad exposition line: %r" % line)
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = LABEL.match(rest, pos)
            if not lm:
                raise ValueError("bad labels: %r" % line)
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        out.append((m.group(1), labels, m.group(3)))
    return out


def number(s):
    f = float(s)
    return int(f) if f == int(f) else f


def find(text, name, want_labels):
    hits = [v for n, l, v in parse(text)
            if n == name and all(l.get(k) == v for k, v in want_labels.items())]
    if len(hits) != 1:
        return None, len(hits)
    return number(hits[0]), 1


def labels_of(pairs):
    d = {}
    for p in pairs:
        k, _, v = p.partition("=")
        d[k] = v
    return d


def fetch(url, method="GET", timeout=3.0):
    req = urllib.request.Request(url, method=method, data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace")


def read_source(src):
    if src.startswith("http://"):
        return fetch(src)[2]
    with open(src) as f:
        return f.read()


def cmd_get(a):
    try:
        status, ctype, body = fetch(a.url, a.method)
    except OSError as e:
        print(json.dumps({"status": 0, "error": str(e)}))
        return 1
    if a.out:
        with open(a.out, "w") as f:
            f.write(body)
    print(json.dumps({"status": status, "content_type": ctype}))
    return 0


def cmd_value(a):
    text = sys.stdin.read() if a.file == "-" else open(a.file).read()
    v, n = find(text, a.name, labels_of(a.labels))
    if n != 1:
        return 1 if n == 0 else 2
    print(v)
    return 0


def cmd_wait(a):
    want = number(a.want)
    t0 = time.monotonic()
    got = None
    while True:
        try:
            got, _ = find(read_source(a.src), a.name, labels_of(a.labels))
        except (OSError, ValueError) as e:
            got = "error: %s" % e
        if got == want or time.monotonic() - t0 >= a.timeout:
            break
        time.sleep(0.2)
    print(json.dumps({"ok": got == want, "got": got, "waited_s": round(time.monotonic() - t0, 1)}))
    return 0 if got == want else 1


def raw_request(host, port, data, timeout=5.0):
    """Send data on a fresh connection; the status code of the answer, 0 when none."""
    import socket
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while len(got) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        got = b""
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return int(m.group(1)) if m else 0


def cmd_hostile(a):
    import socket
    res = {}
    idle = []
    for _ in range(40):
        try:
            idle.append(socket.create_connection((a.host, a.port), timeout=2))
        except OSError:
            break
    res["idle_opened"] = len(idle)
    for s in idle:
        s.close()
    time.sleep(0.3)
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 65536 + b"\r\n\r\n"
    res["oversized"] = raw_request(a.host, a.port, big)
    res["garbage"] = raw_request(a.host, a.port, b"\x00\xff\x16\x03 not http at all\r\n\r\n")
    res["after"] = raw_request(a.host, a.port, b"GET /metrics HTTP/1.0\r\n\r\n")
    res["ok"] = res["oversized"] != 200 and res["garbage"] != 200 and res["after"] == 200
    print(json.dumps(res))
    return 0 if res["ok"] else 1


def cmd_query(a):
    want = number(a.want)
    t0 = time.monotonic()
    got, result = None, None
    url = a.prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": a.expr})
    while True:
        try:
            status, _, body = fetch(url)
            d = json.loads(body)
            result = d.get("data", {}).get("result")
            got = number(result[0]["value"][1]) if status == 200 and result and len(result) == 1 else None
        except (OSError, ValueError, KeyError, IndexError) as e:
            got, result = None, "error: %s" % e
        if got == want or time.monotonic() - t0 >= a.timeout:
            break
        time.sleep(0.5)
    print(json.dumps({"ok": got == want, "got": got, "result": result,
                      "waited_s": round(time.monotonic() - t0, 1)}))
    return 0 if got == want else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("get")
    p.add_argument("url")
    p.add_argument("--method", default="GET")
    p.add_argument("--out", default="")
    p = sub.add_parser("value")
    p.add_argument("file")
    p.add_argument("name")
    p.add_argument("labels", nargs="*")
    p = sub.add_parser("wait")
    p.add_argument("src")
    p.add_argument("name")
    p.add_argument("labels", nargs="*")
    p.add_argument("--want", required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    p = sub.add_parser("hostile")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p = sub.add_parser("query")
    p.add_argument("prom")
    p.add_argument("expr")
    p.add_argument("--want", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    return {"get": cmd_get, "value": cmd_value, "wait": cmd_wait, "query": cmd_query,
            "hostile": cmd_hostile}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
