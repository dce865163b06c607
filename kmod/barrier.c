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
 * Two epochs.  heap->wp.dirty[heap->wp.epoch] collects the pages written
 * now.  gcheap_barrier_round() starts a new epoch and makes the old one
 * final:
 *
 *  1. it flips wp.epoch, so faults from now on record into the other
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
 * The fault and the round agree through the page lock: the fault reads
 * the epoch and sets the bit with the page locked and keeps it locked
 * until the entry is writable (it returns VM_FAULT_LOCKED); the round flips
 * the epoch before it takes any page lock.  So a fault either completed
 * before the round took the page's lock (its bit is in the old epoch and
 * the round protects the page again), or is in flight (the trylock fails
 * and the page goes to the new epoch), or starts after (it sees the new
 * epoch).
 *
 * Pacing.  While the collector marks, a page written is a page the final
 * pause must rescan.  When the current epoch holds wp.limit pages or more,
 * a thread of the heap's process that takes a barrier fault, or asks for a
 * span, waits until the collector has started a new epoch (or the marking
 * is over): gcheap_barrier_assist().  The collector sets the limit to
 * pause_pages while it traces and lowers it for its closing rounds (gc.c).
 */
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
	return atomic_long_read(&heap->wp.nr[READ_ONCE(heap->wp.epoch)]);
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
 * the marking ends, the world is being stopped, or a fatal signal.
 *
 * Context: process context of the heap's process, no locks held.
 */
void gcheap_barrier_assist(struct gcheap_heap *heap)
{
	struct gcheap_collector *gc = &heap->gc;

	if (!gcheap_barrier_over(heap))
		return;
	atomic64_inc(&heap->wp.assists);
	wait_event_killable(heap->wp.assist_wq, !gcheap_barrier_over(heap) ||
			    READ_ONCE(gc->stopping));
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
	atomic64_inc(&heap->wp.faults);
	gcheap_barrier_set(&heap->wp, READ_ONCE(heap->wp.epoch), idx);
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
	unsigned int old = wp->epoch;
	struct gcheap_wp_walk w = {
		.heap = heap,
		.next = !old,
	};
	unsigned long s = 0, e;

	WRITE_ONCE(wp->epoch, !old);
	/* Faults that take a page lock after ours see the new epoch. */
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
