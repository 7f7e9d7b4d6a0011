#!/usr/bin/env bash
# stats_test.sh ALLOCLAB - the A/B comparison against known inputs (p-values from scipy's
# mannwhitneyu, two-sided, computed once and written here), and shard + merge giving the same
# case set as one run.
set -u
bin=${1:?usage: stats_test.sh path/to/alloclab}
cd "$(dirname "$0")/.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# results file with one case "x" whose repetitions took the given times (ms)
fixture() {
    local out=$1; shift
    printf '%s\n' "$@" | jq -s '{context: {}, benchmarks: [ .[] | {name: "x/iterations:1/manual_time",
        run_name: "x/iterations:1/manual_time", run_type: "iteration", real_time: ., time_unit: "ms"} ]}' > "$out"
}
row() { "$bin" compare "$1" "$2" | awk '$1 == "x"'; }

fixture "$t/a1.json" 1 2 3 4 5;  fixture "$t/b1.json" 6 7 8 9 10
r=$(row "$t/a1.json" "$t/b1.json")
# scipy: U=0, p=0.007936507936507936; medians 3 and 8
awk '{ exit !($7 > 0.00793 && $7 < 0.00795 && $6 > 2.666 && $6 < 2.667 && $0 ~ /B slower, significant/) }' <<<"$r" &&
    ok "separated samples: exact p 0.00794, ratio 2.667, significant" || bad "separated: $r"

fixture "$t/a2.json" 1 3 5 7 9;  fixture "$t/b2.json" 2 4 6 8 10
r=$(row "$t/a2.json" "$t/b2.json")
# scipy: U=10, p=0.6904761904761905
awk '{ exit !($7 > 0.6904 && $7 < 0.6906 && $0 ~ /no significant difference/) }' <<<"$r" &&
    ok "interleaved samples: exact p 0.6905, not significant" || bad "interleaved: $r"

fixture "$t/a3.json" 1 1 2 2 3;  fixture "$t/b3.json" 2 3 3 4 4
r=$(row "$t/a3.json" "$t/b3.json")
# scipy (ties -> normal approximation with continuity correction): p=0.05241162867102868
awk '{ exit !($7 > 0.0520 && $7 < 0.0528) }' <<<"$r" && ok "ties: normal approximation p 0.0524" || bad "ties: $r"

fixture "$t/a4.json" 1 2;  fixture "$t/b4.json" 5 6
row "$t/a4.json" "$t/b4.json" | grep -q 'too few repetitions' && ok "two repetitions: no verdict claimed" || bad "few reps"

"$bin" compare "$t/a1.json" /nonexistent.json >/dev/null 2>&1; [ $? -eq 2 ] && ok "compare: missing file exits 2" || bad "compare missing file"

# shard + merge = one run, as a case set
common=(--workloads=bufchurn --backends=libc,bump --scale=0.002 --warmup=0 --benchmark_out_format=json)
"$bin" "${common[@]}" --benchmark_out="$t/full.json" >/dev/null 2>&1
"$bin" "${common[@]}" --shard=1/3 --benchmark_out="$t/s1.json" >/dev/null 2>&1
"$bin" "${common[@]}" --shard=2/3 --benchmark_out="$t/s2.json" >/dev/null 2>&1
"$bin" "${common[@]}" --shard=3/3 --benchmark_out="$t/s3.json" >/dev/null 2>&1
"$bin" merge "$t/merged.json" "$t/s1.json" "$t/s2.json" "$t/s3.json" >/dev/null
names() { jq -r '.benchmarks[] | select(.run_type == "iteration") | .run_name' "$1" | sort; }
n1=$(names "$t/full.json" | wc -l)
if [ "$n1" -gt 0 ] && diff <(names "$t/full.json") <(names "$t/merged.json") >/dev/null; then
    ok "3 shards merged = one run ($n1 cases)"
else
    bad "shard+merge case sets differ"
fi
[ -z "$(comm -12 <(names "$t/s1.json") <(names "$t/s2.json"))" ] && ok "shards are disjoint" || bad "shards overlap"
[ "$(tail -n +2 "$t/merged.rss.tsv" | cut -f1 | sort -u | wc -l)" -eq "$n1" ] && ok "merged RSS series cover every case" ||
    bad "merged series"
"$bin" "${common[@]}" --shard=4/3 >/dev/null 2>&1; [ $? -eq 2 ] && ok "--shard=4/3 exits 2" || bad "bad shard"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
