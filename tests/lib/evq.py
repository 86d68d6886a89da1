#!/usr/bin/python3
"""evq: query and validate rstguard's JSON-lines event files (for the shell tests).

    evq.py count FILE [FILTER...]       number of events matching every filter
    evq.py show FILE [FILTER...]        the matching lines, as written
    evq.py get FILE FIELD [FILTER...]   FIELD (dotted path) of each matching event, one per line
    evq.py validate FILE                every line is an event of the documented shape
    evq.py summary FILE                 one short human line per event (for TAP diagnostics)

FILTER: PATH=VALUE, PATH!=VALUE, PATH>=NUMBER, PATH<=NUMBER, PATH? (present), or a bare
word, short for event_type=WORD. PATH is dotted
(rst.cause, flow.reason). VALUE compares with the JSON value's text: numbers numerically,
booleans as true/false, strings as themselves. A missing file counts as empty. A line that is
not JSON never matches and is reported on stderr (validate fails on it).
"""

import json
import re
import sys

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d{4}$")
RST_CAUSES_KNOWN = None  # causes grow over time: only the type is checked
FLOW_REASONS = {"timeout", "forced", "shutdown", "reused"}
DIRECTIONS = {"toserver", "toclient"}
VERDICTS = {"accept", "drop"}


def load(path):
    """(events, bad_lines): bad_lines are (line number, text) that are not JSON objects."""
    events, bad = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return events, bad
    # A last line without its newline may still be being written: ignore it.
    for n, line in enumerate(lines[:-1], 1):
        if not line.strip():
            bad.append((n, line))
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad.append((n, line))
            continue
        if not isinstance(obj, dict):
            bad.append((n, line))
            continue
        obj["_line"] = n
        obj["_raw"] = line
        events.append(obj)
    return events, bad


def lookup(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return (False, None)
        cur = cur[part]
    return (True, cur)


def text_of(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def same(v, want):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(want) == float(v)
        except ValueError:
            return False
    return text_of(v) == want


FILTER_RE = re.compile(r"^([A-Za-z0-9_.]+)(!=|>=|<=|=|\?)(.*)$", re.S)


def parse_filter(f):
    if re.match(r"^[a-z_]+$", f):
        return "event_type", "=", f  # a bare word names the event type
    m = FILTER_RE.match(f)
    if not m:
        sys.exit("evq: bad filter %r" % f)
    return m.group(1), m.group(2), m.group(3)


def matches(ev, filters):
    for path, op, want in filters:
        present, v = lookup(ev, path)
        if op == "?":
            if not present:
                return False
            continue
        if op == "!=":
            if present and same(v, want):
                return False
            continue
        if not present:
            return False
        if op == "=":
            if not same(v, want):
                return False
        else:
            try:
                x, y = float(v), float(want)
            except (TypeError, ValueError):
                return False
            if op == ">=" and not x >= y:
                return False
            if op == "<=" and not x <= y:
                return False
    return True


def select(path, filter_args):
    events, bad = load(path)
    for n, line in bad:
        print("evq: %s:%d: not a JSON object: %r" % (path, n, line[:120]), file=sys.stderr)
    filters = [parse_filter(f) for f in filter_args]
    return [e for e in events if matches(e, filters)]


def check_type(problems, ev, path, types, allowed=None):
    present, v = lookup(ev, path)
    where = "line %d" % ev["_line"]
    if not present:
        problems.append("%s: %s missing" % (where, path))
        return
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
        problems.append("%s: %s has the wrong type (%r)" % (where, path, v))
        return
    if allowed is not None and v not in allowed:
        problems.append("%s: %s = %r not one of %s" % (where, path, v, sorted(allowed)))


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


EVIDENCE_NAME_RE = re.compile(r"^rstguard-[0-9]{20}-[0-9]+-(rst|eviction)\.pcap$")


def check_evidence(problems, ev, suffix):
    """The top-level evidence field: a path ending in a capture name of ours."""
    v = ev.get("evidence")
    name = v.rsplit("/", 1)[-1] if isinstance(v, str) else ""
    if not isinstance(v, str) or "/" not in v or not EVIDENCE_NAME_RE.match(name) or not name.endswith(suffix):
        problems.append("line %d: bad evidence path %r" % (ev["_line"], v))


def validate(path):
    events, bad = load(path)
    problems = ["line %d: not a JSON object: %r" % (n, line[:120]) for n, line in bad]
    for ev in events:
        where = "line %d" % ev["_line"]
        ts = ev.get("timestamp")
        if not isinstance(ts, str) or not TS_RE.match(ts):
            problems.append("%s: bad timestamp %r" % (where, ts))
        if ev.get("event_type") == "stats":
            continue  # counters, not about one flow: no addresses to check
        fid = ev.get("flow_id")
        if not isinstance(fid, int) or isinstance(fid, bool) or not 0 <= fid < 2 ** 53:
            problems.append("%s: bad flow_id %r" % (where, fid))
        check_type(problems, ev, "event_type", str)
        for k in ("src_ip", "dest_ip"):
            check_type(problems, ev, k, str)
        for k in ("src_port", "dest_port"):
            present, v = lookup(ev, k)
            if not present or not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 65535:
                problems.append("%s: bad %s %r" % (where, k, v))
        check_type(problems, ev, "proto", str, {"TCP"})
        et = ev.get("event_type")
        if et == "rst":
            check_type(problems, ev, "verdict", str, VERDICTS)
            check_type(problems, ev, "rst", dict)
            check_type(problems, ev, "rst.cause", str)
            check_type(problems, ev, "rst.forged", bool)
            check_type(problems, ev, "rst.evidence", list)
            for k in ("rst.ttl", "rst.seq", "rst.ack", "rst.window"):
                check_type(problems, ev, k, int)
            check_type(problems, ev, "rst.flags", str)
            if lookup(ev, "rst.cause")[1] != "no_flow":  # an unknown flow has no state
                check_type(problems, ev, "rst.state", str)
                check_type(problems, ev, "rst.direction", str, DIRECTIONS)
            present, fl = lookup(ev, "rst.flags")
            if present and isinstance(fl, str) and "R" not in fl:
                problems.append("%s: rst.flags %r lacks R" % (where, fl))
            # evidence.dir: the capture's path, only for a forged RST (man/rstguard.8).
            if "evidence" in ev:
                check_evidence(problems, ev, "-rst.pcap")
                if lookup(ev, "rst.forged")[1] is not True:
                    problems.append("%s: evidence path on a RST not judged forged" % where)
        elif et == "eviction" and "evidence" in ev:
            check_evidence(problems, ev, "-eviction.pcap")
        elif et == "flow":
            check_type(problems, ev, "flow", dict)
            check_type(problems, ev, "flow.state", str)
            check_type(problems, ev, "flow.reason", str, FLOW_REASONS)
            for k in ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient"):
                check_type(problems, ev, "flow." + k, int)
            for k in ("start", "end"):
                present, v = lookup(ev, "flow." + k)
                if not present or not isinstance(v, str) or not TS_RE.match(v):
                    problems.append("%s: bad flow.%s %r" % (where, k, v))
            check_type(problems, ev, "flow.age", (int, float))
    for p in problems:
        print("%s: %s" % (path, p))
    return 0 if not problems else 1


def summary_line(ev):
    et = ev.get("event_type")
    head = "%s %s:%s -> %s:%s" % (et, ev.get("src_ip"), ev.get("src_port"),
                                 ev.get("dest_ip"), ev.get("dest_port"))
    if et == "rst":
        r = ev.get("rst", {})
        return "%s cause=%s flags=%s dir=%s state=%s verdict=%s forged=%s" % (
            head, r.get("cause"), r.get("flags"), r.get("direction"), r.get("state"),
            ev.get("verdict"), text_of(r.get("forged")))
    if et == "flow":
        f = ev.get("flow", {})
        return "%s state=%s reason=%s pkts=%s/%s bytes=%s/%s" % (
            head, f.get("state"), f.get("reason"), f.get("pkts_toserver"), f.get("pkts_toclient"),
            f.get("bytes_toserver"), f.get("bytes_toclient"))
    return head


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, path, rest = argv[0], argv[1], argv[2:]
    if cmd == "count":
        print(len(select(path, rest)))
        return 0
    if cmd == "show":
        for e in select(path, rest):
            print(e["_raw"])
        return 0
    if cmd == "get":
        if not rest:
            sys.exit("evq: get needs FIELD")
        for e in select(path, rest[1:]):
            present, v = lookup(e, rest[0])
            print(text_of(v) if present else "")
        return 0
    if cmd == "validate":
        return validate(path)
    if cmd == "summary":
        for e in select(path, rest):
            print(summary_line(e))
        return 0
    sys.exit("evq: unknown command %r" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
