#!/usr/bin/env bash
# preload_test.sh BINARY [BINARY...] - run test binaries (the conformance suite: build/tests/
# conformance; also useful: build/tests/unit_refalloc) with LD_PRELOAD=libjemalloc.so.2, so the
# `jemalloc` backend's create() succeeds and its rows really run (without the preload they are
# skipped with "not running under jemalloc"). Exits 0 with a "skipped" line when libjemalloc is
# not installed, 1 when a binary fails or jemalloc did not become the process's malloc.
# Only for the plain build: a sanitizer runtime must come first in the library list.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }

find_jemalloc() {
    local ma=""
    ma=$(gcc -print-multiarch 2>/dev/null || true)
    [ -n "$ma" ] || ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
    for d in ${ma:+/usr/lib/$ma /lib/$ma} /usr/lib64 /usr/lib /usr/local/lib; do
        if [ -r "$d/libjemalloc.so.2" ]; then echo "$d/libjemalloc.so.2"; return 0; fi
    done
    return 1
}

if ! JE=$(find_jemalloc); then
    echo "preload_test: skipped: not installed: libjemalloc.so.2"
    exit 0
fi

# jemalloc must really be mapped in a preloaded child (a bad path is only a warning to ld.so).
if ! LD_PRELOAD="$JE" grep -q libjemalloc /proc/self/maps; then
    echo "preload_test: FAIL: LD_PRELOAD=$JE does not load jemalloc" >&2
    exit 1
fi

# jemalloc keeps freed extents mapped until a time-based decay (10 s by default) purges them;
# the conformance suite's no-growth check reads mapped memory, and would see that retention
# (e.g. syncpool over libc=jemalloc "grows" 12 MB) as a leak. Purge at once, so the check is
# about leaks, not about jemalloc's decay clock. A MALLOC_CONF from the caller wins.
export MALLOC_CONF=${MALLOC_CONF:-dirty_decay_ms:0,muzzy_decay_ms:0}

status=0
for bin in "$@"; do
    echo "== $bin under LD_PRELOAD=$JE MALLOC_CONF=$MALLOC_CONF"
    if ! LD_PRELOAD="$JE" "$bin" ${CRIT_FLAGS:---jobs 2}; then
        echo "preload_test: FAIL: $bin under jemalloc" >&2
        status=1
    fi
done
exit $status
