#!/usr/bin/env bash
# plot.sh RESULTS.json OUTDIR - every chart whose data exists in RESULTS, as PNG and SVG, plus
# OUTDIR/index.html. Data flows JSON -> jq -> TSV -> gnuplot; nothing is typed by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

res=${1:?usage: plot.sh RESULTS.json OUTDIR}
out=${2:?usage: plot.sh RESULTS.json OUTDIR}
[ -e "$res" ] || { echo "plot.sh: no results file $res (run make bench first)" >&2; exit 2; }
jq -e '.benchmarks | type == "array"' "$res" >/dev/null 2>&1 ||
    { echo "plot.sh: $res is not a Google Benchmark JSON results file" >&2; exit 2; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
note=$(footnote "$res")
made=()

# ---- bufchurn: ns per operation against payload size, one chart per mode ----
case_stats "$res" ns_per_op | awk -F'\t' '
    { split($1, p, "/"); if (p[1] != "bufchurn") next
      mode = ""; size = ""
      for (i = 3; i <= length(p); i++) { split(p[i], kv, ":"); if (kv[1] == "mode") mode = kv[2]; if (kv[1] == "size") size = kv[2] }
      if (mode == "" || size == "") next
      print mode "\t" p[2] "\t" size "\t" $2 "\t" $3 "\t" $4 }' > "$tmp/bufchurn.tsv"

for mode in $(cut -f1 "$tmp/bufchurn.tsv" | sort -u); do
    plots=()
    for b in $(awk -F'\t' -v m="$mode" '$1 == m { print $2 }' "$tmp/bufchurn.tsv" | awk '!seen[$0]++'); do
        awk -F'\t' -v m="$mode" -v b="$b" '$1 == m && $2 == b { print $3 "\t" $4 "\t" $5 "\t" $6 }' \
            "$tmp/bufchurn.tsv" | sort -n > "$tmp/bufchurn-$mode-$b.dat"
        plots+=("'$tmp/bufchurn-$mode-$b.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '$(backend_color "$b")' title '$b'")
    done
    [ ${#plots[@]} -gt 0 ] || continue
    for fmt in png svg; do
        if [ $fmt = png ]; then term="pngcairo size 1000,600 font 'Sans,10'"; else term="svg size 1000,600 dynamic font 'Sans,10'"; fi
        gnuplot <<GP
set terminal $term
set output '$out/bufchurn-$mode.$fmt'
set title "bufchurn ($mode): time per allocator operation by payload size\n{/*0.8 median of the repetitions, bars min..max; lower is better}"
set xlabel 'payload size (bytes)'
set ylabel 'ns per operation (alloc or free)'
set logscale x 2
set logscale y
set grid
set key outside right top
set bmargin 5
set label 1 "$note" at screen 0.01, screen 0.02 font ',8'
plot $(IFS=,; echo "${plots[*]}")
GP
    done
    made+=("bufchurn-$mode")
done

if [ ${#made[@]} -eq 0 ]; then
    echo "plot.sh: no chart data in $res (no successful bufchurn cases)" >&2
fi

# ---- the report ----
{
    echo "<!doctype html><html><head><meta charset='utf-8'><title>alloclab report</title>"
    echo "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}img{max-width:100%}</style></head><body>"
    echo "<h1>alloclab report</h1><p>$(printf '%s' "$note" | sed 's/&/\&amp;/g;s/</\&lt;/g')</p>"
    for m in "${made[@]}"; do echo "<h2>$m</h2><img src='$m.png' alt='$m'>"; done
    echo "<h2>Medians per case</h2><table><tr><th>case</th><th>ns/op (median)</th><th>min</th><th>max</th><th>repetitions</th></tr>"
    case_stats "$res" ns_per_op | awk -F'\t' '{ printf "<tr><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%d</td></tr>\n", $1, $2, $3, $4, $5 }'
    echo "</table>"
    errs=$(case_errors "$res")
    if [ -n "$errs" ]; then
        echo "<h2>Failed or skipped cases</h2><table><tr><th>case</th><th>error</th></tr>"
        printf '%s\n' "$errs" | sed 's/&/\&amp;/g;s/</\&lt;/g' | awk -F'\t' '{ printf "<tr><td>%s</td><td>%s</td></tr>\n", $1, $2 }'
        echo "</table>"
    fi
    echo "<h2>Context</h2><table>"
    jq -r '.context | to_entries[] | select(.value | type == "string" or type == "number") | "<tr><td>\(.key)</td><td>\(.value | tostring | gsub("<"; "&lt;"))</td></tr>"' "$res"
    echo "</table></body></html>"
} > "$out/index.html"
echo "charts: ${made[*]:-none} -> $out/ (report: $out/index.html)"
