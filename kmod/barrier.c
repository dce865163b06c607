// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap's write barrier: which heap pages the program wrote since a point
 * in time, told by the page tables themselves.
 *
 * The heap's mapping has a ->page_mkwrite handler, so the kernel maps every
 * page of it read-only at first (vma_wants_writenotify()), and the first
 * write to a page faults into gcheap_barrier_fault(), which sets the page's
 * bit in the current epoch's dirty bitmap and lets the write go on: the
 * kernel then makes the page table entry writable, and later writes to the
 * page cost nothing.  No signal reaches the program and no VMA is split or
 * mprotect()ed; this is how fb_defio learns which parts of a mapped
 * framebuffer were written.
 *
 * Two epochs.  heap->wp.dirty[heap->wp.epoch & 1] collects the pages
 * written now.  gcheap_barrier_round() starts a new epoch and makes the
 * old one final:
 *
 *  1. it advances wp.epoch, so faults from now on record into the other
 *     bitmap;
 *  2. for every page of the old epoch, under the page-table lock, it clears
 *     the entry's Write *and* Dirty bits (a dirty read-only entry is made
 *     writable again by mprotect() without a fault, see
 *     can_change_pte_writable()).  A page whose lock it cannot take -- a
 *     write fault on the page is in flight, its entry perhaps not even
 *     present yet -- stays dirty, in the new epoch; so does a page that
 *     someone holds a reference to besides the heap and the page tables
 *     (get_user_pages(): O_DIRECT, process_vm_writev()), whose writes
 *     bypass the page tables, for as long as the reference is held;
 *  3. it flushes every CPU's TLB once (a module cannot flush one mm's
 *     range on x86): until then a CPU may still write through a stale
 *     writable entry without faulting.
 *
 * After step 3 the old epoch is complete: every write since the previous
 * round either went to a page in it, or to a page in the new epoch.  The
 * collector scans the old epoch's pages then and clears it (gc.c).
 *
 * The fault and the round agree through the page lock and a second look
 * at the epoch: the fault reads the epoch, sets the bit with the page
 * locked, then reads the epoch again (after a full barrier) and, if it
 * moved, sets the bit in the new one too; it keeps the page locked until
 * the entry is writable (it returns VM_FAULT_LOCKED).  The round advances
 * the epoch (then a full barrier) before it reads the old bitmap.  So
 * either the fault's second look sees the new epoch, and the page is in
 * it, or the round's walk sees the bit in the old one, and then finds the
 * fault in flight (the trylock fails and the page goes to the new epoch)
 * or finished (the entry is writable and is protected again).  One look
 * is not enough: a fault that read the epoch just before a round advanced
 * it, and set its bit after the walk had passed the page, left the page
 * writable and in neither epoch, its later writes never rescanned (the
 * likely cause of the one checkmark miss race_test's large variant showed
 * on the debug kernel).  Checkmark mode checks the outcome in every final
 * pause (gcheap_barrier_audit()), and the module's fault_delay_us widens
 * the window for race_test's slow_faults variant.
 *
 * Pacing.  While the collector marks, a page written is a page the final
 * pause must rescan.  When the current epoch holds wp.limit pages or more,
 * a thread of the heap's process that takes a barrier fault, or asks for a
 * span, waits until the collector has started a new epoch (or the marking
 * is over): gcheap_barrier_assist(), counted as parked meanwhile, so a
 * stop finds it stopped already.  The collector sets the limit to
 * pause_pages while it traces and lowers it for its closing rounds (gc.c).
 */
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <asm/tlbflush.h>

#include "gcheap.h"

int gcheap_barrier_init(struct gcheap_heap *heap)
{
	struct gcheap_barrier *wp = &heap->wp;
	int e;

	for (e = 0; e < 2; e++) {
		wp->dirty[e] = kvcalloc(BITS_TO_LONGS(heap->arena_pages), sizeof(long),
					GFP_KERNEL_ACCOUNT);
		if (!wp->dirty[e])
			return -ENOMEM;
		atomic_long_set(&wp->nr[e], 0);
	}
	init_waitqueue_head(&wp->assist_wq);
	return 0;
}

void gcheap_barrier_destroy(struct gcheap_heap *heap)
{
	kvfree(heap->wp.dirty[0]);
	kvfree(heap->wp.dirty[1]);
}

/* Add arena page @idx to epoch @e. */
static void gcheap_barrier_set(struct gcheap_barrier *wp, unsigned int e, unsigned long idx)
{
	if (!test_and_set_bit(idx, wp->dirty[e]))
		atomic_long_inc(&wp->nr[e]);
}

/* The pages the current epoch holds. */
unsigned long gcheap_barrier_pending(struct gcheap_heap *heap)
{
	return atomic_long_read(&heap->wp.nr[READ_ONCE(heap->wp.epoch) & 1]);
}

static bool gcheap_barrier_over(struct gcheap_heap *heap)
{
	return READ_ONCE(heap->gc.phase) == GCHEAP_GC_MARK &&
	       gcheap_barrier_pending(heap) >= READ_ONCE(heap->wp.limit);
}

/**
 * gcheap_barrier_assist() - wait while the dirty pages outrun the marker
 * @heap: the heap
 *
 * Returns at once unless the collector is marking and the current epoch
 * holds wp.limit pages or more; then it waits until a new epoch begins,
 * the marking ends, or a fatal signal.  A registered thread counts as
 * parked while it waits (gcheap_gc_block()): the final pause often comes
 * while the threads that wrote the most wait here, and it need not wake
 * them and wait for each to reach user mode -- under TCG that wake-up
 * took 0.6 ms on average and up to 12 ms.
 *
 * Context: process context of the heap's process, no locks held.
 */
void gcheap_barrier_assist(struct gcheap_heap *heap)
{
	struct gcheap_mutator *m;

	if (!gcheap_barrier_over(heap))
		return;
	atomic64_inc(&heap->wp.assists);
	m = gcheap_gc_block(heap);
	wait_event_killable(heap->wp.assist_wq, !gcheap_barrier_over(heap));
	gcheap_gc_unblock(heap, m);
}

/* A fault's assist, run on the thread's way back to user mode. */
struct gcheap_assist {
	struct callback_head work;
	struct gcheap_heap *heap;
	struct file *file;
};

static void gcheap_assist_work(struct callback_head *work)
{
	struct gcheap_assist *a = container_of(work, struct gcheap_assist, work);

	gcheap_barrier_assist(a->heap);
	/* The heap may go with this; its release runs later, not in here. */
	fput(a->file);
	kfree(a);
}

/*
 * The faulting thread holds mmap_lock and the page lock: it must not wait
 * for the collector here (a round needs mmap_lock, and a writer queued on
 * it would wait for us).  It waits on its way back to user mode instead.
 */
static void gcheap_barrier_throttle(struct gcheap_heap *heap)
{
	struct gcheap_assist *a;

	if (!gcheap_barrier_over(heap) || current->mm != READ_ONCE(heap->mm) ||
	    (current->flags & (PF_KTHREAD | PF_IO_WORKER | PF_EXITING)))
		return;
	a = kmalloc(sizeof(*a), GFP_NOWAIT | __GFP_NOWARN | __GFP_ACCOUNT);
	if (!a)
		return;
	if (!atomic_long_inc_not_zero(&heap->file->f_count)) {
		kfree(a);
		return;
	}
	a->heap = heap;
	a->file = heap->file;
	init_task_work(&a->work, gcheap_assist_work);
	if (task_work_add(current, &a->work, TWA_RESUME)) {
		fput(a->file);
		kfree(a);
	}
}

/**
 * gcheap_barrier_fault() - the first write to arena page @idx since it was
 *	last protected
 * @heap: the heap
 * @idx: the arena page index
 *
 * Context: the page is locked (and stays locked until its entry is
 * writable); mmap_lock held.
 */
void gcheap_barrier_fault(struct gcheap_heap *heap, unsigned long idx)
{
	struct gcheap_barrier *wp = &heap->wp;
	unsigned int delay = READ_ONCE(gcheap_fault_delay_us), e, now;

	/* Pairs with the round's release: this epoch's bitmap is empty. */
	e = smp_load_acquire(&wp->epoch);
	if (unlikely(delay) && !(atomic64_inc_return(&wp->faults) % 16))
		usleep_range(delay, delay + delay / 4 + 1);
	else if (likely(!delay))
		atomic64_inc(&wp->faults);
	/*
	 * A round may have started since the epoch was read, and walked past
	 * this page before its bit was set: the page, soon writable, would
	 * then be in neither epoch.  So after setting the bit, look again:
	 * either this look sees the new epoch (and the page goes into it
	 * too), or the round's walk sees the bit (and finds the page locked,
	 * in flight, or writable, and keeps it dirty or protects it).
	 */
	for (;;) {
		gcheap_barrier_set(wp, e & 1, idx);
		/* Bit before epoch; pairs with the round's epoch before bits. */
		smp_mb();
		/* Pairs with the round's release, as above. */
		now = smp_load_acquire(&wp->epoch);
		if (now == e)
			break;
		e = now;
	}
	gcheap_barrier_throttle(heap);
}

struct gcheap_wp_walk {
	struct gcheap_heap *heap;
	struct vm_area_struct *vma;
	unsigned int next;		/* the new epoch */
};

/* Per page table entry of a dirty run, under the page-table lock. */
static int gcheap_wp_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct gcheap_wp_walk *w = data;
	pte_t pte = ptep_get(ptep), old;
	struct page *page;

	if (!pte_present(pte) || (!pte_write(pte) && !pte_dirty(pte)))
		return 0;
	page = pte_page(pte);
	if (!trylock_page(page)) {
		/* A write fault is in flight: the page counts as written. */
		gcheap_barrier_set(&w->heap->wp, w->next,
				   (addr - gcheap_arena_addr(w->heap, 0)) >> PAGE_SHIFT);
		return 0;
	}
	old = ptep_modify_prot_start(w->vma, addr, ptep);
	ptep_modify_prot_commit(w->vma, addr, ptep, old, pte_mkclean(pte_wrprotect(old)));
	/*
	 * One reference is the heap's, one each page table's: any other is a
	 * get_user_pages() caller, whose writes the page tables do not see.
	 */
	if (page_ref_count(page) > 1 + atomic_read(&page->_mapcount) + 1) {
		gcheap_barrier_set(&w->heap->wp, w->next,
				   (addr - gcheap_arena_addr(w->heap, 0)) >> PAGE_SHIFT);
	}
	unlock_page(page);
	return 0;
}

static void gcheap_flush_tlb(void *unused)
{
	__flush_tlb_all();
}

/**
 * gcheap_barrier_round() - start a new epoch; the old one becomes final
 * @heap: the heap, mapped by the process whose mm the caller uses
 *
 * Return: the old epoch, whose pages the caller may scan and must then
 * release with gcheap_barrier_clear().  Pages whose write protection could
 * not be restored are in the new epoch as well.
 *
 * Context: the collector thread, on the heap's mm (kthread_use_mm), no
 * locks held.
 */
unsigned int gcheap_barrier_round(struct gcheap_heap *heap)
{
	struct gcheap_barrier *wp = &heap->wp;
	struct mm_struct *mm = current->mm;
	unsigned int old = wp->epoch & 1;
	struct gcheap_wp_walk w = {
		.heap = heap,
		.next = !old,
	};
	unsigned long s = 0, e;

	/* The new epoch's bitmap was emptied before: release. */
	smp_store_release(&wp->epoch, wp->epoch + 1);
	/*
	 * Faults that take a page lock after ours see the new epoch; a
	 * fault that read the old one and sets its bit after the walk
	 * passed its page sees the new one when it looks again
	 * (gcheap_barrier_fault()).
	 */
	smp_mb();
	wake_up_all(&wp->assist_wq);

	mmap_read_lock(mm);
	w.vma = vma_lookup(mm, gcheap_arena_addr(heap, 0));
	if (!w.vma || w.vma != READ_ONCE(heap->vma) || !READ_ONCE(heap->mapped)) {
		/* Not mapped (any more): no page table holds a heap page. */
		mmap_read_unlock(mm);
		return old;
	}
	for (;;) {
		unsigned long i;

		s = find_next_bit(wp->dirty[old], heap->arena_pages, s);
		if (s >= heap->arena_pages)
			break;
		e = find_next_zero_bit(wp->dirty[old], heap->arena_pages, s);
		/* A run at a time, of at most 64 pages: refills need the lock. */
		e = min(e, s + 64);
		/*
		 * A fault that read the old epoch holds its page's lock until the
		 * entry is writable -- the entry may not even be present yet, so
		 * the walk below would not see it: such a page stays dirty.
		 * mheap_lock pins the pages (the scavenger frees them under it).
		 */
		mutex_lock(&heap->mheap_lock);
		for (i = s; i < e; i++) {
			struct page *page = xa_load(&heap->pages, i);

			if (!page)
				continue;
			if (trylock_page(page))
				unlock_page(page);
			else
				gcheap_barrier_set(wp, w.next, i);
		}
		mutex_unlock(&heap->mheap_lock);
		apply_to_existing_page_range(mm, gcheap_arena_addr(heap, s),
					     (e - s) << PAGE_SHIFT, gcheap_wp_pte, &w);
		s = e;
		cond_resched();
	}
	mmap_read_unlock(mm);
	on_each_cpu(gcheap_flush_tlb, NULL, 1);
	return old;
}

/* Empty epoch @e once its pages are scanned. */
void gcheap_barrier_clear(struct gcheap_heap *heap, unsigned int e)
{
	bitmap_zero(heap->wp.dirty[e], heap->arena_pages);
	atomic_long_set(&heap->wp.nr[e], 0);
}

struct gcheap_audit_walk {
	struct gcheap_heap *heap;
	unsigned long *dirty;
	unsigned long errors;
};

static int gcheap_audit_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct gcheap_audit_walk *w = data;
	pte_t pte = ptep_get(ptep);
	unsigned long idx = (addr - gcheap_arena_addr(w->heap, 0)) >> PAGE_SHIFT;

	if (!pte_present(pte) || (!pte_write(pte) && !pte_dirty(pte)) ||
	    test_bit(idx, w->dirty))
		return 0;
	if (!w->errors++)
		pr_err("checkmark: heap of pid %d: arena page %#lx is writable but not in the barrier's dirty set\n",
		       w->heap->gc.pid, idx << PAGE_SHIFT);
	return 0;
}

/**
 * gcheap_barrier_audit() - check the barrier's invariant in a final pause
 * @heap: the heap, mapped by the process whose mm the caller uses
 *
 * With the world stopped after the last round, every arena page the
 * program can write without a fault -- its entry writable, or dirty, which
 * mprotect() would make writable -- must be in the current epoch, or the
 * final pause would not rescan what it was written since the round.  A
 * fault still in flight (an unregistered thread's) is no exception: it
 * records the page before it makes the entry writable, under the page
 * table lock this walk takes.  Checkmark mode runs this: a hole in the
 * fault/round handshake shows here on every cycle it happens in, whether
 * or not it hid a pointer that time.
 *
 * Return: the pages writable but not recorded (each one an error).
 * Context: the collector thread on the heap's mm, world stopped, no locks
 * held.
 */
unsigned long gcheap_barrier_audit(struct gcheap_heap *heap)
{
	struct mm_struct *mm = current->mm;
	struct gcheap_audit_walk w = {
		.heap = heap,
		.dirty = heap->wp.dirty[READ_ONCE(heap->wp.epoch) & 1],
	};
	struct vm_area_struct *vma;

	mmap_read_lock(mm);
	vma = vma_lookup(mm, gcheap_arena_addr(heap, 0));
	if (vma && vma == READ_ONCE(heap->vma) && READ_ONCE(heap->mapped))
		apply_to_existing_page_range(mm, gcheap_arena_addr(heap, 0),
					     heap->arena_pages << PAGE_SHIFT,
					     gcheap_audit_pte, &w);
	mmap_read_unlock(mm);
	return w.errors;
}
