// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap's collector: a conservative mark-sweep collection of one heap, run
 * by a kernel thread of the heap's own with the world stopped.
 *
 * A cycle.  The collector thread (gcheap/<pid>) sleeps until a cycle is
 * requested: by the pacer, when a refill or a large allocation finds the
 * allocated bytes at the goal, or by GCHEAP_GC_COLLECT.  Then it
 *
 *  1. stops the world: queues a task work (TWA_SIGNAL) on every registered
 *     thread and waits until each has parked in it, is waiting in
 *     GCHEAP_GC_COLLECT (a collecting thread counts as stopped), or is
 *     exiting (see "Stopping" below);
 *  2. empties every CPU's slots, so the module's own record says which
 *     objects are allocated (cache.c: gcheap_cache_flush());
 *  3. marks: every word of each parked thread's user registers, of its
 *     stack (from its user stack pointer, less the 128-byte red zone, to
 *     the top it registered), of the extra range it registered, and of the
 *     root ranges, that
 *     points into an allocated object -- anywhere inside it -- marks the
 *     object grey; grey objects are scanned word by word in turn, noscan
 *     ones never.  The grey objects wait on an explicit stack of bounded
 *     size (the module parameter mark_stack); when it is full the object
 *     stays marked but unscanned and an overflow flag is set, and once the
 *     stack has drained, every marked object of the heap is scanned again
 *     until a pass ends without overflow (the Boehm collector's recovery:
 *     memory stays bounded, the work grows only when it must);
 *  4. in checkmark mode marks everything again from scratch into a second
 *     bitmap, and reports every object that marking reached and the first
 *     did not (it is kept, so the program goes on);
 *  5. sweeps: frees and zeroes every allocated object left unmarked, and
 *     routes each span back by its count: empty spans to mheap, partial
 *     ones to mcentral, full ones to a full list (cache.c);
 *  6. restarts the world, then sets the next goal and lets the scavenger
 *     return free pages.
 *
 * Which objects count as allocated.  An object is allocated when its bit
 * is set in the span's alloc bitmap, or when it was handed to a slot that
 * the module cannot empty (a thread's own slot: only its thread may write
 * it).  Marking treats both as objects; sweeping frees only the first kind
 * and leaves objects a thread's slot holds to be settled when the span
 * comes back from the slot (and swept by the next cycle).
 *
 * Stopping.  A thread is stopped by a task work queued with TWA_SIGNAL:
 * like a signal, it interrupts the thread wherever it is (an IPI if it runs
 * in its program, a wake-up if it sleeps interruptibly in a system call),
 * and on its way back to user mode the thread runs gcheap_park_work(),
 * which copies its user registers (pt_regs, saved by the kernel on entry)
 * and waits in the module until the world restarts.  Unlike a signal
 * handler it leaves no trace in the program: no handler to install or to
 * collide with, nothing blocked by signal masks, and a system call it
 * interrupts is restarted as after a signal without a handler -- which
 * covers nanosleep(), poll() and futex waits with timeouts, which return
 * EINTR under any handler, SA_RESTART or not.  (Calls that fail with EINTR
 * on any pending signal -- epoll_wait(), sigtimedwait(), semop(), socket
 * calls with a timeout -- still may, as they would under SA_RESTART.)
 * Sleeping in the task work also preempts the thread, so a restartable
 * sequence it was in is aborted.  A queued work
 * holds a reference on the mutator record and on the heap's file, so the
 * work can run after its thread unregistered or the heap was closed (the
 * reference is dropped with fput(), whose release runs later, outside the
 * module's code).
 *
 * Why nothing reachable is freed (with the world stopped): every registered
 * thread is in the module -- parked in the task work or waiting in the
 * collect ioctl -- with its user registers saved in pt_regs, which the
 * module copied; so every pointer a registered thread holds is in those
 * registers, its stack, its extra range, a root range or the heap, and all
 * of them are scanned before anything is freed.  A pointer that only an
 * unregistered thread holds is not seen: threads that use the heap must be
 * registered (libgcheap registers the threads pthread_create() starts).
 *
 * Locks.  world_lock protects the registry of threads, the roots and the
 * stop state, and is held from the moment the world is stopped until it
 * restarts.  User memory (roots) is read under world_lock but never under
 * mheap_lock, so no page fault happens while mheap_lock is held: roots are
 * read into a buffer of candidate pointers outside it, and the buffer is
 * marked, under mheap_lock, whenever it fills.  mheap_lock keeps every span
 * in place while it is scanned (spans are freed only under it).
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
 * @in_collect: it waits in GCHEAP_GC_COLLECT and counts as parked
 * @by_other: registered by another thread of its process, so its own
 *	registration completes the record instead of failing
 * @regs: its user registers when it parked
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
	bool in_collect;
	bool by_other;
	struct pt_regs regs;
};

static void gcheap_mutator_release(struct kref *ref)
{
	struct gcheap_mutator *m = container_of(ref, struct gcheap_mutator, ref);

	put_task_struct(m->task);
	kfree(m);
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

/* --- marking --- */

static unsigned long *gcheap_marks(struct gcheap_collector *gc, struct gcheap_span *span)
{
	return (unsigned long *)(gc->checking ? span->cmark : span->mark);
}

/*
 * Checkmark mode's marking grows the stack instead of overflowing, so that
 * it does not share the overflow passes it is there to check.
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
	if (gc->grey_top == gc->grey_cap && !(gc->checking && gcheap_grey_grow(gc))) {
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
 * it for scanning unless it is noscan.  Context: mheap_lock held, and
 * gc->hot cleared when it was taken (spans may have gone while it was not
 * held).
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
	if (test_bit(i, marks))
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

			/* Most words point nowhere near the arena: only those that do
			 * go further.
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
			cond_resched();
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
	unsigned long idx, i;

	while (gc->overflow) {
		gc->overflow = false;
		xa_for_each(&heap->spans, idx, span) {
			unsigned long *marks = gcheap_marks(gc, span);

			if (idx != span->start || (span->sc & 1))
				continue;
			for_each_set_bit(i, marks, span->nobjs) {
				gcheap_scan_object(heap, (span->start << PAGE_SHIFT) +
						   i * span->elem_size, span->elem_size);
				gcheap_drain(heap);
			}
			cond_resched();
		}
	}
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
 * Read user memory [start, start + len) of the heap's process (the
 * collector runs on its mm) a page at a time, keeping the words that point
 * into the arena as candidates.  Unreadable pages are skipped.
 */
static void gcheap_scan_user(struct gcheap_heap *heap, unsigned long start,
			     unsigned long len, unsigned long *buf)
{
	unsigned long end;

	if (!len || check_add_overflow(start, len, &end))
		return;
	start = ALIGN_DOWN(start, sizeof(long));
	while (start < end) {
		unsigned long n = min(end - start, PAGE_SIZE - offset_in_page(start));
		unsigned long k;

		n = round_up(n, sizeof(long));
		if (!copy_from_user(buf, (const void __user *)start, n)) {
			for (k = 0; k < n / sizeof(long); k++)
				gcheap_cand_add(heap, buf[k]);
		}
		start += n;
		cond_resched();
	}
}

/*
 * One marking from the roots, into span->mark (or span->cmark when
 * @checking).  World stopped, world_lock held, mheap_lock not held.
 * Return: the bytes marked.
 */
static u64 gcheap_mark(struct gcheap_heap *heap, bool checking, unsigned long *buf)
{
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	unsigned long idx;
	unsigned int i;

	gc->checking = checking;
	gc->marked = 0;
	gc->grey_top = 0;
	gc->overflow = false;
	gc->nr_cand = 0;
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
			gcheap_scan_user(heap, sp, m->stack_hi - sp, buf);
		gcheap_scan_user(heap, m->extra, m->extra_len, buf);
	}
	for (i = 0; i < gc->nr_roots; i++)
		gcheap_scan_user(heap, gc->roots[i].start, gc->roots[i].len, buf);
	gcheap_cand_flush(heap);
	mutex_lock(&heap->mheap_lock);
	gc->hot = NULL;
	gc->hot_page = NULL;
	gcheap_overflow_passes(heap);
	mutex_unlock(&heap->mheap_lock);
	return gc->marked;
}

/* Clear every span's marks before a cycle's marking. */
static void gcheap_clear_marks(struct gcheap_heap *heap)
{
	struct gcheap_span *span;
	unsigned long idx;

	mutex_lock(&heap->mheap_lock);
	xa_for_each(&heap->spans, idx, span) {
		if (idx != span->start)
			continue;
		memset(span->mark, 0, sizeof(span->mark));
		memset(span->cmark, 0, sizeof(span->cmark));
	}
	mutex_unlock(&heap->mheap_lock);
}

/*
 * Checkmark mode: everything the from-scratch marking reached must have
 * been marked by the cycle's own.  Anything else would have been freed
 * while reachable: say so loudly, and keep it.
 */
static u64 gcheap_checkmark_compare(struct gcheap_heap *heap)
{
	struct gcheap_span *span;
	unsigned long idx;
	u64 errors = 0;
	unsigned int w;

	mutex_lock(&heap->mheap_lock);
	xa_for_each(&heap->spans, idx, span) {
		if (idx != span->start)
			continue;
		for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
			u64 miss = span->cmark[w] & ~span->mark[w];

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

/*
 * Free a small-object span's unmarked allocated objects (not those a
 * thread's slot holds), zeroing each run of them at once, with one page
 * lookup per page.  Return: the bytes freed.
 */
static u64 gcheap_sweep_span(struct gcheap_heap *heap, struct gcheap_span *span)
{
	unsigned long base = span->start << PAGE_SHIFT, pidx = ULONG_MAX;
	struct page *page = NULL;
	unsigned int w, n = 0;

	spin_lock(&span->lock);
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
		u64 dead = span->alloc[w] & ~span->mark[w] & ~span->handed[w];

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
	return (u64)n * span->elem_size;
}

static u64 gcheap_sweep(struct gcheap_heap *heap)
{
	struct gcheap_span *span, *tmp;
	unsigned long idx;
	LIST_HEAD(todo);
	u64 freed = 0;

	gcheap_cache_gather(heap, &todo);
	list_for_each_entry_safe(span, tmp, &todo, node) {
		list_del_init(&span->node);
		freed += gcheap_sweep_span(heap, span);
		gcheap_span_put(heap, span);
		cond_resched();
	}

	spin_lock(&heap->thread_lock);
	list_for_each_entry(span, &heap->thread_spans, node)
		freed += gcheap_sweep_span(heap, span);
	spin_unlock(&heap->thread_lock);

	mutex_lock(&heap->mheap_lock);
	xa_for_each(&heap->spans, idx, span) {
		if (idx != span->start || !span->large || span->state != GCHEAP_SPAN_LARGE ||
		    span->mark[0])
			continue;
		atomic64_sub(span->elem_size, &heap->live_bytes);
		atomic64_dec(&heap->nr_large);
		freed += span->elem_size;
		gcheap_span_free(heap, span);
	}
	mutex_unlock(&heap->mheap_lock);
	return freed;
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
 * The task work a stopped thread runs on its way back to user mode: park
 * it, with its registers saved, until the world restarts.  It also runs
 * when the thread exits with the work queued; it then only lets go.
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
	}
	mutex_unlock(&gc->world_lock);
	if (seq) {
		wake_up_all(&gc->done_wq);
		/*
		 * A fatal signal ends the wait; the thread stays counted as
		 * parked, as it will never run its program again.
		 */
		wait_event_killable(gc->done_wq, READ_ONCE(gc->run_seq) >= seq);
	}
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
 * Ask every registered thread to park and wait until all have, or until
 * the stop timeout.  Return: 0 with the world stopped and world_lock held;
 * -EAGAIN (timeout) or -EINTR (the collector is told to stop) with the
 * world running and world_lock not held.
 */
static int gcheap_stop_world(struct gcheap_heap *heap)
{
	unsigned long deadline = jiffies +
		msecs_to_jiffies(max(READ_ONCE(gcheap_stop_timeout_ms), 10u));
	struct gcheap_collector *gc = &heap->gc;
	struct gcheap_mutator *m;
	unsigned long idx;
	int ret;

	mutex_lock(&gc->world_lock);
	gc->stop_seq++;
	gc->stopping = true;
	gc->nr_parked = 0;
	xa_for_each(&gc->mutators, idx, m) {
		if (m->in_collect) {
			m->parked_seq = gc->stop_seq;
			gc->nr_parked++;
		} else if (!m->queued && gcheap_queue_park(heap, m) == -ESRCH) {
			/* Its task is past running task works: exiting. */
			xa_erase(&gc->mutators, idx);
			gc->nr_mutators--;
			gcheap_mutator_put(m);
		}
	}
	for (;;) {
		gcheap_reap(gc);
		if (gc->nr_parked >= gc->nr_mutators)
			return 0;
		mutex_unlock(&gc->world_lock);
		wait_event_idle_timeout(gc->done_wq, READ_ONCE(gc->nr_parked) >=
					READ_ONCE(gc->nr_mutators) || kthread_should_stop(),
					msecs_to_jiffies(10));
		ret = kthread_should_stop() ? -EINTR :
		      time_after(jiffies, deadline) ? -EAGAIN : 0;
		mutex_lock(&gc->world_lock);
		if (ret && gc->nr_parked < gc->nr_mutators)
			break;
	}
	gc->stopping = false;
	gc->run_seq = gc->stop_seq;
	mutex_unlock(&gc->world_lock);
	wake_up_all(&gc->done_wq);
	return ret;
}

static void gcheap_restart_world(struct gcheap_collector *gc)
{
	lockdep_assert_held(&gc->world_lock);
	gc->stopping = false;
	gc->run_seq = gc->stop_seq;
	mutex_unlock(&gc->world_lock);
	wake_up_all(&gc->done_wq);
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
}

static void gcheap_cycle(struct gcheap_heap *heap, unsigned long *buf)
{
	struct gcheap_collector *gc = &heap->gc;
	struct mm_struct *mm = READ_ONCE(heap->mm);
	u64 seq, marked = 0, freed = 0, errors = 0, t0 = 0, t1 = 0, pause = 0;
	bool ok = false, aborted = false;

	spin_lock(&gc->lock);
	seq = ++gc->started;
	spin_unlock(&gc->lock);

	if (!mm || !READ_ONCE(heap->mapped) || !mmget_not_zero(mm))
		goto out;
	kthread_use_mm(mm);
	t0 = ktime_get_ns();
	if (gcheap_stop_world(heap)) {
		aborted = true;
		goto out_mm;
	}
	gcheap_cache_flush(heap);
	gcheap_clear_marks(heap);
	marked = gcheap_mark(heap, false, buf);
	if (gc->checkmark || READ_ONCE(gcheap_checkmark)) {
		gcheap_mark(heap, true, buf);
		errors = gcheap_checkmark_compare(heap);
	}
	freed = gcheap_sweep(heap);
	if (gc->snap_dst) {
		/* A fork snapshot: the heap as it is, with the world stopped. */
		gc->snap_ret = gcheap_span_copy_all(gc->snap_dst, heap);
		gc->snap_dst = NULL;
	}
	gcheap_restart_world(gc);
	t1 = ktime_get_ns();
	pause = t1 - t0;
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
		gc->st.last_pause_ns = pause;
		gc->st.total_pause_ns += pause;
		gc->st.max_pause_ns = max(gc->st.max_pause_ns, pause);
		gc->st.checkmark_errors += errors;
		gcheap_set_goal(gc, marked, t1 - t0);
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
		gcheap_cycle(heap, gc->buf);
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
 *
 * Requests a cycle when the allocated bytes reached the goal and no cycle
 * is requested or running.  Context: process, no locks held.
 */
void gcheap_gc_note_alloc(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;
	bool wake = false;

	if (gcheap_allocated(heap) < READ_ONCE(gc->goal))
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
}

/* --- the ioctls' side --- */

static struct gcheap_mutator *gcheap_self(struct gcheap_collector *gc)
{
	struct gcheap_mutator *m = xa_load(&gc->mutators, current->pid);

	return m && m->task == current ? m : NULL;
}

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
		wake_up_all(&gc->done_wq);
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

	mutex_lock(&gc->world_lock);
	m = gcheap_self(gc);
	if (m) {
		gcheap_save_regs(m);
		m->in_collect = true;
		if (gc->stopping && m->parked_seq != gc->stop_seq) {
			m->parked_seq = gc->stop_seq;
			gc->nr_parked++;
			wake_up_all(&gc->done_wq);
		}
	}
	mutex_unlock(&gc->world_lock);

	target = gcheap_gc_request(gc);
	ret = wait_event_killable(gc->done_wq, READ_ONCE(gc->done) >= target);

	/*
	 * A stop that began meanwhile counted the caller as parked: it may
	 * run again only once that stop is over.
	 */
	mutex_lock(&gc->world_lock);
	while (m && !ret && gc->stopping && m->parked_seq == gc->stop_seq) {
		u64 seq = gc->stop_seq;

		mutex_unlock(&gc->world_lock);
		ret = wait_event_killable(gc->done_wq, READ_ONCE(gc->run_seq) >= seq);
		mutex_lock(&gc->world_lock);
	}
	if (m && !ret)
		m->in_collect = false;
	mutex_unlock(&gc->world_lock);
	if (ret)
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
 * The copy is made by a full collection, with the world stopped, right
 * after its sweep: only objects still allocated are copied.
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
	gcheap_gc_note_alloc(heap);
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
	goal = gc->goal;
	spin_unlock(&gc->lock);
	st->next_gc_bytes = goal == U64_MAX ? 0 : goal;
	st->threads = READ_ONCE(gc->nr_mutators);
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
	gc->pid = task_tgid_nr(current);
	gc->gogc = hc->flags & GCHEAP_HEAP_GOGC ? hc->gogc : 100;
	gc->soft_limit = hc->soft_limit_bytes;
	gc->checkmark = hc->flags & GCHEAP_HEAP_CHECKMARK;
	gc->not_before = jiffies;
	gcheap_set_goal(gc, 0, 0);
	gc->grey_cap = clamp_t(unsigned long, READ_ONCE(gcheap_mark_stack), 16, 1 << 24);
	gc->grey = kvmalloc_array(gc->grey_cap, sizeof(*gc->grey), GFP_KERNEL_ACCOUNT);
	gc->cand = kvmalloc_array(GCHEAP_NR_CAND, sizeof(*gc->cand), GFP_KERNEL_ACCOUNT);
	gc->buf = kmalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT);
	if (!gc->grey || !gc->cand || !gc->buf)
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
	kfree(gc->buf);
	mutex_destroy(&gc->snap_lock);
	mutex_destroy(&gc->world_lock);
}
