// SPDX-License-Identifier: MIT
/*
 * libgcheap's side of the collector: the collection call, the fork
 * snapshot and the pacing settings.
 *
 * The module collects the heap in a kernel thread of its own, with the
 * world stopped.  It stops registered threads itself (a task work, like a
 * signal but with no handler and no trace in the program: a system call it
 * interrupts resumes as if nothing had happened) and reads their user
 * registers from what the kernel saved on entry, so the library installs
 * nothing and saves nothing.  A thread calling gcheap_collect() counts as
 * stopped while it waits, with the registers it entered the module with.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gcheap.h"
#include "internal.h"
#include "prim.h"

/* A full collection; the caller's pending frees were flushed. */
int gcheap_collect_now(void)
{
	struct gcheap_gc g;

	memset(&g, 0, sizeof(g));
	g.op = GCHEAP_GC_COLLECT;
	return gcheap_prim_gc(gcheap_g.fd, &g);
}

/* The fork snapshot, made the same way. */
int gcheap_snapshot_now(struct gcheap_fork *fk)
{
	memset(fk, 0, sizeof(*fk));
	fk->op = GCHEAP_FORK_SNAPSHOT;
	fk->fd = -1;
	return gcheap_prim_fork(gcheap_g.fd, fk);
}

GCHEAP_EXPORT int gcheap_collect(void)
{
	struct gcheap_thread *t;
	int ret = gcheap_ensure();

	if (ret)
		return ret;
	t = gcheap_thread_self(false);
	if (t)
		gcheap_flush_frees(t);
	/* dlopen() may have happened in a way the wrappers did not see. */
	gcheap_roots_sync();
	return gcheap_collect_now();
}

static int gc_set(uint32_t op, int64_t value)
{
	struct gcheap_gc g;
	int ret = gcheap_ensure();

	if (ret)
		return ret;
	memset(&g, 0, sizeof(g));
	g.op = op;
	g.value = value;
	return gcheap_prim_gc(gcheap_g.fd, &g);
}

GCHEAP_EXPORT int gcheap_set_gogc(int gogc)
{
	if (gogc < GCHEAP_GOGC_OFF || gogc > GCHEAP_GOGC_MAX)
		return -EINVAL;
	return gc_set(GCHEAP_GC_SET_GOGC, gogc);
}

GCHEAP_EXPORT int gcheap_set_soft_limit(uint64_t bytes)
{
	if (bytes > INT64_MAX)
		return -EINVAL;
	return gc_set(GCHEAP_GC_SET_SOFT_LIMIT, (int64_t)bytes);
}
