/* SPDX-License-Identifier: MIT */
#include "mem.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_2M (2u << 20)

int coil__region_init(struct coil__region *r, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	size = (size + page - 1) & ~(page - 1);
	r->huge = false;
	/* Explicit huge pages only when the region is large enough to use them
	 * and the administrator reserved some; MAP_HUGETLB fails at once
	 * otherwise and we fall back silently. Never with MAP_NORESERVE: that
	 * "succeeds" with no huge pages reserved and faults (SIGBUS, or EFAULT
	 * for the kernel writing a receive) on first touch. */
	if (size >= HUGE_2M) {
		size_t hsize = (size + HUGE_2M - 1) & ~((size_t)HUGE_2M - 1);
		p = mmap(NULL, hsize, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p != MAP_FAILED) {
			r->base = p;
			r->size = hsize;
			r->huge = true;
			return 0;
		}
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	r->base = p;
	r->size = size;
	return 0;
}

void coil__region_fini(struct coil__region *r)
{
	if (r->base)
		munmap(r->base, r->size);
	r->base = NULL;
	r->size = 0;
}
