#!/usr/bin/env bash
# plots_test.sh - the chart scripts on small fixed results files committed under tests/data:
# every file they write is a valid, non-empty PNG or SVG, and a results file with gaps (a failed
# case, missing counters, missing context) still renders, with the gap marked, not a crash.
set -u
cd "$(dirname "$0")/.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

valid_outputs() { # dir: every png/svg valid and non-empty; echo the count
    local n=0 f
    for f in "$1"/*.png; do
        [ -e "$f" ] || continue
        [ -s "$f" ] && [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "bad png $f" >&2; return 1; }
        n=$((n + 1))
    done
    for f in "$1"/*.svg; do
        [ -e "$f" ] || continue
        grep -q '<svg' "$f" && grep -q '</svg>' "$f" || { echo "bad svg $f" >&2; return 1; }
        n=$((n + 1))
    done
    echo $n
}

for fx in results-small results-gaps; do
    if bash plots/plot.sh "tests/data/$fx.json" "$t/$fx" >"$t/log" 2>&1; then
        cp "$t/log" "$t/log.${fx#results-}"
        n=$(valid_outputs "$t/$fx") && [ "$n" -ge 2 ] && ok "$fx: $n valid chart files" || bad "$fx: charts invalid ($n)"
        [ -s "$t/$fx/index.html" ] && grep -q '<img' "$t/$fx/index.html" && ok "$fx: report with charts" || bad "$fx: report"
    else
        bad "$fx: plot.sh failed: $(tail -3 "$t/log")"
    fi
done
grep -q 'crashed: SIGSEGV' "$t/results-small/index.html" && ok "failed case listed in the report" || bad "failed case not in report"
for c in time-overall time-bufchurn rss-overall frag-overall tradeoff-bufchurn latency-bufchurn memtime-bufchurn sizeclass-waste; do
    [ -e "$t/results-small/$c.png" ] && [ -e "$t/results-small/$c.svg" ] || bad "chart $c not made from results-small"
done
[ -e "$t/results-small/time-overall.png" ] && ok "every chart with data in results-small is made"
[ ! -e "$t/results-gaps/latency-bufchurn.png" ] && [ -e "$t/results-gaps/time-overall.png" ] &&
    ok "a chart without data (no latency figures) is left out, the others are made" || bad "gap handling"
grep -q 'bump (missing in 1)' "$t/results-gaps/time-bufchurn.svg" && grep -q 'crashtest (no data' "$t/results-gaps/time-bufchurn.svg" &&
    ok "gaps are marked in the legend (a missing case; a backend with no data)" || bad "missing-backend legend"
bash plots/plot.sh tests/data/nonexistent.json "$t/x" >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing results file: exit 2" || bad "missing results file"
echo '{"not":"results"}' > "$t/bad.json"
bash plots/plot.sh "$t/bad.json" "$t/y" >/dev/null 2>&1; [ $? -eq 2 ] && ok "not a results file: exit 2" || bad "not a results file"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
