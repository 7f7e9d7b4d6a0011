#!/usr/bin/env bash
# plot.sh RESULTS.json OUTDIR - every chart whose data exists in RESULTS, as PNG and SVG, plus
# OUTDIR/index.html, a report that opens from disk. Data flows JSON -> jq -> TSV -> gnuplot;
# nothing is typed by hand. Every chart: a title, axis units, the machine and date in a
# footnote, one colour per backend (plots/lib.sh). A chart whose data is absent is not drawn;
# a backend that has no figure for a case is named in the chart's legend as missing.
#
# Charts (each only when its data is in the file):
#   time-overall       relative time per workload (geometric mean over its cases), vs libc
#   time-<workload>    relative time per case, vs libc, bars = min..max of the repetitions
#   rss-overall        peak RSS per workload, vs libc;  frag-overall: RSS growth / peak live
#   tradeoff-<wl>      time against memory, one point per backend
#   scaling-<wl>       throughput against threads (multi-threaded workloads)
#   latency-<wl>       alloc and free latency p50/p99/p99.9/max per backend (log scale)
#   memtime-<wl>       RSS over time of the workload's largest case (from <results>.rss.tsv)
#   heapstats-<wl>     the backends' own Sys / HeapInuse / PoolBytesHeld over time (.stats.tsv)
#   counters-<name>    cache/TLB misses and instructions per operation (PAPI or simulated)
#   sizeclass-waste    requested against allocated size, 1..32 KiB (alloclab --usable-sizes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

res=${1:?usage: plot.sh RESULTS.json OUTDIR}
out=${2:?usage: plot.sh RESULTS.json OUTDIR}
[ -e "$res" ] || { echo "plot.sh: no results file $res (run make bench first)" >&2; exit 2; }
series="${res%.json}.rss.tsv"
statsseries="${res%.json}.stats.tsv"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $res == *.json.gz ]]; then # a compressed results file (the committed reference run)
    series="${res%.json.gz}.rss.tsv"
    statsseries="${res%.json.gz}.stats.tsv"
    gunzip -c "$res" > "$tmp/results.json" || { echo "plot.sh: cannot decompress $res" >&2; exit 2; }
    res="$tmp/results.json"
fi
jq -e '.benchmarks | type == "array"' "$res" >/dev/null 2>&1 ||
    { echo "plot.sh: $res is not a Google Benchmark JSON results file" >&2; exit 2; }
alloclab=${ALLOCLAB:-$here/../build/alloclab}
mkdir -p "$out"
rm -f "$out"/*.png "$out"/*.svg
note=$(footnote "$res" | sed "s/'/ /g")
made=()      # chart base names, in report order
declare -A caption

STATS_TSV="$tmp/stats.tsv"
all_stats "$res" > "$STATS_TSV"
mapfile -t BACKENDS < <(backends_of "$res")
mapfile -t WORKLOADS < <(workloads_of "$res")
base=libc
printf '%s\n' "${BACKENDS[@]}" | grep -qx libc || base=${BACKENDS[0]:-libc}

rows "$res" real_time > "$tmp/time.tsv"
rows "$res" peak_rss > "$tmp/rss.tsv"
rows "$res" mem_ratio > "$tmp/frag.tsv"
rows "$res" ops_per_s > "$tmp/tput.tsv"

# gnuplot on a script for both formats: $1 = name, $2 = width, $3 = height, script on stdin
draw() {
    local name=$1 w=$2 h=$3 body
    body=$(cat)
    for fmt in png svg; do
        { term_for $fmt "$w" "$h"
          echo "set output '$out/$name.$fmt'"
          echo "set label 99 '$note' at screen 0.01, screen 0.015 font ',8'"
          echo "set bmargin 5"
          echo "$body"; } | gnuplot 2>"$tmp/gp.err" ||
            { rm -f "$out/$name.png" "$out/$name.svg"; echo "plot.sh: warning: gnuplot failed on $name, chart left out: $(head -3 "$tmp/gp.err")" >&2; return 0; }
    done
    made+=("$name")
}

# ratio table: per group, backend median / base median (and min/max ratios), pivoted for a
# gnuplot errorbar histogram: group, then (value low high) per backend. $1 = rows file,
# $2 = "config" (groups = cases of workload $3) or "workload" (groups = workloads, geomean).
pivot_ratio() {
    local rowsf=$1 mode=$2 wl=${3:-}
    awk -F'\t' -v base="$base" -v mode="$mode" -v wl="$wl" -v blist="${BACKENDS[*]}" '
        BEGIN { nb = split(blist, B, " ") }
        mode == "config" && $1 != wl { next }
        { key = $1 SUBSEP $3; med[key, $2] = $5; lo[key, $2] = $6; hi[key, $2] = $7
          if (!(key in seen)) { seen[key] = 1; K[++nk] = key } }
        END {
          for (k = 1; k <= nk; k++) {
            key = K[k]; split(key, kp, SUBSEP)
            if (!((key, base) in med) || med[key, base] <= 0) continue
            g = mode == "config" ? kp[2] : kp[1]
            if (!(g in gseen)) { gseen[g] = 1; G[++ng] = g }
            for (b = 1; b <= nb; b++) if ((key, B[b]) in med) {
              r[g, b] += log(med[key, B[b]] / med[key, base]); rl[g, b] += log(lo[key, B[b]] / med[key, base])
              rh[g, b] += log(hi[key, B[b]] / med[key, base]); c[g, b]++ }
          }
          for (i = 1; i <= ng; i++) {
            line = G[i]
            for (b = 1; b <= nb; b++)
              if (c[G[i], b]) line = line "\t" exp(r[G[i], b] / c[G[i], b]) "\t" exp(rl[G[i], b] / c[G[i], b]) "\t" exp(rh[G[i], b] / c[G[i], b])
              else { line = line "\tNaN\tNaN\tNaN"; miss[b]++ }
            print line
          }
          for (b = 1; b <= nb; b++) printf "%d ", miss[b] + 0 > "/dev/stderr"
        }' "$rowsf"
}

# grouped bars from a pivot file: $1 name, $2 pivot file, $3 missing counts, $4 title,
# $5 ylabel, $6 width
bars() {
    local name=$1 pf=$2 title=$4 ylabel=$5 w=${6:-1100} plots=() i t miss
    [ -s "$pf" ] || return 0
    local ngroups; ngroups=$(wc -l < "$pf")
    # per backend: in how many groups it has no figure
    read -r -a miss < <(awk -F'\t' -v nb="${#BACKENDS[@]}" '{ for (b = 0; b < nb; b++) if ($(2 + 3 * b) == "NaN" || $(2 + 3 * b) == "") m[b]++ }
        END { for (b = 0; b < nb; b++) printf "%d ", m[b] + 0; print "" }' "$pf")
    for i in "${!BACKENDS[@]}"; do
        t=${BACKENDS[$i]}
        if [ "${miss[$i]:-0}" -ge "$ngroups" ]; then
            # no figure at all (failed or skipped everywhere): named in the key, no bars
            plots+=("keyentry with boxes fs solid 0.2 lc rgb '$(backend_color "$t")' title '$t (no data: see report)'")
            continue
        fi
        [ "${miss[$i]:-0}" -gt 0 ] && t="$t (missing in ${miss[$i]})"
        plots+=("'$pf' using $((2 + 3 * i)):$((3 + 3 * i)):$((4 + 3 * i)):xtic(1) title '$t' lc rgb '$(backend_color "${BACKENDS[$i]}")'")
    done
    draw "$name" "$w" 620 <<GP
set title "$title"
set ylabel '$ylabel'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -30 font ',8'
set grid ytics
set logscale y 2
set bmargin 9
set key outside right top
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#444444'
plot $(IFS=,; echo "${plots[*]}")
GP
}

# ---- 1. relative time ----
if [ -s "$tmp/time.tsv" ]; then
    pivot_ratio "$tmp/time.tsv" workload > "$tmp/p-time.tsv" 2>/dev/null
    bars time-overall "$tmp/p-time.tsv" "" \
        "Time per workload relative to $base (geometric mean over its cases; lower is better)\nbars: min..max of the repetitions" \
        "time / $base time (log scale)"
    caption[time-overall]="The headline: each backend's median time relative to $base, per workload (geometric mean over the workload's cases), with the spread of the repetitions."
    for wl in "${WORKLOADS[@]}"; do
        pivot_ratio "$tmp/time.tsv" config "$wl" > "$tmp/p-time-$wl.tsv" 2>/dev/null
        bars "time-$wl" "$tmp/p-time-$wl.tsv" "" \
            "$wl: time per case relative to $base (median; bars min..max; lower is better)" "time / $base time (log scale)" 1300
        caption[time-$wl]="$wl, case by case: median time relative to $base."
    done
fi

# ---- 2. memory ----
if [ -s "$tmp/rss.tsv" ]; then
    pivot_ratio "$tmp/rss.tsv" workload > "$tmp/p-rss.tsv" 2>/dev/null
    bars rss-overall "$tmp/p-rss.tsv" "" \
        "Peak RSS per workload relative to $base (geometric mean over its cases; lower is better)" "peak RSS / $base peak RSS (log scale)"
    caption[rss-overall]="Peak resident memory of each case's child, relative to $base."
fi
if [ -s "$tmp/frag.tsv" ]; then
    # absolute, not relative: RSS growth / peak live bytes (1.0 = no overhead)
    awk -F'\t' -v blist="${BACKENDS[*]}" 'BEGIN { nb = split(blist, B, " ") }
        { s[$1, $2] += log($5 > 0 ? $5 : 1e-9); c[$1, $2]++; if (!($1 in seen)) { seen[$1] = 1; W[++nw] = $1 } }
        END { for (i = 1; i <= nw; i++) { line = W[i]
                for (b = 1; b <= nb; b++) line = line "\t" (c[W[i], B[b]] ? exp(s[W[i], B[b]] / c[W[i], B[b]]) : "NaN") "\t0\t0"
                print line } }' "$tmp/frag.tsv" > "$tmp/p-frag.tsv"
    # errorbars need low/high: use the value itself
    awk -F'\t' 'BEGIN { OFS = "\t" } { for (i = 2; i <= NF; i += 3) { $(i + 1) = $i; $(i + 2) = $i } print }' "$tmp/p-frag.tsv" > "$tmp/p-frag2.tsv"
    bars frag-overall "$tmp/p-frag2.tsv" "" \
        "Memory overhead: (peak RSS - RSS at start) / peak live bytes (geometric mean over cases; 1.0 = none)" "RSS growth / peak live bytes (log scale)"
    caption[frag-overall]="Fragmentation and overhead: how much resident memory each backend needed per byte the workload held live."
fi

# ---- 3. time against memory ----
for wl in "${WORKLOADS[@]}"; do
    join -t $'\t' <(pivot_ratio "$tmp/time.tsv" workload 2>/dev/null | awk -F'\t' -v w="$wl" '$1 == w') \
                  <(pivot_ratio "$tmp/rss.tsv" workload 2>/dev/null | awk -F'\t' -v w="$wl" '$1 == w') > "$tmp/to-$wl.tsv" || true
    [ -s "$tmp/to-$wl.tsv" ] || continue
    nb=${#BACKENDS[@]} plots=()
    for i in "${!BACKENDS[@]}"; do
        plots+=("'$tmp/to-$wl.tsv' using $((2 + 3 * i)):$((2 + 3 * nb + 3 * i)) with points pt 7 ps 2 lc rgb '$(backend_color "${BACKENDS[$i]}")' title '${BACKENDS[$i]}'")
    done
    draw "tradeoff-$wl" 800 600 <<GP
set title "$wl: time against memory, relative to $base (geometric means; lower-left is better)"
set xlabel 'time / $base time'
set ylabel 'peak RSS / $base peak RSS'
set logscale xy 2
set grid
set key outside right top
set offsets graph 0.1, graph 0.1, graph 0.1, graph 0.1
plot $(IFS=,; echo "${plots[*]}")
GP
    caption[tradeoff-$wl]="$wl: the time/memory trade-off in one picture."
done

# ---- 4. thread scaling ----
for wl in "${WORKLOADS[@]}"; do
    awk -F'\t' -v w="$wl" '$1 == w && $4 > 1' "$tmp/tput.tsv" | grep -q . || continue
    plots=()
    for b in "${BACKENDS[@]}"; do
        # sum over the other parameters by taking the geometric mean of throughput per thread count
        awk -F'\t' -v w="$wl" -v b="$b" '$1 == w && $2 == b { s[$4] += log($5); c[$4]++ }
            END { for (t in s) print t "\t" exp(s[t] / c[t]) }' "$tmp/tput.tsv" | sort -n > "$tmp/sc-$wl-$b.tsv"
        [ -s "$tmp/sc-$wl-$b.tsv" ] && plots+=("'$tmp/sc-$wl-$b.tsv' using 1:2 with linespoints lw 2 pt 7 lc rgb '$(backend_color "$b")' title '$b'")
    done
    [ ${#plots[@]} -gt 0 ] || continue
    draw "scaling-$wl" 900 600 <<GP
set title "$wl: throughput against threads (median; higher is better)"
set xlabel 'threads'
set ylabel 'allocator operations per second'
set logscale x 2
set grid
set key outside right top
set format y '%.1s%c'
plot $(IFS=,; echo "${plots[*]}")
GP
    caption[scaling-$wl]="$wl: how throughput grows with threads (this machine has $(jq -r '.context.num_cpus' "$res") CPUs)."
done

# ---- 5. tail latency ----
if [ -n "$(counters_like "$res" '^lat_alloc_p50_ns$')" ]; then
    for wl in "${WORKLOADS[@]}"; do
        : > "$tmp/lat-$wl.tsv"
        for b in "${BACKENDS[@]}"; do
            line=$b
            for k in alloc free; do
                for q in p50 p99 p999 max; do
                    [ -e "$tmp/latrows-$k-$q.tsv" ] || rows "$res" "lat_${k}_${q}_ns" > "$tmp/latrows-$k-$q.tsv"
                    v=$(awk -F'\t' -v w="$wl" -v b="$b" '$1 == w && $2 == b { s += log($5 > 0.5 ? $5 : 0.5); c++ } END { if (c) print exp(s / c); else print "NaN" }' "$tmp/latrows-$k-$q.tsv")
                    line="$line"$'\t'"$v"
                done
            done
            echo "$line" >> "$tmp/lat-$wl.tsv"
        done
        awk -F'\t' '$2 != "NaN"' "$tmp/lat-$wl.tsv" | grep -q . || continue
        # the cycle counter's step: figures below it only say "less than this"
        resol=$(rows "$res" lat_resolution_ns | awk -F'\t' -v w="$wl" '$1 == w && $5 > m { m = $5 } END { printf "%.1f", m + 0 }')
        resline=""
        [ "$resol" != "0.0" ] && resline="set arrow 2 from graph 0, first $resol to graph 1, first $resol nohead dt 3 lw 1.5 lc rgb '#cc0000'
set label 3 'timer step $resol ns: bars below it read as < $resol ns' at graph 0.02, first $resol offset 0, 0.6 font ',8' tc rgb '#cc0000'"
        draw "latency-$wl" 1100 600 <<GP
set title "$wl: allocator call latency, sampled (geometric mean over cases; log scale; lower is better)"
set ylabel 'ns per call'
set style data histogram
set style histogram clustered gap 2
set style fill solid 0.85 border -1
set logscale y 10
set grid ytics
set key outside right top
set xtics rotate by -30 font ',8'
$resline
set multiplot layout 1,2
set title "$wl: alloc latency (ns)"
plot '$tmp/lat-$wl.tsv' using 2:xtic(1) title 'p50' lc rgb '#9ecae1', '' using 3 title 'p99' lc rgb '#4292c6', '' using 4 title 'p99.9' lc rgb '#08519c', '' using 5 title 'max' lc rgb '#08306b'
set title "$wl: free latency (ns)"
plot '$tmp/lat-$wl.tsv' using 6:xtic(1) title 'p50' lc rgb '#fdae6b', '' using 7 title 'p99' lc rgb '#f16913', '' using 8 title 'p99.9' lc rgb '#d94801', '' using 9 title 'max' lc rgb '#7f2704'
unset multiplot
GP
        caption[latency-$wl]="$wl: per-call latency from the sampled warm-up run (rdtsc around 1 call in N): the tail is where page faults, refills, sweeps and cleanups show. The dotted red line is the cycle counter's step on this machine (${resol} ns): a bar below it means 'less than that'."
    done
fi

# ---- 6. memory over time: the RSS series, and the backends' own figures ----
# over_time PREFIX TITLE YLABEL CAPTION SERIES_FN: for each workload, the configuration with the
# largest peak RSS, one chart with the lines SERIES_FN WL B NAME adds to plots[] per backend.
over_time() {
    local prefix=$1 title=$2 ylabel=$3 cap=$4 fn=$5 wl cfg b name label
    for wl in "${WORKLOADS[@]}"; do
        cfg=$(awk -F'\t' -v w="$wl" '$1 == w && $5 > m { m = $5; c = $3 } END { print c }' "$tmp/rss.tsv")
        [ -n "$cfg" ] || continue
        plots=()
        for b in "${BACKENDS[@]}"; do
            name="$wl/$b"; [ "$cfg" != "-" ] && name="$name/$cfg"
            "$fn" "$wl" "$b" "$name"
        done
        [ ${#plots[@]} -gt 0 ] || continue
        label=$wl; [ "$cfg" != "-" ] && label="$wl ($cfg)"
        draw "$prefix-$wl" 1000 600 <<GP
set title "$label: $title; 0 = start of the measured region)"
set xlabel 'time (ms)'
set ylabel '$ylabel'
set grid
set key outside right top font ',8'
plot $(IFS=,; echo "${plots[*]}")
GP
        caption[$prefix-$wl]="$wl: $cap"
    done
}

rss_lines() { # the parent's RSS samples of the case's first repetition (all its runs)
    awk -F'\t' -v n="$3" '$1 == n { print $2 "\t" $3 / 1048576 }' "$series" > "$tmp/mt-$1-$2.tsv"
    [ -s "$tmp/mt-$1-$2.tsv" ] && plots+=("'$tmp/mt-$1-$2.tsv' using 1:2 with lines lw 2 lc rgb '$(backend_color "$2")' title '$2'")
    return 0
}

heap_lines() { # Sys: what the backend mapped from the OS; HeapInuse or PoolBytesHeld: in use
    awk -F'\t' -v n="$3" '$1 == n && $3 == "Sys" { print $2 "\t" $4 / 1048576 }' "$statsseries" > "$tmp/hs-$1-$2.tsv"
    [ -s "$tmp/hs-$1-$2.tsv" ] && plots+=("'$tmp/hs-$1-$2.tsv' using 1:2 with lines lw 2 lc rgb '$(backend_color "$2")' title '$2 Sys'")
    awk -F'\t' -v n="$3" '$1 == n && ($3 == "HeapInuse" || $3 == "PoolBytesHeld") { print $2 "\t" $4 / 1048576 }' "$statsseries" > "$tmp/hu-$1-$2.tsv"
    [ -s "$tmp/hu-$1-$2.tsv" ] && plots+=("'$tmp/hu-$1-$2.tsv' using 1:2 with lines lw 1.5 dt 2 lc rgb '$(backend_color "$2")' title '$2 in use / held'")
    return 0
}

if [ -s "$series" ] && [ "$(wc -l < "$series")" -gt 1 ]; then
    over_time memtime "resident memory over time (first repetition, all its runs" 'RSS (MiB)' \
        "RSS sampled by the parent every few ms while the child ran its largest case (its first repetition; a short case reruns its workload until the repetition lasts --min_time)." rss_lines
fi
if [ -s "$statsseries" ] && [ "$(wc -l < "$statsseries")" -gt 1 ]; then
    over_time heapstats "the backends' own figures over time (sampled in the warm-up run" 'MiB' \
        "what each backend with statistics had mapped from the OS (Sys, solid) and in use or held in pools (dashed), sampled by a thread in the child every few ms." heap_lines
fi

# ---- 7. counters per operation (hardware via PAPI, or simulated by callgrind) ----
for c in $(counters_like "$res" '^(papi|sim)\..*_per_op$'); do
    rows "$res" "$c" > "$tmp/c.tsv"
    [ -s "$tmp/c.tsv" ] || continue
    awk -F'\t' -v blist="${BACKENDS[*]}" 'BEGIN { nb = split(blist, B, " ") }
        { s[$1, $2] += log($5 > 1e-6 ? $5 : 1e-6); c[$1, $2]++; if (!($1 in seen)) { seen[$1] = 1; W[++nw] = $1 } }
        END { for (i = 1; i <= nw; i++) { line = W[i]
                for (b = 1; b <= nb; b++) { v = c[W[i], B[b]] ? exp(s[W[i], B[b]] / c[W[i], B[b]]) : "NaN"; line = line "\t" v "\t" v "\t" v }
                print line } }' "$tmp/c.tsv" > "$tmp/p-c.tsv"
    src="hardware counter (PAPI)"; case $c in sim.*) src="simulated by callgrind (deterministic)";; esac
    safe=$(echo "$c" | tr '.' '-')
    bars "counters-$safe" "$tmp/p-c.tsv" "" "${c%_per_op} per allocator operation, $src (geometric mean over cases; lower is better)" "per operation (log scale)"
    caption[counters-$safe]="${c%_per_op} per operation: $src."
done

# ---- 8. size-class waste ----
if [ -x "$alloclab" ]; then
    plots=()
    for b in "${BACKENDS[@]}"; do
        if "$alloclab" --usable-sizes "$b" > "$tmp/us-$b.tsv" 2>/dev/null; then
            plots+=("'$tmp/us-$b.tsv' using 1:(\$2/\$1) every 1::1 with lines lw 1.5 lc rgb '$(backend_color "$b")' title '$b'")
        fi
    done
    if [ ${#plots[@]} -gt 0 ]; then
        draw sizeclass-waste 1100 600 <<GP
set title "Size-class rounding: usable bytes per requested byte, 1 B..32 KiB (1.0 = no waste; lower is better)"
set xlabel 'requested size (bytes)'
set ylabel 'usable / requested'
set logscale x 2
set logscale y 2
set xrange [1:32768]
set grid
set key outside right top
plot $(IFS=,; echo "${plots[*]}")
GP
        caption[sizeclass-waste]="How much each backend rounds a request up (from its usable_size entry): the waste of its size classes."
    fi
fi

[ ${#made[@]} -gt 0 ] || echo "plot.sh: no chart data in $res" >&2

# ---- the report ----
esc() { sed 's/&/\&amp;/g;s/</\&lt;/g;s/>/\&gt;/g'; }
{
    echo "<!doctype html><html><head><meta charset='utf-8'><title>alloclab report</title>"
    echo "<style>body{font-family:sans-serif;max-width:1300px;margin:auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right}td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}</style></head><body>"
    echo "<h1>alloclab report</h1><p>$(printf '%s' "$note" | esc)<br>results: $(basename "$res")</p>"
    echo "<h2>Charts</h2>"
    for m in "${made[@]}"; do
        echo "<h3>$m</h3><p>$(printf '%s' "${caption[$m]:-}" | esc) <a href='$m.svg'>SVG</a></p><img src='$m.png' alt='$m'>"
    done
    echo "<h2>Medians per case</h2><table><tr><th>case</th><th>time ms (median)</th><th>min</th><th>max</th><th>reps</th><th>ns/op</th><th>peak RSS MiB</th><th>RSS growth / live</th></tr>"
    join -t $'\t' <(case_stats "$res" real_time | sort) <(case_stats "$res" ns_per_op | sort) |
        join -t $'\t' - <(case_stats "$res" peak_rss | sort) |
        join -t $'\t' -a 1 -e - -o auto - <(case_stats "$res" mem_ratio | sort) |
        awk -F'\t' '{ sub(/\/iterations:1\/manual_time$/, "", $1)
            printf "<tr><td>%s</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%d</td><td>%.1f</td><td>%.1f</td><td>%s</td></tr>\n", $1, $2, $3, $4, $5, $6, $10 / 1048576, ($14 == "-" ? "-" : sprintf("%.2f", $14)) }'
    echo "</table>"
    errs=$(case_errors "$res")
    if [ -n "$errs" ]; then
        echo "<h2>Failed or skipped cases</h2><p>These have no figures; charts name the backends they are missing from.</p><table><tr><th>case</th><th>error</th></tr>"
        printf '%s\n' "$errs" | esc | awk -F'\t' '{ sub(/\/iterations:1\/manual_time$/, "", $1); printf "<tr><td>%s</td><td style=\"text-align:left\">%s</td></tr>\n", $1, $2 }'
        echo "</table>"
    fi
    noisy=$(jq -r '(.alloclab_noisy // [])[] | "\(.name)\t\(.cv * 100 | floor)%"' "$res")
    if [ -n "$noisy" ]; then
        echo "<h2>Noisy cases</h2><p>Repetitions varied by more than $(jq -r '(.alloclab_cv_threshold // 0.05) * 100' "$res")% (coefficient of variation): treat small differences here with care.</p><table>"
        printf '%s\n' "$noisy" | esc | awk -F'\t' '{ printf "<tr><td>%s</td><td>%s</td></tr>\n", $1, $2 }'
        echo "</table>"
    fi
    echo "<h2>Context</h2><p>What produced these results; counters that were absent say why here.</p><table>"
    jq -r '.context | to_entries[] | select(.value | type == "string" or type == "number") | "<tr><td>\(.key)</td><td style=\"text-align:left\">\(.value | tostring | gsub("&"; "&amp;") | gsub("<"; "&lt;"))</td></tr>"' "$res"
    echo "</table></body></html>"
} > "$out/index.html"
echo "charts: ${made[*]:-none} -> $out/ (report: $out/index.html)"
