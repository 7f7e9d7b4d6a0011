#!/usr/bin/env bash
# harness_test.sh ALLOCLAB - tests of the alloclab program itself: bad input, error rows,
# result files (complete or absent, never half-written), context, compare.py.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -u
bin=${1:?usage: harness_test.sh path/to/alloclab}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
. "$(dirname "$0")/test_lib.sh"

# tiny, fast cases
small=(--workloads=bufchurn bufchurn.buffers=500 --benchmark_filter='size:64/buffers:500/mode:steady')

# 1. --list names every backend and workload
out=$("$bin" --list) && grep -q '^  libc ' <<<"$out" && grep -q '^  bump ' <<<"$out" &&
    grep -q '^  bufchurn ' <<<"$out" && grep -q 'size=1024' <<<"$out" &&
    ! grep -q crashtest <<<"$out" && ok "--list shows backends, workloads, parameters; hides test-only" ||
    bad "--list"

# 2. bad input: one line on stderr, exit 2, no result file written, an existing one untouched
echo precious > "$t/keep.json"
check_bad() {
    local what=$1; shift
    rm -f "$t/new.json"
    "$bin" "$@" --benchmark_out="$t/new.json" >"$t/o" 2>"$t/e"
    local rc=$?
    "$bin" "$@" --benchmark_out="$t/keep.json" >/dev/null 2>&1
    if [ $rc -eq 2 ] && [ "$(wc -l <"$t/e")" -eq 1 ] && [ ! -e "$t/new.json" ] &&
       [ "$(cat "$t/keep.json")" = precious ] && ! ls "$t"/*.tmp.* >/dev/null 2>&1; then
        ok "bad input exits 2 with one line, no file: $what ($(cat "$t/e"))"
    else
        bad "bad input: $what (rc=$rc, stderr: $(cat "$t/e"))"
    fi
}
check_bad "unknown backend" --backends=nosuch
check_bad "unknown workload" --workloads=nosuch
check_bad "malformed number" bufchurn.size=12x
check_bad "zero count" buffers=0
check_bad "negative count" buffers=-5
check_bad "unknown parameter" nosuch=3
check_bad "bad choice" mode=sometimes
check_bad "zero repetitions" --benchmark_repetitions=0
check_bad "bad repetitions" --benchmark_repetitions=abc
check_bad "negative scale" --scale=-1
check_bad "negative min_time" --min_time=-1
check_bad "bad min_time" --min_time=0.2s
check_bad "zero timeout" --timeout=0
check_bad "bad threads" --threads=0
check_bad "unknown flag" --frobnicate
check_bad "unknown benchmark flag" --benchmark_frobnicate=1
check_bad "bad format" --benchmark_format=xml
check_bad "filter matching nothing" --benchmark_filter=nothing-matches-this

# 3. a crashing and a hanging backend become error rows; the other cases still report
ALLOCLAB_TEST_BACKENDS=1 "$bin" "${small[@]}" --backends=libc,crashtest,hangtest,corrupttest,bump \
    --timeout=5 bufchurn.mode=keep,steady --benchmark_filter='size:64/' \
    --benchmark_out="$t/err.json" --benchmark_out_format=json >/dev/null 2>"$t/e"
rc=$?
if [ $rc -eq 0 ] && [ -s "$t/err.json" ]; then
    msg() { jq -r --arg n "$1" '.benchmarks[] | select(.run_name | startswith($n + "/")) | .error_message // "ok"' "$t/err.json"; }
    [[ $(msg bufchurn/crashtest/size:64/buffers:500/mode:keep) == *SIGSEGV* ]] && ok "crash -> error row naming SIGSEGV" ||
        bad "crash row: $(msg bufchurn/crashtest/size:64/buffers:500/mode:keep)"
    [[ $(msg bufchurn/hangtest/size:64/buffers:500/mode:keep) == "timed out after 5 s"* ]] && ok "hang -> time-out error row" ||
        bad "hang row: $(msg bufchurn/hangtest/size:64/buffers:500/mode:keep)"
    [[ $(msg bufchurn/corrupttest/size:64/buffers:500/mode:keep) == failed:*"does not hold"* ]] &&
        ok "corrupting backend -> failed verification row" ||
        bad "corrupt row: $(msg bufchurn/corrupttest/size:64/buffers:500/mode:keep)"
    n=$(jq '[.benchmarks[] | select((.run_name | test("/(libc|bump)/")) and (.error_occurred | not) and .ns_per_op > 0)] | length' "$t/err.json")
    [ "$n" = 4 ] && ok "libc and bump cases still report after the failures ($n rows)" ||
        bad "healthy rows after failures: $n, want 4"
else
    bad "run with broken backends: rc=$rc, $(tail -2 "$t/e")"
fi

# 4. context names what produced the results; counters are there (libc and bump only: the row
#    count below must not change when a backend is added to the registry)
"$bin" "${small[@]}" --backends=libc,bump --benchmark_repetitions=2 --benchmark_out="$t/a.json" --benchmark_out_format=json >/dev/null 2>&1
"$bin" "${small[@]}" --backends=libc,bump --benchmark_repetitions=2 --benchmark_out="$t/b.json" --benchmark_out_format=json >/dev/null 2>&1
missing=$(jq -r '.context as $c | ["alloclab_commit","compiler","cflags","kernel","cpu_model","started_at","backend.libc","backend.bump"] | map(select($c[.] == null or $c[.] == "")) | join(",")' "$t/a.json")
[ -z "$missing" ] && ok "context has commit, compiler, flags, kernel, CPU, time, backend versions" ||
    bad "context lacks: $missing"
jq -e '.context["backend.libc"] | test("glibc [0-9]")' "$t/a.json" >/dev/null && ok "libc version recorded" ||
    bad "libc version: $(jq -r '.context["backend.libc"]' "$t/a.json")"
jq -e '[.benchmarks[] | select(.run_type == "iteration")] | length == 4 and all(.ns_per_op > 0 and .peak_rss > 0 and .ops > 0 and .minflt >= 0)' \
    "$t/a.json" >/dev/null && ok "each repetition reports ns_per_op, ops, peak_rss, minflt" || bad "counters missing"
jq -e '[.benchmarks[] | select(.run_type == "iteration")] | all(.heap_growth >= 0 and .heap_growth <= .rss_growth and (.heap_ratio - .heap_growth / .peak_live | fabs) < 1e-9)' \
    "$t/a.json" >/dev/null && ok "heap_growth (growth without file pages) <= rss_growth, heap_ratio = heap_growth / peak_live" ||
    bad "heap_growth/heap_ratio: $(jq -c '[.benchmarks[] | select(.run_type == "iteration") | {rss_growth, heap_growth, heap_ratio, peak_live}]' "$t/a.json" | head -c 300)"
jq -e '[.benchmarks[] | select(.run_type == "aggregate") | .aggregate_name] | (index("median") != null and index("cv") != null and index("min") != null and index("max") != null)' \
    "$t/a.json" >/dev/null && ok "median, min, max and cv aggregates" || bad "aggregates missing"

jq -e '[.benchmarks[] | select(.run_type == "iteration")] | all(.lat_alloc_p50_ns >= 0 and .lat_alloc_p99_ns >= .lat_alloc_p50_ns and .lat_alloc_max_ns >= .lat_alloc_p999_ns and .lat_free_samples > 0)' \
    "$t/a.json" >/dev/null && ok "latency percentiles (alloc and free) from the sampled warm-up" || bad "latency counters"
[ "$(tail -n +2 "$t/a.rss.tsv" | wc -l)" -gt 0 ] && [ "$(head -1 "$t/a.rss.tsv")" = "$(printf 'case\tt_ms\trss_bytes')" ] &&
    ok "RSS series written beside the results" || bad "RSS series"
"$bin" "${small[@]}" --backends=bump --benchmark_repetitions=1 --benchmark_out="$t/st.json" --benchmark_out_format=json >/dev/null 2>&1
[ "$(head -1 "$t/st.stats.tsv")" = "$(printf 'case\tt_ms\tstat\tvalue')" ] && grep -q $'\tSys\t' "$t/st.stats.tsv" &&
    ok "backend stats over time written beside the results" || bad "stats series"
jq -e '.alloclab_cv_threshold > 0 and (.alloclab_noisy | type == "array")' "$t/a.json" >/dev/null &&
    ok "noisy-case list in the JSON" || bad "noisy list"

# 4b. --min_time: a millisecond-long case reruns until its repetition has lasted min_time; the
#     reported time is per run (total / runs), so time x runs >= min_time and ns_per_op agrees
"$bin" --backends=libc --workloads=bufchurn bufchurn.mode=steady bufchurn.size=64 bufchurn.buffers=2000 \
    --min_time=0.05 --benchmark_repetitions=2 --benchmark_out="$t/mt.json" --benchmark_out_format=json >/dev/null 2>&1
"$bin" --backends=libc --workloads=bufchurn bufchurn.mode=steady bufchurn.size=64 bufchurn.buffers=2000 \
    --benchmark_repetitions=1 --benchmark_out="$t/mt1.json" --benchmark_out_format=json >/dev/null 2>&1
ops1=$(jq '[.benchmarks[] | select(.run_type == "iteration")][0] | if .runs == 1 then .ops else -1 end' "$t/mt1.json")
jq -e --argjson ops1 "${ops1:--1}" '[.benchmarks[] | select(.run_type == "iteration")] | length == 2 and
       all(.runs > 1 and .real_time * .runs >= 0.05e3 * 0.999 and .ops == $ops1 and
           ((.ns_per_op * .ops / 1e6) / .real_time - 1 | fabs) < 0.01) and
       (.[0].run_name | test("bufchurn/libc/"))' "$t/mt.json" >/dev/null &&
    jq -e '.context.min_time | startswith("0.05 s")' "$t/mt.json" >/dev/null &&
    ok "--min_time reruns a short case: runs > 1, time per run, ns_per_op per run" ||
    bad "--min_time: one run ${ops1:-?} ops; $(jq -c '[.benchmarks[] | select(.run_type == "iteration") | {runs, real_time, time_unit, ops, ns_per_op}]' "$t/mt.json" 2>&1 | head -c 300)"

# 5. compare.py (Debian's libbenchmark-tools) accepts two of our result files
if out=$(/usr/bin/python3 /usr/share/benchmark/compare.py benchmarks "$t/a.json" "$t/b.json" 2>&1) &&
   grep -q 'bufchurn/libc/size:64/buffers:500/mode:steady' <<<"$out"; then
    ok "compare.py benchmarks A.json B.json"
else
    bad "compare.py: $(tail -3 <<<"$out")"
fi

# 6. an interrupted run leaves earlier results intact and says where the partial ones are
echo precious > "$t/int.json"
ALLOCLAB_TEST_BACKENDS=1 "$bin" --workloads=bufchurn --backends=hangtest --timeout=30 \
    --benchmark_out="$t/int.json" >/dev/null 2>"$t/e" &
pid=$!
sleep 2
kill -INT $pid
wait $pid
rc=$?
if [ $rc -ne 0 ] && [ "$(cat "$t/int.json")" = precious ] && grep -q "partial results of this run are in $t/int.json.tmp." "$t/e"; then
    ok "interrupted run: earlier file intact, partial results named"
else
    bad "interrupted run: rc=$rc, file=$(cat "$t/int.json"), $(cat "$t/e" | tail -1)"
fi

# 7. interleave: backends in turns in one process, K processes; a crashing backend is named
#    and the others are still measured; bad input is one line and status 2
il="$t/il.tsv"
if out=$(ALLOCLAB_TEST_BACKENDS=1 "$bin" interleave --workload=bufchurn --backends=libc,crashtest,gotiered \
        bufchurn.mode=steady --scale=0.01 --rounds=3 --processes=2 --out="$il" 2>"$t/e") &&
   grep -Eq '^libc +[0-9]+\.[0-9]+ ' <<<"$out" && grep -Eq '^gotiered +[0-9]+\.[0-9]+ ' <<<"$out" &&
   grep -q '^crashtest .*failed: crashed: signal' <<<"$out" &&
   grep -Eq '^(libc / gotiered|gotiered / libc) +[0-9.]+ +\(fewer than 6\) +[0-2] of 2 ' <<<"$out" &&
   grep -q 'crashtest crashed' "$t/e" &&
   [ "$(tail -n +2 "$il" | wc -l)" -eq 4 ] &&
   awk -F'\t' 'NR > 1 && !($3 > 0 && $3 <= $4 && $5 == 4000) {bad = 1} END {exit bad}' "$il"; then
    ok "interleave: two backends measured in 2 processes, their pair, the crashing one named, TSV rows"
else
    bad "interleave: $(head -c 400 <<<"$out") / $(head -c 200 "$t/e") / $(head -c 300 "$il" 2>&1)"
fi
# interleave over layouts: two link orders, their processes pooled, the per-layout table
root=$(cd "$(dirname "$0")/.." && pwd)
lay="$t/lay.tsv"
if out=$(bash "$root/scripts/interleave-layouts.sh" 2 "$lay" --workload=bufchurn --backends=libc,gotiered \
        bufchurn.mode=steady --scale=0.01 --rounds=2 --processes=3 2>"$t/e") &&
   [ -x "$root/build/layout/alloclab.1" ] && [ -x "$root/build/layout/alloclab.2" ] &&
   ! cmp -s "$root/build/layout/alloclab.1" "$root/build/layout/alloclab.2" &&
   [ "$(tail -n +2 "$lay" | cut -f1 | sort -n | uniq | tr '\n' ' ')" = "1 2 3 4 5 6 " ] &&
   [ "$(tail -n +2 "${lay%.tsv}.layouts.tsv" | cut -f1 | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" = "6 6 " ] &&
   grep -Eq '^gotiered +[0-9.]+ +[0-9.]+ +[0-9.]+$' <<<"$out" &&
   grep -Eq '^(libc / gotiered|gotiered / libc) +[0-9.]+\*? +\[[0-9.]+ \.\. [0-9.]+\] +[0-6] of 6 ' <<<"$out"; then
    ok "interleave-layouts: 2 link orders, 3 processes each, pooled as 6; per-layout table"
else
    bad "interleave-layouts: $(head -c 600 <<<"$out") / $(head -c 300 "$t/e")"
fi
for args in "0 $t/x.tsv --workload=bufchurn" "2 $t/x.tsv --workload=nope" "2 $t/x.tsv --workload=bufchurn --out=y" "2"; do
    # shellcheck disable=SC2086
    expect_usage_error "interleave-layouts.sh $args" bash "$root/scripts/interleave-layouts.sh" $args
done
[ ! -e "$t/x.tsv" ] && ok "interleave-layouts.sh: bad input leaves no result file" ||
    bad "interleave-layouts.sh: bad input left $t/x.tsv"
for args in "--workload=larson" "--workload=bufchurn --backends=libc,nope" \
            "--workload=bufchurn --rounds=0" "--workload=bufchurn size=12q" \
            "--workload=bufchurn --backends=jemalloc,libc" "--workload=bufchurn --backends=libc" \
            "--backends=libc,gotiered"; do
    # shellcheck disable=SC2086
    expect_usage_error "interleave $args" "$bin" interleave $args
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
