/* SPDX-License-Identifier: MIT */
/* Per-loop memory (mem/mem.h): the receive-buffer pool's exhaustion,
 * recycle and refcounted release order, and the slabs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mem/mem.h"

static uint32_t recycled[64];
static unsigned nrecycled;

static void on_recycle(void *ctx, uint32_t bid)
{
	(void)ctx;
	recycled[nrecycled++] = bid;
}

static void test_exhaust_and_recycle(void **st)
{
	struct coil__bufpool p;
	int32_t got[8];

	(void)st;
	assert_int_equal(coil__bufpool_init(&p, 8, 512), 0);
	assert_int_equal(p.nfree, 8);
	for (int i = 0; i < 8; i++) {
		got[i] = coil__bufpool_take(&p);
		assert_true(got[i] >= 0 && got[i] < 8);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(got[i], got[j]);
		/* buffers do not overlap and are writable */
		memset(coil__buf_addr(&p, (uint32_t)got[i]), i, 512);
	}
	assert_int_equal(p.nfree, 0);
	assert_int_equal(coil__bufpool_take(&p), -1);  /* exhausted */
	for (int i = 0; i < 8; i++)
		assert_int_equal(coil__buf_addr(&p, (uint32_t)got[i])[511], i);
	coil__buf_put(&p, (uint32_t)got[3]);
	assert_int_equal(p.nfree, 1);
	assert_int_equal(coil__bufpool_take(&p), got[3]);  /* recycled */
	for (int i = 0; i < 8; i++)
		coil__buf_put(&p, (uint32_t)got[i]);
	assert_int_equal(p.nfree, 8);
	coil__bufpool_fini(&p);
}

static void test_refcount_release_order(void **st)
{
	struct coil__bufpool p;

	(void)st;
	assert_int_equal(coil__bufpool_init(&p, 4, 256), 0);
	p.recycle = on_recycle;
	nrecycled = 0;
	/* the kernel lends 2 and 0; each gets a zero-copy send reference */
	coil__bufpool_lent(&p, 2);
	coil__bufpool_lent(&p, 0);
	coil__buf_get(&p, 2);
	coil__buf_get(&p, 0);
	assert_int_equal(p.nfree, 2);
	/* on_data returns: the receive references go, the sends keep them */
	coil__buf_put(&p, 2);
	coil__buf_put(&p, 0);
	assert_int_equal(nrecycled, 0);
	assert_int_equal(p.nfree, 2);
	/* sends complete out of order: each recycles when its last user goes */
	coil__buf_put(&p, 0);
	assert_int_equal(nrecycled, 1);
	assert_int_equal(recycled[0], 0);
	coil__buf_put(&p, 2);
	assert_int_equal(nrecycled, 2);
	assert_int_equal(recycled[1], 2);
	assert_int_equal(p.nfree, 4);
	assert_int_equal(coil__buf_of(&p, coil__buf_addr(&p, 3) + 17), 3);
	assert_int_equal(coil__buf_of(&p, &p), -1);
	coil__bufpool_fini(&p);
}

static void test_bad_sizes(void **st)
{
	struct coil__bufpool p;

	(void)st;
	assert_int_equal(coil__bufpool_init(&p, 0, 4096), -22);
	assert_int_equal(coil__bufpool_init(&p, 8, 8), -22);
}

static void test_slab(void **st)
{
	struct coil__slab s;
	void *objs[100];

	(void)st;
	assert_int_equal(coil__slab_init(&s, 100, 100), 0);
	assert_int_equal(s.obj_size, 128);
	for (int i = 0; i < 100; i++) {
		objs[i] = coil__slab_get(&s);
		assert_non_null(objs[i]);
		assert_true(coil__slab_owns(&s, objs[i]));
		assert_int_equal((uintptr_t)objs[i] % 64, 0);
		memset(objs[i], 0xab, 100);
	}
	assert_null(coil__slab_get(&s));
	assert_int_equal(s.used, 100);
	coil__slab_put(&s, objs[42]);
	coil__slab_put(&s, objs[7]);
	assert_ptr_equal(coil__slab_get(&s), objs[7]);   /* LIFO: warm first */
	assert_ptr_equal(coil__slab_get(&s), objs[42]);
	assert_null(coil__slab_get(&s));
	assert_false(coil__slab_owns(&s, &s));
	coil__slab_fini(&s);
}

/* Objects rounded to 16 B, not a cache line (the connection slab: idle
 * keep-alive memory, issue 18): packed, aligned, apart. */
static void test_slab_align(void **st)
{
	struct coil__slab s;
	uint8_t *a, *b;

	(void)st;
	assert_int_equal(coil__slab_init_align(&s, 472, 10, 16), 0);
	assert_int_equal(s.obj_size, 480);
	a = coil__slab_get(&s);
	b = coil__slab_get(&s);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal((uintptr_t)a % 16, 0);
	assert_int_equal((uintptr_t)b % 16, 0);
	assert_int_equal(b - a, 480);
	memset(a, 0x11, 472);
	memset(b, 0x22, 472);
	assert_int_equal(a[471], 0x11);
	coil__slab_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaust_and_recycle),
		cmocka_unit_test(test_refcount_release_order),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_slab),
		cmocka_unit_test(test_slab_align),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
