#!/usr/bin/env bash
# run_programs.sh [BUILD_DIR] - real programs under every allocator (`make run-programs`), like
# mimalloc-bench's cfrac/redis/... rows: wall time, peak RSS and page faults per allocator.
#
# Allocators: libc (no preload: glibc's ptmalloc2), jemalloc, tcmalloc (tcmalloc_minimal),
# mimalloc (each Debian library through LD_PRELOAD; skipped when not installed), and every
# drop-in BUILD_DIR/liballoclab-<backend>.so from `make preload` (alloclab-<backend>).
# Programs (Debian packages, no network; inputs generated here, deterministic):
#   python3   scripts/programs/dictlist.py 50000: dicts, lists and strings - small objects
#             through pymalloc plus malloc for every container growth (realloc) and large str;
#   python3-malloc  the same with PYTHONMALLOC=malloc: every object through the allocator,
#             what an allocator-bound interpreter looks like;
#   sqlite3   an in-memory database: 200000 generated rows, two indexes, group-by and join
#             queries (page cache and parser allocations);
#   sort      LC_ALL=C sort -S 64M of 1,000,000 generated lines (a few large buffers: mostly a
#             control for big-block and page-fault behaviour);
#   gzip      gzip -6 of the same file (allocates almost nothing: a control, any difference is
#             noise or start-up cost);
#   gcc       gcc -O2 -c of a generated 150-function C file (cc1: obstacks and many mid-size
#             blocks; LD_PRELOAD reaches cc1 and as, and wait4's rusage includes them).
# Each (program, allocator) runs REPS times (default 3; the reps go round-robin over the
# allocators so a slow phase of the machine hits all alike); the figures are the medians. The output
# of every run is compared with the libc run's (stdout, or the object file for gcc); a
# mismatch or a crash marks the row "output_ok": false and the script exits 1 at the end.
# Writes OUT (default results/programs.json; jq-friendly: {context, results: [...]}) and prints
# a table (also OUT with .md instead of .json).
set -uo pipefail

B=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/results/programs.json}
REPS=${REPS:-3}
RUNPROG="$B/tools/runprog"
PY=/usr/bin/python3
[ -x "$RUNPROG" ] || { echo "run_programs: $RUNPROG not built (make build/tools/runprog)" >&2; exit 2; }
command -v jq > /dev/null || { echo "run_programs: jq not installed" >&2; exit 2; }
[ -x "$PY" ] || PY=$(command -v python3)
TMP=$(mktemp -d /tmp/alloclab-programs-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$(dirname "$OUT")"

# ---- allocators: name and LD_PRELOAD value ("" = none) ----
MA=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
findlib() {
    for d in /usr/lib/$MA /lib/$MA /usr/lib64 /usr/lib; do
        [ -r "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}
ANAMES=(libc) APRE=("")
for ref in jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4 mimalloc:libmimalloc.so.2; do
    if lib=$(findlib "${ref#*:}"); then
        ANAMES+=("${ref%%:*}"); APRE+=("$lib")
    else
        echo "run_programs: ${ref%%:*} skipped: not installed: ${ref#*:}" >&2
    fi
done
shopt -s nullglob
for so in "$B"/liballoclab-*.so; do
    n=$(basename "$so" .so); n=${n#liballoclab-}
    [ "$n" = trace ] && continue
    ANAMES+=("alloclab-$n"); APRE+=("$so")
done

# ---- inputs ----
awk 'BEGIN { x = 12345; for (i = 0; i < 1000000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        printf "%010d %s-%d\n", x, substr("qwertyuiopasdfghjklzxcvbnm", x % 20 + 1, 6), i } }' \
    > "$TMP/lines.txt"
cat > "$TMP/db.sql" <<'SQL'
create table item(id integer primary key, name text, grp integer, price real);
create table tag(item integer, tag text);
with recursive n(x) as (select 1 union all select x + 1 from n where x < 200000)
insert into item select x, printf('item-%07d-%s', x * 7919 % 200003, hex(zeroblob(x % 9))),
                        x % 997, (x * 31 % 1000) / 10.0 from n;
insert into tag select id, printf('t%d', id % 211) from item where id % 3 = 0;
create index item_grp on item(grp);
create index tag_tag on tag(tag);
select grp, count(*), round(sum(price), 2), max(name) from item group by grp order by grp limit 20;
select t.tag, count(*), round(avg(i.price), 3) from tag t join item i on i.id = t.item
  group by t.tag order by count(*) desc, t.tag limit 20;
select count(distinct substr(name, 6, 3)) from item;
SQL
{
    echo "#include <stdint.h>"
    for i in $(seq 0 149); do
        cat <<C
uint64_t f$i(uint64_t x, const uint32_t *t, int n) {
    uint64_t a = x ^ ${i}u, b = 0;
    for (int k = 0; k < n; k++) {
        switch ((a + (uint64_t)k) % 7) {
        case 0: a = a * 6364136223846793005u + t[k]; break;
        case 1: b += (a >> 13) ^ t[k]; break;
        case 2: a ^= b << ($i % 31 + 1); break;
        case 3: b = b * 31 + (uint64_t)k * $i; break;
        case 4: a += t[(k * 7) % (n ? n : 1)]; break;
        default: b ^= a >> (k % 17); break;
        }
    }
    return a + b * $i;
}
C
    done
} > "$TMP/gen.c"

# ---- programs: name, then the command (run from $TMP); stdin file via PIN_<name> ----
PROGS=(python3 python3-malloc sqlite3 sort gzip gcc)
prog_cmd() {
    case $1 in
    python3) CMD=("$PY" "$ROOT/scripts/programs/dictlist.py" 50000); ENV=(); PIN="" ;;
    python3-malloc) CMD=("$PY" "$ROOT/scripts/programs/dictlist.py" 50000)
                    ENV=(-e PYTHONMALLOC=malloc); PIN="" ;;
    sqlite3) CMD=(sqlite3 :memory:); ENV=(); PIN="$TMP/db.sql" ;;
    sort) CMD=(sort -S 64M "$TMP/lines.txt"); ENV=(-e LC_ALL=C); PIN="" ;;
    gzip) CMD=(gzip -6 -c "$TMP/lines.txt"); ENV=(); PIN="" ;;
    gcc) CMD=(gcc -O2 -c "$TMP/gen.c" -o "$TMP/gen.o"); ENV=(); PIN="" ;;
    esac
}
# the output a run is judged by
prog_output() { if [ "$1" = gcc ]; then md5sum < "$TMP/gen.o"; else md5sum < "$TMP/out"; fi; }
have() { case $1 in sqlite3) command -v sqlite3 > /dev/null ;; *) true ;; esac; }

status=0
ROWS="$TMP/rows.jsonl"
: > "$ROWS"
for p in "${PROGS[@]}"; do
    if ! have "$p"; then
        echo "run_programs: $p skipped: not installed" >&2
        continue
    fi
    prog_cmd "$p"
    # reference output (and a warm-up of the page cache), under libc
    "$RUNPROG" ${PIN:+-i "$PIN"} -o "$TMP/out" "${ENV[@]}" -- "${CMD[@]}" > /dev/null
    ref=$(prog_output "$p")
    # reps round-robin over the allocators, so a slow phase of the machine hits all alike
    for ai in "${!ANAMES[@]}"; do : > "$TMP/reps.$ai"; echo true > "$TMP/ok.$ai"; done
    for r in $(seq 1 "$REPS"); do
        for ai in "${!ANAMES[@]}"; do
            pre=${APRE[$ai]}
            rm -f "$TMP/out" "$TMP/gen.o"
            "$RUNPROG" ${PIN:+-i "$PIN"} -o "$TMP/out" "${ENV[@]}" \
                ${pre:+-e "LD_PRELOAD=$pre"} -- "${CMD[@]}" >> "$TMP/reps.$ai" 2> "$TMP/err" ||
                echo false > "$TMP/ok.$ai"
            last=$(tail -1 "$TMP/reps.$ai")
            if [ "$(jq '.exit' <<< "$last")" != 0 ] || [ "$(jq '.signal' <<< "$last")" != 0 ] ||
               [ "$(prog_output "$p")" != "$ref" ]; then
                echo false > "$TMP/ok.$ai"
            fi
        done
    done
    for ai in "${!ANAMES[@]}"; do
        a=${ANAMES[$ai]} pre=${APRE[$ai]} ok=$(cat "$TMP/ok.$ai")
        $ok || { status=1; echo "run_programs: FAIL: $p under $a: crashed or wrong output" >&2; }
        jq -s -c --arg p "$p" --arg a "$a" --arg pre "$pre" --argjson ok "$ok" '
            . as $r
            | {program: $p, allocator: $a, preload: $pre, output_ok: $ok, reps: length,
               median: (reduce ("wall_s", "utime_s", "stime_s", "maxrss_kb", "minflt", "majflt")
                        as $k ({}; .[$k] = ([$r[][$k]] | sort | .[(length - 1) / 2 | floor]))),
               runs: $r}' "$TMP/reps.$ai" >> "$ROWS"
        printf '  %-15s %-20s %s\n' "$p" "$a" "$(jq -c '.median | {wall_s, maxrss_kb, minflt}' <<< "$(tail -1 "$ROWS")")" >&2
    done
done

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$(uname -n)" \
      --arg kernel "$(uname -r)" --arg cpus "$(nproc)" \
      --arg commit "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
      --arg glibc "$(ldd --version | head -1 | awk '{print $NF}')" \
      --arg python "$("$PY" --version 2>&1)" --arg reps "$REPS" '
    {context: {date: $date, host: $host, kernel: $kernel, cpus: ($cpus | tonumber),
               commit: $commit, glibc: $glibc, python: $python, reps: ($reps | tonumber),
               figures: "median of reps; maxrss_kb and faults from wait4 (child + descendants)"},
     results: .}' "$ROWS" > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"

# the table: per program, each allocator against libc
MD=${OUT%.json}.md
jq -r '
    "| program | allocator | wall s | vs libc | peak RSS MiB | minor faults | output |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    (.results | group_by(.program)[] as $g
     | ($g[] | select(.allocator == "libc") | .median.wall_s) as $base
     | $g[] | "| \(.program) | \(.allocator) | \(.median.wall_s * 1000 | round / 1000) | " +
              "\(if $base then (.median.wall_s / $base * 100 | round / 100) else "-" end)x | " +
              "\(.median.maxrss_kb / 1024 * 10 | round / 10) | \(.median.minflt) | " +
              "\(if .output_ok then "ok" else "WRONG" end) |")' "$OUT" > "$MD"
cat "$MD"
echo "run_programs: $OUT, $MD"
exit $status
