/* pagealloc.c - the page allocator of one arena: Go's mpagealloc shape, two levels deep.
 *
 * Each 64 MiB arena has a bitmap with one bit per 8 KiB page (1 = in use) and, per 512-page
 * chunk, a summary {start, max, end}: free pages at the chunk's start, its longest free run,
 * free pages at its end. The arena's `maxrun` merges the 16 chunk summaries (the root of the
 * radix tree; Go has 5 levels for the whole address space, we have arena -> chunk -> bitmap).
 * mheap.c walks the arenas oldest first, which is Go's address order (Go maps arenas at
 * ascending hint addresses; mmap here gives descending ones, so creation order stands in). A search skips arenas whose maxrun is too small, walks chunk summaries carrying the
 * free run across chunk borders, and scans bits only inside the one chunk that holds the run.
 * Freeing clears bits, so freed neighbours merge implicitly: there is no free list to coalesce.
 * A free updates the summaries from the one run it creates (its neighbours found through the
 * old summaries, or a short word walk) instead of rescanning the chunk and merging all 16.
 * A second bitmap `scav` marks free pages already returned to the OS (the scavenger's).
 * gt_pages_take_word / gt_pages_put_word move a whole bitmap word's free pages into and out of
 * a thread's page cache (Go's allocToCache; mheap.c).
 *
 * Invariants (per arena, checked by gt_pages_check):
 *   sum[c] == summary(alloc bits of chunk c);   maxrun == merge(sum[0..15]);
 *   free_pages == popcount(~alloc);              scav & alloc == 0;
 *   every page in [first_page, search) is in use (Go's searchAddr, where searches start).
 * All functions run under the heap lock.
 */
#include "gotiered_internal.h"

#include <stdio.h>
#include <sys/mman.h>

static inline int bit_get(const uint64_t *b, size_t i) { return (b[i >> 6] >> (i & 63)) & 1; }

/* Summary of chunk c, a word at a time: each word splits into alternating runs of free
 * (0) and used (1) bits found with ctz. Can't fail. */
static gt_sum chunk_summary(const gt_arena *a, unsigned c)
{
    const uint64_t *w = &a->alloc[c * (GT_CHUNK_PAGES / 64)];
    unsigned run = 0, max = 0, start = 0;
    int have_start = 0;
    for (unsigned k = 0; k < GT_CHUNK_PAGES / 64; k++) {
        uint64_t x = w[k];
        unsigned left = 64;
        while (left) {
            if (x == 0) {
                run += left;
                break;
            }
            unsigned z = (unsigned)__builtin_ctzll(x); /* free bits before the next used one */
            run += z;
            if (!have_start) {
                start = run;
                have_start = 1;
            }
            if (run > max) max = run;
            run = 0;
            x >>= z;
            left -= z;
            uint64_t y = ~x;
            unsigned o = y ? (unsigned)__builtin_ctzll(y) : 64; /* used bits */
            if (o >= left) break;
            x >>= o;
            left -= o;
        }
    }
    if (!have_start) start = run;
    if (run > max) max = run;
    return (gt_sum){(uint16_t)start, (uint16_t)max, (uint16_t)run};
}

/* First run of n free pages in [from, to) (word at a time), or -1. Can't fail. */
static long find_run(const uint64_t *b, size_t from, size_t to, size_t n)
{
    size_t run = 0, i = from;
    while (i < to) {
        size_t off = i & 63, left = 64 - off;
        if (to - i < left) left = to - i;
        uint64_t x = b[i >> 6] >> off;
        if (left < 64) x &= (UINT64_C(1) << left) - 1;
        if (x == 0) {
            if (run + left >= n) return (long)(i - run);
            run += left;
            i += left;
            continue;
        }
        size_t z = (size_t)__builtin_ctzll(x);
        if (run + z >= n) return (long)(i - run);
        x >>= z;
        uint64_t y = ~x;
        size_t o = y ? (size_t)__builtin_ctzll(y) : 64 - z;
        i += z + o;
        run = 0;
    }
    return -1;
}

/* Longest free run of the arena, from the chunk summaries. Can't fail. */
static uint32_t merge_max(const gt_arena *a)
{
    unsigned run = 0, max = 0;
    for (unsigned c = 0; c < GT_NCHUNK; c++) {
        const gt_sum *s = &a->sum[c];
        if (s->start == GT_CHUNK_PAGES) {
            run += GT_CHUNK_PAGES;
            continue;
        }
        if (run + s->start > max) max = run + s->start;
        if (s->max > max) max = s->max;
        run = s->end;
    }
    return run > max ? run : max;
}

/* Recompute the summaries touched by pages [i, i+n). Can't fail. */
static void update(gt_arena *a, size_t i, size_t n)
{
    for (size_t c = i / GT_CHUNK_PAGES; c <= (i + n - 1) / GT_CHUNK_PAGES; c++)
        a->sum[c] = chunk_summary(a, (unsigned)c);
    a->maxrun = merge_max(a);
}

/* Free pages directly below page j, the first page of a range just freed in chunk c0 (its
 * bits already cleared; every summary still as before the free, which only differs on the
 * freed range). Inside c0: the old summary's `start` when the free run at the chunk start
 * reaches j (the common case of neighbouring frees), else a word-at-a-time walk that stops at
 * a page in use within the chunk; then whole chunks below: a free one adds 512 pages, the
 * first other one its `end`. Can't fail (the header pages are in use). */
static size_t free_below(const gt_arena *a, size_t j, unsigned c0)
{
    size_t clo = (size_t)c0 * GT_CHUNK_PAGES;
    if (j > clo) {
        if (clo + a->sum[c0].start != j) { /* a page in use in [clo, j): walk down to it */
            size_t w = (j - 1) >> 6, cnt;
            unsigned bit = (unsigned)((j - 1) & 63);
            uint64_t x = a->alloc[w] << (63 - bit); /* pages w*64 .. j-1, on top */
            if (x) return (size_t)__builtin_clzll(x);
            for (cnt = bit + 1; !a->alloc[--w]; cnt += 64) {}
            return cnt + (size_t)__builtin_clzll(a->alloc[w]);
        }
    }
    size_t cnt = j - clo;
    for (unsigned c = c0; c > 0; c--) {
        const gt_sum *s = &a->sum[c - 1];
        if (s->start != GT_CHUNK_PAGES) return cnt + s->end;
        cnt += GT_CHUNK_PAGES;
    }
    return cnt;
}

/* Free pages from page k up, k just past a range freed whose last page is in chunk c1; as
 * free_below, mirrored. Can't fail. */
static size_t free_above(const gt_arena *a, size_t k, unsigned c1)
{
    size_t chi = (size_t)(c1 + 1) * GT_CHUNK_PAGES;
    if (k < chi) {
        if (chi - a->sum[c1].end != k) { /* a page in use in [k, chi): walk up to it */
            size_t w = k >> 6, cnt;
            uint64_t x = a->alloc[w] >> (k & 63);
            if (x) return (size_t)__builtin_ctzll(x);
            for (cnt = 64 - (k & 63); !a->alloc[++w]; cnt += 64) {}
            return cnt + (size_t)__builtin_ctzll(a->alloc[w]);
        }
    }
    size_t cnt = chi - k;
    for (unsigned c = c1 + 1; c < GT_NCHUNK; c++) {
        const gt_sum *s = &a->sum[c];
        if (s->start != GT_CHUNK_PAGES) return cnt + s->start;
        cnt += GT_CHUNK_PAGES;
    }
    return cnt;
}

/* After pages [i, i+n) were freed (bits cleared): they join their free neighbours in one run
 * R; no other run changed. So each touched chunk's summary changes only by its part of R
 * (start / end when R reaches its edge, max when longer), and the arena's longest run is
 * max(maxrun, |R|): no chunk rescan, no merge of all 16 summaries (together ~400 instructions
 * per free of a large span, this a few dozen). Can't fail. */
static void update_put(gt_arena *a, size_t i, size_t n)
{
    unsigned c0 = (unsigned)(i / GT_CHUNK_PAGES), c1 = (unsigned)((i + n - 1) / GT_CHUNK_PAGES);
    size_t lo = i - free_below(a, i, c0), hi = i + n + free_above(a, i + n, c1);
    for (unsigned c = c0; c <= c1; c++) {
        size_t clo = (size_t)c * GT_CHUNK_PAGES, chi = clo + GT_CHUNK_PAGES;
        size_t ilo = lo > clo ? lo : clo, ihi = hi < chi ? hi : chi;
        uint16_t len = (uint16_t)(ihi - ilo);
        gt_sum *s = &a->sum[c];
        if (ilo == clo) s->start = len;
        if (ihi == chi) s->end = len;
        if (len > s->max) s->max = len;
    }
    if (hi - lo > a->maxrun) a->maxrun = (uint32_t)(hi - lo);
}

/* Set (v=1) or clear bits [i, i+n). Can't fail. */
static void set_range(uint64_t *b, size_t i, size_t n, int v)
{
    while (n) {
        size_t off = i & 63, k = 64 - off < n ? 64 - off : n;
        uint64_t m = (k == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << k) - 1)) << off;
        if (v) b[i >> 6] |= m;
        else b[i >> 6] &= ~m;
        i += k;
        n -= k;
    }
}

/* Bits set in [i, i+n). Can't fail. */
static size_t count_range(const uint64_t *b, size_t i, size_t n)
{
    size_t cnt = 0;
    while (n) {
        size_t off = i & 63, k = 64 - off < n ? 64 - off : n;
        uint64_t m = (k == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << k) - 1)) << off;
        cnt += (size_t)gt_popcount(b[i >> 6] & m);
        i += k;
        n -= k;
    }
    return cnt;
}

/* All pages free except the header's, and all of them released: fresh pages were never
 * touched, so they cost no RSS until a span takes them (Go's sysGrow marks new memory
 * scavenged the same way). Can't fail. */
void gt_pages_init(gt_arena *a)
{
    for (unsigned k = 0; k < GT_PAGE_WORDS; k++) {
        a->alloc[k] = 0;
        a->scav[k] = ~UINT64_C(0);
    }
    set_range(a->alloc, 0, a->first_page, 1);
    set_range(a->scav, 0, a->first_page, 0);
    for (unsigned c = 0; c < GT_NCHUNK; c++) a->sum[c] = chunk_summary(a, c);
    a->maxrun = merge_max(a);
    a->free_pages = GT_ARENA_PAGES - a->first_page;
    a->search = a->first_page;
}

/* First run of n free pages in address order, or -1. Can't fail. */
long gt_pages_find(const gt_arena *a, size_t n)
{
    if (n == 0 || a->maxrun < n) return -1;
    size_t run = 0, runstart = 0;
    /* pages below `search` are all in use: start in its chunk (whose leading free run, if
     * any, starts at or after it) and scan bits from it */
    for (unsigned c = a->search / GT_CHUNK_PAGES; c < GT_NCHUNK; c++) {
        const gt_sum *s = &a->sum[c];
        if (run == 0) runstart = (size_t)c * GT_CHUNK_PAGES;
        if (run + s->start >= n) return (long)runstart;
        if (s->max >= n) { /* a run inside this chunk: scan its bits */
            size_t from = (size_t)c * GT_CHUNK_PAGES;
            if (from < a->search) from = a->search;
            return find_run(a->alloc, from, (size_t)(c + 1) * GT_CHUNK_PAGES, n);
        }
        if (s->start == GT_CHUNK_PAGES) {
            run += GT_CHUNK_PAGES;
        } else {
            run = s->end;
            runstart = (size_t)(c + 1) * GT_CHUNK_PAGES - s->end;
        }
    }
    return -1;
}

/* Returns how many of the pages had been released to the OS. Can't fail. */
size_t gt_pages_take(gt_arena *a, size_t i, size_t n)
{
    size_t rel = count_range(a->scav, i, n);
    set_range(a->scav, i, n, 0);
    set_range(a->alloc, i, n, 1);
    a->free_pages -= (uint32_t)n;
    if (a->search >= i && a->search < i + n) a->search = (uint32_t)(i + n);
    update(a, i, n);
    return rel;
}

/* Can't fail. */
void gt_pages_put(gt_arena *a, size_t i, size_t n)
{
    set_range(a->alloc, i, n, 0);
    a->free_pages += (uint32_t)n;
    if (i < a->search) a->search = (uint32_t)i;
    update_put(a, i, n);
}

/* Go's pageAlloc.allocToCache: the free pages of the first bitmap word with a run of n free
 * pages inside it, from the word of the search hint on (pages below the hint are all in use,
 * so every free page of that word lies at or after it). Go takes the first word with any free
 * page and sends a request its cache cannot serve to the locked path; asking for a run of n
 * keeps a leftover fragment from sending every later request of n pages there. Returns the
 * pages taken (0: no such word). Can't fail. */
unsigned gt_pages_take_word(gt_arena *a, gt_pcache *pc, size_t n)
{
    if (a->free_pages < n || a->maxrun < n) return 0;
    for (unsigned w = a->search / 64; w < GT_PAGE_WORDS; w++) {
        const unsigned wpc = GT_CHUNK_PAGES / 64; /* words per chunk */
        if (a->sum[w / wpc].max < n) { /* no run of n in this chunk: skip it */
            w = (w / wpc) * wpc + wpc - 1;
            continue;
        }
        uint64_t free = ~a->alloc[w], x = free;
        for (size_t k = 1; k < n && x; k++) x &= free >> k;
        if (!x) continue; /* no run of n inside this word */
        pc->arena = a;
        pc->word = w;
        pc->scav = a->scav[w] & free;
        __atomic_store_n(&pc->cache, free, __ATOMIC_RELAXED);
        a->scav[w] &= ~free;
        a->alloc[w] = ~UINT64_C(0);
        unsigned n = gt_popcount(free);
        a->free_pages -= n;
        if (a->search >= w * 64) a->search = (w + 1) * 64; /* every page below is in use */
        update(a, (size_t)w * 64, 64);
        return n;
    }
    return 0;
}

/* Can't fail. */
void gt_pages_put_word(gt_arena *a, unsigned w, uint64_t pages, uint64_t scav)
{
    if (!pages) return;
    a->alloc[w] &= ~pages;
    a->scav[w] |= scav & pages;
    a->free_pages += gt_popcount(pages);
    size_t first = (size_t)w * 64 + (size_t)__builtin_ctzll(pages);
    if (first < a->search) a->search = (uint32_t)first;
    update(a, (size_t)w * 64, 64); /* several runs at once: the full recomputation */
}

/* Returns pages released (madvise failures leave the pages marked unreleased). */
size_t gt_pages_scavenge(gt_arena *a, size_t budget)
{
    size_t done = 0, i = a->first_page;
    while (i < GT_ARENA_PAGES && done < budget) {
        size_t k = i >> 6;
        uint64_t cand = ~(a->alloc[k] | a->scav[k]) >> (i & 63);
        if (!cand) {
            i = (k + 1) << 6;
            continue;
        }
        i += (size_t)__builtin_ctzll(cand);
        size_t j = i;
        while (j < GT_ARENA_PAGES && j - i < budget - done && !bit_get(a->alloc, j) &&
               !bit_get(a->scav, j))
            j++;
        char *addr = (char *)a + i * GT_PAGE;
        if (madvise(addr, (j - i) * GT_PAGE, MADV_DONTNEED) == 0) {
            set_range(a->scav, i, j - i, 1);
            done += j - i;
        }
        i = j;
    }
    return done;
}

/* 0 when the summaries match the bitmap, else -1 with a message. */
int gt_pages_check(const gt_arena *a, char *msg, size_t len)
{
    size_t nfree = 0;
    for (unsigned c = 0; c < GT_NCHUNK; c++) {
        gt_sum s = chunk_summary(a, c);
        if (s.start != a->sum[c].start || s.max != a->sum[c].max || s.end != a->sum[c].end) {
            snprintf(msg, len, "arena %p chunk %u: summary != bitmap", (void *)a, c);
            return -1;
        }
    }
    if (a->maxrun != merge_max(a)) {
        snprintf(msg, len, "arena %p: maxrun != merge(chunk summaries)", (void *)a);
        return -1;
    }
    for (unsigned k = 0; k < GT_PAGE_WORDS; k++) {
        nfree += (size_t)gt_popcount(~a->alloc[k]);
        if (a->scav[k] & a->alloc[k]) {
            snprintf(msg, len, "arena %p: a page in use is marked released", (void *)a);
            return -1;
        }
    }
    for (size_t i = a->first_page; i < a->search && i < GT_ARENA_PAGES; i++) {
        if (!bit_get(a->alloc, i)) {
            snprintf(msg, len, "arena %p: free page %zu below searchAddr %u", (void *)a,
                     i, a->search);
            return -1;
        }
    }
    if (nfree != a->free_pages) {
        snprintf(msg, len, "arena %p: free_pages %u != popcount(~alloc) %zu", (void *)a,
                 a->free_pages, nfree);
        return -1;
    }
    return 0;
}
