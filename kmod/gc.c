// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap's collector: a conservative, concurrent mark-sweep collection of
 * one heap, run by a kernel thread of the heap's own -- Boehm, Demers and
 * Shenker's "mostly parallel" collection, with the dirty bits kept by the
 * module's write barrier (barrier.c).
 *
 * A cycle.  The collector thread (gcheap/<pid>) sleeps until a cycle is
 * requested: by the pacer, when a refill or a large allocation finds the
 * allocated bytes at the trigger, or by GCHEAP_GC_COLLECT.  Then it
 *
 *  1. with the world running, clears the marks and starts a barrier epoch:
 *     every page written since the last cycle is write-protected again,
 *     so from here on every write to the heap is recorded;
 *  2. stops the world (see "Stopping" below) -- the first pause: settles
 *     every CPU's slots (cache.c: gcheap_cache_settle()), so the module's
 *     own record says which objects are allocated; enters the MARK phase;
 *     and greys what each parked thread's user registers, stack (from its
 *     stack pointer, less the 128-byte red zone, to the top it registered)
 *     and extra range point into, anywhere inside an allocated object;
 *     then restarts the world;
 *  3. marks concurrently: greys what the root ranges point to and traces:
 *     grey objects are scanned word by word, noscan ones never.  The grey
 *     objects wait on an explicit stack of bounded size (mark_stack); when
 *     it is full the object stays marked but unscanned and an overflow
 *     flag is set, and once the stack has drained, every marked object is
 *     scanned again until a pass ends without overflow (the Boehm
 *     collector's recovery).  mheap_lock is dropped every 64 objects;
 *  4. re-marks concurrently while the pages written meanwhile get fewer:
 *     a barrier round re-protects them, then they are rescanned;
 *  5. stops the world again -- the final pause: settles the CPU slots
 *     again (what they allocated since the first pause is allocated
 *     black), rescans the roots and the pages written since the last
 *     round, traces until nothing is grey (the stack grows here instead
 *     of overflowing), checks the marking in checkmark mode, copies the
 *     heap for a fork, enters the SWEEP phase; restarts the world;
 *  6. sweeps concurrently: takes every span off the lists (a refill that
 *     takes one first sweeps it itself), frees and zeroes every allocated
 *     object neither marked nor black, and routes each span back by its
 *     count (empty to mheap, partial to mcentral, full to a full list);
 *     refills that find mcentral empty sweep spans themselves; spans in
 *     slots are swept where they are; then sets the next goal and lets
 *     the scavenger return free pages.
 *
 * Allocate-black.  Every CPU slot was settled in the first pause: the
 * objects its span has handed out since are the ones the slot allocated
 * while marking ran.  When the span leaves the slot, or in the final
 * pause, those objects are set in span->black as well as span->alloc,
 * under the span lock -- the fast path does nothing more than before.  A
 * black object counts as marked and is not scanned: the program wrote it
 * only after its pages were protected, so every pointer in it is on a
 * dirty page, and a rescan scans marked, black and handed objects.  A
 * thread's slot may hold objects from before the first pause: those are
 * traced, not made black.  Neither pause takes a span out of its slot, so
 * neither has to run anything on the slots' CPUs.
 *
 * Pacing the concurrent phase.  When the current epoch reaches its limit,
 * threads that fault on a clean page or ask for a span wait until the
 * marker starts a new epoch (gcheap_barrier_assist()).  The limit is
 * pause_pages while the marker traces, and the marker starts a round
 * once it has also traced as much as a round rescans (so a program that
 * allocates fast cannot keep it rescanning); for the closing rounds it is
 * GCHEAP_FINAL_PAGES, so the final pause rescans about that many pages
 * plus one per thread.
 *
 * Which objects count as allocated.  An object is allocated when its bit
 * is set in the span's alloc bitmap, or when it was handed to a slot and
 * not settled yet (the slot may have allocated it since it was last read).
 * Marking treats both as objects; sweeping frees only the first kind and
 * leaves handed objects to be settled when the span comes back from the
 * slot or in the next pause (and swept by the next cycle).
 *
 * Stopping.  A thread is stopped by a task work queued with TWA_SIGNAL:
 * like a signal, it interrupts the thread wherever it is (an IPI if it
 * runs in its program, a wake-up if it sleeps interruptibly in a system
 * call), and on its way back to user mode the thread runs
 * gcheap_park_work(), which copies its user registers (pt_regs, saved by
 * the kernel on entry) and waits in the module until the world restarts.
 * The thread whose park completes the stop does not wait: it runs the
 * pause itself and restarts the world, sparing the program two waits for a
 * wake-up on another CPU; the collector runs it only when no thread parks
 * last.  Unlike a signal handler it leaves no trace in the program: no
 * handler to install or to collide with, nothing blocked by signal masks,
 * and a system call it interrupts is restarted as after a signal without a
 * handler -- which covers nanosleep(), poll() and futex waits with
 * timeouts, which return EINTR under any handler, SA_RESTART or not.
 * (Calls that fail with EINTR on any pending signal -- epoll_wait(),
 * sigtimedwait(), semop(), socket calls with a timeout -- still may, as
 * they would under SA_RESTART.)  A queued work holds a reference on the
 * mutator record and on the heap's file, so the work can run after its
 * thread unregistered or the heap was closed (the reference is dropped
 * with fput(), whose release runs later, outside the module's code).  A
 * thread already in the module -- waiting for a collection, for the
 * marker, for the soft limit, or in a refill -- is not interrupted:
 * gcheap_gc_block() counts it as parked with the registers it entered
 * with, and gcheap_gc_unblock() keeps it in the module until a stop that
 * counted it is over.  It may work meanwhile, as an unregistered thread
 * may, but must hold no reference its program has not seen (a large object
 * just allocated): a pause would not find it.
 *
 * Why nothing reachable is freed: Documentation/collector.rst argues it,
 * point by point.  In short: both pauses see every registered thread parked
 * with its registers saved; every heap write after step 1 is on a page
 * rescanned after the write (the epoch handshake and the TLB flush are in
 * barrier.c); stacks, registers and root ranges are rescanned in the final
 * pause; objects allocated during marking are black and their pages dirty;
 * so when the final pause's tracing ends, everything reachable is marked
 * or black, and the sweep frees only what is neither.  A pointer that only
 * an unregistered thread holds is not seen: threads that use the heap must
 * be registered (libgcheap registers the threads pthread_create() starts).
 *
 * Locks.  world_lock protects the registry of threads, the roots and the
 * stop state, and is held from the moment the world is stopped until it
 * restarts, and while the root ranges are read between the pauses.  User
 * memory (roots) is read under world_lock but never under mheap_lock, so
 * no page fault happens while mheap_lock is held: roots are read into a
 * buffer of candidate pointers outside it, and the buffer is marked, under
 * mheap_lock, whenever it fills.  mheap_lock keeps every span in place
 * while it is scanned (spans are freed only under it); while the world
 * runs it is dropped every 64 objects, and the marker's cached span and
 * page are forgotten each time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/sched/task.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include "gcheap.h"

/* The goal is never below this: small heaps do not collect all the time. */
#define GCHEAP_MIN_GOAL		SZ_4M
#define GCHEAP_NR_CAND		4096
/* The x86-64 ABI lets code keep data this far below the stack pointer. */
#define GCHEAP_RED_ZONE		128
/*
 * Concurrent re-mark rounds: at most this many, and none once the pages
 * written since the last one are this few (the final pause takes them);
 * in the closing rounds a thread that writes more new pages waits.  At
 * 64, a GCBench final pause spent a third of its ~1.5 ms (under TCG) on
 * the rescan; at 32 its longest pause fell from 1.9 to 1.45 ms, of which
 * the rescan still took 0.6-1.2 ms (25-35 us a page of tree nodes).  At
 * 8, four GCBench runs on 6.12 paused 29-38 ms in all, against 41-71 ms
 * at 32, and ran no slower.
 */
#define GCHEAP_MAX_ROUNDS	8
#define GCHEAP_FINAL_PAGES	8

/**
 * struct gcheap_mutator - a registered thread
 * @ref: held by the registry and by a queued @work
 * @heap: the heap
 * @task: the thread (a reference is held)
 * @work: the task work that parks it
 * @queued: @work is queued and has not run (world_lock)
 * @stack_lo: the lowest address of its stack
 * @stack_hi: one past the highest
 * @extra: another range of the thread's to scan
 * @extra_len: its length
 * @parked_seq: the last stop it parked for
 * @blocked: it waits or works in the module and counts as parked (written
 *	by the thread alone; see gcheap_gc_block())
 * @by_other: registered by another thread of its process, so its own
 *	registration completes the record instead of failing
 * @regs: its user registers when it parked
 * @rcu: freed after a grace period: gcheap_gc_block() looks it up unlocked
 */
struct gcheap_mutator {
	struct kref ref;
	struct gcheap_heap *heap;
	struct task_struct *task;
	struct callback_head work;
	bool queued;
	unsigned long stack_lo;
	unsigned long stack_hi;
	unsigned long extra;
	unsigned int extra_len;
	u64 parked_seq;
	int blocked;
	bool by_other;
	struct pt_regs regs;
	struct rcu_head rcu;
};

static void gcheap_mutator_release(struct kref *ref)
{
	struct gcheap_mutator *m = container_of(ref, struct gcheap_mutator, ref);

	put_task_struct(m->task);
	kfree_rcu(m, rcu);
}

static void gcheap_mutator_put(struct gcheap_mutator *m)
{
	kref_put(&m->ref, gcheap_mutator_release);
}

/* Record the calling thread's user registers: it is stopped now. */
static void gcheap_save_regs(struct gcheap_mutator *m)
{
	m->regs = *task_pt_regs(current);
}

static void gcheap_remark(struct gcheap_heap *heap);

/* --- marking --- */

static unsigned long *gcheap_marks(struct gcheap_collector *gc, struct gcheap_span *span)
{
	return (unsigned long *)(gc->checking ? span->cmark : span->mark);
}

/*
 * The span of the first page at or after *@idx, or NULL; *@idx moves past
 * it.  With mheap_lock dropped between calls, a walk may see a span twice
 * or miss one created meanwhile, never a freed one.  mheap_lock held.
 */
static struct gcheap_span *gcheap_next_span(struct gcheap_heap *heap, unsigned long *idx)
{
	struct gcheap_span *span = xa_find(&heap->spans, idx, ULONG_MAX, XA_PRESENT);

	if (span)
		*idx = span->start + span->npages;
	return span;
}

/*
 * A re-mark round is due in the middle of tracing when the pages written
 * reached pause_pages (the threads that write more wait for the round) --
 * but only once the marker has traced as many bytes since the last round
 * as pause_pages pages hold.  A program that allocates fast fills
 * pause_pages with new objects, which are rescanned, in less time than a
 * round takes; rounding at once each time left the marker next to no time
 * for the objects still grey, and the cycle lasted as long as the program
 * kept allocating.  So at most half of the marker's work goes to rounds
 * while grey objects wait, and the threads wait that long.
 */
static bool gcheap_round_due(struct gcheap_collector *gc, struct gcheap_heap *heap)
{
	unsigned long pages = READ_ONCE(gcheap_pause_pages);

	return gc->traced - gc->remarked_at >= (u64)pages << PAGE_SHIFT &&
	       gcheap_barrier_pending(heap) >= pages;
}

/*
 * Let the program in: mheap_lock is dropped now and then while the world
 * runs, since refills and explicit frees take it.  With @may_round, a
 * re-mark round runs meanwhile if one is due (the threads that wrote the
 * pages wait for it).  With the world stopped (@final,
 * checkmark) the lock is kept.  mheap_lock held.
 */
static void gcheap_relax(struct gcheap_heap *heap, bool may_round)
{
	struct gcheap_collector *gc = &heap->gc;

	if (gc->final || gc->checking) {
		cond_resched();
		return;
	}
	mutex_unlock(&heap->mheap_lock);
	if (may_round && gcheap_round_due(gc, heap))
		gcheap_remark(heap);
	cond_resched();
	mutex_lock(&heap->mheap_lock);
	gc->hot = NULL;
	gc->hot_page = NULL;
}

/*
 * Checkmark mode's marking and the final pause grow the stack instead of
 * overflowing: the first so as not to share the overflow passes it checks,
 * the second so as not to rescan the whole heap with the world stopped.
 */
static bool gcheap_grey_grow(struct gcheap_collector *gc)
{
	unsigned long cap = gc->grey_cap * 2;
	struct gcheap_grey *g;

	g = kvmalloc_array(cap, sizeof(*g), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!g)
		return false;
	memcpy(g, gc->grey, gc->grey_top * sizeof(*g));
	kvfree(gc->grey);
	gc->grey = g;
	gc->grey_cap = cap;
	return true;
}

static void gcheap_grey_push(struct gcheap_collector *gc, unsigned long off,
			     unsigned long len)
{
	if (gc->grey_top == gc->grey_cap &&
	    !((gc->checking || gc->final) && gcheap_grey_grow(gc))) {
		/* Marked, not scanned: the overflow pass will find it. */
		gc->overflow = true;
		return;
	}
	gc->grey[gc->grey_top].off = off;
	gc->grey[gc->grey_top].len = len;
	gc->grey_top++;
}

/*
 * Mark the object @v points into, if it is an allocated object, and queue
 * it for scanning unless it is noscan.  An object allocated black counts
 * as marked (not for checkmark mode, which must trace everything).
 * Context: mheap_lock held, and gc->hot cleared when it was taken (spans
 * may have gone while it was not held).
 */
static void gcheap_mark_ptr(struct gcheap_heap *heap, unsigned long v)
{
	struct gcheap_collector *gc = &heap->gc;
	unsigned long off = v - gcheap_arena_addr(heap, 0), rel, i, *marks;
	struct gcheap_span *span;
	u64 bit;

	if (off >= heap->arena_pages << PAGE_SHIFT)
		return;
	/* Pointers come in runs into the same span: look the span up once. */
	span = gc->hot;
	if (!span || off - (span->start << PAGE_SHIFT) >=
		     (unsigned long)span->npages << PAGE_SHIFT) {
		span = xa_load(&heap->spans, off >> PAGE_SHIFT);
		if (!span)
			return;
		gc->hot = span;
	}
	rel = off - (span->start << PAGE_SHIFT);
	i = span->large ? 0 : (u32)(((u64)rel * span->div_mul) >> 32);
	if (i >= span->nobjs)
		return;
	bit = BIT_ULL(i % 64);
	if (!((READ_ONCE(span->alloc[i / 64]) | READ_ONCE(span->handed[i / 64])) & bit))
		return;
	marks = gcheap_marks(gc, span);
	if (test_bit(i, marks) ||
	    (!gc->checking && (READ_ONCE(span->black[i / 64]) & bit)))
		return;
	__set_bit(i, marks);
	gc->marked += span->elem_size;
	if (!(span->sc & 1))
		gcheap_grey_push(gc, (span->start << PAGE_SHIFT) + i * span->elem_size,
				 span->elem_size);
}

/* Scan arena bytes [off, off + len) for pointers.  mheap_lock held. */
static void gcheap_scan_object(struct gcheap_heap *heap, unsigned long off,
			       unsigned long len)
{
	unsigned long lo = gcheap_arena_addr(heap, 0), size = heap->arena_pages << PAGE_SHIFT;
	struct gcheap_collector *gc = &heap->gc;

	gc->traced += len;
	while (len) {
		unsigned long in = offset_in_page(off);
		unsigned long n = min(len, PAGE_SIZE - in);
		struct page *page;

		/* Small objects come a page's worth at a time: look it up once. */
		if (gc->hot_page && gc->hot_pidx == off >> PAGE_SHIFT) {
			page = gc->hot_page;
		} else {
			page = xa_load(&heap->pages, off >> PAGE_SHIFT);
			gc->hot_page = page;
			gc->hot_pidx = off >> PAGE_SHIFT;
		}
		if (page) {
			const unsigned long *w = kmap_local_page(page) + in;
			unsigned long k;

			/*
			 * Most words point nowhere near the arena: only those that
			 * do go further.  The program may be writing the object
			 * meanwhile: what it writes after this read is on a page
			 * the barrier has recorded.
			 */
			for (k = 0; k < n / sizeof(long); k++) {
				unsigned long v = READ_ONCE(w[k]);

				if (v - lo < size)
					gcheap_mark_ptr(heap, v);
			}
			kunmap_local(w);
		}
		off += n;
		len -= n;
		if (len)
			cond_resched();
	}
}

static void gcheap_drain(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	unsigned int n = 0;

	while (gc->grey_top) {
		struct gcheap_grey g = gc->grey[--gc->grey_top];

		gcheap_scan_object(heap, g.off, g.len);
		if (!(++n % 64))
			gcheap_relax(heap, true);
	}
}

/*
 * The grey stack overflowed: some marked objects were never scanned.  Scan
 * every marked object again (objects whose children are all marked push
 * nothing) until a pass ends without overflow.  mheap_lock held.
 */
static void gcheap_overflow_passes(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_span *span;
	unsigned long idx, i, n;

	while (gc->overflow) {
		gc->overflow = false;
		idx = 0;
		n = 0;
		while ((span = gcheap_next_span(heap, &idx))) {
			unsigned long *marks = gcheap_marks(gc, span);

			if (span->sc & 1)
				continue;
			for_each_set_bit(i, marks, span->nobjs) {
				gcheap_scan_object(heap, (span->start << PAGE_SHIFT) +
						   i * span->elem_size, span->elem_size);
				gcheap_drain(heap);
			}
			if (!(++n % 64))
				gcheap_relax(heap, true);
		}
	}
}

/*
 * Rescan arena page @idx, written since it was protected: the part on it
 * of every object that survives the cycle as things stand -- marked,
 * allocated black, or in a slot (maybe allocated) -- since a pointer
 * written there may be the only one left to an object not yet marked.
 * Unmarked objects need no rescan: marking one scans it whole.
 * mheap_lock held.
 */
static void gcheap_rescan_page(struct gcheap_heap *heap, unsigned long idx)
{
	unsigned long poff = idx << PAGE_SHIFT, pend = poff + PAGE_SIZE, base, i, first;
	struct gcheap_span *span = xa_load(&heap->spans, idx);
	unsigned long run = 0, run_end = 0;
	bool in_run = false;

	if (!span || (span->sc & 1))
		return;
	base = span->start << PAGE_SHIFT;
	first = span->large ? 0 : (u32)(((u64)(poff - base) * span->div_mul) >> 32);
	for (i = first; i < span->nobjs; i++) {
		unsigned long obj = base + i * span->elem_size;
		u64 bit = BIT_ULL(i % 64);

		if (obj >= pend)
			break;
		if (!((span->mark[i / 64] | READ_ONCE(span->black[i / 64]) |
		       READ_ONCE(span->handed[i / 64])) & bit))
			continue;
		/*
		 * Objects that survive side by side are scanned as one run:
		 * a page the program allocated into during marking is mostly
		 * black objects, and a call per object cost more than the
		 * words.  (An object at arena offset 0 starts a run too: with
		 * run_end 0 standing for "no run", the first span's pages were
		 * rescanned from the arena's start to their end, 65 pages for
		 * the last page of barrier_test's hot object.)
		 */
		if (!in_run || obj != run_end) {
			if (in_run)
				gcheap_scan_object(heap, run, run_end - run);
			run = max(obj, poff);
			in_run = true;
		}
		run_end = min(obj + span->elem_size, pend);
	}
	if (in_run)
		gcheap_scan_object(heap, run, run_end - run);
}

/*
 * Rescan every page of barrier epoch @e (marking what they point to, not
 * draining).  Return: the pages.  mheap_lock held.
 */
static unsigned long gcheap_rescan_epoch(struct gcheap_heap *heap, unsigned int e)
{
	unsigned long idx = 0, n = 0;

	for (;;) {
		idx = find_next_bit(heap->wp.dirty[e], heap->arena_pages, idx);
		if (idx >= heap->arena_pages)
			break;
		gcheap_rescan_page(heap, idx++);
		if (!(++n % 64))
			gcheap_relax(heap, false);
	}
	return n;
}

/*
 * A concurrent re-mark round: start a new barrier epoch, then rescan the
 * pages of the old one, now final (barrier.c), and forget them.
 * mheap_lock not held.
 */
static void gcheap_remark(struct gcheap_heap *heap)
{
	unsigned int e = gcheap_barrier_round(heap);

	mutex_lock(&heap->mheap_lock);
	heap->gc.hot = NULL;
	heap->gc.hot_page = NULL;
	gcheap_rescan_epoch(heap, e);
	heap->gc.remarked_at = heap->gc.traced;
	mutex_unlock(&heap->mheap_lock);
	gcheap_barrier_clear(heap, e);
}

/* Mark from the candidate pointers gathered so far. */
static void gcheap_cand_flush(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	unsigned int i;

	if (!gc->nr_cand)
		return;
	mutex_lock(&heap->mheap_lock);
	gc->hot = NULL;
	gc->hot_page = NULL;
	for (i = 0; i < gc->nr_cand; i++) {
		gcheap_mark_ptr(heap, gc->cand[i]);
		if (gc->tracing)
			gcheap_drain(heap);
	}
	mutex_unlock(&heap->mheap_lock);
	gc->nr_cand = 0;
}

/* Keep @v as a candidate if it points into the arena. */
static void gcheap_cand_add(struct gcheap_heap *heap, unsigned long v)
{
	struct gcheap_collector *gc = &heap->gc;

	if (v - gcheap_arena_addr(heap, 0) >= heap->arena_pages << PAGE_SHIFT)
		return;
	gc->cand[gc->nr_cand++] = v;
	if (gc->nr_cand == GCHEAP_NR_CAND)
		gcheap_cand_flush(heap);
}

/*
 * Keep the words of user memory [@p, @p + @n) that point into the arena as
 * candidates, until the candidate buffer is full.  The words are read in
 * place, not copied to a buffer first: the pauses rescan every root range
 * and stack, and copying them doubled what that cost.  Nothing is called
 * while user access is open.  Return: the words read, or -EFAULT.
 */
static long gcheap_read_words(struct gcheap_collector *gc, const unsigned long __user *p,
			      unsigned long n, unsigned long lo, unsigned long size)
{
	unsigned long k, v;

	if (!user_access_begin(p, n * sizeof(*p)))
		return -EFAULT;
	for (k = 0; k < n && gc->nr_cand < GCHEAP_NR_CAND; k++) {
		unsafe_get_user(v, p + k, fault);
		if (v - lo < size)
			gc->cand[gc->nr_cand++] = v;
	}
	user_access_end();
	return k;
fault:
	user_access_end();
	return -EFAULT;
}

/*
 * Read user memory [start, start + len) of the heap's process (the
 * collector runs on its mm) a page at a time, keeping the words that point
 * into the arena as candidates.  The rest of a page that cannot be read is
 * skipped.
 */
static void gcheap_scan_user(struct gcheap_heap *heap, unsigned long start,
			     unsigned long len)
{
	unsigned long lo = gcheap_arena_addr(heap, 0), size = heap->arena_pages << PAGE_SHIFT;
	struct gcheap_collector *gc = &heap->gc;
	unsigned long end;

	if (!len || check_add_overflow(start, len, &end))
		return;
	start = ALIGN_DOWN(start, sizeof(long));
	while (start < end) {
		unsigned long n = min(end - start, PAGE_SIZE - offset_in_page(start));
		const unsigned long __user *p = (const unsigned long __user *)start;
		unsigned long words = DIV_ROUND_UP(n, sizeof(long));
		long got;

		start += n;
		while (words) {
			got = gcheap_read_words(gc, p, words, lo, size);
			if (got < 0)
				break;
			p += got;
			words -= got;
			if (gc->nr_cand == GCHEAP_NR_CAND)
				gcheap_cand_flush(heap);
		}
		cond_resched();
	}
}

/* The stopped threads' registers, stacks and extra ranges.  World stopped. */
static void gcheap_scan_threads(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	unsigned long idx;

	xa_for_each(&gc->mutators, idx, m) {
		unsigned long sp = user_stack_pointer(&m->regs) - GCHEAP_RED_ZONE;
		const unsigned long *r = (const unsigned long *)&m->regs;
		unsigned int k;

		if (m->parked_seq != gc->stop_seq)
			continue;
		for (k = 0; k < sizeof(m->regs) / sizeof(long); k++)
			gcheap_cand_add(heap, r[k]);
		/* A stack pointer elsewhere (an alternate signal stack) scans none. */
		if (sp >= m->stack_lo && sp < m->stack_hi)
			gcheap_scan_user(heap, sp, m->stack_hi - sp);
		gcheap_scan_user(heap, m->extra, m->extra_len);
	}
}

/* The root ranges.  world_lock held. */
static void gcheap_scan_ranges(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	unsigned int i;

	for (i = 0; i < gc->nr_roots; i++)
		gcheap_scan_user(heap, gc->roots[i].start, gc->roots[i].len);
}

/* Mark until nothing is grey.  mheap_lock not held. */
static void gcheap_finish_marking(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;

	gcheap_cand_flush(heap);
	mutex_lock(&heap->mheap_lock);
	gc->hot = NULL;
	gc->hot_page = NULL;
	gcheap_drain(heap);
	gcheap_overflow_passes(heap);
	mutex_unlock(&heap->mheap_lock);
}

/*
 * Checkmark mode: everything reachable now, marked from scratch into
 * span->cmark, tracing through black objects too.  World stopped.
 */
static void gcheap_checkmark_mark(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	/* The cycle's figure is the first marking's, not this one's. */
	u64 marked = gc->marked;

	gc->checking = true;
	gc->tracing = true;
	gc->overflow = false;
	gc->nr_cand = 0;
	gcheap_scan_threads(heap);
	gcheap_scan_ranges(heap);
	gcheap_finish_marking(heap);
	gc->checking = false;
	gc->marked = marked;
}

/* Clear every span's marks before a cycle's marking.  Phase IDLE. */
static void gcheap_clear_marks(struct gcheap_heap *heap)
{
	struct gcheap_span *span;
	unsigned long idx = 0, n = 0;

	mutex_lock(&heap->mheap_lock);
	while ((span = gcheap_next_span(heap, &idx))) {
		spin_lock(&span->lock);
		memset(span->mark, 0, sizeof(span->mark));
		memset(span->cmark, 0, sizeof(span->cmark));
		memset(span->black, 0, sizeof(span->black));
		spin_unlock(&span->lock);
		if (!(++n % 256)) {
			mutex_unlock(&heap->mheap_lock);
			cond_resched();
			mutex_lock(&heap->mheap_lock);
		}
	}
	mutex_unlock(&heap->mheap_lock);
}

/*
 * Checkmark mode: everything the from-scratch marking reached must survive
 * the sweep -- be marked, allocated black or in a slot.  Anything else
 * would have been freed while reachable: say so loudly, and keep it.
 * World stopped.
 */
static u64 gcheap_checkmark_compare(struct gcheap_heap *heap)
{
	struct gcheap_span *span;
	unsigned long idx = 0;
	u64 errors = 0;
	unsigned int w;

	mutex_lock(&heap->mheap_lock);
	while ((span = gcheap_next_span(heap, &idx))) {
		for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
			u64 miss = span->cmark[w] & ~span->mark[w] & ~span->black[w] &
				   ~span->handed[w];

			if (!miss)
				continue;
			errors += hweight64(miss);
			pr_err("checkmark: heap of pid %d: object at arena offset %#lx (%u bytes) reachable but not marked\n",
			       heap->gc.pid,
			       (span->start << PAGE_SHIFT) +
			       (unsigned long)(w * 64 + __ffs64(miss)) * span->elem_size,
			       span->elem_size);
			span->mark[w] |= miss;
		}
	}
	mutex_unlock(&heap->mheap_lock);
	return errors;
}

/* --- sweeping --- */

/**
 * gcheap_sweep_span() - sweep a small-object span with the last marking,
 *	unless it has been or the collector is not sweeping
 * @heap: the heap
 * @span: the span, held by the caller (TRANSIT, or a thread's span under
 *	thread_lock, or a slot's span being merged)
 *
 * Frees the unmarked allocated objects that were not allocated black and
 * that no slot holds, zeroing each run of them at once, with one page
 * lookup per page.
 *
 * Return: the bytes freed.
 */
u64 gcheap_sweep_span(struct gcheap_heap *heap, struct gcheap_span *span)
{
	unsigned long base = span->start << PAGE_SHIFT, pidx = ULONG_MAX;
	u64 gen = READ_ONCE(heap->gc.sweep_gen);
	struct page *page = NULL;
	unsigned int w, n = 0;

	if (span->large || READ_ONCE(span->swept_gen) == gen)
		return 0;
	spin_lock(&span->lock);
	/*
	 * Only the SWEEP phase has final marks: before it they are being
	 * made, and after it the next cycle may have cleared them already
	 * (it clears this span's under this lock, after the phase has gone
	 * IDLE, so the phase read here is the one those marks belong to).
	 * A span that missed its sweep keeps its dead objects until the
	 * next cycle's, which marks them like any others: never wrong.
	 */
	if (span->swept_gen == gen || READ_ONCE(heap->gc.phase) != GCHEAP_GC_SWEEP) {
		spin_unlock(&span->lock);
		return 0;
	}
	span->swept_gen = gen;
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
		u64 dead = span->alloc[w] & ~span->mark[w] & ~span->black[w] &
			   ~span->handed[w];

		span->alloc[w] &= ~dead;
		n += hweight64(dead);
		/* Zero before the lock goes: free objects are zero. */
		while (dead) {
			unsigned int b = __ffs64(dead), run;
			unsigned long off, len;

			/* A run of dead objects is zeroed at once. */
			run = ~(dead >> b) ? __ffs64(~(dead >> b)) : 64 - b;
			dead &= ~GENMASK_ULL(b + run - 1, b);
			off = base + (unsigned long)(w * 64 + b) * span->elem_size;
			len = (unsigned long)run * span->elem_size;
			while (len) {
				unsigned long in = offset_in_page(off);
				unsigned long k = min(len, PAGE_SIZE - in);

				if (off >> PAGE_SHIFT != pidx) {
					pidx = off >> PAGE_SHIFT;
					page = xa_load(&heap->pages, pidx);
				}
				if (!WARN_ON_ONCE(!page))
					memzero_page(page, in, k);
				off += k;
				len -= k;
			}
		}
	}
	span->nalloc -= n;
	spin_unlock(&span->lock);
	atomic64_sub((u64)n * span->elem_size, &heap->live_bytes);
	atomic64_add((u64)n * span->elem_size, &heap->gc.swept_bytes);
	return (u64)n * span->elem_size;
}

/**
 * gcheap_sweep_take() - a span the sweeper has not reached yet
 * @heap: the heap
 *
 * Return: the span, in state TRANSIT and now the caller's, or NULL.
 */
struct gcheap_span *gcheap_sweep_take(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_span *span;

	if (list_empty_careful(&gc->sweep_list))
		return NULL;
	spin_lock(&gc->sweep_lock);
	span = list_first_entry_or_null(&gc->sweep_list, struct gcheap_span, node);
	if (span)
		list_del_init(&span->node);
	spin_unlock(&gc->sweep_lock);
	return span;
}

/*
 * Sweep the heap while the program runs: the spans on the lists, taken off
 * them first (the program allocates from those already put back, and
 * sweeps some itself when it runs short), large objects, and the spans in
 * slots in place.  Taking the spans off the lists here, not in the final
 * pause, keeps the pause from growing with the number of spans: with
 * 100,000 of them it cost 5-10 ms there.
 */
static void gcheap_sweep(struct gcheap_heap *heap)
{
	u64 gen = heap->gc.sweep_gen;
	struct gcheap_span *span;
	unsigned long idx = 0, n = 0;
	LIST_HEAD(todo);

	gcheap_cache_gather(heap, &todo);
	spin_lock(&heap->gc.sweep_lock);
	list_splice_tail(&todo, &heap->gc.sweep_list);
	spin_unlock(&heap->gc.sweep_lock);

	mutex_lock(&heap->mheap_lock);
	while ((span = gcheap_next_span(heap, &idx))) {
		if (span->large && span->state == GCHEAP_SPAN_LARGE && span->swept_gen != gen) {
			span->swept_gen = gen;
			if (!span->mark[0] && !span->black[0]) {
				atomic64_sub(span->elem_size, &heap->live_bytes);
				atomic64_add(span->elem_size, &heap->gc.swept_bytes);
				atomic64_dec(&heap->nr_large);
				gcheap_span_free(heap, span);
			}
		}
		if (!(++n % 256)) {
			mutex_unlock(&heap->mheap_lock);
			cond_resched();
			mutex_lock(&heap->mheap_lock);
		}
	}
	mutex_unlock(&heap->mheap_lock);

	while ((span = gcheap_sweep_take(heap))) {
		gcheap_sweep_span(heap, span);
		gcheap_span_put(heap, span);
		cond_resched();
	}

	gcheap_cache_sweep_slots(heap);
	spin_lock(&heap->thread_lock);
	list_for_each_entry(span, &heap->thread_spans, node)
		gcheap_sweep_span(heap, span);
	spin_unlock(&heap->thread_lock);
}

/* --- stopping the world --- */

/* Forget registered threads that are exiting and not parked. */
static void gcheap_reap(struct gcheap_collector *gc)
{
	struct gcheap_mutator *m;
	unsigned long idx;

	lockdep_assert_held(&gc->world_lock);
	xa_for_each(&gc->mutators, idx, m) {
		if (m->parked_seq == gc->stop_seq || !(READ_ONCE(m->task->flags) & PF_EXITING))
			continue;
		xa_erase(&gc->mutators, idx);
		gc->nr_mutators--;
		gcheap_mutator_put(m);
	}
}

/*
 * Let the parked threads go on: the end of a pause, timed once they were
 * woken (a thread woken on the caller's CPU may run first: timed after,
 * the pause would count its run), and told to the collector, which may be
 * waiting for it (gcheap_pause()) -- on its own queue, woken last, so
 * that a thread that ran the pause wakes it once, after the pause.
 * world_lock held; it is released.
 */
static void gcheap_restart_world(struct gcheap_collector *gc)
{
	u64 seq = gc->stop_seq;

	lockdep_assert_held(&gc->world_lock);
	WRITE_ONCE(gc->stopping, false);
	gc->pause_job = NULL;
	WRITE_ONCE(gc->run_seq, seq);
	mutex_unlock(&gc->world_lock);
	wake_up_all(&gc->done_wq);
	gc->pause_end = ktime_get_ns();
	/*
	 * @pause_end before the sequence; pairs with gcheap_pause().  No stop
	 * begins before the collector has seen this one end.
	 */
	smp_store_release(&gc->ended_seq, seq);
	if (current != gc->thread)
		wake_up(&gc->wake);
}

/*
 * Whether the caller, holding world_lock with the world just stopped, is
 * the one to run the pause: every thread is parked and nobody runs it yet.
 */
static bool gcheap_pause_claim(struct gcheap_collector *gc)
{
	lockdep_assert_held(&gc->world_lock);
	if (!gc->pause_job || gc->pause_claimed || gc->nr_parked < gc->nr_mutators)
		return false;
	WRITE_ONCE(gc->pause_claimed, true);
	return true;
}

/* Run the claimed pause and restart the world.  world_lock held; released. */
static void gcheap_pause_run(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;

	gc->pause_job(heap);
	gcheap_restart_world(gc);
}

/*
 * The task work a stopped thread runs on its way back to user mode: park
 * it, with its registers saved, until the world restarts -- or, when it
 * is the last to park, run the pause and restart the world itself
 * (gcheap_pause()).  It also runs when the thread exits with the work
 * queued; it then only lets go.
 */
static void gcheap_park_work(struct callback_head *work)
{
	struct gcheap_mutator *m = container_of(work, struct gcheap_mutator, work);
	struct gcheap_heap *heap = m->heap;
	struct gcheap_collector *gc = &heap->gc;
	struct file *file = heap->file;
	u64 seq = 0;

	mutex_lock(&gc->world_lock);
	m->queued = false;
	/* Still registered, a stop under way, and not on its way out. */
	if (xa_load(&gc->mutators, m->task->pid) == m && gc->stopping &&
	    m->parked_seq != gc->stop_seq && !(current->flags & PF_EXITING)) {
		gcheap_save_regs(m);
		m->parked_seq = gc->stop_seq;
		gc->nr_parked++;
		seq = gc->stop_seq;
		/*
		 * The last to park runs the pause -- in the heap's mm, which
		 * the pause reads through (a thread past exec() is not).
		 */
		if (current->mm == READ_ONCE(heap->mm) && gcheap_pause_claim(gc)) {
			gcheap_pause_run(heap);
			goto out;
		}
	}
	mutex_unlock(&gc->world_lock);
	if (seq) {
		/* The collector may wait for the last of us. */
		wake_up(&gc->wake);
		/*
		 * A fatal signal ends the wait; the thread stays counted as
		 * parked, as it will never run its program again.
		 */
		wait_event_killable(gc->done_wq, READ_ONCE(gc->run_seq) >= seq);
	}
out:
	gcheap_mutator_put(m);
	/* The heap may go with this; its release runs later, not in here. */
	fput(file);
}

/*
 * Queue the park work on @m's thread, with the references it holds.
 * world_lock held.  Return: 0; -EBADF when the heap's file is being
 * released (the collector is being stopped: the stop will be given up);
 * -ESRCH when the thread is exiting.
 */
static int gcheap_queue_park(struct gcheap_heap *heap, struct gcheap_mutator *m)
{
	if (!atomic_long_inc_not_zero(&heap->file->f_count))
		return -EBADF;
	kref_get(&m->ref);
	init_task_work(&m->work, gcheap_park_work);
	if (task_work_add(m->task, &m->work, TWA_SIGNAL)) {
		kref_put(&m->ref, gcheap_mutator_release);
		fput(heap->file);
		return -ESRCH;
	}
	m->queued = true;
	return 0;
}

/*
 * Stop the world, run @job in it, restart it.  Every registered thread is
 * asked to park; the pause is run by whoever completes the stop -- the
 * last thread to park, in its park work, or else the collector itself
 * (all threads waiting or working in the module, a thread reaped, no
 * thread at all).  The last thread to park is on its own CPU, running:
 * it does the pause there and goes back to its program, where the
 * collector would have to be woken first, and the thread woken again
 * after -- under TCG each such wake-up is a chance of a multi-millisecond
 * delay.
 *
 * Until the pause is claimed the collector may give up (the stop timeout,
 * or the collector told to stop); once claimed, it only waits for the end.
 *
 * Return: 0 with @job run and *@ns the pause's length; -EAGAIN (timeout)
 * or -EINTR (the collector is told to stop) with @job not run.  Either
 * way the world runs again.
 */
static int gcheap_pause(struct gcheap_heap *heap, void (*job)(struct gcheap_heap *heap),
			u64 *ns)
{
	unsigned long deadline = jiffies +
		msecs_to_jiffies(max(READ_ONCE(gcheap_stop_timeout_ms), 10u));
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	unsigned long idx;
	u64 t0 = ktime_get_ns(), seq;
	int ret = 0;

	/*
	 * Until the world restarts every registered thread waits, so for
	 * that long the collector runs as a real-time thread: woken when the
	 * last thread parks, it preempts whatever normal task runs on its
	 * CPU, and none preempts it in the pause.  At nice 0, under TCG, the
	 * wake-up alone once took 0.7 ms.
	 */
	sched_set_fifo_low(current);
	mutex_lock(&gc->world_lock);
	seq = ++gc->stop_seq;
	WRITE_ONCE(gc->stopping, true);
	gc->nr_parked = 0;
	gc->pause_job = job;
	WRITE_ONCE(gc->pause_claimed, false);
	/* Stopping before the flags; pairs with gcheap_gc_block()'s barrier. */
	smp_mb();
	xa_for_each(&gc->mutators, idx, m) {
		/* Pairs with the release in gcheap_gc_block(): its registers. */
		if (smp_load_acquire(&m->blocked)) {
			/* It may have counted itself already (gcheap_gc_block()). */
			if (m->parked_seq != gc->stop_seq) {
				m->parked_seq = gc->stop_seq;
				gc->nr_parked++;
			}
		} else if (!m->queued && gcheap_queue_park(heap, m) == -ESRCH) {
			/* Its task is past running task works: exiting. */
			xa_erase(&gc->mutators, idx);
			gc->nr_mutators--;
			gcheap_mutator_put(m);
		}
	}
	for (;;) {
		gcheap_reap(gc);
		if (gcheap_pause_claim(gc)) {
			gcheap_pause_run(heap);
			goto done;
		}
		if (gc->pause_claimed)
			break;
		mutex_unlock(&gc->world_lock);
		wait_event_idle_timeout(gc->wake, READ_ONCE(gc->pause_claimed) ||
					READ_ONCE(gc->nr_parked) >= READ_ONCE(gc->nr_mutators) ||
					kthread_should_stop(), msecs_to_jiffies(10));
		if (READ_ONCE(gc->pause_claimed))
			goto wait;
		ret = kthread_should_stop() ? -EINTR :
		      time_after(jiffies, deadline) ? -EAGAIN : 0;
		mutex_lock(&gc->world_lock);
		if (ret && !gc->pause_claimed && gc->nr_parked < gc->nr_mutators) {
			gcheap_restart_world(gc);
			sched_set_normal(current, 0);
			return ret;
		}
	}
	mutex_unlock(&gc->world_lock);
wait:
	/*
	 * A thread runs the pause.  Not under world_lock, which it holds: the
	 * mutex would have the collector spin on a CPU the pause may want.
	 * The acquire pairs with gcheap_restart_world(): @pause_end.
	 */
	wait_event_idle(gc->wake, smp_load_acquire(&gc->ended_seq) >= seq);
done:
	sched_set_normal(current, 0);
	*ns = gc->pause_end - t0;
	return 0;
}

static struct gcheap_mutator *gcheap_self(struct gcheap_collector *gc)
{
	struct gcheap_mutator *m = xa_load(&gc->mutators, current->pid);

	return m && m->task == current ? m : NULL;
}

/**
 * gcheap_gc_block() - the calling thread is about to wait or work in the module
 * @heap: its heap
 *
 * A registered thread that waits in the module -- for a collection, for
 * the marker (mark assists), for the cycle under a soft limit -- or works
 * there (GCHEAP_IOC_CACHE) runs none of its program, and the kernel has
 * saved its user registers: it counts as parked, for the stop under way if
 * there is one and for every stop until gcheap_gc_unblock().  So a stop
 * neither wakes it nor waits for it to reach user mode.  Its registers are
 * taken now; they cannot change before it leaves the kernel.  Nested calls
 * return NULL: the outer one keeps it parked.
 *
 * No lock is taken unless a stop is under way: every refill comes here,
 * and world_lock is held while the collector reads the root ranges.  The
 * thread sets its flag, then looks at gc->stopping; a stop sets
 * gc->stopping, then reads the flags (full barriers between, on both
 * sides).  So a stop that does not see the flag is seen by the thread,
 * which then counts itself, under world_lock.
 *
 * Context: process context of the heap's process, no locks held.
 * Return: the thread's record, with a reference, for gcheap_gc_unblock();
 * NULL when the thread is not registered (or exiting): it is not stopped.
 */
struct gcheap_mutator *gcheap_gc_block(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;

	if (current->flags & PF_EXITING)
		return NULL;
	/*
	 * Only the thread itself unregisters, so a record found for it stays
	 * registered while it is in here.  A record being added by another
	 * thread may be missed: the thread is then stopped the usual way.
	 */
	rcu_read_lock();
	m = xa_load(&gc->mutators, current->pid);
	if (m && (READ_ONCE(m->task) != current || READ_ONCE(m->blocked) ||
		  !kref_get_unless_zero(&m->ref)))
		m = NULL;
	rcu_read_unlock();
	if (!m)
		return NULL;
	gcheap_save_regs(m);
	/* The registers before the flag: a stop that sees it reads them. */
	smp_store_release(&m->blocked, 1);
	/* The flag before gc->stopping; pairs with gcheap_pause(). */
	smp_mb();
	if (READ_ONCE(gc->stopping)) {
		mutex_lock(&gc->world_lock);
		if (gc->stopping && m->parked_seq != gc->stop_seq) {
			m->parked_seq = gc->stop_seq;
			gc->nr_parked++;
			wake_up(&gc->wake);
		}
		mutex_unlock(&gc->world_lock);
	}
	return m;
}

/**
 * gcheap_gc_unblock() - the thread stops waiting and goes on
 * @heap: its heap
 * @m: what gcheap_gc_block() returned
 *
 * A stop that counted the thread as parked is not over until the world
 * restarts: the thread waits for that first, as a parked thread does, so
 * that nothing it does in its program overlaps the pause.  The flag is
 * cleared first, then gc->stopping looked at, as in gcheap_gc_block(): a
 * stop that still saw the flag, and counted the thread, is seen here.
 *
 * Context: process context, no locks held.
 * Return: 0, or -EINTR on a fatal signal (the thread then runs its program
 * no more).
 */
int gcheap_gc_unblock(struct gcheap_heap *heap, struct gcheap_mutator *m)
{
	struct gcheap_collector *gc = &heap->gc;
	int ret = 0;

	if (!m)
		return 0;
	WRITE_ONCE(m->blocked, 0);
	/* The flag before gc->stopping; pairs with gcheap_pause(). */
	smp_mb();
	if (READ_ONCE(gc->stopping)) {
		mutex_lock(&gc->world_lock);
		while (gc->stopping && m->parked_seq == gc->stop_seq) {
			u64 seq = gc->stop_seq;

			mutex_unlock(&gc->world_lock);
			ret = wait_event_killable(gc->done_wq,
						  READ_ONCE(gc->run_seq) >= seq);
			mutex_lock(&gc->world_lock);
			if (ret)
				break;
		}
		mutex_unlock(&gc->world_lock);
	}
	gcheap_mutator_put(m);
	return ret ? -EINTR : 0;
}

/* --- the cycle --- */

static u64 gcheap_allocated(struct gcheap_heap *heap)
{
	s64 v = atomic64_read(&heap->live_bytes) + atomic64_read(&heap->handed_bytes);

	return v > 0 ? v : 0;
}

/* The next goal after a cycle that found @marked bytes.  gc->lock held. */
static void gcheap_set_goal(struct gcheap_collector *gc, u64 marked, u64 cycle_ns)
{
	u64 goal;

	if (gc->gogc < 0) {
		goal = U64_MAX;
	} else {
		goal = marked + div_u64(marked * gc->gogc, 100);
		goal = max_t(u64, goal, GCHEAP_MIN_GOAL);
	}
	if (gc->soft_limit && goal > gc->soft_limit) {
		/*
		 * The limit binds.  When the live heap nearly fills it, cycles
		 * would follow each other without end: keep a little headroom,
		 * and let the next paced cycle start only after the program
		 * has run as long as this one took (at most half the time in
		 * the collector, as Go's limiter does).
		 */
		goal = max(gc->soft_limit, marked + (marked >> 4) + SZ_1M);
		gc->not_before = jiffies + nsecs_to_jiffies(cycle_ns);
	}
	WRITE_ONCE(gc->goal, goal);
	/*
	 * The program allocates while a cycle runs, so the next one starts
	 * that much before the goal -- as much as it allocated during the
	 * last cycle -- though no earlier than halfway from the live heap.
	 */
	if (goal == U64_MAX)
		WRITE_ONCE(gc->trigger, U64_MAX);
	else
		WRITE_ONCE(gc->trigger, goal - min(gc->runway, (goal - min(goal, marked)) / 2));
}

/* One stop's pause: into the figures.  gc->lock held. */
static void gcheap_note_pause(struct gcheap_collector *gc, u64 ns)
{
	gc->st.total_pause_ns += ns;
	gc->st.max_pause_ns = max(gc->st.max_pause_ns, ns);
}

/*
 * The first stop: settle the CPU slots (objects allocated from them until
 * now are traced, not allocated black), enter the MARK phase and grey what
 * the threads' registers, stacks and extra ranges point to.  Nothing is
 * traced yet: the world restarts at once.  World stopped.
 */
static void gcheap_mark_start(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;

	gcheap_cache_settle(heap);
	atomic64_set(&gc->black_bytes, 0);
	WRITE_ONCE(heap->wp.limit, READ_ONCE(gcheap_pause_pages));
	WRITE_ONCE(gc->phase, GCHEAP_GC_MARK);
	gc->marked = 0;
	gc->grey_top = 0;
	gc->overflow = false;
	gc->nr_cand = 0;
	gc->tracing = false;
	gcheap_scan_threads(heap);
	gcheap_cand_flush(heap);
	gc->tracing = true;
}

/*
 * Concurrent marking: the root ranges, then everything grey, then re-mark
 * rounds over the pages written meanwhile while each round finds fewer of
 * them.  World running; no locks held.
 */
static void gcheap_mark_concurrent(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	unsigned long prev = ULONG_MAX, n;
	unsigned int round;

	/*
	 * The ranges are only greyed under world_lock (which keeps them in
	 * place), so threads can register meanwhile; tracing comes after.
	 */
	mutex_lock(&gc->world_lock);
	gc->tracing = false;
	gcheap_scan_ranges(heap);
	gcheap_cand_flush(heap);
	gc->tracing = true;
	mutex_unlock(&gc->world_lock);
	gcheap_finish_marking(heap);
	/*
	 * Closing rounds.  The program may keep the current epoch at
	 * pause_pages, each round then leaving as many pages as it rescanned,
	 * and the final pause would take them all.  So from here a thread
	 * that writes more than GCHEAP_FINAL_PAGES new pages waits for the
	 * next round (or the final pause): the rounds then shrink to what the
	 * threads write before they wait, and the pause rescans about
	 * GCHEAP_FINAL_PAGES pages plus one per thread.
	 */
	WRITE_ONCE(heap->wp.limit, min_t(unsigned long, READ_ONCE(heap->wp.limit),
					 GCHEAP_FINAL_PAGES));
	for (round = 0; round < GCHEAP_MAX_ROUNDS; round++) {
		n = gcheap_barrier_pending(heap);
		if (n <= GCHEAP_FINAL_PAGES || n >= prev)
			break;
		prev = n;
		gcheap_remark(heap);
		gcheap_finish_marking(heap);
	}
}

/*
 * The final stop: settle the CPU slots again (what they handed out since
 * the first stop is allocated black), rescan the roots and the pages
 * written since the last round, and finish marking.  Then check it, copy
 * the heap for a fork, and enter the SWEEP phase; leave the errors
 * checkmark mode found and the bytes marked for the cycle.  World stopped.
 */
static void gcheap_mark_end(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	u64 errors = 0;

	gcheap_cache_settle(heap);
	gc->final = true;
	gcheap_scan_threads(heap);
	gcheap_scan_ranges(heap);
	gcheap_cand_flush(heap);
	mutex_lock(&heap->mheap_lock);
	gc->hot = NULL;
	gc->hot_page = NULL;
	gc->dirty_scanned = gcheap_rescan_epoch(heap, READ_ONCE(heap->wp.epoch) & 1);
	mutex_unlock(&heap->mheap_lock);
	gcheap_finish_marking(heap);
	if (gc->checkmark || READ_ONCE(gcheap_checkmark)) {
		errors = gcheap_barrier_audit(heap);
		gcheap_checkmark_mark(heap);
		errors += gcheap_checkmark_compare(heap);
	}
	gc->final = false;
	if (gc->snap_dst) {
		/* A fork snapshot: the heap as it is, with the world stopped. */
		gc->snap_ret = gcheap_span_copy_all(gc->snap_dst, heap);
		gc->snap_dst = NULL;
	}
	gc->pause_errors = errors;
	gc->pause_marked = gc->marked + atomic64_read(&gc->black_bytes);
	WRITE_ONCE(gc->phase, GCHEAP_GC_SWEEP);
	WRITE_ONCE(gc->sweep_gen, gc->sweep_gen + 1);
}

static void gcheap_cycle(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct mm_struct *mm = READ_ONCE(heap->mm);
	u64 seq, marked = 0, freed = 0, errors = 0, t0 = 0, p1 = 0, p2 = 0, a0, a1;
	bool ok = false, aborted = false;

	spin_lock(&gc->lock);
	seq = ++gc->started;
	spin_unlock(&gc->lock);
	a0 = gcheap_allocated(heap);

	if (!mm || !READ_ONCE(heap->mapped) || !mmget_not_zero(mm))
		goto out;
	kthread_use_mm(mm);
	t0 = ktime_get_ns();
	/*
	 * Before the first stop, with the world running: forget the last
	 * cycle's marks, and write-protect every page written since the last
	 * cycle, so that from here on every write to the heap is recorded.
	 */
	gcheap_clear_marks(heap);
	gcheap_barrier_clear(heap, gcheap_barrier_round(heap));

	if (gcheap_pause(heap, gcheap_mark_start, &p1)) {
		aborted = true;
		goto out_mm;
	}

	gcheap_mark_concurrent(heap);

	if (gcheap_pause(heap, gcheap_mark_end, &p2)) {
		/* Nothing is freed; the next cycle starts over. */
		WRITE_ONCE(gc->phase, GCHEAP_GC_IDLE);
		wake_up_all(&heap->wp.assist_wq);
		aborted = true;
		goto out_mm;
	}
	errors = gc->pause_errors;
	marked = gc->pause_marked;
	wake_up_all(&heap->wp.assist_wq);

	gcheap_sweep(heap);
	WRITE_ONCE(gc->phase, GCHEAP_GC_IDLE);
	freed = atomic64_xchg(&gc->swept_bytes, 0);
	ok = true;
out_mm:
	kthread_unuse_mm(mm);
	mmput(mm);
out:
	spin_lock(&gc->lock);
	gc->done = seq;
	if (ok) {
		gc->last_ok = seq;
		gc->st.cycles++;
		gc->st.marked_bytes = marked;
		gc->st.freed_bytes += freed;
		gc->st.last_pause_ns = max(p1, p2);
		gcheap_note_pause(gc, p1);
		gcheap_note_pause(gc, p2);
		gc->st.checkmark_errors += errors;
		gc->st.pause_pages_last = gc->dirty_scanned;
		gc->st.pause_pages_max = max(gc->st.pause_pages_max, gc->st.pause_pages_last);
		/* What the program allocated meanwhile: now, plus what was freed. */
		a1 = gcheap_allocated(heap) + freed;
		gc->runway = a1 - min(a0, a1);
		gcheap_set_goal(gc, marked, ktime_get_ns() - t0);
	} else if (aborted) {
		gc->st.stop_aborts++;
	}
	spin_unlock(&gc->lock);
	wake_up_all(&gc->done_wq);
	if (ok) {
		/* Under the soft limit, free pages go back now. */
		if (gc->soft_limit && (heap->nr_resident << PAGE_SHIFT) > gc->soft_limit)
			mod_delayed_work(system_unbound_wq, &heap->scavenge, 0);
		else if (READ_ONCE(heap->nr_free_resident))
			gcheap_scavenge_kick(heap);
	}
}

static bool gcheap_gc_pending(struct gcheap_collector *gc)
{
	bool ret;

	spin_lock(&gc->lock);
	ret = gc->requested > gc->started;
	spin_unlock(&gc->lock);
	return ret;
}

static int gcheap_gc_main(void *arg)
{
	struct gcheap_heap *heap = arg;
	struct gcheap_collector *gc = &heap->gc;

	while (!kthread_should_stop()) {
		wait_event_idle(gc->wake, kthread_should_stop() || gcheap_gc_pending(gc));
		if (kthread_should_stop())
			break;
		gcheap_cycle(heap);
	}
	/* Nobody waits for a cycle that will never run. */
	spin_lock(&gc->lock);
	gc->started = max(gc->started, gc->requested);
	gc->done = gc->started;
	spin_unlock(&gc->lock);
	wake_up_all(&gc->done_wq);
	return 0;
}

/*
 * Ask for a cycle that starts after this call (one under way may have
 * marked before the caller's last store).  Return: its number.
 */
static u64 gcheap_gc_request(struct gcheap_collector *gc)
{
	u64 target;

	spin_lock(&gc->lock);
	target = gc->started + 1;
	gc->requested = max(gc->requested, target);
	spin_unlock(&gc->lock);
	wake_up(&gc->wake);
	return target;
}

/**
 * gcheap_gc_note_alloc() - the pacer's check after spans were handed out
 * @heap: the heap
 * @may_wait: the caller holds no reference the program has not seen, so it
 *	may wait for the cycle under a soft limit, counted as parked
 *
 * Requests a cycle when the allocated bytes reached the goal and no cycle
 * is requested or running.  Context: process, no locks held.
 */
void gcheap_gc_note_alloc(struct gcheap_heap *heap, bool may_wait)
{
	struct gcheap_collector *gc = &heap->gc;
	bool wake = false;

	if (gcheap_allocated(heap) < READ_ONCE(gc->trigger))
		return;
	spin_lock(&gc->lock);
	if (gc->requested <= gc->started && gc->done == gc->started &&
	    time_after_eq(jiffies, gc->not_before)) {
		gc->requested = gc->started + 1;
		wake = true;
	}
	spin_unlock(&gc->lock);
	if (wake)
		wake_up(&gc->wake);
	if (may_wait)
		gcheap_gc_throttle(heap);
}

/**
 * gcheap_gc_throttle() - wait for the cycle when past the soft limit's goal
 * @heap: the heap
 *
 * Under a soft limit the goal is a bound: a thread that allocates past it
 * while a cycle runs waits for the cycle to end.  It counts as parked
 * meanwhile, so that it holds up no stop; so it must hold no reference
 * the program has not seen (a large object allocated for it, say), which
 * no root would show to a pause.
 *
 * Context: process, no locks held.
 */
void gcheap_gc_throttle(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;

	if (gc->soft_limit && gcheap_allocated(heap) >= READ_ONCE(gc->goal) &&
	    READ_ONCE(gc->phase) != GCHEAP_GC_IDLE) {
		u64 seq = READ_ONCE(gc->started);
		struct gcheap_mutator *m = gcheap_gc_block(heap);

		wait_event_killable(gc->done_wq, READ_ONCE(gc->done) >= seq);
		gcheap_gc_unblock(heap, m);
	}
}

/* --- the ioctls' side --- */

/**
 * gcheap_gc_thread() - register or unregister the calling thread
 * @heap: its heap
 * @tr: the validated request
 *
 * Return: 0 or a negative errno.
 */
int gcheap_gc_thread(struct gcheap_heap *heap, const struct gcheap_thread_reg *tr)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m, *old;
	struct task_struct *task;
	int ret;

	if (tr->op == GCHEAP_THREAD_UNREGISTER) {
		mutex_lock(&gc->world_lock);
		m = gcheap_self(gc);
		if (m) {
			xa_erase(&gc->mutators, current->pid);
			gc->nr_mutators--;
		}
		mutex_unlock(&gc->world_lock);
		if (!m)
			return -ENOENT;
		/* A stop may wait for one thread fewer now. */
		wake_up(&gc->wake);
		gcheap_mutator_put(m);
		return 0;
	}

	if (tr->tid) {
		/* Another thread of this process (the main thread, by libgcheap). */
		rcu_read_lock();
		task = get_pid_task(find_vpid(tr->tid), PIDTYPE_PID);
		rcu_read_unlock();
		if (task && !same_thread_group(task, current)) {
			put_task_struct(task);
			task = NULL;
		}
		if (!task)
			return -ESRCH;
	} else {
		task = get_task_struct(current);
	}
	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m) {
		put_task_struct(task);
		return -ENOMEM;
	}
	kref_init(&m->ref);
	m->heap = heap;
	m->task = task;
	m->stack_lo = tr->stack_lo;
	m->stack_hi = tr->stack_hi;
	m->extra = tr->extra;
	m->extra_len = tr->extra_len;
	for (;;) {
		/* A thread starting during a stop joins once it is over. */
		ret = wait_event_killable(gc->done_wq, !READ_ONCE(gc->stopping));
		if (ret)
			goto out_put;
		mutex_lock(&gc->world_lock);
		if (!gc->stopping)
			break;
		mutex_unlock(&gc->world_lock);
	}
	m->parked_seq = gc->stop_seq;
	m->by_other = task != current;
	old = xa_load(&gc->mutators, task->pid);
	if (old && old->task == task && old->by_other && task == current) {
		/* Its own registration: its stack and extra range, as it says. */
		old->stack_lo = m->stack_lo;
		old->stack_hi = m->stack_hi;
		old->extra = m->extra;
		old->extra_len = m->extra_len;
		old->by_other = false;
		ret = 0;
		mutex_unlock(&gc->world_lock);
		goto out_put;
	} else if (old && old->task == task) {
		ret = -EEXIST;
	} else {
		/* A dead thread's record whose thread id was reused goes. */
		ret = xa_err(xa_store(&gc->mutators, task->pid, m, GFP_KERNEL_ACCOUNT));
		if (!ret && old)
			gcheap_mutator_put(old);
		else if (!ret)
			gc->nr_mutators++;
	}
	mutex_unlock(&gc->world_lock);
	if (!ret)
		return 0;
out_put:
	gcheap_mutator_put(m);
	return ret;
}

/**
 * gcheap_gc_set_roots() - replace the root ranges
 * @heap: the heap
 * @r: validated ranges (kmalloc'ed; the heap owns them now)
 * @nr: their number
 *
 * Return: 0.
 */
int gcheap_gc_set_roots(struct gcheap_heap *heap, struct gcheap_range *r, unsigned int nr)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_range *old;

	mutex_lock(&gc->world_lock);
	old = gc->roots;
	gc->roots = r;
	gc->nr_roots = nr;
	mutex_unlock(&gc->world_lock);
	kfree(old);
	return 0;
}

/**
 * gcheap_gc_collect() - a full collection, waited for
 * @heap: the heap
 * @cycle: the cycle that completed
 *
 * While it waits, a registered caller counts as parked, with the user
 * registers it entered the module with.
 *
 * Return: 0, -EAGAIN when the cycle was given up, -EINTR on a fatal signal.
 */
int gcheap_gc_collect(struct gcheap_heap *heap, u64 *cycle)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	u64 target;
	int ret;

	m = gcheap_gc_block(heap);
	target = gcheap_gc_request(gc);
	ret = wait_event_killable(gc->done_wq, READ_ONCE(gc->done) >= target);
	if (gcheap_gc_unblock(heap, m) || ret)
		return -EINTR;
	spin_lock(&gc->lock);
	ret = gc->last_ok >= target ? 0 : -EAGAIN;
	*cycle = gc->last_ok;
	spin_unlock(&gc->lock);
	return ret;
}

/**
 * gcheap_gc_snapshot() - copy the heap for a fork() child
 * @heap: the heap
 * @dst: a new heap of the same layout, owned by the caller, empty
 *
 * The copy is made by a full collection, with the world stopped, in its
 * final stop: only objects the marking kept are copied.
 *
 * Return: 0, -EAGAIN when no collection could stop the world, -EINTR on a
 * fatal signal, -ENOMEM.
 */
int gcheap_gc_snapshot(struct gcheap_heap *heap, struct gcheap_heap *dst)
{
	struct gcheap_collector *gc = &heap->gc;
	u64 cycle;
	int ret;

	mutex_lock(&gc->snap_lock);
	mutex_lock(&gc->world_lock);
	gc->snap_dst = dst;
	gc->snap_ret = -EAGAIN;
	mutex_unlock(&gc->world_lock);
	ret = gcheap_gc_collect(heap, &cycle);
	mutex_lock(&gc->world_lock);
	/* Still there: no cycle reached its copy. */
	if (gc->snap_dst == dst)
		gc->snap_dst = NULL;
	else if (!ret || ret == -EAGAIN)
		ret = gc->snap_ret;
	mutex_unlock(&gc->world_lock);
	mutex_unlock(&gc->snap_lock);
	return ret;
}

/**
 * gcheap_gc_set() - change the pacing
 * @heap: the heap
 * @op: GCHEAP_GC_SET_GOGC or GCHEAP_GC_SET_SOFT_LIMIT
 * @value: validated
 *
 * Return: 0.
 */
int gcheap_gc_set(struct gcheap_heap *heap, unsigned int op, s64 value)
{
	struct gcheap_collector *gc = &heap->gc;

	spin_lock(&gc->lock);
	if (op == GCHEAP_GC_SET_GOGC)
		gc->gogc = value;
	else
		gc->soft_limit = value;
	gcheap_set_goal(gc, gc->st.marked_bytes, 0);
	spin_unlock(&gc->lock);
	gcheap_gc_note_alloc(heap, true);
	return 0;
}

void gcheap_gc_stats(struct gcheap_heap *heap, struct gcheap_heap_stats *st)
{
	struct gcheap_collector *gc = &heap->gc;
	u64 goal;

	spin_lock(&gc->lock);
	st->cycles = gc->st.cycles;
	st->marked_bytes = gc->st.marked_bytes;
	st->freed_bytes = gc->st.freed_bytes;
	st->max_pause_ns = gc->st.max_pause_ns;
	st->total_pause_ns = gc->st.total_pause_ns;
	st->last_pause_ns = gc->st.last_pause_ns;
	st->stop_aborts = gc->st.stop_aborts;
	st->checkmark_errors = gc->st.checkmark_errors;
	st->pause_pages_last = gc->st.pause_pages_last;
	st->pause_pages_max = gc->st.pause_pages_max;
	goal = gc->goal;
	spin_unlock(&gc->lock);
	st->next_gc_bytes = goal == U64_MAX ? 0 : goal;
	st->threads = READ_ONCE(gc->nr_mutators);
	st->barrier_faults = atomic64_read(&heap->wp.faults);
}

/* --- life --- */

/**
 * gcheap_gc_init() - set up a new heap's collector
 * @heap: the heap
 * @hc: the validated creation request
 *
 * Return: 0 or a negative errno.
 */
int gcheap_gc_init(struct gcheap_heap *heap, const struct gcheap_heap_create *hc)
{
	struct gcheap_collector *gc = &heap->gc;

	init_waitqueue_head(&gc->wake);
	init_waitqueue_head(&gc->done_wq);
	mutex_init(&gc->world_lock);
	mutex_init(&gc->snap_lock);
	xa_init(&gc->mutators);
	spin_lock_init(&gc->lock);
	spin_lock_init(&gc->sweep_lock);
	INIT_LIST_HEAD(&gc->sweep_list);
	gc->pid = task_tgid_nr(current);
	gc->gogc = hc->flags & GCHEAP_HEAP_GOGC ? hc->gogc : 100;
	gc->soft_limit = hc->soft_limit_bytes;
	gc->checkmark = hc->flags & GCHEAP_HEAP_CHECKMARK;
	gc->not_before = jiffies;
	gcheap_set_goal(gc, 0, 0);
	gc->grey_cap = clamp_t(unsigned long, READ_ONCE(gcheap_mark_stack), 16, 1 << 24);
	gc->grey = kvmalloc_array(gc->grey_cap, sizeof(*gc->grey), GFP_KERNEL_ACCOUNT);
	gc->cand = kvmalloc_array(GCHEAP_NR_CAND, sizeof(*gc->cand), GFP_KERNEL_ACCOUNT);
	if (!gc->grey || !gc->cand)
		return -ENOMEM;
	return 0;
}

/**
 * gcheap_gc_start() - start the heap's collector thread
 * @heap: the heap, set up with gcheap_gc_init()
 *
 * Return: 0 or a negative errno.
 */
int gcheap_gc_start(struct gcheap_heap *heap)
{
	struct task_struct *t;

	t = kthread_run(gcheap_gc_main, heap, "gcheap/%d", heap->gc.pid);
	if (IS_ERR(t))
		return PTR_ERR(t);
	heap->gc.thread = t;
	return 0;
}

/* Stop the collector thread: the heap's file is going. */
void gcheap_gc_stop(struct gcheap_heap *heap)
{
	if (heap->gc.thread) {
		kthread_stop(heap->gc.thread);
		heap->gc.thread = NULL;
	}
}

/* Free what the collector holds; its thread is stopped. */
void gcheap_gc_destroy(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	unsigned long idx;

	gcheap_gc_stop(heap);
	xa_for_each(&gc->mutators, idx, m)
		gcheap_mutator_put(m);
	xa_destroy(&gc->mutators);
	kfree(gc->roots);
	kvfree(gc->grey);
	kvfree(gc->cand);
	mutex_destroy(&gc->snap_lock);
	mutex_destroy(&gc->world_lock);
}
