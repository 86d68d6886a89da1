#!/usr/bin/python3
"""confusion: confusion tables of rstguard's end-to-end scenario results.

The scenario tests tests/e2e/forged.sh (injected RSTs) and tests/e2e/causes.sh (genuine RSTs of
real Linux sockets, one per cause) append one JSON line per RST they judged to a results file.
Run the whole scenario suite keeping the results, then print the tables (as root, like every
end-to-end test):

    RG_RESULTS_DIR=/tmp/rgres make check TESTS='tests/e2e/forged.sh tests/e2e/causes.sh' && python3 tests/confusion.py /tmp/rgres/*.jsonl

Each test run writes its own file in $RG_RESULTS_DIR (TEST-DATE-PID.jsonl), so repeated runs
add up; remove the directory to start afresh. Without make: RG_RESULTS_DIR=/tmp/rgres bash
tests/e2e/forged.sh. RG_RESULTS=FILE names one file instead; with neither, a test keeps its
results in its temp dir and prints this table of them as TAP comments at its end.

Result lines: {"test", "scenario", "mode" (detect/enforce), "family", "role" (injected/genuine),
"expected_forged", "expected_cause", "observed_forged", "observed_cause", "verdict", ...};
observed_cause "missing" when the RST had no event at all. expected_cause null: no cause is
expected (not counted in the cause accuracy).

Output: forged/genuine x flagged/not flagged (counts, overall and per mode), the verdicts
(enforce mode must drop exactly the forged RSTs, detect mode nothing), the cause accuracy per
expected cause (expected vs observed), the mismatches, and a one-line summary.

    confusion.py [--by-scenario] [--strict] FILE...

--by-scenario adds one line per scenario and mode. --strict exits 1 when anything is off (a
forged RST not flagged, a genuine one flagged, a missing event, a wrong cause or verdict);
otherwise the exit status is 0 (2 when no result line was read).
"""

import argparse
import collections
import json
import sys


def load(paths):
    rows, bad = [], 0
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        r = json.loads(line)
                    except ValueError:
                        bad += 1
                        continue
                    if isinstance(r, dict) and "expected_forged" in r:
                        r["_file"] = p
                        rows.append(r)
                    else:
                        bad += 1
        except OSError as e:
            print("confusion: %s: %s" % (p, e.strerror), file=sys.stderr)
    return rows, bad


def pct(a, b):
    return "%.1f%%" % (100.0 * a / b) if b else "n/a"


def flagged(r):
    return r.get("observed_forged") is True


def missing(r):
    return r.get("observed_cause") == "missing"


def detection_counts(rows):
    c = collections.Counter()
    for r in rows:
        exp = "forged" if r.get("expected_forged") else "genuine"
        if missing(r):
            c[(exp, "missing")] += 1
        else:
            c[(exp, "flagged" if flagged(r) else "not")] += 1
    return c


def detection_table(title, rows):
    c = detection_counts(rows)
    tp, fn, fm = c[("forged", "flagged")], c[("forged", "not")], c[("forged", "missing")]
    fp, tn, gm = c[("genuine", "flagged")], c[("genuine", "not")], c[("genuine", "missing")]
    out = ["%s: %d RSTs" % (title, len(rows)),
           "  %-22s %9s %12s %9s" % ("", "flagged", "not flagged", "no event"),
           "  %-22s %9d %12d %9d" % ("forged (injected)", tp, fn, fm),
           "  %-22s %9d %12d %9d" % ("genuine", fp, tn, gm),
           "  recall %s, precision %s, false-positive rate %s" % (
               pct(tp, tp + fn + fm), pct(tp, tp + fp), pct(fp, fp + tn + gm))]
    return out, (tp, fn, fm, fp, tn, gm)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--by-scenario", action="store_true")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args(argv)

    rows, bad = load(args.files)
    if bad:
        print("confusion: %d lines were not result lines (skipped)" % bad, file=sys.stderr)
    if not rows:
        print("confusion: no result lines in %s" % " ".join(args.files))
        return 2
    out = []
    lines, (tp, fn, fm, fp, tn, gm) = detection_table("Forged-RST detection", rows)
    out += lines
    modes = sorted({r.get("mode") for r in rows if r.get("mode")})
    for m in modes:
        mr = [r for r in rows if r.get("mode") == m]
        c = detection_counts(mr)
        out.append("  %-8s forged %d/%d flagged, genuine %d/%d flagged, %d without an event" % (
            m + ":", c[("forged", "flagged")],
            c[("forged", "flagged")] + c[("forged", "not")] + c[("forged", "missing")],
            c[("genuine", "flagged")],
            c[("genuine", "flagged")] + c[("genuine", "not")] + c[("genuine", "missing")],
            c[("forged", "missing")] + c[("genuine", "missing")]))

    # Verdicts: enforce drops exactly the forged RSTs it flagged; detect drops nothing; a
    # genuine RST is never dropped.
    out.append("")
    out.append("Verdicts:")
    wrong_verdicts = []
    for m in modes:
        mr = [r for r in rows if r.get("mode") == m and not missing(r)]
        fd = sum(1 for r in mr if r.get("expected_forged") and r.get("verdict") == "drop")
        fn_ = sum(1 for r in mr if r.get("expected_forged"))
        gd = sum(1 for r in mr if not r.get("expected_forged") and r.get("verdict") == "drop")
        gn = sum(1 for r in mr if not r.get("expected_forged"))
        out.append("  %-8s forged dropped %d/%d, genuine dropped %d/%d" % (
            m + ":", fd, fn_, gd, gn))
        for r in mr:
            want = "drop" if (m == "enforce" and flagged(r)) else "accept"
            if r.get("verdict") != want:
                wrong_verdicts.append(r)

    # Cause accuracy.
    out.append("")
    out.append("Cause accuracy (expected -> observed):")
    out.append("  %-18s %5s %8s %9s  %s" % (
        "expected", "RSTs", "correct", "accuracy", "observed instead"))
    by_cause = collections.OrderedDict()
    for r in sorted(rows, key=lambda r: str(r.get("expected_cause"))):
        if r.get("expected_cause") is None:
            continue
        by_cause.setdefault(r["expected_cause"], []).append(r)
    n_c = ok_c = 0
    mismatches = []
    for cause, rs in by_cause.items():
        good = [r for r in rs if r.get("observed_cause") == cause]
        others = collections.Counter(r.get("observed_cause") for r in rs
                                     if r.get("observed_cause") != cause)
        n_c += len(rs)
        ok_c += len(good)
        mismatches += [r for r in rs if r.get("observed_cause") != cause]
        out.append("  %-18s %5d %8d %9s  %s" % (
            cause, len(rs), len(good), pct(len(good), len(rs)),
            ", ".join("%s x%d" % kv for kv in sorted(others.items()))))
    unlabelled = sum(1 for r in rows if r.get("expected_cause") is None)
    if unlabelled:
        out.append("  (%d RSTs without an expected cause)" % unlabelled)

    problems = [r for r in rows if (r.get("expected_forged") and not flagged(r)) or
                (not r.get("expected_forged") and flagged(r)) or missing(r)]
    listed, seen = [], set()
    for r in problems + mismatches + wrong_verdicts:
        if id(r) not in seen:  # identical rows of repeated runs are still separate RSTs
            seen.add(id(r))
            listed.append(r)
    if listed:
        out.append("")
        out.append("Off (%d):" % len(listed))
        for r in listed[:40]:
            out.append("  %s [%s] %s: expected %s/%s, observed %s/%s, verdict %s, evidence %s" % (
                r.get("test"), r.get("mode"), r.get("scenario"),
                "forged" if r.get("expected_forged") else "genuine", r.get("expected_cause"),
                "forged" if flagged(r) else ("no event" if missing(r) else "genuine"),
                r.get("observed_cause"), r.get("verdict"), ",".join(r.get("evidence") or [])))
        if len(listed) > 40:
            out.append("  ... and %d more" % (len(listed) - 40))

    if args.by_scenario:
        out.append("")
        out.append("By scenario:")
        groups = collections.OrderedDict()
        for r in rows:
            groups.setdefault((r.get("test"), r.get("scenario"), r.get("mode")), []).append(r)
        for (t, s, m), rs in groups.items():
            out.append("  %-8s %-40s %-8s %s" % (t, s, m, " ".join(
                "%s:%s%s" % ("F" if r.get("expected_forged") else "G", r.get("observed_cause"),
                             "*" if flagged(r) else "") for r in rs)))

    # A results file holds one run of a test: a scenario run is (file, scenario, mode).
    scen = len({(r["_file"], r.get("test"), r.get("scenario"), r.get("mode")) for r in rows})
    out.append("")
    out.append("Summary: %d RSTs in %d scenario runs: forged %d/%d flagged, genuine %d/%d flagged, "
               "%d without event, causes %d/%d right (%s), %d wrong verdicts" % (
                   len(rows), scen, tp, tp + fn + fm, fp, fp + tn + gm, fm + gm, ok_c, n_c,
                   pct(ok_c, n_c), len(wrong_verdicts)))
    print("\n".join(out))
    if args.strict and listed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
