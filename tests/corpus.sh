#!/bin/bash
# corpus.sh: run `rstguard -r` over every capture in a directory of real traffic and print, per
# capture, its RSTs, their causes and how many were called forged (or would be dropped in
# enforce mode). Every RST in such a corpus is taken as genuine (captures of ordinary traffic,
# no injector on the path), so any forged one fails the run. Not part of `make check` (the
# corpus is not in the repository); .ci/run runs it over $RG_CORPUS_DIR, by default the corpus
# CI has beside its clone.
#
#   tests/corpus.sh [-b RSTGUARD] DIR       exit 0: none forged; 1: some forged; 2: usage/errors
#
# Revised events (late evidence) count: a genuine RST must not be revised into a forged one
# either. A capture rstguard cannot read (exit status 1) is reported and fails the run.
set -u
bin=${RSTGUARD:-}
if [ "${1:-}" = -b ]; then
	bin=$2
	shift 2
fi
dir=${1:-}
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "usage: $0 [-b RSTGUARD] DIR" >&2
	exit 2
fi
if [ -z "$bin" ]; then
	bin=$(dirname "$0")/../src/rstguard
fi
[ -x "$bin" ] || { echo "corpus: $bin is not an executable rstguard" >&2; exit 2; }

tmp=$(mktemp -d /tmp/rg-corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

files=0 rsts=0 forged=0 would=0 revised=0 errors=0
printf '%-58s %5s %6s %5s  %s\n' capture rst forged drop causes
for f in "$dir"/*.pcap "$dir"/*.pcapng; do
	[ -f "$f" ] || continue
	files=$((files + 1))
	# Bounded: a hostile capture must not hang the run.
	if ! timeout 60 "$bin" -r "$f" -e - >"$tmp/ev" 2>"$tmp/err"; then
		errors=$((errors + 1))
		printf '%-58s error: %s\n' "$(basename "$f")" "$(head -c 200 "$tmp/err" | tr '\n' ' ')"
		continue
	fi
	read -r n fg wd rv causes < <(/usr/bin/python3 - "$tmp/ev" <<'EOF'
import collections, json, sys
n = fg = wd = rv = 0
causes = collections.Counter()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event_type") != "rst":
        continue
    r = e.get("rst", {})
    if r.get("revised"):
        rv += 1
        fg += 1 if r.get("forged") else 0
        continue
    n += 1
    causes[r.get("cause")] += 1
    fg += 1 if r.get("forged") else 0
    wd += 1 if r.get("would_drop") else 0
print(n, fg, wd, rv, ",".join("%s=%d" % kv for kv in sorted(causes.items())) or "-")
EOF
	)
	[ "${n:-0}" -gt 0 ] || continue
	rsts=$((rsts + n))
	forged=$((forged + fg))
	would=$((would + wd))
	revised=$((revised + rv))
	mark=""
	[ "$fg" -gt 0 ] || [ "$wd" -gt 0 ] && mark="  <-- FORGED"
	printf '%-58s %5d %6d %5d  %s%s\n' "$(basename "$f")" "$n" "$fg" "$wd" "$causes" "$mark"
done
echo "corpus: $files captures, $rsts RSTs, $forged called forged ($revised by a revision), $would would be dropped in enforce mode, $errors unreadable"
[ "$errors" -eq 0 ] || exit 1
[ "$forged" -eq 0 ] && [ "$would" -eq 0 ] || exit 1
exit 0
