#!/usr/bin/env bash
# interleave-layouts.sh N OUT.tsv [alloclab interleave options...] - `alloclab interleave` over
# N layouts of the program: builds build/layout/alloclab.1..N (the same objects linked in N
# shuffled orders, so every function and static variable sits elsewhere), runs the same
# interleave in each, and reports over all their processes together.
#
# Why: interleave's processes differ in where the heaps land, but they all run one binary, so
# its code and static data sit at the same addresses in every process. That layout moved a
# backend by 15-30% between two builds that differed only in another backend's code. The
# pooled pairs rank backends across layouts; the per-layout table shows how far one build's
# ranking can be off.
#
# Writes OUT.tsv (interleave's --out format, processes numbered across layouts:
# layout L's process p is (L - 1) * K + p) and OUT.layouts.tsv (layout, process, backend,
# fastest ns/op). Bad input: one line, exit 2.
set -euo pipefail
n=${1:-} out=${2:-}
usage() { echo "interleave-layouts.sh: $*" >&2; exit 2; }
[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 100 ] ||
    usage "the number of layouts must be a whole number from 1 to 100, got \"$n\" (usage: interleave-layouts.sh N OUT.tsv [interleave options])"
[ -n "$out" ] && [[ $out != -* ]] || usage "OUT.tsv is required (usage: interleave-layouts.sh N OUT.tsv [interleave options])"
shift 2
for a in "$@"; do
    case $a in --out=* | --from=*) usage "$a: the script writes the files itself" ;; esac
done
out=$(realpath -m "$out") # written only at the end, never half
[ -d "$(dirname "$out")" ] && [ -w "$(dirname "$out")" ] && { [ ! -e "$out" ] || [ -w "$out" ]; } ||
    usage "cannot write \"$out\""
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bins=()
for l in $(seq 1 "$n"); do bins+=("build/layout/alloclab.$l"); done
make --no-print-directory -s all "${bins[@]}" >"$tmp/make.log" 2>&1 || {
    cat "$tmp/make.log" >&2
    echo "interleave-layouts.sh: building the layouts failed" >&2
    exit 1
}

procs=0
for l in $(seq 1 "$n"); do
    rc=0
    "build/layout/alloclab.$l" interleave "$@" --out="$tmp/$l.tsv" >"$tmp/$l.txt" 2>"$tmp/$l.err" || rc=$?
    if [ $rc -eq 2 ]; then
        cat "$tmp/$l.err" >&2 # interleave's own one line
        exit 2
    fi
    [ $rc -eq 0 ] || { cat "$tmp/$l.err" >&2; echo "interleave-layouts.sh: layout $l failed (status $rc)" >&2; exit 1; }
    grep -v '^interleave: [0-9]*/[0-9]* processes' "$tmp/$l.err" >&2 || true
    if [ $l -eq 1 ]; then
        echo "interleave over $n layouts (build/layout/alloclab.1..$n), in each:"
        head -2 "$tmp/1.txt"
    fi
    k=$(awk -F'\t' 'NR > 1 && $1 > m {m = $1} END {print m + 0}' "$tmp/$l.tsv")
    [ "$k" -gt "$procs" ] && procs=$k
    echo "layout $l of $n: done" >&2
done

# Pool: every layout's processes, numbered apart (K = the largest process count of a layout).
{
    head -1 "$tmp/1.tsv"
    for l in $(seq 1 "$n"); do
        awk -F'\t' -v OFS='\t' -v base=$(((l - 1) * procs)) 'NR > 1 {$1 += base; print}' "$tmp/$l.tsv"
    done
} >"$out"
{
    printf 'layout\tprocess\tbackend\tfastest_ns_per_op\n'
    for l in $(seq 1 "$n"); do
        awk -F'\t' -v OFS='\t' -v l=$l 'NR > 1 {print l, $1, $2, $3}' "$tmp/$l.tsv"
    done
} >"${out%.tsv}.layouts.tsv"

echo
echo "per layout: median over its processes of each one's fastest round, ns/op"
awk -F'\t' '
function median(v, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
NR > 1 {
    if (!($3 in seen)) { seen[$3] = 1; order[++nb] = $3 }
    if ($1 > nl) nl = $1
    c = ++cnt[$3, $1]; val[$3, $1, c] = $4
}
END {
    printf "%-12s", "backend"
    for (l = 1; l <= nl; l++) printf " %8s", "L" l
    printf "   %s\n", "max/min"
    for (i = 1; i <= nb; i++) {
        b = order[i]; printf "%-12s", b; lo = hi = 0
        for (l = 1; l <= nl; l++) {
            n = cnt[b, l]
            if (!n) { printf " %8s", "-"; continue }
            delete v; for (k = 1; k <= n; k++) v[k] = val[b, l, k]
            m = median(v, n); printf " %8.2f", m
            if (!lo || m < lo) lo = m; if (m > hi) hi = m
        }
        printf "   %7.3f\n", lo ? hi / lo : 0
    }
}' "${out%.tsv}.layouts.tsv"
echo
echo "all layouts together:"
build/alloclab interleave --from="$out" | tail -n +2
