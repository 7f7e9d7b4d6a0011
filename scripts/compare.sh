#!/usr/bin/env bash
# compare.sh A.json B.json - (either may be .json.gz) per case, B's median time against A's, with a significance
# verdict from a two-sided Mann-Whitney U test over the repetitions (what compare.py does,
# without python): exact p-values for up to 20 repetitions a side without ties, the normal
# approximation with tie and continuity corrections otherwise. alpha = 0.05.
#   case  n_A  n_B  median_A_ms  median_B_ms  B/A  p  verdict
# Exit 2 on a missing or malformed file.
set -euo pipefail
a=${1:-} b=${2:-}
[ -n "$a" ] && [ -n "$b" ] || { echo "usage: compare.sh A.json B.json" >&2; exit 2; }
for f in "$a" "$b"; do
    [ -r "$f" ] || { echo "compare.sh: cannot read $f" >&2; exit 2; }
    zcat -f "$f" | jq -e '.benchmarks | type == "array"' >/dev/null 2>&1 ||
        { echo "compare.sh: $f is not a Google Benchmark JSON results file" >&2; exit 2; }
done
ALPHA=${ALPHA:-0.05}
times() { # case <tab> real_time (ms) of every successful repetition
    jq -r '.benchmarks[] | select(.run_type == "iteration" and (.error_occurred | not))
           | [(.run_name | sub("/iterations:1/manual_time$"; "")), .real_time] | @tsv' <(zcat -f "$1")
}
{ times "$a" | sed 's/^/A\t/'; times "$b" | sed 's/^/B\t/'; } | awk -F'\t' -v alpha="$ALPHA" '
function median(arr, n,    i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = arr[i]
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
# number of orderings of m a-values and n b-values with U(a) <= u, memoised
function cnt(m, n, u,    k) {
    if (u < 0) return 0
    if (m == 0 || n == 0) return 1
    k = m SUBSEP n SUBSEP u
    if (k in memo) return memo[k]
    return memo[k] = cnt(m - 1, n, u - n) + cnt(m, n - 1, u)
}
function binom(n, k,    r, i) { r = 1; for (i = 1; i <= k; i++) r = r * (n - k + i) / i; return r }
function erfc_approx(x,    t, y) { # Abramowitz-Stegun 7.1.26, |error| < 1.5e-7
    t = 1 / (1 + 0.3275911 * x)
    y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return y * exp(-x * x)
}
{ key = $2; if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
  if ($1 == "A") A[key, ++na[key]] = $3; else B[key, ++nb[key]] = $3 }
END {
    printf "%-64s %4s %4s %12s %12s %8s %10s  %s\n", "case", "n_A", "n_B", "median_A_ms", "median_B_ms", "B/A", "p", "verdict"
    for (k = 1; k <= nk; k++) {
        key = order[k]; m = na[key] + 0; n = nb[key] + 0
        if (m == 0 || n == 0) { printf "%-64s %4d %4d %12s %12s %8s %8s  %s\n", key, m, n, "-", "-", "-", "-", "only in " (m ? "A" : "B"); continue }
        delete va; delete vb; delete all; delete lab
        for (i = 1; i <= m; i++) va[i] = A[key, i]
        for (i = 1; i <= n; i++) vb[i] = B[key, i]
        ma = median(va, m); mb = median(vb, n)
        # ranks over the pooled sample, ties averaged
        N = m + n
        for (i = 1; i <= m; i++) { all[i] = va[i]; lab[i] = "a" }
        for (i = 1; i <= n; i++) { all[m + i] = vb[i]; lab[m + i] = "b" }
        for (i = 2; i <= N; i++) { t = all[i]; l = lab[i]; for (j = i - 1; j >= 1 && all[j] > t; j--) { all[j + 1] = all[j]; lab[j + 1] = lab[j] } all[j + 1] = t; lab[j + 1] = l }
        R1 = 0; ties = 0; tiecorr = 0
        for (i = 1; i <= N; ) {
            for (j = i; j < N && all[j + 1] == all[i]; j++) ;
            r = (i + j) / 2; tn = j - i + 1
            if (tn > 1) { ties = 1; tiecorr += tn * tn * tn - tn }
            for (q = i; q <= j; q++) if (lab[q] == "a") R1 += r
            i = j + 1
        }
        U1 = R1 - m * (m + 1) / 2; U = U1 < m * n - U1 ? U1 : m * n - U1
        if (!ties && m <= 20 && n <= 20) {
            p = 2 * cnt(m, n, int(U)) / binom(m + n, m)
        } else {
            mu = m * n / 2
            sd = sqrt(m * n / 12 * ((N + 1) - tiecorr / (N * (N - 1))))
            z = sd > 0 ? (mu - U - 0.5) / sd : 0
            if (z < 0) z = 0
            p = erfc_approx(z / sqrt(2))
        }
        if (p > 1) p = 1
        if (m < 3 || n < 3) verdict = "too few repetitions for a verdict"
        else if (p < alpha) {
            if (mb < ma) verdict = "B faster, significant"
            else if (mb > ma) verdict = "B slower, significant"
            else verdict = "different, significant"
        }
        else verdict = "no significant difference"
        printf "%-64s %4d %4d %12.4f %12.4f %8.4f %10.4g  %s\n", key, m, n, ma, mb, (ma > 0 ? mb / ma : 0), p, verdict
    }
}'
