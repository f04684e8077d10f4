/* SPDX-License-Identifier: MIT */
/*
 * Per-loop memory: regions reserved at start and carved into fixed-size
 * pieces (slabs of objects, a pool of receive buffers). Not a ring-buffer
 * allocator: pieces are freed in any order, and the only ring is io_uring's
 * provided-buffer ring, through which the receive pool is lent to the
 * kernel. Nothing here is thread-safe: each loop owns its own pools.
 *
 *  - coil__region: one reservation (huge pages when the kernel has them,
 *    ordinary pages otherwise), untouched until used, so reserved memory
 *    costs address space, not RSS.
 *  - coil__slab: fixed-size objects (connections, send segments, send
 *    chunks) from a region, with a free list; a bump pointer hands out
 *    never-used objects last-in so pages are touched only when needed.
 *  - coil__bufpool: the receive buffers handed to the kernel (an io_uring
 *    provided-buffer ring, or a free stack for readiness backends), each
 *    with a reference count so a buffer lent to a zero-copy send returns
 *    only when its last user is done.
 */
#ifndef COIL_MEM_H
#define COIL_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Count on a per-loop counter: written only by its loop, read by any
 * thread (coil_engine_stats): a relaxed load and store, no locked
 * read-modify-write. */
#define coil__stat_add(field, n)                                        \
	__atomic_store_n(&(field),                                      \
			 __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)

/* Room for `need` bytes in the heap buffer `buf` of `*cap` bytes: the
 * capacity doubles from *cap (or `first` for an empty buffer) until it
 * fits. Returns the buffer (moved perhaps, contents kept, *cap updated),
 * or NULL when memory is short (`buf` untouched and still the caller's).
 * Any thread; the buffer is the caller's. */
void *coil__grow(void *buf, size_t *cap, size_t need, size_t first);

struct coil__region {
	uint8_t *base;
	size_t size;
	bool huge;
};

/* Reserve `size` bytes (rounded up to pages). Returns 0 or -ENOMEM. */
int coil__region_init(struct coil__region *r, size_t size);
void coil__region_fini(struct coil__region *r);

struct coil__slab {
	struct coil__region mem;
	size_t obj_size;
	uint32_t count;   /* capacity */
	uint32_t bumped;  /* objects ever handed out from the bump pointer */
	uint32_t used;    /* objects live now */
	void *free_list;
};

/* Reserve room for `count` objects of `obj_size` bytes (rounded up to 64,
 * a cache line). Returns 0 or -ENOMEM. */
int coil__slab_init(struct coil__slab *s, size_t obj_size, uint32_t count);
/* The same with objects rounded up to `align` (a power of two, >= 8)
 * instead: for many objects of one thread that are mostly at rest (idle
 * connections), where a cache line's rounding is memory for nothing. */
int coil__slab_init_align(struct coil__slab *s, size_t obj_size,
			  uint32_t count, size_t align);
void coil__slab_fini(struct coil__slab *s);
/* An object (not zeroed), or NULL when the slab is full. */
void *coil__slab_get(struct coil__slab *s);
void coil__slab_put(struct coil__slab *s, void *obj);
/* With no object in use: give the pages that objects touched back to the
 * kernel (not huge pages: reserved anyway) and start over from the first
 * object. A no-op while any object is out. */
void coil__slab_trim(struct coil__slab *s);
static inline bool coil__slab_owns(const struct coil__slab *s, const void *p)
{
	const uint8_t *q = p;
	return q >= s->mem.base && q < s->mem.base + s->mem.size;
}

/* Called when a receive buffer's last reference is dropped. */
typedef void (*coil__buf_recycle_fn)(void *ctx, uint32_t bid);

struct coil__bufpool {
	struct coil__region mem;
	uint32_t count;       /* buffers */
	uint32_t size;        /* bytes each */
	uint32_t nfree;       /* buffers owned by the pool/kernel, not lent */
	uint16_t *refs;       /* per buffer: users holding it (0 = free) */
	uint32_t *stack;      /* free stack for readiness backends */
	uint32_t nstack;
	coil__buf_recycle_fn recycle;  /* NULL: push on the free stack */
	void *recycle_ctx;
};

/* Reserve `count` buffers of `size` bytes, all free. Returns 0 or -errno. */
int coil__bufpool_init(struct coil__bufpool *p, uint32_t count, uint32_t size);
void coil__bufpool_fini(struct coil__bufpool *p);

static inline uint8_t *coil__buf_addr(const struct coil__bufpool *p,
				      uint32_t bid)
{
	return p->mem.base + (size_t)bid * p->size;
}

/* Which buffer holds `ptr`, or -1 when it is not pool memory. */
static inline int32_t coil__buf_of(const struct coil__bufpool *p,
				   const void *ptr)
{
	const uint8_t *q = ptr;
	if (q < p->mem.base || q >= p->mem.base + (size_t)p->count * p->size)
		return -1;
	return (int32_t)((size_t)(q - p->mem.base) / p->size);
}

/* Take a free buffer off the free stack (readiness backends). Returns its
 * id with one reference, or -1 when none is free (back-pressure). */
int32_t coil__bufpool_take(struct coil__bufpool *p);

/* The kernel filled buffer `bid` from the ring: it now has one user. */
void coil__bufpool_lent(struct coil__bufpool *p, uint32_t bid);

static inline void coil__buf_get(struct coil__bufpool *p, uint32_t bid)
{
	p->refs[bid]++;
}

/* Drop one reference; the last one recycles the buffer. */
void coil__buf_put(struct coil__bufpool *p, uint32_t bid);

#endif
