#!/usr/bin/env bash
# merge.sh OUT.json SHARD.json... - join the result files of `alloclab --shard=I/N` runs
# (spread over machines by any job runner) into one: the first file's context plus a list of
# the shards' contexts, every shard's benchmarks and noisy-case flags, and the sidecars
# (<name>.rss.tsv, <name>.stats.tsv) concatenated. Written to a temporary name, then renamed.
set -euo pipefail
out=${1:-}
[ -n "$out" ] && [ $# -ge 2 ] || { echo "usage: merge.sh OUT.json SHARD.json..." >&2; exit 2; }
shift
for f in "$@"; do
    jq -e '.benchmarks | type == "array"' "$f" >/dev/null 2>&1 ||
        { echo "merge.sh: $f is not a Google Benchmark JSON results file" >&2; exit 2; }
done
tmp="$out.tmp.$$"
jq -s '.[0] + {
          context: (.[0].context + {shards: (map(.context.shard // "1/1") | join(" "))}),
          benchmarks: (map(.benchmarks) | add),
          alloclab_noisy: (map(.alloclab_noisy // []) | add)
        }' "$@" > "$tmp"
mv "$tmp" "$out"
# the sidecars: RSS series (.rss.tsv) and backend stats series (.stats.tsv), header once
for kind in rss stats; do
    side() { case "$1" in *.json) echo "${1%.json}.$kind.tsv" ;; *) echo "$1.$kind.tsv" ;; esac; }
    sout=$(side "$out")
    first=1
    for f in "$@"; do
        s=$(side "$f")
        [ -e "$s" ] || continue
        if [ $first = 1 ]; then cat "$s"; first=0; else tail -n +2 "$s"; fi
    done > "$sout.tmp.$$"
    if [ $first = 0 ]; then mv "$sout.tmp.$$" "$sout"; else rm -f "$sout.tmp.$$"; fi
done
echo "merged $# shard files into $out ($(jq '.benchmarks | length' "$out") rows)"
