# lib.sh - shared by the chart scripts: data out of a Google Benchmark JSON file through jq,
# colours per backend, and the footnote. Sourced, not run.

# One colour per backend, the same on every chart: known backends have fixed colours, any
# other name gets one from a palette by a stable hash of its name.
backend_color() {
    case "$1" in
        libc) echo "#1f77b4" ;; bump) echo "#7f7f7f" ;; gotiered) echo "#d62728" ;;
        syncpool) echo "#2ca02c" ;; mimalloc) echo "#ff7f0e" ;; tcmalloc) echo "#9467bd" ;;
        jemalloc) echo "#8c564b" ;;
        *) local pal=("#e377c2" "#bcbd22" "#17becf" "#393b79" "#637939" "#8c6d31" "#843c39")
           local h; h=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
           echo "${pal[$((h % ${#pal[@]}))]}" ;;
    esac
}

# Per case (run_name), from the repetitions that did not fail: the median, min and max of a
# counter, and how many repetitions there were. TSV: run_name median min max n.
# $1 = results file, $2 = counter name ("real_time" for the time column).
case_stats() {
    if [ -n "${STATS_TSV:-}" ] && [ -s "$STATS_TSV" ]; then
        awk -F'\t' -v c="$2" 'BEGIN { OFS = "\t" } $2 == c { print $1, $3, $4, $5, $6 }' "$STATS_TSV"
        return
    fi
    jq -r --arg c "$2" '
      [.benchmarks[] | select(.run_type == "iteration" and (.error_occurred | not))
                     | select(.[$c] != null)]
      | group_by(.run_name)[]
      | (map(.[$c]) | sort) as $v
      | ($v | length) as $n
      | [.[0].run_name,
         (if $n % 2 == 1 then $v[($n - 1) / 2] else ($v[$n / 2 - 1] + $v[$n / 2]) / 2 end),
         $v[0], $v[$n - 1], $n] | @tsv' "$1"
}

# Every numeric counter of every case in one pass (a results file of a full run is several MB:
# one jq call per chart series would take minutes). TSV: run_name counter median min max n.
all_stats() {
    jq -r '
      [.benchmarks[] | select(.run_type == "iteration" and (.error_occurred | not))]
      | group_by(.run_name)[]
      | . as $g
      | ([$g[] | to_entries[] | select(.value | type == "number") | .key] | unique)[] as $k
      | ([$g[] | .[$k] | select(. != null)] | sort) as $v
      | ($v | length) as $n
      | [$g[0].run_name, $k,
         (if $n % 2 == 1 then $v[($n - 1) / 2] else ($v[$n / 2 - 1] + $v[$n / 2]) / 2 end),
         $v[0], $v[$n - 1], $n] | @tsv' "$1"
}

# Cases that failed in every repetition: TSV run_name error_message.
case_errors() {
    jq -r '[.benchmarks[] | select(.run_type == "iteration")] | group_by(.run_name)[]
           | select(all(.error_occurred == true)) | [.[0].run_name, .[0].error_message] | @tsv' "$1"
}

# "machine, date, commit" for the footnote of every chart.
footnote() {
    jq -r '.context | "\(.cpu_model // "unknown CPU"), \(.num_cpus) CPUs, \(.kernel // "" | split(" ")[1] // ""); run \(.started_at // .date); alloclab \(.alloclab_commit // "?")"' "$1"
}

# Per case, split into its parts: TSV workload backend config threads median min max n, where
# config is the case name without workload, backend and Google Benchmark's suffix ("-" when the
# workload has no swept parameter). $1 = results file, $2 = counter ("real_time": the time).
rows() {
    case_stats "$1" "$2" | awk -F'\t' 'BEGIN { OFS = "\t" }
        { sub(/\/iterations:1\/manual_time$/, "", $1); n = split($1, p, "/")
          cfg = ""; thr = 1
          for (i = 3; i <= n; i++) { if (p[i] ~ /^threads:/) thr = substr(p[i], 9); cfg = cfg (cfg == "" ? "" : "/") p[i] }
          if (cfg == "") cfg = "-"
          print p[1], p[2], cfg, thr, $2, $3, $4, $5 }'
}

# Backends in the results file, in one stable order on every chart: the baseline first, the
# production allocators, the Go-style ones, the lower bound last; any other name after them,
# alphabetically. (Order of appearance would change with random interleaving.)
backends_of() {
    jq -r '[.benchmarks[] | select(.run_type == "iteration") | .run_name | split("/")[1]] | unique | .[]' "$1" |
        awk 'BEGIN { n = split("libc mimalloc tcmalloc jemalloc gotiered syncpool", pref, " ")
                     for (i = 1; i <= n; i++) rank[pref[i]] = i }
             { r = ($0 in rank) ? rank[$0] : ($0 == "bump" ? 900 : 100); printf "%03d\t%s\n", r, $0 }' |
        sort -k1,1 -k2,2 | cut -f2
}

workloads_of() {
    jq -r '[.benchmarks[] | select(.run_type == "iteration") | .run_name | split("/")[0]] | reduce .[] as $b ([]; if index([$b]) then . else . + [$b] end) | .[]' "$1"
}

# Counters that some successful repetition carries, matching a jq regex.
counters_like() {
    if [ -n "${STATS_TSV:-}" ] && [ -s "$STATS_TSV" ]; then
        cut -f2 "$STATS_TSV" | sort -u | grep -E "$2" || true
        return
    fi
    jq -r --arg re "$2" '[.benchmarks[] | select(.run_type == "iteration" and (.error_occurred | not)) | keys[] | select(test($re))] | unique | .[]' "$1"
}

# gnuplot terminal lines for PNG and SVG at a size.
term_for() { # fmt width height
    if [ "$1" = png ]; then echo "set terminal pngcairo size $2,$3 font 'Sans,10' noenhanced"
    else echo "set terminal svg size $2,$3 dynamic font 'Sans,10' noenhanced"; fi
}
