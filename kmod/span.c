// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap spans: the arena's page allocator (mheap), the page map, and the
 * resident pages behind spans.
 *
 * The arena is a fixed run of page indices [0, arena_pages).  mheap keeps a
 * bit per page (heap->used) set while the page belongs to a span, and finds
 * runs first-fit above a hint below which no page is free; freeing clears
 * the bits, so neighbouring free runs coalesce by construction.  Every page
 * of a span maps to the span in heap->spans (an xarray: O(1) in practice,
 * and memory proportional to the pages in use), which is what turns any
 * arena address into its span and object in constant time.  The same
 * information, without pointers, goes to the page map that userspace reads
 * (struct gcheap_pageinfo), so gcheap_base() needs no system call; the
 * module never reads the page map back.
 *
 * Pages are allocated when a span first needs them, zeroed and charged to
 * the memory cgroup of the process that caused it (we are in its ioctl; a
 * fork snapshot's copies, made by the collector thread, are the exception:
 * they count against the user's max_user_mb only).  A
 * page stays resident when its span is freed: free pages are always zero
 * (objects are zeroed when freed), so a new span can reuse them at once.
 * The scavenger (gcheap_scavenge(), run by heap.c after a delay or above a
 * threshold) returns free resident pages to the system: it locks the pages
 * of a run, removes them from the process's page tables with one
 * unmap_mapping_range() per run -- one TLB flush per run, not per page --
 * and drops them.  The fault handler takes the same page lock and rechecks
 * that the page is still the heap's, so a fault racing with the scavenger
 * can never map a page the heap has let go.
 *
 * Invariants: every page of a span is resident; every free object and
 * every free page is zero; heap->nr_free_resident counts resident pages in
 * no span.  heap->used, the hint and the counters change under
 * heap->mheap_lock; a new span's range is reserved in heap->used under the
 * lock and its pages are populated outside it (no one else touches a
 * reserved range), so the lock is never held while pages are allocated and
 * zeroed.
 */
#include <linux/bitmap.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>

#include "gcheap.h"

/*
 * The scavenger's longest run of pages: one unmap and one TLB flush each,
 * with mheap_lock held throughout.  At 512 a run held the lock for several
 * milliseconds under TCG.
 */
#define GCHEAP_SCAVENGE_RUN	128

/* Change the resident page counts, which the statistics read unlocked. */
static void gcheap_resident_add(struct gcheap_heap *heap, long resident, long free)
{
	write_seqcount_begin(&heap->resident_seq);
	heap->nr_resident += resident;
	heap->nr_free_resident += free;
	write_seqcount_end(&heap->resident_seq);
}

static struct kmem_cache *gcheap_span_cache;

int gcheap_span_cache_init(void)
{
	gcheap_span_cache = KMEM_CACHE(gcheap_span, SLAB_ACCOUNT);
	return gcheap_span_cache ? 0 : -ENOMEM;
}

void gcheap_span_cache_exit(void)
{
	kmem_cache_destroy(gcheap_span_cache);
}

/* The page-map entry of arena page @idx; allocates its page if needed. */
static struct gcheap_pageinfo *gcheap_pageinfo(struct gcheap_heap *heap,
					       unsigned long idx)
{
	struct page *page = gcheap_pagemap_page(heap, idx / GCHEAP_PAGEINFO_PER_PAGE);

	if (!page)
		return NULL;
	return (struct gcheap_pageinfo *)page_address(page) +
		idx % GCHEAP_PAGEINFO_PER_PAGE;
}

static void gcheap_pageinfo_set(struct gcheap_pageinfo *pi, u32 span_offset, u32 kind)
{
	/* One store, so a reader never sees half an entry. */
	WRITE_ONCE(*(u64 *)pi, ((u64)kind << 32) | span_offset);
}

/*
 * Make the reserved arena pages [start, start + n) resident, outside
 * mheap_lock: the range's bits are set in heap->used, so nothing else --
 * the scavenger included -- touches these indices.  Reports how many pages
 * it added and whether all of them are new (so none is mapped yet).
 */
static int gcheap_pages_populate(struct gcheap_heap *heap, unsigned long start,
				 unsigned long n, unsigned long *added, bool *fresh)
{
	unsigned long i;

	*added = 0;
	*fresh = true;
	for (i = start; i < start + n; i++) {
		struct page *page;

		if (xa_load(&heap->pages, i)) {
			*fresh = false;
			continue;
		}
		page = gcheap_page_alloc(heap);
		if (!page)
			return -ENOMEM;
		if (xa_err(xa_store(&heap->pages, i, page, GFP_KERNEL_ACCOUNT))) {
			gcheap_page_free(heap, page);
			return -ENOMEM;
		}
		(*added)++;
	}
	return 0;
}

/**
 * gcheap_span_alloc() - a new span in state TRANSIT, every object free
 * @heap: the heap
 * @sc: the span class (for a large object, 0 or 1 for noscan)
 * @large: one large object of @npages pages; else a span of class @sc
 * @npages: the large object's pages
 *
 * Only the search for the page range holds mheap_lock; allocating and
 * zeroing the pages, which is most of the work, runs outside it, so
 * refills on other CPUs do not wait for it.
 *
 * Return: the span, or NULL when the arena has no room or memory ran out.
 */
struct gcheap_span *gcheap_span_alloc(struct gcheap_heap *heap, unsigned int sc,
				      bool large, unsigned long npages)
{
	const struct gcheap_class *c = &gcheap_classes[gcheap_sc_class(sc)];
	unsigned long start, i, reused = 0, added = 0;
	struct gcheap_span *span;
	u32 kind;

	if (!large)
		npages = c->span_pages;
	if (npages > heap->arena_pages || npages > U32_MAX / 2)
		return NULL;
	span = kmem_cache_zalloc(gcheap_span_cache, GFP_KERNEL_ACCOUNT);
	if (!span)
		return NULL;
	spin_lock_init(&span->lock);
	INIT_LIST_HEAD(&span->node);
	span->npages = npages;
	span->large = large;
	span->sc = large ? (sc & 1) : sc;
	span->elem_size = large ? npages * PAGE_SIZE : c->size;
	span->div_mul = large ? 0 : gcheap_sc_div_mul(c->size);
	span->nobjs = large ? 1 : c->objects;
	span->state = GCHEAP_SPAN_TRANSIT;
	/* Nothing in it for the cycle under way to sweep. */
	span->swept_gen = READ_ONCE(heap->gc.sweep_gen);
	kind = large ? GCHEAP_PAGE_LARGE | (sc & 1 ? GCHEAP_PAGE_NOSCAN : 0) | npages
		     : sc + 1;

	/* Reserve the range; its resident pages leave the free pool. */
	mutex_lock(&heap->mheap_lock);
	start = bitmap_find_next_zero_area(heap->used, heap->arena_pages,
					   heap->used_hint, npages, 0);
	if (start >= heap->arena_pages) {
		mutex_unlock(&heap->mheap_lock);
		kmem_cache_free(gcheap_span_cache, span);
		return NULL;
	}
	bitmap_set(heap->used, start, npages);
	if (start == heap->used_hint)
		heap->used_hint = start + npages;
	for (i = start; i < start + npages; i++)
		reused += !!xa_load(&heap->pages, i);
	gcheap_resident_add(heap, 0, -(long)reused);
	mutex_unlock(&heap->mheap_lock);
	span->start = start;

	if (gcheap_pages_populate(heap, start, npages, &added, &span->fresh))
		goto fail;
	for (i = 0; i < npages; i++) {
		struct gcheap_pageinfo *pi = gcheap_pageinfo(heap, start + i);

		if (!pi || xa_err(xa_store(&heap->spans, start + i, span,
					   GFP_KERNEL_ACCOUNT)))
			goto fail_spans;
		gcheap_pageinfo_set(pi, i, kind);
	}
	mutex_lock(&heap->mheap_lock);
	gcheap_resident_add(heap, added, 0);
	mutex_unlock(&heap->mheap_lock);
	atomic64_inc(&heap->nr_spans);
	return span;

fail_spans:
	while (i--) {
		gcheap_pageinfo_set(gcheap_pageinfo(heap, start + i), 0, 0);
		xa_erase(&heap->spans, start + i);
	}
fail:
	/* The range goes back free; what became resident stays, zero. */
	mutex_lock(&heap->mheap_lock);
	gcheap_resident_add(heap, added, reused + added);
	bitmap_clear(heap->used, start, npages);
	heap->used_hint = min(heap->used_hint, start);
	mutex_unlock(&heap->mheap_lock);
	kmem_cache_free(gcheap_span_cache, span);
	gcheap_scavenge_kick(heap);
	return NULL;
}

/**
 * gcheap_span_prefault() - map a fresh span's pages into the process
 * @heap: the heap, mapped by the calling process
 * @span: a span with @fresh set, in state TRANSIT: owned by the caller and
 *	in no slot, so nothing can free it meanwhile
 *
 * A fresh span's pages are in no page table yet, so the process would take
 * a page fault on each.  Mapping them here, in batches under one page-table
 * lock each, costs one walk instead.  Best effort: a page left out is
 * faulted in as usual.
 *
 * Context: process context of the heap's owner, no locks held.
 */
void gcheap_span_prefault(struct gcheap_heap *heap, struct gcheap_span *span)
{
	struct mm_struct *mm = current->mm;
	struct page *pages[32];
	struct vm_area_struct *vma;
	unsigned long i, n, addr;

	span->fresh = false;
	if (mm != heap->mm)
		return;
	addr = gcheap_arena_addr(heap, span->start);
	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	if (!vma || vma != READ_ONCE(heap->vma) || !READ_ONCE(heap->mapped))
		goto out;
	for (i = 0; i < span->npages; i += n) {
		unsigned long num, k;

		n = min_t(unsigned long, span->npages - i, ARRAY_SIZE(pages));
		for (k = 0; k < n; k++)
			pages[k] = xa_load(&heap->pages, span->start + i + k);
		num = n;
		if (vm_insert_pages(vma, addr + (i << PAGE_SHIFT), pages, &num))
			break;
	}
out:
	mmap_read_unlock(mm);
}

/**
 * gcheap_span_zero() - zero arena bytes [@byte_off, @byte_off + @len)
 * @heap: the heap
 * @byte_off: offset from the arena's start
 * @len: bytes
 *
 * Through the kernel's own mapping of the pages: the process's page tables
 * are never used.  The pages must be resident (they are in a span).
 * Context: any; it does not sleep.
 */
void gcheap_span_zero(struct gcheap_heap *heap, unsigned long byte_off,
		      unsigned long len)
{
	while (len) {
		unsigned long off = offset_in_page(byte_off);
		unsigned long n = min(len, PAGE_SIZE - off);
		struct page *page = xa_load(&heap->pages, byte_off >> PAGE_SHIFT);

		if (!WARN_ON_ONCE(!page))
			memzero_page(page, off, n);
		byte_off += n;
		len -= n;
	}
}

/**
 * gcheap_span_free() - return a span's pages to mheap
 * @heap: the heap
 * @span: a span in state TRANSIT or LARGE whose objects are all free and
 *	zero (a large object is zeroed here)
 *
 * Context: heap->mheap_lock held.
 */
void gcheap_span_free(struct gcheap_heap *heap, struct gcheap_span *span)
{
	unsigned long i;

	lockdep_assert_held(&heap->mheap_lock);
	if (span->large) {
		for (i = span->start; i < span->start + span->npages; i++) {
			gcheap_span_zero(heap, i << PAGE_SHIFT, PAGE_SIZE);
			cond_resched();
		}
	}
	for (i = span->start; i < span->start + span->npages; i++) {
		gcheap_pageinfo_set(gcheap_pageinfo(heap, i), 0, 0);
		xa_erase(&heap->spans, i);
	}
	bitmap_clear(heap->used, span->start, span->npages);
	heap->used_hint = min(heap->used_hint, span->start);
	gcheap_resident_add(heap, 0, span->npages);
	atomic64_dec(&heap->nr_spans);
	kmem_cache_free(gcheap_span_cache, span);
}

/*
 * Drop resident free pages [start, end): lock them, unmap them from the
 * process in one call, take them out of the heap, unlock and free them.
 */
static void gcheap_scavenge_run(struct gcheap_heap *heap, unsigned long start,
				unsigned long end)
{
	unsigned long i;

	for (i = start; i < end; i++)
		lock_page(xa_load(&heap->pages, i));
	unmap_mapping_range(heap->mapping,
			    (loff_t)(heap->arena_pgoff + start) << PAGE_SHIFT,
			    (loff_t)(end - start) << PAGE_SHIFT, 1);
	for (i = start; i < end; i++) {
		struct page *page = xa_erase(&heap->pages, i);

		unlock_page(page);
		gcheap_page_free(heap, page);
	}
	gcheap_resident_add(heap, -(long)(end - start), -(long)(end - start));
}

/**
 * gcheap_scavenge() - return every free resident page to the system
 * @heap: the heap
 *
 * Return: the pages returned.
 */
unsigned long gcheap_scavenge(struct gcheap_heap *heap)
{
	unsigned long idx = 0, done = 0;
	struct page *page;

	mutex_lock(&heap->mheap_lock);
	while (heap->nr_free_resident) {
		unsigned long start, end;

		/* The next resident page in no span, then its run. */
		page = xa_find(&heap->pages, &idx, heap->arena_pages - 1, XA_PRESENT);
		if (!page)
			break;
		if (test_bit(idx, heap->used)) {
			idx = find_next_zero_bit(heap->used, heap->arena_pages, idx);
			continue;
		}
		start = idx;
		end = start + 1;
		while (end < heap->arena_pages && !test_bit(end, heap->used) &&
		       xa_load(&heap->pages, end) && end - start < GCHEAP_SCAVENGE_RUN)
			end++;
		gcheap_scavenge_run(heap, start, end);
		done += end - start;
		idx = end;
		/*
		 * Let refills, frees and the collector in between runs: a
		 * whole scavenge held the lock for up to 18 ms under TCG, and
		 * a pause that needed it (or a thread it was stopping, blocked
		 * on it in a refill) waited as long.  The walk goes on from
		 * idx, and each run is checked afresh under the lock.
		 */
		mutex_unlock(&heap->mheap_lock);
		cond_resched();
		mutex_lock(&heap->mheap_lock);
	}
	mutex_unlock(&heap->mheap_lock);
	return done;
}

/* Free everything: the heap is dying and nothing else can reach it. */
void gcheap_span_teardown(struct gcheap_heap *heap)
{
	struct gcheap_span *span;
	unsigned long idx, n = 0;
	struct page *page;

	/*
	 * Each span appears once per page: free it at its last one.  A 4 GiB
	 * heap is a million entries of each kind, which took the debug
	 * kernel half a minute: let others run meanwhile.
	 */
	xa_for_each(&heap->spans, idx, span) {
		if (idx == span->start + span->npages - 1)
			kmem_cache_free(gcheap_span_cache, span);
		if (!(++n % 1024))
			cond_resched();
	}
	xa_destroy(&heap->spans);
	xa_for_each(&heap->pages, idx, page) {
		gcheap_page_free(heap, page);
		if (!(++n % 1024))
			cond_resched();
	}
	xa_destroy(&heap->pages);
}

/* Copy one span of @src, with the objects @alloc says, into @dst. */
static int gcheap_span_copy(struct gcheap_heap *dst, struct gcheap_heap *src,
			    const struct gcheap_span *span, const u64 *alloc,
			    const u64 *dead, unsigned int n)
{
	struct gcheap_span *copy;
	unsigned long i;
	unsigned int w;
	u32 kind;

	copy = kmem_cache_zalloc(gcheap_span_cache, GFP_KERNEL_ACCOUNT);
	if (!copy)
		return -ENOMEM;
	spin_lock_init(&copy->lock);
	INIT_LIST_HEAD(&copy->node);
	copy->start = span->start;
	copy->npages = span->npages;
	copy->sc = span->sc;
	copy->large = span->large;
	copy->elem_size = span->elem_size;
	copy->div_mul = span->div_mul;
	copy->nobjs = span->nobjs;
	copy->nalloc = n;
	copy->state = GCHEAP_SPAN_TRANSIT;
	memcpy(copy->alloc, alloc, sizeof(copy->alloc));
	kind = span->large ? GCHEAP_PAGE_LARGE | (span->sc & 1 ? GCHEAP_PAGE_NOSCAN : 0) |
			     span->npages : span->sc + 1;

	/* Pages that made it in are freed with @dst if anything fails. */
	for (i = span->start; i < span->start + span->npages; i++) {
		struct page *page = gcheap_page_alloc(dst);

		if (!page)
			goto fail;
		copy_highpage(page, xa_load(&src->pages, i));
		if (xa_err(xa_store(&dst->pages, i, page, GFP_KERNEL_ACCOUNT))) {
			gcheap_page_free(dst, page);
			goto fail;
		}
		/* @dst is no one's yet: nothing reads its counts. */
		dst->nr_resident++;
	}
	/* The garbage copied with the pages: free objects are zero. */
	for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
		u64 d = dead[w];

		while (d) {
			unsigned int b = __ffs64(d);

			d &= d - 1;
			gcheap_span_zero(dst, (span->start << PAGE_SHIFT) +
					 (unsigned long)(w * 64 + b) * span->elem_size,
					 span->elem_size);
		}
	}
	for (i = 0; i < span->npages; i++) {
		struct gcheap_pageinfo *pi = gcheap_pageinfo(dst, span->start + i);

		if (!pi || xa_err(xa_store(&dst->spans, span->start + i, copy,
					   GFP_KERNEL_ACCOUNT)))
			goto fail_spans;
		gcheap_pageinfo_set(pi, i, kind);
	}
	bitmap_set(dst->used, span->start, span->npages);
	atomic64_inc(&dst->nr_spans);
	atomic64_add((u64)n * span->elem_size, &dst->live_bytes);
	if (span->large) {
		atomic64_inc(&dst->nr_large);
		copy->state = GCHEAP_SPAN_LARGE;
	} else {
		gcheap_span_put(dst, copy);
	}
	return 0;

fail_spans:
	while (i--)
		xa_erase(&dst->spans, span->start + i);
fail:
	kmem_cache_free(gcheap_span_cache, copy);
	return -ENOMEM;
}

/**
 * gcheap_span_copy_all() - copy every allocated object of @src into @dst
 * @dst: a new heap of @src's layout that nothing else uses yet
 * @src: the heap, with its world stopped and its CPU slots settled
 *
 * Spans are copied page for page to the same places, so every pointer
 * into @src's arena is the same pointer into @dst's once it is mapped at
 * the same address.  Objects handed to a slot and not settled count as
 * allocated (whether a thread's slot allocated them is in its own memory;
 * those a CPU slot still had free are garbage to the child, which its
 * first cycle frees); spans with nothing allocated, free pages and the
 * slots are not copied.
 *
 * Return: 0 or -ENOMEM (@dst then holds part of the copy; drop it).
 */
int gcheap_span_copy_all(struct gcheap_heap *dst, struct gcheap_heap *src)
{
	u64 alloc[GCHEAP_SLOT_WORDS], dead[GCHEAP_SLOT_WORDS];
	struct gcheap_span *span;
	unsigned long idx;
	int ret = 0;

	mutex_lock(&src->mheap_lock);
	xa_for_each(&src->spans, idx, span) {
		unsigned int w, n = 0;

		/* A large object still being made is no one's yet. */
		if (idx != span->start ||
		    (span->large && span->state != GCHEAP_SPAN_LARGE))
			continue;
		/*
		 * Taken in the final stop, before the sweep: what the marking
		 * did not keep is garbage, which the child need not inherit.
		 */
		spin_lock(&span->lock);
		for (w = 0; w < GCHEAP_SLOT_WORDS; w++) {
			alloc[w] = (span->alloc[w] & (span->mark[w] | span->black[w])) |
				   (span->handed[w] & ~span->freed[w]);
			dead[w] = span->alloc[w] & ~alloc[w];
			n += hweight64(alloc[w]);
		}
		spin_unlock(&span->lock);
		if (!n)
			continue;
		ret = gcheap_span_copy(dst, src, span, alloc, dead, n);
		if (ret)
			break;
		cond_resched();
	}
	mutex_unlock(&src->mheap_lock);
	return ret;
}
