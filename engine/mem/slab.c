/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include <assert.h>
#include <sys/mman.h>

int coil__slab_init(struct coil__slab *s, size_t obj_size, uint32_t count)
{
	return coil__slab_init_align(s, obj_size, count, 64);
}

int coil__slab_init_align(struct coil__slab *s, size_t obj_size,
			  uint32_t count, size_t align)
{
	assert(align >= sizeof(void *) && !(align & (align - 1)));
	s->obj_size = (obj_size + align - 1) & ~(align - 1);
	s->count = count;
	s->bumped = 0;
	s->used = 0;
	s->free_list = NULL;
	return coil__region_init(&s->mem, s->obj_size * count);
}

void coil__slab_fini(struct coil__slab *s)
{
	coil__region_fini(&s->mem);
}

void *coil__slab_get(struct coil__slab *s)
{
	void *obj = s->free_list;

	if (obj) {
		s->free_list = *(void **)obj;
	} else if (s->bumped < s->count) {
		obj = s->mem.base + (size_t)s->bumped++ * s->obj_size;
	} else {
		return NULL;
	}
	s->used++;
	return obj;
}

void coil__slab_trim(struct coil__slab *s)
{
	if (s->used || !s->bumped || s->mem.huge)
		return;
	(void)madvise(s->mem.base, (size_t)s->bumped * s->obj_size,
		      MADV_DONTNEED);
	s->free_list = NULL;
	s->bumped = 0;
}

void coil__slab_put(struct coil__slab *s, void *obj)
{
	assert(coil__slab_owns(s, obj));
	assert(s->used > 0);
	*(void **)obj = s->free_list;
	s->free_list = obj;
	s->used--;
}
