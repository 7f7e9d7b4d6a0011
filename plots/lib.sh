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

# Cases that failed in every repetition: TSV run_name error_message.
case_errors() {
    jq -r '[.benchmarks[] | select(.run_type == "iteration")] | group_by(.run_name)[]
           | select(all(.error_occurred == true)) | [.[0].run_name, .[0].error_message] | @tsv' "$1"
}

# "machine, date, commit" for the footnote of every chart.
footnote() {
    jq -r '.context | "\(.cpu_model // "unknown CPU"), \(.num_cpus) CPUs, \(.kernel // "" | split(" ")[1] // ""); run \(.started_at // .date); alloclab \(.alloclab_commit // "?")"' "$1"
}
