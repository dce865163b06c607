// SPDX-License-Identifier: MIT
/*
 * libgcheap roots: the ranges the collector scans for pointers besides
 * thread stacks.
 *
 * The data and bss of the executable and of every loaded object are found
 * afresh each time (dl_iterate_phdr: every writable PT_LOAD segment), so
 * libraries loaded later with dlopen() and gone with dlclose() are always
 * right without hooking either.  The heap's own mapping is never a root.
 * Ranges added with gcheap_add_roots() are kept in a list under
 * gcheap_g.lock, rounded outward to 8 bytes; they may not overlap.
 */
#include <errno.h>
#include <link.h>
#include <stdlib.h>

#include "gcheap.h"
#include "internal.h"

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
