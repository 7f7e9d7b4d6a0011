/* graph.c - object graphs built, kept and released, from the seed lecture's
 * buildComplexStructure / demonstrateGCBehavior.
 *
 * A Node is {id; data buffer; array of child links}. One structure (buildComplexStructure): a
 * root with a `root_bytes` (1024) buffer, then nodes 2..`nodes` (100) with `node_bytes` (512)
 * buffers, each appended to the current node's links; every `fan`-th (10th) node becomes the
 * current node, so the structure is a chain of fans. The link array grows by doubling, as a Go
 * append does (1, 2, 4, 8, 16 links; here through the backend's realloc). demonstrateGCBehavior
 * builds 10 structures and keeps them, then keeps nodes[:5] (the oldest half) and lets GC take
 * the rest. Here one round = build structures until `structures` (10) are held, then release
 * all but the oldest `retain` percent (50): the released ones are freed by walking them, node
 * by node (the walk is measured; it is what an explicit-free program pays instead of a GC
 * cycle). The retained ones stay until the end, the others churn, round after round.
 * What it stresses: many small pointer-rich objects of a few sizes (node headers, link arrays
 * doubling through 8..128 bytes, 512 B buffers) built in one burst and freed in another, in
 * an order (depth first) unrelated to allocation order; mixed with long-lived survivors.
 *
 * Per node the allocation order is the seed's: the data buffer, then the node (Go evaluates
 * make() before the composite literal), then the parent's link array grows if full.
 * Differences from the seed: explicit frees instead of GC; the data buffers are filled with a
 * per-node value instead of zeroes, and the walk reads each node's id and the first and last
 * bytes of its buffer back into the checksum before freeing it; at the end every retained
 * structure is walked and freed the same way (measured).
 */
#include "wl_internal.h"

#include <stdlib.h>

enum { P_ROUNDS, P_STRUCTURES, P_NODES, P_FAN, P_RETAIN, P_ROOT_BYTES, P_NODE_BYTES };

static const al_param_def graph_params[] = {
    [P_ROUNDS] = {"rounds", 5000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                  "build-up-to-`structures` then release rounds"},
    [P_STRUCTURES] = {"structures", 10, 1, 1 << 20, NULL, 0, "structures held after each build"},
    [P_NODES] = {"nodes", 100, 1, 1 << 24, NULL, 0, "nodes per structure (root included)"},
    [P_FAN] = {"fan", 10, 1, 1 << 24, NULL, 0, "every fan-th node becomes the current node"},
    [P_RETAIN] = {"retain", 50, 0, 100, NULL, 0, "percent of the structures kept (the oldest)"},
    [P_ROOT_BYTES] = {"root_bytes", 1024, 1, 1 << 24, NULL, AL_PARAM_BYTES, "root buffer size"},
    [P_NODE_BYTES] = {"node_bytes", 512, 1, 1 << 24, NULL, AL_PARAM_BYTES,
                      "other nodes' buffer size"},
};

typedef struct gnode {
    uint64_t id; /* structure serial << 32 | node number */
    unsigned char *data;
    struct gnode **links;
    uint32_t dlen, nlinks, cap;
} gnode;

typedef struct graph {
    al_wl_ctx *ctx;
    gnode **stack; /* walk stack, `nodes` entries */
    uint64_t live, sum, expect, salt;
    size_t nodes, fan, root_bytes, node_bytes;
} graph;

/* The fill value of node `id` for this run (salt from the seed). */
static inline unsigned char g_value(uint64_t salt, uint64_t id)
{
    return (unsigned char)(wl_mix(id + salt) | 1);
}

/* alloc through the backend, counted; NULL on OOM. */
static inline void *g_alloc(graph *g, size_t n)
{
    void *p = g->ctx->b->alloc(g->ctx->heap, n);
    g->ctx->ops++;
    if (p) {
        g->live += n;
        if (g->live > g->ctx->peak_live) g->ctx->peak_live = g->live;
    }
    return p;
}

/* free through the backend, counted. Can't fail. */
static inline void g_free(graph *g, void *p, size_t n)
{
    g->ctx->b->free(g->ctx->heap, p, n);
    g->ctx->ops++;
    g->live -= n;
}

/* A node with a filled buffer; NULL when out of memory (nothing leaked). */
static gnode *g_node(graph *g, uint64_t id, size_t dlen)
{
    unsigned char *data = g_alloc(g, dlen);
    if (!data) return NULL;
    memset(data, g_value(g->salt, id), dlen);
    gnode *n = g_alloc(g, sizeof *n);
    if (!n) {
        g_free(g, data, dlen);
        return NULL;
    }
    *n = (gnode){.id = id, .data = data, .dlen = (uint32_t)dlen};
    return n;
}

/* Append child to parent's links (Go append: capacity doubles). Returns 0, -1 on OOM (parent
 * unchanged). */
static int g_link(graph *g, gnode *parent, gnode *child)
{
    if (parent->nlinks == parent->cap) {
        uint32_t ncap = parent->cap ? parent->cap * 2 : 1;
        gnode **nl = al_realloc(g->ctx->b, g->ctx->heap, parent->links,
                                parent->cap * sizeof *nl, ncap * sizeof *nl);
        g->ctx->ops++;
        if (!nl) return -1;
        g->live += (ncap - parent->cap) * sizeof *nl;
        if (g->live > g->ctx->peak_live) g->ctx->peak_live = g->live;
        parent->links = nl;
        parent->cap = ncap;
    }
    parent->links[parent->nlinks++] = child;
    return 0;
}

/* Expected checksum contribution of node `id` with buffer value v. */
static inline uint64_t g_node_sum(uint64_t id, unsigned char first, unsigned char last)
{
    return wl_mix(id ^ ((uint64_t)first << 40) ^ ((uint64_t)last << 48));
}

/* Free the whole structure under root, depth first, reading each node back. Can't fail. */
static void g_release(graph *g, gnode *root)
{
    size_t top = 0;
    g->stack[top++] = root;
    while (top) {
        gnode *n = g->stack[--top];
        for (uint32_t i = 0; i < n->nlinks; i++) g->stack[top++] = n->links[i];
        g->sum += g_node_sum(n->id, n->data[0], n->data[n->dlen - 1]);
        g_free(g, n->data, n->dlen);
        if (n->links) g_free(g, n->links, n->cap * sizeof *n->links);
        g_free(g, n, sizeof *n);
    }
}

/* buildComplexStructure. Returns the root, or NULL on OOM (what was built is released). */
static gnode *g_build(graph *g, uint64_t serial)
{
    gnode *root = g_node(g, serial << 32 | 1, g->root_bytes);
    if (!root) return NULL;
    g->expect += g_node_sum(root->id, g_value(g->salt, root->id), g_value(g->salt, root->id));
    gnode *cur = root;
    for (size_t i = 2; i <= g->nodes; i++) {
        uint64_t id = serial << 32 | i;
        gnode *n = g_node(g, id, g->node_bytes);
        if (n && g_link(g, cur, n)) {
            g_free(g, n->data, n->dlen);
            g_free(g, n, sizeof *n);
            n = NULL;
        }
        if (!n) {
            g_release(g, root);
            return NULL;
        }
        g->expect += g_node_sum(id, g_value(g->salt, id), g_value(g->salt, id));
        if (i % g->fan == 0) cur = n;
    }
    return root;
}

/* Returns 0, or -1 with ctx->err set (OOM, corrupted data). */
static int graph_run(al_wl_ctx *ctx)
{
    const size_t structures = (size_t)ctx->p[P_STRUCTURES];
    size_t keep = structures * (size_t)ctx->p[P_RETAIN] / 100;
    graph g = {.ctx = ctx, .nodes = (size_t)ctx->p[P_NODES], .fan = (size_t)ctx->p[P_FAN],
               .root_bytes = (size_t)ctx->p[P_ROOT_BYTES],
               .node_bytes = (size_t)ctx->p[P_NODE_BYTES], .salt = wl_mix(ctx->seed)};
    al_wl_pause(ctx);
    gnode **held = calloc(structures, sizeof *held);
    g.stack = malloc(g.nodes * sizeof *g.stack);
    al_wl_resume(ctx);
    int rc = 0;
    if (!held || !g.stack) {
        rc = wl_fail(ctx, "bookkeeping for %zu structures of %zu nodes: out of memory",
                     structures, g.nodes);
        goto out;
    }

    size_t nheld = 0;
    uint64_t serial = 0;
    for (uint64_t r = 0; r < (uint64_t)ctx->p[P_ROUNDS] && !rc; r++) {
        while (nheld < structures) {
            gnode *root = g_build(&g, serial++);
            if (!root) {
                rc = wl_fail(ctx, "allocation failed (out of memory) at %llu live bytes",
                             (unsigned long long)g.live);
                break;
            }
            held[nheld++] = root;
        }
        while (nheld > keep) g_release(&g, held[--nheld]); /* nodes = nodes[:keep] */
    }
    while (nheld) g_release(&g, held[--nheld]);
    if (!rc) rc = wl_verify_sum(ctx, g.sum, g.expect, "graph nodes");
out:
    al_wl_pause(ctx);
    free(held);
    free(g.stack);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_graph = {
    .name = "graph",
    .desc = "seed buildComplexStructure: chains of fans of 100 nodes (512 B buffers, doubling "
            "link arrays), 10 held, half released by walking, rebuilt",
    .params = graph_params,
    .nparams = (int)(sizeof graph_params / sizeof graph_params[0]),
    .multithreaded = 0,
    .bench_matrix = "",
    .run = graph_run,
};
