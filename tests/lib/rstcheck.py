#!/usr/bin/python3
"""rstcheck: judge one scenario of forged.sh / causes.sh against rstguard's events.

    rstcheck.py forged  --events EV --inject INJ.json --mode detect|enforce --scenario NAME
                        --evidence SPEC [--genuine-min N] [--genuine-max N]
                        [--genuine-cause CAUSE] [--results FILE] [--wait S] [--settle S]
    rstcheck.py genuine --events EV --client IP --cport N --server IP --sport N
                        --cause CAUSE --from client|server --mode detect|enforce
                        --scenario NAME [--state STATE] [--count N] [--results FILE]
                        [--wait S] [--settle S]

Each prints a fixed number of checks (forged: 6, or 1 with --only-genuine; genuine: 2), each
a line "PASS<TAB>what" or "FAIL<TAB>what" followed by "DIAG<TAB>text" lines, which the shell turns into TAP points
(rg_check in tests/lib/rstcase.sh), so the plan of a test does not depend on what the daemon
did. It first waits (bounded, --wait seconds) for
the events it needs, then --settle seconds more for late ones.

It also appends one line per RST of the scenario to --results (JSON lines, read by
tests/confusion.py): {"test", "scenario", "mode", "family", "role" (injected/genuine),
"expected_forged", "expected_cause", "observed_forged", "observed_cause", "verdict",
"evidence", "score", "apparent_cause", "direction"}. A RST that should have an event but has
none is written with observed_cause "missing" (observed_forged null).

forged: the injected RSTs are the {"injected": ...} lines of tests/lib/inject.py's output;
each is matched to the rst event with the same endpoints, seq, ack, flags, TTL (and IP ID).
SPEC lists, per injected RST in order and separated by "|", the evidence names its event must
show (comma-separated); a name prefixed with "-" must be absent ("ipid,-ttl,-df"). A single
SPEC item applies to every injected RST. Every other RST event of the same connection is
genuine (the endpoints' own stacks): never forged, never dropped, expected cause
--genuine-cause, and there must be between --genuine-min and --genuine-max of them.
"""

import argparse
import json
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, __file__.rsplit("/", 1)[0])
import evq  # noqa: E402  (tests/lib/evq.py)


def emit(ok, desc, diag=()):
    """One check: "PASS<TAB>desc" or "FAIL<TAB>desc", then "DIAG<TAB>line" for each line."""
    out = ["%s\t%s" % ("PASS" if ok else "FAIL", desc.replace("\n", " "))]
    for d in diag:
        out += ["DIAG\t%s" % x for x in str(d).split("\n")]
    print("\n".join(out))
    sys.stdout.flush()


def short(ev):
    """One line per rst event for diagnostics."""
    if ev is None:
        return "(no event)"
    r = ev.get("rst", {})
    return ("%s:%s -> %s:%s %s seq=%s ack=%s ttl=%s ipid=%s cause=%s forged=%s evidence=%s "
            "score=%s verdict=%s would_drop=%s held=%s state=%s seq_check=%s" % (
                ev.get("src_ip"), ev.get("src_port"), ev.get("dest_ip"), ev.get("dest_port"),
                r.get("flags"), r.get("seq"), r.get("ack"), r.get("ttl"), r.get("ipid"),
                r.get("cause"), r.get("forged"), ",".join(r.get("evidence", [])), r.get("score"),
                ev.get("verdict"), r.get("would_drop"), r.get("held"), r.get("state"),
                r.get("seq_check")))


def same_rst(a, b):
    """Two rst events about the same RST packet (a revision repeats the first event's RST)."""
    ra, rb = a.get("rst", {}), b.get("rst", {})
    return (a.get("flow_id") == b.get("flow_id") and a.get("src_ip") == b.get("src_ip") and
            all(ra.get(k) == rb.get(k) for k in ("seq", "ack", "flags", "ttl", "ipid")))


def conn_events(path, a_ip, a_port, b_ip, b_port, etype="rst"):
    """Events of one connection (either direction), in file order. A revised rst event (late
    evidence turned a genuine judgement into forged) takes the place of the event it revises:
    one RST, one final judgement."""
    events, _bad = evq.load(path)
    out = []
    for e in events:
        if e.get("event_type") != etype:
            continue
        k = (e.get("src_ip"), e.get("src_port"), e.get("dest_ip"), e.get("dest_port"))
        if k not in ((a_ip, a_port, b_ip, b_port), (b_ip, b_port, a_ip, a_port)):
            continue
        if etype == "rst" and e.get("rst", {}).get("revised"):
            for i, o in enumerate(out):
                if same_rst(o, e) and not o.get("rst", {}).get("revised"):
                    out[i] = e
                    break
            else:
                out.append(e)
            continue
        out.append(e)
    return out


def append_results(path, rows):
    if not path:
        return
    with open(path, "a") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True) + "\n")


def row(args, role, family, exp_forged, exp_cause, ev):
    r = {"test": args.test, "scenario": args.scenario, "mode": args.mode, "family": family,
         "role": role, "expected_forged": exp_forged, "expected_cause": exp_cause}
    if ev is None:
        r.update(observed_forged=None, observed_cause="missing", verdict=None)
        return r
    rst = ev.get("rst", {})
    r.update(observed_forged=rst.get("forged"), observed_cause=rst.get("cause"),
             verdict=ev.get("verdict"), evidence=rst.get("evidence"), score=rst.get("score"),
             direction=rst.get("direction"), would_drop=rst.get("would_drop"),
             held=rst.get("held"), revised=bool(rst.get("revised")),
             confirmed=rst.get("confirmed"))
    if "apparent_cause" in rst:
        r["apparent_cause"] = rst["apparent_cause"]
    return r


# ---------------------------------------------------------------------------------------------

def load_inject(path):
    injected, final = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "injected" in obj:
                injected.append(obj["injected"])
            elif obj.get("cmd") == "inject":
                final = obj
    return injected, final


def same_packet(ev, inj):
    r = ev.get("rst", {})
    if (ev.get("src_ip"), ev.get("src_port"), ev.get("dest_ip"), ev.get("dest_port")) != \
            (inj["src"], inj["sport"], inj["dst"], inj["dport"]):
        return False
    if r.get("seq") != inj["seq"] or r.get("ack") != inj["ack"] or r.get("ttl") != inj["ttl"]:
        return False
    if r.get("flags") != inj["flags"]:
        return False
    if inj.get("family") == 4 and r.get("ipid") != inj.get("ipid"):
        return False
    return True


def parse_spec(spec, n):
    items = spec.split("|") if spec else [""]
    if len(items) == 1:
        items = items * n
    out = []
    for it in items:
        want, forbid = [], []
        for name in filter(None, (x.strip() for x in it.split(","))):
            (forbid if name.startswith("-") else want).append(name.lstrip("-"))
        out.append((want, forbid))
    return out


def cmd_forged(args):
    injected, final = load_inject(args.inject)
    n_inj = len(injected)
    if final is None or not final.get("ok") or n_inj == 0:
        # The injector failed: every check fails (the plan stays the same).
        why = "injector did not inject: %s" % (json.dumps(final) if final else "no output")
        for d in ("every injected RST has exactly one rst event", "injected RSTs judged forged",
                  "injected RSTs show the expected evidence", "injected RSTs: verdict",
                  "anomaly events", "genuine RSTs"):
            emit(False, d, [why])
        return 1
    trig = final["trigger"]
    cli, cport, srv, sport = trig["src"], trig["sport"], trig["dst"], trig["dport"]
    family = injected[0]["family"]

    # Wait until every injected RST has its event (detect mode: a RST that is not conclusive
    # at once is reported after its wait), then let late genuine RSTs arrive.
    end = time.monotonic() + args.wait
    while True:
        evs = conn_events(args.events, cli, cport, srv, sport)
        if all(any(same_packet(e, i) for e in evs) for i in injected) or time.monotonic() > end:
            break
        time.sleep(0.1)
    time.sleep(args.settle)
    evs = conn_events(args.events, cli, cport, srv, sport)
    anomalies = conn_events(args.events, cli, cport, srv, sport, "anomaly")

    matched, used = [], set()
    diag_all = ["rst events of the connection:"] + ["  " + short(e) for e in evs]
    bad = []
    for i in injected:
        hits = [k for k, e in enumerate(evs) if same_packet(e, i)]
        if len(hits) != 1:
            bad.append("injected %s seq=%s: %d matching events" % (
                i["direction"], i["seq"], len(hits)))
        matched.append(evs[hits[0]] if hits else None)
        used.update(hits)
    genuine = [e for k, e in enumerate(evs) if k not in used]
    rows = [row(args, "injected", family, True, "injected", e) for e in matched]
    rows += [row(args, "genuine", family, False, args.genuine_cause or None, e) for e in genuine]
    append_results(args.results, rows)
    if args.only_genuine:
        check_genuine(args, genuine, diag_all)
        return 0
    emit(not bad, "every injected RST (%d) has exactly one rst event" % n_inj,
         bad + (diag_all if bad else []))

    bad = []
    for i, e in zip(injected, matched):
        r = (e or {}).get("rst", {})
        if e is None or r.get("forged") is not True or r.get("cause") != "injected" or \
                r.get("would_drop") is not True:
            bad.append("%s seq=%s: %s" % (i["direction"], i["seq"], short(e)))
    emit(not bad, "injected RSTs: forged=true, cause=injected, would_drop=true", bad)

    bad = []
    spec = parse_spec(args.evidence, n_inj)
    for k, (i, e) in enumerate(zip(injected, matched)):
        want, forbid = spec[k] if k < len(spec) else spec[-1]
        have = set(((e or {}).get("rst", {})).get("evidence", []))
        missing = [w for w in want if w not in have]
        extra = [f for f in forbid if f in have]
        if e is None or missing or extra:
            bad.append("RST %d (%s seq=%s): evidence %s; missing %s, must not have %s" % (
                k + 1, i["direction"], i["seq"], sorted(have), missing, extra))
    emit(not bad, "injected RSTs show the expected evidence (%s)" % args.evidence, bad)

    want_verdict = "drop" if args.mode == "enforce" else "accept"
    bad = ["%s seq=%s: verdict %s" % (i["direction"], i["seq"], (e or {}).get("verdict"))
           for i, e in zip(injected, matched) if e is None or e.get("verdict") != want_verdict]
    emit(not bad, "injected RSTs: verdict %s (%s mode)" % (want_verdict, args.mode), bad)

    # One anomaly per forged RST, from the same claimed sender.
    bad = []
    for d in ("toclient", "toserver"):
        n_want = sum(1 for i in injected if i["direction"] == d)
        src = srv if d == "toclient" else cli
        n_got = sum(1 for a in anomalies if a.get("src_ip") == src and
                    a.get("anomaly", {}).get("event") == "stream.suspected_rst_inject")
        if n_got != n_want:
            bad.append("%s: %d anomaly events, want %d" % (d, n_got, n_want))
    emit(not bad, "one anomaly stream.suspected_rst_inject event per injected RST", bad +
         (["anomaly events: %s" % [a.get("_raw") for a in anomalies]] if bad else []))

    check_genuine(args, genuine, diag_all)
    return 0


def check_genuine(args, genuine, diag_all):
    bad = []
    for e in genuine:
        r = e.get("rst", {})
        if r.get("forged") is not False or e.get("verdict") != "accept" or \
                r.get("would_drop") is not False or \
                (args.genuine_cause and r.get("cause") != args.genuine_cause):
            bad.append("genuine: " + short(e))
    if not args.genuine_min <= len(genuine) <= args.genuine_max:
        bad.append("%d genuine RSTs, want %d..%d" % (
            len(genuine), args.genuine_min, args.genuine_max))
    desc = "genuine RSTs of the connection (%d): never forged, never dropped%s" % (
        len(genuine), ", cause %s" % args.genuine_cause if args.genuine_cause else "")
    emit(not bad, desc, bad + (diag_all if bad else []))


def cmd_genuine(args):
    family = 6 if ":" in args.client else 4
    end = time.monotonic() + args.wait
    while time.monotonic() < end:
        evs = conn_events(args.events, args.client, args.cport, args.server, args.sport)
        if len(evs) >= args.count:
            break
        time.sleep(0.1)
    time.sleep(args.settle)
    evs = conn_events(args.events, args.client, args.cport, args.server, args.sport)
    src = args.client if args.sender == "client" else args.server
    diag = ["rst events of the connection %s:%s - %s:%s:" % (
        args.client, args.cport, args.server, args.sport)] + ["  " + short(e) for e in evs]
    from_ok = [e for e in evs if e.get("src_ip") == src]
    ok = len(evs) == args.count and len(from_ok) == args.count
    emit(ok, "%s: exactly %d rst event(s), sent by the %s" % (
        args.scenario, args.count, args.sender), [] if ok else diag)
    bad = []
    for e in evs:
        r = e.get("rst", {})
        if r.get("cause") != args.cause or r.get("forged") is not False or \
                e.get("verdict") != "accept" or r.get("would_drop") is not False or \
                (args.state and r.get("state") != args.state):
            bad.append(short(e))
    if not evs:
        bad.append("no rst event")
    emit(not bad, "%s: cause=%s%s, forged=false, would_drop=false, verdict=accept" % (
        args.scenario, args.cause, ", state=" + args.state if args.state else ""), bad)
    rows = [row(args, "genuine", family, False, args.cause, e) for e in evs]
    if len(evs) < args.count:
        rows += [row(args, "genuine", family, False, args.cause, None)] * (args.count - len(evs))
    append_results(args.results, rows)
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("forged", "genuine"):
        p = sub.add_parser(name)
        p.add_argument("--events", required=True)
        p.add_argument("--mode", choices=["detect", "enforce"], required=True)
        p.add_argument("--scenario", required=True)
        p.add_argument("--test", default="", help="the test's name, for the results")
        p.add_argument("--results", default="")
        p.add_argument("--wait", type=float, default=5.0)
        p.add_argument("--settle", type=float, default=0.5)
        if name == "forged":
            p.add_argument("--inject", required=True)
            p.add_argument("--evidence", default="")
            p.add_argument("--genuine-min", type=int, default=0)
            p.add_argument("--genuine-max", type=int, default=1000)
            p.add_argument("--genuine-cause", default="")
            p.add_argument("--only-genuine", action="store_true",
                           help="print only the genuine-RST check (1 point); still record all")
        else:
            p.add_argument("--client", required=True)
            p.add_argument("--cport", type=int, required=True)
            p.add_argument("--server", required=True)
            p.add_argument("--sport", type=int, required=True)
            p.add_argument("--cause", required=True)
            p.add_argument("--from", dest="sender", choices=["client", "server"], required=True)
            p.add_argument("--count", type=int, default=1)
            p.add_argument("--state", default="", help="the state the RST must interrupt")
    args = ap.parse_args(argv)
    return cmd_forged(args) if args.cmd == "forged" else cmd_genuine(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
