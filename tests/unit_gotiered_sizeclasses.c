/* unit_gotiered_sizeclasses.c - gotiered's generated size classes against Go's table.
 * The expected table below is copied from shared/specs/go-allocator.md (Go's sizeclasses.go);
 * the backend's table is generated at build time by allocators/gotiered/gen_sizeclasses.c. */
#include "gotiered/gotiered_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* class:bytes/obj/bytes per span/objects per span/tail waste/max waste */
static const char spec_table[] =
    "1:8/8192/1024/0/87.50%   2:16/8192/512/0/43.75%   3:24/8192/341/8/29.24%   4:32/8192/256/0/21.88% "
    "5:48/8192/170/32/31.52%  6:64/8192/128/0/23.44%   7:80/8192/102/32/19.07%  8:96/8192/85/32/15.95% "
    "9:112/8192/73/16/13.56%  10:128/8192/64/0/11.72%  11:144/8192/56/128/11.82% 12:160/8192/51/32/9.73% "
    "13:176/8192/46/96/9.59%  14:192/8192/42/128/9.25% 15:208/8192/39/80/8.12%  16:224/8192/36/128/8.15% "
    "17:240/8192/34/32/6.62%  18:256/8192/32/0/5.86%   19:288/8192/28/128/12.16% 20:320/8192/25/192/11.80% "
    "21:352/8192/23/96/9.88%  22:384/8192/21/128/9.51% 23:416/8192/19/288/10.71% 24:448/8192/18/128/8.37% "
    "25:480/8192/17/32/6.82%  26:512/8192/16/0/6.05%   27:576/8192/14/128/12.33% 28:640/8192/12/512/15.48% "
    "29:704/8192/11/448/13.93% 30:768/8192/10/512/13.94% 31:896/8192/9/128/15.52% 32:1024/8192/8/0/12.40% "
    "33:1152/8192/7/128/12.41% 34:1280/8192/6/512/15.55% 35:1408/16384/11/896/14.00% 36:1536/8192/5/512/14.00% "
    "37:1792/16384/9/256/15.57% 38:2048/8192/4/0/12.45% 39:2304/16384/7/256/12.46% 40:2688/8192/3/128/15.59% "
    "41:3072/24576/8/0/12.47% 42:3200/16384/5/384/6.22% 43:3456/24576/7/384/8.83% 44:4096/8192/2/0/15.60% "
    "45:4864/24576/5/256/16.65% 46:5376/16384/3/256/10.92% 47:6144/24576/4/0/12.48% 48:6528/32768/5/128/6.23% "
    "49:6784/40960/6/256/4.36% 50:6912/49152/7/768/3.37% 51:8192/8192/1/0/15.61% 52:9472/57344/6/512/14.28% "
    "53:9728/49152/5/512/3.64% 54:10240/40960/4/0/4.99% 55:10880/32768/3/128/6.24% 56:12288/24576/2/0/11.45% "
    "57:13568/40960/3/256/9.99% 58:14336/57344/4/0/5.35% 59:16384/16384/1/0/12.49% 60:18432/73728/4/0/11.11% "
    "61:19072/57344/3/128/3.57% 62:20480/40960/2/0/6.87% 63:21760/65536/3/256/6.25% 64:24576/24576/1/0/11.45% "
    "65:27264/81920/3/128/10.00% 66:28672/57344/2/0/4.91% 67:32768/32768/1/0/12.50%";

Test(gotiered_sizeclasses, table_equals_go_table)
{
    const char *s = spec_table;
    int n = 0, cls, bytes, span, objs, tail, used;
    double maxw;
    while (sscanf(s, " %d:%d/%d/%d/%d/%lf%%%n", &cls, &bytes, &span, &objs, &tail, &maxw, &used) == 6) {
        s += used;
        n++;
        cr_assert_eq(cls, n, "table parse");
        cr_expect_eq(gt_class_size[cls], (uint32_t)bytes, "class %d size %u != %d", cls,
                     gt_class_size[cls], bytes);
        cr_expect_eq(gt_class_npages[cls] * 8192u, (unsigned)span, "class %d span bytes", cls);
        cr_expect_eq(gt_class_nelems((unsigned)cls), (unsigned)objs, "class %d objects", cls);
        unsigned mytail = gt_class_npages[cls] * 8192u % gt_class_size[cls];
        cr_expect_eq(mytail, (unsigned)tail, "class %d tail", cls);
        unsigned prev = gt_class_size[cls - 1];
        double w = 100.0 * ((double)(gt_class_size[cls] - prev - 1) * objs + mytail) / span;
        char a[32], b[32];
        snprintf(a, sizeof a, "%.2f", w);
        snprintf(b, sizeof b, "%.2f", maxw);
        cr_expect_str_eq(a, b, "class %d max waste", cls);
    }
    cr_assert_eq(n, GT_NCLASS - 1, "parsed %d classes", n);
    cr_expect_eq(gt_class_size[0], 0u);
}

Test(gotiered_sizeclasses, lookup_spot_checks)
{
    const uint8_t want8[] = {0, 1, 2, 3, 4, 5, 5};
    for (int i = 0; i < 7; i++) cr_expect_eq(gt_size_to_class8[i], want8[i], "s2c8[%d]", i);
    cr_expect_eq(gt_size_to_class128[0], 32);
    cr_expect_eq(gt_size_to_class128[1], 33);
    cr_expect_eq(gt_size_to_class128[2], 34);
    cr_expect_eq(gt_size_to_class128[248], 67);
    /* every size maps to the smallest class that holds it */
    for (size_t sz = 1; sz <= GT_MAX_SMALL; sz++) {
        unsigned c = gt_size_class(sz);
        cr_assert(c >= 1 && c < GT_NCLASS && gt_class_size[c] >= sz && gt_class_size[c - 1] < sz,
                  "size %zu -> class %u", sz, c);
    }
}

Test(gotiered_sizeclasses, alloc_lookup_keeps_16_byte_alignment)
{
    for (size_t sz = 0; sz <= 1016; sz++) {
        unsigned a = gt_alloc_class8[(sz + 7) >> 3], g = gt_size_to_class8[(sz + 7) >> 3];
        if (sz > 16 && sz <= 24) cr_expect_eq(a, 4u, "size %zu should use the 32 B class", sz);
        else cr_expect_eq(a, g, "size %zu", sz);
        if (sz >= 16) cr_expect_eq(gt_class_size[a] % 16, 0u, "size %zu class %u", sz, a);
    }
}

Test(gotiered_sizeclasses, divmul_exact_for_every_offset)
{
    for (unsigned c = 1; c < GT_NCLASS; c++) {
        uint32_t size = gt_class_size[c], dm = gt_class_divmul[c];
        cr_assert_eq(dm, UINT32_MAX / size + 1, "class %u divMul", c);
        uint64_t span = gt_class_npages[c] * 8192ull;
        for (uint64_t off = 0; off < span; off++)
            if (((off * dm) >> 32) != off / size)
                cr_assert_fail("class %u offset %llu: divMul index wrong", c,
                               (unsigned long long)off);
    }
}
