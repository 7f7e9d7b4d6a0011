#!/usr/bin/env bash
# stats_test.sh ALLOCLAB - the A/B comparison against known inputs (p-values from scipy's
# mannwhitneyu, two-sided, computed once and written here), and shard + merge giving the same
# case set as one run.
set -u
bin=${1:?usage: stats_test.sh path/to/alloclab}
cd "$(dirname "$0")/.."
. tests/test_lib.sh

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

# interleave --from: the report again from a saved TSV, with every pair's median ratio, its 95%
# interval (order statistics) and the sign test, against numbers worked out by hand
il="$t/il.tsv"
{
    printf 'process\tbackend\tfastest_ns_per_op\tmedian_ns_per_op\tops_per_run\n'
    p=1
    for a in 8.0 8.2 8.4 8.6 8.8 9.0 9.2 9.4 9.6 10.5; do
        printf '%d\tA\t%s\t11\t100\n%d\tB\t10\t11\t100\n' $p $a $p
        [ $p -le 5 ] && printf '%d\tC\t20\t21\t100\n' $p
        p=$((p + 1))
    done
} > "$il"
out=$("$bin" interleave --from="$il" 2>&1)
# A / B: ratios .80 .82 .. .96 and 1.05: median .89, interval [x(2), x(9)] = [.82, .96], A faster
# in 9 of 10, sign p 2 * 11/1024 = 0.0215. B / C: 5 processes, no 95% interval, p 2/32 = 0.0625.
grep -Eq '^A / B +0\.890\* \[0\.820 \.\. 0\.960\] +9 of 10 +0\.0215$' <<<"$out" &&
    ok "interleave --from: A / B 0.890, interval [0.820, 0.960], 9 of 10, p 0.0215" ||
    bad "interleave --from A / B: $(grep '^A / B' <<<"$out")"
grep -Eq '^B / C +0\.500  \(fewer than 6\) +5 of 5 +0\.0625$' <<<"$out" &&
    ok "interleave --from: 5 processes give no interval, p 0.0625" ||
    bad "interleave --from B / C: $(grep '^B / C' <<<"$out")"
grep -Eq '^A +8\.90 +\[8\.00 \.\. 10\.50\]' <<<"$out" && ok "interleave --from: per-backend median and range" ||
    bad "interleave --from A: $(grep '^A ' <<<"$out")"
printf 'process\tbackend\tfastest_ns_per_op\tmedian_ns_per_op\tops_per_run\n1\tA\tx\t1\t1\n' > "$t/bad.tsv"
for args in "--from=$t/bad.tsv" "--from=/nonexistent.tsv" "--from=$t/a1.json" "--from=$il --rounds=3" "--from="; do
    # shellcheck disable=SC2086
    expect_usage_error "interleave $args" "$bin" interleave $args
done

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
