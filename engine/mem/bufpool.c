/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

int coil__bufpool_init(struct coil__bufpool *p, uint32_t count, uint32_t size)
{
	int ret;

	if (count == 0 || count > 65536 || size < 64)
		return -EINVAL;
	p->count = count;
	p->size = size;
	p->nfree = count;
	p->recycle = NULL;
	p->recycle_ctx = NULL;
	/* Bookkeeping is tiny and allocated once at start. */
	p->refs = calloc(count, sizeof(*p->refs));
	p->stack = malloc(count * sizeof(*p->stack));
	if (!p->refs || !p->stack) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = coil__region_init(&p->mem, (size_t)count * size);
	if (ret)
		goto fail;
	/* Lowest ids on top, so a quiet loop keeps reusing the same pages. */
	for (uint32_t i = 0; i < count; i++)
		p->stack[i] = count - 1 - i;
	p->nstack = count;
	return 0;
fail:
	free(p->stack);
	free(p->refs);
	p->stack = NULL;
	p->refs = NULL;
	return ret;
}

void coil__bufpool_fini(struct coil__bufpool *p)
{
	coil__region_fini(&p->mem);
	free(p->stack);
	free(p->refs);
	p->stack = NULL;
	p->refs = NULL;
}

int32_t coil__bufpool_take(struct coil__bufpool *p)
{
	uint32_t bid;

	if (p->nstack == 0)
		return -1;
	bid = p->stack[--p->nstack];
	assert(p->refs[bid] == 0);
	p->refs[bid] = 1;
	coil__stat_add(p->nfree, -1);
	return (int32_t)bid;
}

void coil__bufpool_lent(struct coil__bufpool *p, uint32_t bid)
{
	assert(bid < p->count);
	assert(p->refs[bid] == 0);
	p->refs[bid] = 1;
	coil__stat_add(p->nfree, -1);
}

void coil__buf_put(struct coil__bufpool *p, uint32_t bid)
{
	assert(bid < p->count);
	assert(p->refs[bid] > 0);
	if (--p->refs[bid])
		return;
	coil__stat_add(p->nfree, 1);
	if (p->recycle)
		p->recycle(p->recycle_ctx, bid);
	else
		p->stack[p->nstack++] = bid;
}
