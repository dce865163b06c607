// SPDX-License-Identifier: MIT
/*
 * libgcheap's side of the collector: the stop signal's handler, the
 * collection call and the pacing settings.
 *
 * The module collects the heap in a kernel thread of its own, with the
 * world stopped.  To stop a registered thread it sends it the heap's stop
 * signal (a real-time signal, SIGRTMAX - 3 unless configured otherwise),
 * whose handler here tells the module where the thread's roots are -- the
 * stack pointer it was interrupted at (less the red zone the x86-64 ABI
 * lets leaf code use below it), the register state in the signal frame,
 * and the thread's batch of pending explicit frees -- and parks in the
 * module (GCHEAP_IOC_PARK) until the collection is over.  The handler is
 * installed with SA_RESTART: a thread interrupted in read(), a futex wait
 * or nanosleep() resumes its call when the handler returns, as if nothing
 * had happened.  The signal also aborts any restartable sequence the
 * thread was in, so no allocation is half done while it is parked.
 *
 * A thread calling gcheap_collect() is not signalled: it names its roots
 * in the call (its callee-saved registers are spilled into its own frame
 * first) and counts as parked while it waits.
 *
 * The handler runs on any thread at any time, so it uses nothing but the
 * ioctl and the thread's own initial-exec TLS.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "gcheap.h"
#include "internal.h"
#include "prim.h"

/* The x86-64 ABI's red zone: leaf code may keep data below the SP. */
#define RED_ZONE	128

static void stop_handler(int sig, siginfo_t *si, void *ctx)
{
	struct gcheap_thread *t = gcheap_thread_self(false);
	ucontext_t *uc = ctx;
	struct gcheap_park p;
	int saved = errno;

	(void)sig;
	(void)si;
	memset(&p, 0, sizeof(p));
	p.sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP] - RED_ZONE;
	p.regs = (uintptr_t)uc;
	p.regs_len = sizeof(*uc);
	if (t) {
		p.extra = (uintptr_t)t->frees;
		p.extra_len = sizeof(t->frees);
	}
	gcheap_prim_park(gcheap_g.fd, &p);
	errno = saved;
}

int gcheap_stop_install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = stop_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	/* Nothing else runs on top of a parked thread. */
	sigfillset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) ? -errno : 0;
}

/*
 * Collect, with the caller counted as stopped.  noinline and
 * __builtin_unwind_init(): the callee-saved registers, which may hold the
 * caller's pointers, are saved in this frame, above the stack pointer
 * passed to the module.
 */
__attribute__((noinline)) int gcheap_collect_now(void)
{
	struct gcheap_thread *t = gcheap_thread_self(false);
	struct gcheap_gc g;
	uintptr_t sp;
	int ret;

	__builtin_unwind_init();
	memset(&g, 0, sizeof(g));
	g.op = GCHEAP_GC_COLLECT;
	__asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
	g.park.sp = sp;
	if (t) {
		g.park.extra = (uintptr_t)t->frees;
		g.park.extra_len = sizeof(t->frees);
	}
	ret = gcheap_prim_gc(gcheap_g.fd, &g);
	/* Keep this frame, and what it saved, alive across the call. */
	__asm__ __volatile__("" : : "r"(&g) : "memory");
	return ret;
}

/* The fork snapshot, made the same way: the caller counts as stopped. */
__attribute__((noinline)) int gcheap_snapshot_now(struct gcheap_fork *fk)
{
	struct gcheap_thread *t = gcheap_thread_self(false);
	uintptr_t sp;
	int ret;

	__builtin_unwind_init();
	memset(fk, 0, sizeof(*fk));
	fk->op = GCHEAP_FORK_SNAPSHOT;
	fk->fd = -1;
	__asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
	fk->park.sp = sp;
	if (t) {
		fk->park.extra = (uintptr_t)t->frees;
		fk->park.extra_len = sizeof(t->frees);
	}
	ret = gcheap_prim_fork(gcheap_g.fd, fk);
	__asm__ __volatile__("" : : "r"(fk) : "memory");
	return ret;
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
