// SPDX-License-Identifier: MIT
/*
 * libgcheap roots: the ranges the collector scans for pointers besides
 * thread stacks.
 *
 * The data and bss of the executable and of every loaded object are found
 * afresh each time (dl_iterate_phdr: every writable PT_LOAD segment).  The
 * module scans the set it was last given (GCHEAP_IOC_ROOTS), so the set is
 * sent again at set-up, whenever ranges are added or removed, after
 * dlopen() and dlclose() (interpose.c), and before every gcheap_collect().
 * The heap's own mapping is never a root.  Ranges added with
 * gcheap_add_roots() are kept in a list under gcheap_g.lock, rounded
 * outward to 8 bytes; they may not overlap.
 */
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "gcheap.h"
#include "internal.h"
#include "prim.h"

#define ALIGN_DOWN8(x)	((x) & ~(uintptr_t)7)
#define ALIGN_UP8(x)	(((x) + 7) & ~(uintptr_t)7)

static int range_of(void *start, size_t len, uintptr_t *s, uintptr_t *e)
{
	uintptr_t a = (uintptr_t)start;

	if (!start || !len || a + len < a || a + len > UINTPTR_MAX - 7)
		return -EINVAL;
	*s = ALIGN_DOWN8(a);
	*e = ALIGN_UP8(a + len);
	return 0;
}

GCHEAP_EXPORT int gcheap_add_roots(void *start, size_t len)
{
	struct gcheap_root *r, *n;
	uintptr_t s, e;
	int ret = range_of(start, len, &s, &e);

	if (ret)
		return ret;
	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->start = s;
	n->end = e;
	pthread_mutex_lock(&gcheap_g.lock);
	for (r = gcheap_g.roots; r; r = r->next) {
		if (s < r->end && r->start < e) {
			pthread_mutex_unlock(&gcheap_g.lock);
			free(n);
			return -EEXIST;
		}
	}
	n->next = gcheap_g.roots;
	gcheap_g.roots = n;
	pthread_mutex_unlock(&gcheap_g.lock);
	/* A range the module would not scan is no root: take it back. */
	ret = gcheap_roots_sync();
	if (ret) {
		gcheap_remove_roots(start, len);
		return ret;
	}
	return 0;
}

GCHEAP_EXPORT int gcheap_remove_roots(void *start, size_t len)
{
	struct gcheap_root **pp, *r;
	uintptr_t s, e;
	int ret = range_of(start, len, &s, &e);

	if (ret)
		return ret;
	pthread_mutex_lock(&gcheap_g.lock);
	for (pp = &gcheap_g.roots; (r = *pp); pp = &r->next) {
		if (r->start == s && r->end == e) {
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&gcheap_g.lock);
	if (!r)
		return -ENOENT;
	free(r);
	gcheap_roots_sync();
	return 0;
}

struct count {
	uint64_t ranges;
	uint64_t bytes;
};

static int count_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct count *c = arg;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		c->ranges++;
		c->bytes += ph->p_memsz;
	}
	return 0;
}

int gcheap_roots_stats(uint64_t *ranges, uint64_t *bytes)
{
	struct count c = { 0, 0 };
	struct gcheap_root *r;

	dl_iterate_phdr(count_segments, &c);
	pthread_mutex_lock(&gcheap_g.lock);
	for (r = gcheap_g.roots; r; r = r->next) {
		c.ranges++;
		c.bytes += r->end - r->start;
	}
	pthread_mutex_unlock(&gcheap_g.lock);
	*ranges = c.ranges;
	*bytes = c.bytes;
	return 0;
}

struct fill {
	struct gcheap_range *r;
	unsigned int n;
	unsigned int max;
};

static int fill_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct fill *f = arg;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
			continue;
		if (f->n < f->max) {
			f->r[f->n].start = info->dlpi_addr + ph->p_vaddr;
			f->r[f->n].len = ph->p_memsz;
		}
		f->n++;
	}
	return 0;
}

/*
 * Send the module the whole root set: every writable segment and every
 * added range.  mmap, not malloc, for the buffer: malloc may be built on
 * this heap.  0 or -errno.
 */
int gcheap_roots_sync(void)
{
	struct count c = { 0, 0 };
	struct gcheap_root *r;
	struct fill f;
	size_t bytes;
	int ret;

	if (!__atomic_load_n(&gcheap_g.ready, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&gcheap_g.roots_lock);
	gcheap_roots_stats(&c.ranges, &c.bytes);
	/* Room for a few objects loaded meanwhile. */
	f.max = c.ranges + 16;
	if (f.max > GCHEAP_ROOTS_MAX)
		f.max = GCHEAP_ROOTS_MAX;
	bytes = f.max * sizeof(*f.r);
	f.r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.r == MAP_FAILED) {
		pthread_mutex_unlock(&gcheap_g.roots_lock);
		return -ENOMEM;
	}
	f.n = 0;
	dl_iterate_phdr(fill_segments, &f);
	pthread_mutex_lock(&gcheap_g.lock);
	for (r = gcheap_g.roots; r; r = r->next) {
		if (f.n < f.max) {
			f.r[f.n].start = r->start;
			f.r[f.n].len = r->end - r->start;
		}
		f.n++;
	}
	pthread_mutex_unlock(&gcheap_g.lock);
	ret = f.n > f.max ? -E2BIG : gcheap_prim_roots(gcheap_g.fd, f.r, f.n);
	munmap(f.r, bytes);
	pthread_mutex_unlock(&gcheap_g.roots_lock);
	return ret;
}
