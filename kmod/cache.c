// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap caches: the per-CPU slots mapped into the process, the module's
 * per-CPU span caches behind them, mcentral, and the operations of
 * GCHEAP_IOC_CACHE.
 *
 * The fast path.  For each CPU and span class the cache area holds a slot
 * (struct gcheap_slot): the span the CPU allocates from and a bitmap of its
 * free objects.  libgcheap allocates by clearing one bit of the slot of the
 * CPU it runs on, inside a restartable sequence (rseq) that commits with
 * that single store, after checking that the CPU and the slot's generation
 * are the ones it read: no system call, no lock, no atomic
 * read-modify-write.  (It also keeps in the slot a hint of the word to look
 * at next, which the module resets on install and never reads.)  When the
 * slot has no free bit, the library asks for a refill.
 *
 * Refill.  gcheap_acquire() finds a span with free objects -- from the
 * CPU's spare spans (per-CPU lock only), else a batch from mcentral (one
 * lock per span class), else about 64 KiB of new spans from mheap -- possibly
 * sleeping.  Then, with preemption disabled on the CPU whose slot it
 * installs into and the CPU's pcp lock held, it reads back the old span's
 * free bits, writes the new span into the slot and bumps the slot's
 * generation.  That is safe against the fast path without any atomic
 * operation because:
 *
 *  1. Only code running on CPU c writes slot c: userspace commits only
 *     after checking (inside the rseq critical section) that it runs on c,
 *     and the module installs with preemption disabled on c.
 *  2. While the module runs on c, no thread of the process runs there; a
 *     thread that was inside a critical section for slot c was preempted,
 *     and rseq aborts its sequence when it resumes.
 *  3. A thread that read the slot before the install and commits after it
 *     sees the generation changed and retries; it never combines the old
 *     span's base with the new span's bits.
 *
 * Settling.  In both of a cycle's pauses the collector reads every CPU
 * slot's free bits, from whatever CPU it runs on, and settles the objects
 * the slot allocated into its span's record (gcheap_cache_settle()); the
 * span stays in the slot.  It writes nothing there, so rule 1 stands, and
 * a commit that lands after the read leaves its object handed out, which
 * the collector treats as allocated and never frees.
 *
 * Per-thread slots (where rseq is not available) live in the thread's own
 * memory; the module reads and writes them with copy_from_user/
 * copy_to_user in the owning thread's ioctl, so no other synchronisation
 * is needed there.
 *
 * Hostile input.  Userspace can write every slot.  The module keeps its own
 * record of which span each slot holds (pcp->cls[sc].slot, or the THREAD
 * state checked against its own span map for thread slots), and of which
 * objects were free when the span was installed (span->handed).  The bits
 * read back are only ever intersected with span->handed: a slot that lies
 * can lose or leak its own objects, never touch module memory or another
 * heap.
 *
 * Explicit frees (GCHEAP_OP_FREE) clear an object's allocation bit and zero
 * it; an object that was handed to a slot is instead recorded in
 * span->freed and becomes free when the span leaves the slot.  A full span
 * that gets a free object moves to its CPU's spare list.
 */
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "gcheap.h"

/* Spans moved at once between mcentral or mheap and a CPU's spares. */
#define GCHEAP_BATCH	4

int gcheap_pcp_init(struct gcheap_heap *heap)
{
	unsigned int sc;
	int cpu;

	heap->central = kcalloc(heap->nr_sc, sizeof(*heap->central), GFP_KERNEL_ACCOUNT);
	if (!heap->central)
		return -ENOMEM;
	for (sc = 0; sc < heap->nr_sc; sc++) {
		spin_lock_init(&heap->central[sc].lock);
		INIT_LIST_HEAD(&heap->central[sc].partial);
	}
	heap->pcp = __alloc_percpu_gfp(sizeof(struct gcheap_pcp) +
				       heap->nr_sc * sizeof(struct gcheap_pcp_class),
				       __alignof__(struct gcheap_pcp), GFP_KERNEL_ACCOUNT);
	if (!heap->pcp) {
		kfree(heap->central);
		heap->central = NULL;
		return -ENOMEM;
	}
	for_each_possible_cpu(cpu) {
		struct gcheap_pcp *pcp = per_cpu_ptr(heap->pcp, cpu);

		spin_lock_init(&pcp->lock);
		INIT_LIST_HEAD(&pcp->full);
		for (sc = 0; sc < heap->nr_sc; sc++) {
			pcp->cls[sc].slot = NULL;
			INIT_LIST_HEAD(&pcp->cls[sc].spare);
		}
	}
	return 0;
}

/* The spans themselves are freed by gcheap_span_teardown(). */
void gcheap_cache_teardown(struct gcheap_heap *heap)
{
	free_percpu(heap->pcp);
	kfree(heap->central);
}

static struct gcheap_slot *gcheap_cpu_slot(struct gcheap_heap *heap, int cpu,
					   unsigned int sc)
{
	unsigned long off = (unsigned long)cpu * heap->cpu_stride + sc * GCHEAP_SLOT_SIZE;
	struct page *page = heap->meta[heap->slots_pgoff + off / PAGE_SIZE];

	return (struct gcheap_slot *)(page_address(page) + offset_in_page(off));
}

static u64 gcheap_word_mask(const struct gcheap_span *span, unsigned int w)
{
	unsigned int first = w * 64;

	if (first >= span->nobjs)
		return 0;
	if (span->nobjs - first >= 64)
		return ~0ULL;
	return GENMASK_ULL(span->nobjs - first - 1, 0);
}

/*
 * Give @span's free objects to a slot: record them in span->handed and
 * write the slot.  @slot is either the shared per-CPU slot (pcp lock held,
 * preemption disabled on its CPU) or a kernel copy of a thread's slot.
 */
static void gcheap_handout(struct gcheap_heap *heap, struct gcheap_span *span,
			   struct gcheap_slot *slot)
{
	unsigned int w, n = 0;

	WRITE_ONCE(slot->gen, READ_ONCE(slot->gen) + 1);
	spin_lock(&span->lock);
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
		span->handed[w] = ~span->alloc[w] & gcheap_word_mask(span, w);
		span->freed[w] = 0;
		n += hweight64(span->handed[w]);
		WRITE_ONCE(slot->free[w], span->handed[w]);
	}
	spin_unlock(&span->lock);
	/* The pacer counts what was handed out as allocated until it is back. */
	atomic64_add((u64)n * span->elem_size, &heap->handed_bytes);
	WRITE_ONCE(slot->base, gcheap_arena_addr(heap, span->start));
	WRITE_ONCE(slot->size, span->elem_size);
	WRITE_ONCE(slot->nwords, DIV_ROUND_UP(span->nobjs, 64));
	WRITE_ONCE(slot->hint, 0);
	atomic64_inc(&heap->nr_refills);
}

static void gcheap_slot_clear(struct gcheap_slot *slot)
{
	unsigned int w;

	WRITE_ONCE(slot->gen, READ_ONCE(slot->gen) + 1);
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++)
		WRITE_ONCE(slot->free[w], 0);
	WRITE_ONCE(slot->base, 0);
	WRITE_ONCE(slot->size, 0);
	WRITE_ONCE(slot->nwords, 0);
	WRITE_ONCE(slot->hint, 0);
}

static void gcheap_slot_snapshot(const struct gcheap_slot *slot, u64 *snap)
{
	unsigned int w;

	for (w = 0; w < GCHEAP_SLOT_WORDS; w++)
		snap[w] = READ_ONCE(slot->free[w]);
}

/*
 * Settle what a slot allocated from @span (@snap: the slot's free bits): the
 * objects handed out whose bits the slot cleared are allocated now, except
 * those freed explicitly meanwhile.  With @keep the span stays in the slot,
 * and the objects still free there stay handed out; otherwise the span
 * left it.  With @black (a CPU slot, while the collector marks) they are
 * allocated black: a CPU slot was settled in the first pause, so what it
 * allocated since was allocated while marking ran, and the program wrote
 * it only after its page was protected.  A thread's slot may have kept
 * objects from before: those are traced.
 */
static void gcheap_span_settle(struct gcheap_heap *heap, struct gcheap_span *span,
			       const u64 *snap, bool black, bool keep)
{
	unsigned int w, n = 0, handed = 0, nblack = 0;
	s64 delta;

	/* A thread's span may still wait for the last cycle's sweep. */
	gcheap_sweep_span(heap, span);
	spin_lock(&span->lock);
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
		u64 new = span->handed[w] & ~snap[w] & ~span->freed[w];

		span->alloc[w] |= new;
		if (black) {
			span->black[w] |= new;
			nblack += hweight64(new);
		}
		handed += hweight64(span->handed[w]);
		span->handed[w] = keep ? span->handed[w] & snap[w] : 0;
		span->freed[w] &= span->handed[w];
		handed -= hweight64(span->handed[w]);
		n += hweight64(span->alloc[w]);
	}
	delta = (s64)n - span->nalloc;
	span->nalloc = n;
	spin_unlock(&span->lock);
	atomic64_add(delta * span->elem_size, &heap->live_bytes);
	atomic64_sub((u64)handed * span->elem_size, &heap->handed_bytes);
	if (nblack)
		atomic64_add((u64)nblack * span->elem_size, &heap->gc.black_bytes);
}

/* @span left its slot: settle it. */
static void gcheap_span_merge(struct gcheap_heap *heap, struct gcheap_span *span,
			      const u64 *snap, bool black)
{
	gcheap_span_settle(heap, span, snap, black, false);
}

/* Objects a CPU slot hands out now are allocated black. */
static bool gcheap_alloc_black(struct gcheap_heap *heap)
{
	return READ_ONCE(heap->gc.phase) == GCHEAP_GC_MARK;
}

/* Add a span to this CPU's spares or full list, as its count says. */
static void gcheap_pcp_put(struct gcheap_heap *heap, struct gcheap_span *span,
			   bool full_ok)
{
	struct gcheap_pcp *pcp = get_cpu_ptr(heap->pcp);
	bool full;

	spin_lock(&pcp->lock);
	spin_lock(&span->lock);
	full = full_ok && span->nalloc == span->nobjs;
	spin_unlock(&span->lock);
	span->owner_cpu = smp_processor_id();
	if (full) {
		span->state = GCHEAP_SPAN_FULL;
		list_add(&span->node, &pcp->full);
	} else {
		span->state = GCHEAP_SPAN_SPARE;
		list_add_tail(&span->node, &pcp->cls[span->sc].spare);
	}
	spin_unlock(&pcp->lock);
	put_cpu_ptr(heap->pcp);
}

/* Route a span in state TRANSIT, merged, to where its count says. */
void gcheap_span_put(struct gcheap_heap *heap, struct gcheap_span *span)
{
	struct gcheap_central *c = &heap->central[span->sc];
	unsigned int nalloc = READ_ONCE(span->nalloc);

	if (!nalloc) {
		/* Nothing allocated, nothing handed: it can only stay empty. */
		mutex_lock(&heap->mheap_lock);
		gcheap_span_free(heap, span);
		mutex_unlock(&heap->mheap_lock);
		gcheap_scavenge_kick(heap);
	} else if (nalloc == span->nobjs) {
		gcheap_pcp_put(heap, span, true);
	} else {
		spin_lock(&c->lock);
		span->state = GCHEAP_SPAN_CENTRAL;
		list_add_tail(&span->node, &c->partial);
		spin_unlock(&c->lock);
	}
}

/*
 * After a slot's span was replaced: settle the span that left (@snap, its
 * free bits then) and let the pacer see what was handed out.
 */
static void gcheap_swap_done(struct gcheap_heap *heap, struct gcheap_span *old,
			     const u64 *snap, struct gcheap_span *new, bool black)
{
	if (old) {
		gcheap_span_merge(heap, old, snap, black);
		gcheap_span_put(heap, old);
	}
	if (new)
		gcheap_gc_note_alloc(heap, true);
}

/* A span of class @sc with free objects, in state TRANSIT, or NULL. */
static struct gcheap_span *gcheap_acquire(struct gcheap_heap *heap, unsigned int sc)
{
	struct gcheap_span *got[GCHEAP_BATCH], *span = NULL;
	struct gcheap_central *c = &heap->central[sc];
	struct gcheap_pcp_class *pc;
	struct gcheap_pcp *pcp;
	int n = 0, i;

	pcp = get_cpu_ptr(heap->pcp);
	spin_lock(&pcp->lock);
	pc = &pcp->cls[sc];
	if (!list_empty(&pc->spare)) {
		span = list_first_entry(&pc->spare, struct gcheap_span, node);
		list_del_init(&span->node);
		span->state = GCHEAP_SPAN_TRANSIT;
	}
	spin_unlock(&pcp->lock);
	put_cpu_ptr(heap->pcp);
	if (span) {
		/* It may have waited there since the final pause, unswept. */
		gcheap_sweep_span(heap, span);
		return span;
	}

	spin_lock(&c->lock);
	while (n < GCHEAP_BATCH && !list_empty(&c->partial)) {
		span = list_first_entry(&c->partial, struct gcheap_span, node);
		list_del_init(&span->node);
		span->state = GCHEAP_SPAN_TRANSIT;
		got[n++] = span;
	}
	spin_unlock(&c->lock);
	if (!n) {
		/*
		 * While the collector sweeps, most spans wait on its list: sweep
		 * some here, as Go's allocating goroutines do, before the heap
		 * grows; those of other classes are routed back swept.
		 */
		for (i = 0; i < 4 * GCHEAP_BATCH || READ_ONCE(heap->gc.soft_limit); i++) {
			/* Under a soft limit, all of them before the heap grows. */
			span = gcheap_sweep_take(heap);
			if (!span)
				break;
			gcheap_sweep_span(heap, span);
			if (span->sc == sc && READ_ONCE(span->nalloc) < span->nobjs)
				return span;
			gcheap_span_put(heap, span);
		}
		/*
		 * mcentral is empty: new spans from mheap, about 64 KiB of them,
		 * so a small program does not reserve much in classes it
		 * barely uses.
		 */
		unsigned int want = clamp_t(unsigned int,
			(64u << 10) / (gcheap_classes[gcheap_sc_class(sc)].span_pages * PAGE_SIZE),
			1, GCHEAP_BATCH);

		while (n < want) {
			span = gcheap_span_alloc(heap, sc, false, 0);
			if (!span)
				break;
			got[n++] = span;
		}
		if (!n)
			return NULL;
	}
	for (i = 0; i < n; i++)
		gcheap_sweep_span(heap, got[i]);
	for (i = 1; i < n; i++)
		gcheap_pcp_put(heap, got[i], false);
	return got[0];
}

/* GCHEAP_OP_REFILL and GCHEAP_OP_RELEASE: this CPU's slot of class @sc. */
static int gcheap_op_cpu(struct gcheap_heap *heap, unsigned int sc, bool refill,
			 u64 *cpu_out)
{
	struct gcheap_span *new = NULL, *old;
	u64 snap[GCHEAP_SLOT_WORDS];
	struct gcheap_slot *slot;
	struct gcheap_pcp *pcp;
	bool black;
	int cpu;

	if (refill) {
		gcheap_barrier_assist(heap);
		new = gcheap_acquire(heap, sc);
		if (!new)
			return -ENOMEM;
		/*
		 * Map it while it is still ours alone: once it is in the slot,
		 * another thread on that CPU may replace it and free it.
		 */
		if (new->fresh)
			gcheap_span_prefault(heap, new);
	}
	pcp = get_cpu_ptr(heap->pcp);
	spin_lock(&pcp->lock);
	cpu = smp_processor_id();
	slot = gcheap_cpu_slot(heap, cpu, sc);
	old = pcp->cls[sc].slot;
	if (old) {
		gcheap_slot_snapshot(slot, snap);
		old->state = GCHEAP_SPAN_TRANSIT;
	}
	/*
	 * Whether what the old span allocated is black is decided with its
	 * bits, under the lock a pause settles the slot under: read after
	 * the swap, the first pause could have turned the phase to MARK
	 * meanwhile, and objects allocated before the cycle -- never traced
	 * -- would be black, and whatever only they point to lost.
	 */
	black = gcheap_alloc_black(heap);
	pcp->cls[sc].slot = new;
	if (new) {
		new->state = GCHEAP_SPAN_CPU;
		new->owner_cpu = cpu;
		gcheap_handout(heap, new, slot);
	} else {
		gcheap_slot_clear(slot);
	}
	spin_unlock(&pcp->lock);
	put_cpu_ptr(heap->pcp);

	gcheap_swap_done(heap, old, snap, new, black);
	*cpu_out = cpu;
	return 0;
}

/*
 * The span a thread's slot says it holds, taken out of state THREAD, or an
 * error if the slot names no such span.  mheap_lock pins the span while its
 * state is checked.
 */
static struct gcheap_span *gcheap_thread_take(struct gcheap_heap *heap,
					      u64 base, unsigned int sc)
{
	unsigned long arena = gcheap_arena_addr(heap, 0);
	struct gcheap_span *span = NULL;

	if (base < arena || base - arena >= (u64)heap->arena_pages << PAGE_SHIFT ||
	    offset_in_page(base))
		return ERR_PTR(-EINVAL);
	mutex_lock(&heap->mheap_lock);
	spin_lock(&heap->thread_lock);
	span = xa_load(&heap->spans, (base - arena) >> PAGE_SHIFT);
	if (!span || span->state != GCHEAP_SPAN_THREAD || span->sc != sc ||
	    span->large || gcheap_arena_addr(heap, span->start) != base) {
		span = ERR_PTR(-EINVAL);
	} else {
		list_del_init(&span->node);
		span->state = GCHEAP_SPAN_TRANSIT;
	}
	spin_unlock(&heap->thread_lock);
	mutex_unlock(&heap->mheap_lock);
	return span;
}

static void gcheap_thread_give(struct gcheap_heap *heap, struct gcheap_span *span)
{
	spin_lock(&heap->thread_lock);
	span->state = GCHEAP_SPAN_THREAD;
	list_add(&span->node, &heap->thread_spans);
	spin_unlock(&heap->thread_lock);
}

/* GCHEAP_OP_REFILL_THREAD and GCHEAP_OP_RELEASE_THREAD. */
static int gcheap_op_thread(struct gcheap_heap *heap, unsigned int sc, bool refill,
			    u64 uaddr)
{
	struct gcheap_slot __user *uslot = u64_to_user_ptr(uaddr);
	struct gcheap_span *old = NULL, *new = NULL;
	u64 snap[GCHEAP_SLOT_WORDS];
	struct gcheap_slot slot;

	if (copy_from_user(&slot, uslot, sizeof(slot)))
		return -EFAULT;
	memcpy(snap, slot.free, sizeof(snap));
	if (slot.base) {
		old = gcheap_thread_take(heap, slot.base, sc);
		if (IS_ERR(old))
			return PTR_ERR(old);
	}
	if (refill) {
		gcheap_barrier_assist(heap);
		new = gcheap_acquire(heap, sc);
		if (!new) {
			if (old)
				gcheap_thread_give(heap, old);
			return -ENOMEM;
		}
		if (new->fresh)
			gcheap_span_prefault(heap, new);
		gcheap_handout(heap, new, &slot);
	} else {
		gcheap_slot_clear(&slot);
	}
	if (copy_to_user(uslot, &slot, sizeof(slot))) {
		/* The thread still holds what its slot says: undo. */
		if (new) {
			gcheap_span_merge(heap, new, new->handed, false);
			gcheap_span_put(heap, new);
		}
		if (old)
			gcheap_thread_give(heap, old);
		return -EFAULT;
	}
	if (new)
		gcheap_thread_give(heap, new);
	gcheap_swap_done(heap, old, snap, new, false);
	return 0;
}

static int gcheap_op_alloc_large(struct gcheap_heap *heap, u64 size, bool noscan,
				 u64 *addr)
{
	struct gcheap_span *span;
	unsigned long npages;

	if (size <= GCHEAP_SMALL_MAX)
		return -EINVAL;
	if (size > (u64)heap->arena_pages << PAGE_SHIFT)
		return -ENOMEM;
	npages = DIV_ROUND_UP(size, PAGE_SIZE);
	/* Any wait comes first: the new object is a reference no root holds. */
	gcheap_barrier_assist(heap);
	gcheap_gc_throttle(heap);
	span = gcheap_span_alloc(heap, noscan, true, npages);
	if (!span)
		return -ENOMEM;
	if (span->fresh)
		gcheap_span_prefault(heap, span);
	*addr = gcheap_arena_addr(heap, span->start);
	atomic64_add(span->elem_size, &heap->live_bytes);
	atomic64_inc(&heap->nr_large);
	/*
	 * Published last, under the lock GCHEAP_OP_FREE checks it with: from
	 * here on a free of this address (from any thread) may free the span.
	 */
	mutex_lock(&heap->mheap_lock);
	span->alloc[0] = 1;
	span->nalloc = 1;
	/*
	 * Allocated black while a cycle is under way: a marking would not
	 * have seen it, a sweep must not free it.
	 */
	if (READ_ONCE(heap->gc.phase) != GCHEAP_GC_IDLE) {
		span->black[0] = 1;
		atomic64_add(span->elem_size, &heap->gc.black_bytes);
	}
	span->state = GCHEAP_SPAN_LARGE;
	mutex_unlock(&heap->mheap_lock);
	gcheap_gc_note_alloc(heap, false);
	return 0;
}

/* A full span with a free object now: make it a spare of its CPU. */
static void gcheap_unfull(struct gcheap_heap *heap, struct gcheap_span *span)
{
	int cpu = READ_ONCE(span->owner_cpu);
	struct gcheap_pcp *pcp = per_cpu_ptr(heap->pcp, cpu);

	spin_lock(&pcp->lock);
	if (span->state == GCHEAP_SPAN_FULL && span->owner_cpu == cpu) {
		list_move_tail(&span->node, &pcp->cls[span->sc].spare);
		span->state = GCHEAP_SPAN_SPARE;
	}
	spin_unlock(&pcp->lock);
}

static int gcheap_op_free(struct gcheap_heap *heap, u64 addr)
{
	unsigned long arena = gcheap_arena_addr(heap, 0), off, rel, i;
	struct gcheap_span *span;
	bool was_full = false;
	int ret = 0;
	u64 bit;

	if (addr < arena || addr - arena >= (u64)heap->arena_pages << PAGE_SHIFT)
		return -EINVAL;
	off = addr - arena;
	mutex_lock(&heap->mheap_lock);
	span = xa_load(&heap->spans, off >> PAGE_SHIFT);
	if (!span) {
		ret = -EINVAL;
		goto out;
	}
	if (span->large) {
		if (span->state != GCHEAP_SPAN_LARGE || off != span->start << PAGE_SHIFT) {
			ret = -EINVAL;
			goto out;
		}
		atomic64_sub(span->elem_size, &heap->live_bytes);
		atomic64_dec(&heap->nr_large);
		gcheap_span_free(heap, span);
		mutex_unlock(&heap->mheap_lock);
		gcheap_scavenge_kick(heap);
		return 0;
	}
	rel = off - (span->start << PAGE_SHIFT);
	i = rel / span->elem_size;
	if (rel % span->elem_size || i >= span->nobjs) {
		ret = -EINVAL;
		goto out;
	}
	bit = BIT_ULL(i % 64);
	spin_lock(&span->lock);
	if (span->handed[i / 64] & bit) {
		/* Its slot decides whether it was allocated: settle it then. */
		if (span->freed[i / 64] & bit)
			ret = -EINVAL;
		span->freed[i / 64] |= bit;
	} else if (span->alloc[i / 64] & bit) {
		was_full = span->nalloc == span->nobjs;
		span->alloc[i / 64] &= ~bit;
		span->black[i / 64] &= ~bit;
		span->nalloc--;
		atomic64_sub(span->elem_size, &heap->live_bytes);
	} else {
		ret = -EINVAL;
	}
	/*
	 * Zero it before the span lock goes: once it does, a refill may hand
	 * the object out again and the program may write it.
	 */
	if (!ret)
		gcheap_span_zero(heap, off, span->elem_size);
	spin_unlock(&span->lock);
	if (was_full)
		gcheap_unfull(heap, span);
out:
	mutex_unlock(&heap->mheap_lock);
	return ret;
}

/**
 * gcheap_cache_settle() - settle what every CPU's slots allocated
 * @heap: the heap, with its registered threads stopped
 *
 * Reads each CPU slot's free bits and settles them into its span's record
 * (allocated black while the collector marks), leaving the span in the
 * slot.  Nothing is written to a slot, so nothing has to run on the slot's
 * CPU: the fast path's rule that only code on CPU c writes slot c stands.
 * A commit that lands after its word was read -- a thread that was in the
 * middle of an allocation when it stopped, resuming -- leaves its object
 * handed out; it is settled when the span leaves the slot or in the next
 * pause, and counts as allocated meanwhile.  That makes it an object
 * allocated after this pause, which is what it is to the collector.
 * Per-thread slots are not read: only their thread may.
 *
 * Context: process context, no locks held.
 */
void gcheap_cache_settle(struct gcheap_heap *heap)
{
	bool black = gcheap_alloc_black(heap);
	u64 snap[GCHEAP_SLOT_WORDS];
	int cpu;

	for_each_possible_cpu(cpu) {
		struct gcheap_pcp *pcp = per_cpu_ptr(heap->pcp, cpu);
		unsigned int sc;

		spin_lock(&pcp->lock);
		for (sc = 0; sc < heap->nr_sc; sc++) {
			struct gcheap_span *span = pcp->cls[sc].slot;

			if (!span)
				continue;
			gcheap_slot_snapshot(gcheap_cpu_slot(heap, cpu, sc), snap);
			gcheap_span_settle(heap, span, snap, black, true);
		}
		spin_unlock(&pcp->lock);
	}
}

/**
 * gcheap_cache_sweep_slots() - sweep the spans in CPU slots where they are
 * @heap: the heap, in its SWEEP phase
 *
 * Context: process context, no locks held.
 */
void gcheap_cache_sweep_slots(struct gcheap_heap *heap)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct gcheap_pcp *pcp = per_cpu_ptr(heap->pcp, cpu);
		unsigned int sc;

		spin_lock(&pcp->lock);
		for (sc = 0; sc < heap->nr_sc; sc++) {
			if (pcp->cls[sc].slot)
				gcheap_sweep_span(heap, pcp->cls[sc].slot);
		}
		spin_unlock(&pcp->lock);
		cond_resched();
	}
}

/**
 * gcheap_cache_gather() - take every span no slot holds off the lists
 * @heap: the heap, in its SWEEP phase
 * @todo: where they go, in state TRANSIT; gcheap_span_put() routes each
 *	back by its count
 *
 * Spans in slots, in threads' slots, large objects and spans some
 * operation holds in TRANSIT stay where they are.  It runs with the world
 * going, after the final pause, so that the pause does not grow with the
 * number of spans: each list is spliced off whole under its lock, and the
 * spans are marked TRANSIT afterwards.  Until then they carry the state of
 * the list they were on; mheap_lock keeps away gcheap_unfull(), the one
 * operation that finds a listed span by its state.  A refill that takes a
 * span off a list before this sweeps it first (gcheap_acquire()).
 *
 * Context: process context, no locks held.
 */
void gcheap_cache_gather(struct gcheap_heap *heap, struct list_head *todo)
{
	struct gcheap_span *span;
	unsigned long n = 0;
	unsigned int sc;
	int cpu;

	mutex_lock(&heap->mheap_lock);
	for_each_possible_cpu(cpu) {
		struct gcheap_pcp *pcp = per_cpu_ptr(heap->pcp, cpu);

		spin_lock(&pcp->lock);
		for (sc = 0; sc < heap->nr_sc; sc++)
			list_splice_tail_init(&pcp->cls[sc].spare, todo);
		list_splice_tail_init(&pcp->full, todo);
		spin_unlock(&pcp->lock);
	}
	for (sc = 0; sc < heap->nr_sc; sc++) {
		spin_lock(&heap->central[sc].lock);
		list_splice_tail_init(&heap->central[sc].partial, todo);
		spin_unlock(&heap->central[sc].lock);
	}
	list_for_each_entry(span, todo, node) {
		span->state = GCHEAP_SPAN_TRANSIT;
		if (!(++n % 1024))
			cond_resched();
	}
	mutex_unlock(&heap->mheap_lock);
}

/**
 * gcheap_cache_op() - carry out one validated cache operation
 * @heap: the heap, mapped, of the calling process
 * @op: the operation; its class is in range and its padding zero
 *
 * Return: 0 or a negative errno for this operation; @op->result is set.
 */
int gcheap_cache_op(struct gcheap_heap *heap, struct gcheap_cache_op *op)
{
	op->result = 0;
	switch (op->op) {
	case GCHEAP_OP_REFILL:
	case GCHEAP_OP_RELEASE:
		return gcheap_op_cpu(heap, op->cls, op->op == GCHEAP_OP_REFILL,
				     &op->result);
	case GCHEAP_OP_REFILL_THREAD:
	case GCHEAP_OP_RELEASE_THREAD:
		return gcheap_op_thread(heap, op->cls, op->op == GCHEAP_OP_REFILL_THREAD,
					op->arg);
	case GCHEAP_OP_ALLOC_LARGE:
		return gcheap_op_alloc_large(heap, op->arg, op->cls, &op->result);
	case GCHEAP_OP_FREE:
		return gcheap_op_free(heap, op->arg);
	}
	return -EINVAL;
}
