/* unit_gotiered_filing.c - a unity build of mcentral.c with its test hook: a cache files a full
 * span (state FULL, in no list, mcentral.c file_full) and is held right after publishing FULL,
 * before it looks at the span's freed bits. Meanwhile another thread frees the span's only
 * object (the free sees FULL and notifies the span) and runs collect, whose sweep finds the
 * span empty. It must not free it while the filer still reads it: without `filing` the filer
 * then read the freed bitmap of a freed span (NULL: a crash, seen once in the pcache stress
 * test under load). The second test takes the other way to a free: the notified span goes to
 * another thread's cache, which empties it and is flushed. */
#define GT_TEST_HOOKS 1
#include "gotiered/mcentral.c"

#include <criterion/criterion.h>
#include "gt_test.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>

static struct {
    void *h;
    void *x;                 /* the object the filer's span holds */
    _Atomic int armed;       /* the hook holds the filer once */
    pthread_t filer;
    sem_t at_hook, go, x_ready;
    gt_span *held;           /* the span the filer was filing */
} F;

static void hold_filer(gt_span *s)
{
    if (!pthread_equal(pthread_self(), F.filer)) return;
    int one = 1;
    if (!atomic_compare_exchange_strong(&F.armed, &one, 0)) return;
    F.held = s;
    sem_post(&F.at_hook);
    sem_wait(&F.go);
}

static void *filer(void *arg)
{
    (void)arg;
    F.x = B->alloc(F.h, 32768); /* class 32 KiB: one object per span */
    cr_assert(F.x);
    sem_post(&F.x_ready);
    sem_wait(&F.go);
    atomic_store(&F.armed, 1);
    void *y = B->alloc(F.h, 32768); /* the span is exhausted: refill files it as FULL */
    cr_assert(y);
    B->free(F.h, y, 32768);
    return NULL;
}

/* Start the filer and hold it in file_full of the span holding F.x. Returns that span. */
static gt_span *hold_a_filer(void)
{
    F.h = mk("free=sweep,scavenger=off");
    sem_init(&F.at_hook, 0, 0);
    sem_init(&F.go, 0, 0);
    sem_init(&F.x_ready, 0, 0);
    gt_test_file_full_hook = hold_filer;
    pthread_create(&F.filer, NULL, filer, NULL);
    sem_wait(&F.x_ready);
    gt_span *s = gt_span_of(F.x);
    cr_assert_eq(s->nelems, 1, "class 32 KiB holds %u objects per span here", s->nelems);
    sem_post(&F.go);
    sem_wait(&F.at_hook); /* the filer published FULL and waits */
    cr_assert_eq(F.held, s);
    return s;
}

/* Let the filer finish; the heap must then be consistent and give everything back. */
static void release_the_filer(void)
{
    sem_post(&F.go); /* the filer looks at the freed bits now */
    pthread_join(F.filer, NULL);
    gt_test_file_full_hook = NULL;
    must_check(F.h);
    B->collect(F.h);
    must_check(F.h);
    al_stats st;
    B->stats(F.h, &st);
    cr_expect_eq(st.heap_objects, 0u);
    cr_expect_eq(st.heap_inuse, 0u, "the span was not freed by the next collect");
    B->destroy(F.h);
    sem_destroy(&F.at_hook);
    sem_destroy(&F.go);
    sem_destroy(&F.x_ready);
}

Test(gotiered_filing, a_cache_flush_does_not_free_a_span_being_filed)
{
    gt_span *s = hold_a_filer();
    B->free(F.h, F.x, 32768);          /* sees FULL: notifies the span */
    void *z = B->alloc(F.h, 32768);    /* this thread's refill drains it: its only object */
    cr_assert_eq(z, F.x, "the notified span did not come to this thread's cache");
    B->free(F.h, z, 32768);
    B->thread_detach(F.h);             /* the flush finds the span empty */
    cr_expect(s->freed != NULL, "a cache flush freed the span while its filer was still reading it");
    release_the_filer();
}

Test(gotiered_filing, collect_does_not_free_a_span_being_filed)
{
    gt_span *s = hold_a_filer();
    B->free(F.h, F.x, 32768); /* sees FULL: notifies the span */
    B->collect(F.h);          /* drains, sweeps: the span is empty */
    cr_expect(s->freed != NULL, "collect freed the span while its filer was still reading it");
    release_the_filer();
}
