#!/usr/bin/env bash
# latency_overhead_test.sh ALLOCLAB - the latency sampler's cost, counted in instructions by
# callgrind (deterministic: the same on any machine, whatever its load), on bufchurn steady
# 64 B with libc (80000 allocator calls, the cheapest calls we have, so the worst case):
#   - an unsampled run (what every timed repetition is) counts the same twice;
#   - the sampled warm-up run may cost at most 16 instructions per allocator call more.
# Prints the measured overhead for the README.
set -u
bin=${1:?usage: latency_overhead_test.sh path/to/alloclab}
command -v valgrind >/dev/null || { echo "valgrind missing"; echo "0 passed, 1 failed"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
ir() { # latency_period -> instructions inside al_measured_region
    valgrind --tool=callgrind --toggle-collect=al_measured_region --callgrind-out-file="$t/cg.$1" \
        "$bin" --run-child 1 bufchurn libc 1 1 "$1" -1 0 64 20000 1 4096 >/dev/null 2>"$t/vg.$1" || return 1
    awk '/^totals:/ { print $2 }' "$t/cg.$1"
}
calls=80000 # 20000 buffers x (payload alloc + buffer alloc + 2 frees)
plain=$(ir 0) && plain2=$(ir 0) && sampled=$(ir 16) || { bad "callgrind runs failed: $(tail -2 "$t"/vg.*)"; echo "$pass passed, $fail failed"; exit 1; }
[ "$plain" = "$plain2" ] && ok "instruction counts are deterministic ($plain)" || bad "counts differ: $plain vs $plain2"
per_call=$(( (sampled - plain) / calls ))
pct=$(awk -v a="$sampled" -v b="$plain" 'BEGIN { printf "%.1f", (a - b) * 100 / b }')
echo "     sampler: +$per_call instructions per allocator call, +$pct% on this case (1 in 16 sampled)"
[ "$per_call" -le 16 ] && ok "sampled run costs <= 16 instructions per call (+$per_call)" || bad "sampler costs $per_call instructions per call"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
