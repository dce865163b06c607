// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap heaps: creation, the mapping, faults, memory accounting, the
 * scavenger's schedule, and teardown.
 *
 * A heap belongs to the open file that created it and to the process that
 * did (heap->mm): only that process may map it, fault it in, or operate on
 * it, so no page of one process's heap can reach another.  It is mapped
 * once, whole, MAP_SHARED, at a fixed place:
 *
 *	page 0			header (size-class table)
 *	slots_pgoff ...		per-CPU slots (the cache area)
 *	pagemap_pgoff ...	page map, one entry per arena page
 *	arena_pgoff ...		the arena
 *
 * The VMA is VM_MIXEDMAP (real struct pages, so get_user_pages works: read()
 * into the heap, O_DIRECT), VM_DONTEXPAND, never executable, and refuses to
 * be split (so it cannot be partly unmapped or mprotected) or moved by
 * mremap.  It is not copied at fork (VM_DONTCOPY): a child gets a heap of
 * its own instead, a snapshot the parent had the collector copy
 * (GCHEAP_IOC_FORK, gcheap_span_copy_all()) and that the child adopts and
 * maps at the same address.  Should the VMA be copied anyway
 * (madvise(MADV_DOFORK)), faults from any other process get SIGBUS.
 *
 * The VMA sits on the file's private address space (an anonymous inode per
 * open file, as DRM does), so unmap_mapping_range() reaches exactly this
 * heap's mapping when the scavenger takes pages away.
 *
 * Lifetime: the file holds one reference on the heap and the VMA another;
 * the heap is freed when both are gone -- close, munmap, exit or SIGKILL in
 * any order.  Every page the module holds for heaps is counted in
 * gcheap_nr_pages (debugfs gcheap/pages), which returns to zero when the
 * last heap goes, and in the owner's per-user account (max_user_mb).
 */
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uidgid.h>

#include "compat.h"
#include "gcheap.h"

#define GCHEAP_FS_MAGIC	0x67636870

/* --- the private inodes --- */

static struct vfsmount *gcheap_mnt;
static int gcheap_mnt_count;

static int gcheap_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, GCHEAP_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type gcheap_fs_type = {
	.name		 = "gcheap",
	.owner		 = THIS_MODULE,
	.init_fs_context = gcheap_init_fs_context,
	.kill_sb	 = kill_anon_super,
};

struct inode *gcheap_inode_alloc(void)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&gcheap_fs_type, &gcheap_mnt, &gcheap_mnt_count);
	if (ret)
		return ERR_PTR(ret);
	inode = alloc_anon_inode(gcheap_mnt->mnt_sb);
	if (IS_ERR(inode))
		simple_release_fs(&gcheap_mnt, &gcheap_mnt_count);
	return inode;
}

void gcheap_inode_free(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&gcheap_mnt, &gcheap_mnt_count);
}

/* --- per-user accounting --- */

struct gcheap_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic_long_t pages;
};

static DEFINE_MUTEX(gcheap_users_lock);
static DEFINE_HASHTABLE(gcheap_users, 6);

static struct gcheap_user *gcheap_user_get(void)
{
	kuid_t uid = current_uid();
	struct gcheap_user *u;

	mutex_lock(&gcheap_users_lock);
	hash_for_each_possible(gcheap_users, u, node, __kuid_val(uid)) {
		if (uid_eq(u->uid, uid)) {
			refcount_inc(&u->ref);
			goto out;
		}
	}
	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (u) {
		u->uid = uid;
		refcount_set(&u->ref, 1);
		hash_add(gcheap_users, &u->node, __kuid_val(uid));
	}
out:
	mutex_unlock(&gcheap_users_lock);
	return u;
}

static void gcheap_user_put(struct gcheap_user *u)
{
	mutex_lock(&gcheap_users_lock);
	if (refcount_dec_and_test(&u->ref)) {
		hash_del(&u->node);
		kfree(u);
	}
	mutex_unlock(&gcheap_users_lock);
}

/**
 * gcheap_page_alloc() - a zeroed page for @heap, charged to the caller's
 *	memory cgroup and to the heap owner's account
 * @heap: the heap
 *
 * Return: the page, or NULL at the per-user limit or out of memory (never
 * with a warning: a heap at its limit is not the kernel's problem).
 */
struct page *gcheap_page_alloc(struct gcheap_heap *heap)
{
	unsigned int max_mb = READ_ONCE(gcheap_max_user_mb);	/* writable param */
	unsigned long limit = max_mb ? (unsigned long)max_mb << (20 - PAGE_SHIFT) : ULONG_MAX;
	struct page *page;

	if (atomic_long_inc_return(&heap->user->pages) > limit)
		goto fail;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN);
	if (!page)
		goto fail;
	atomic_long_inc(&gcheap_nr_pages);
	return page;
fail:
	atomic_long_dec(&heap->user->pages);
	return NULL;
}

void gcheap_page_free(struct gcheap_heap *heap, struct page *page)
{
	put_page(page);
	atomic_long_dec(&heap->user->pages);
	atomic_long_dec(&gcheap_nr_pages);
}

/* --- the scavenger's schedule --- */

static void gcheap_scavenge_work(struct work_struct *work)
{
	struct gcheap_heap *heap = container_of(to_delayed_work(work),
						struct gcheap_heap, scavenge);

	gcheap_scavenge(heap);
}

/*
 * Pages became free: return them to the system after scavenge_delay_ms, or
 * at once when more than scavenge_retain_mb are waiting.
 */
void gcheap_scavenge_kick(struct gcheap_heap *heap)
{
	unsigned long retain = (unsigned long)READ_ONCE(gcheap_scavenge_retain_mb) <<
			       (20 - PAGE_SHIFT);

	if (READ_ONCE(heap->nr_free_resident) > retain)
		mod_delayed_work(system_unbound_wq, &heap->scavenge, 0);
	else
		queue_delayed_work(system_unbound_wq, &heap->scavenge,
				   msecs_to_jiffies(READ_ONCE(gcheap_scavenge_delay_ms)));
}

/* --- creation and teardown --- */

static void gcheap_heap_release(struct kref *ref)
{
	struct gcheap_heap *heap = container_of(ref, struct gcheap_heap, ref);
	unsigned long i;

	gcheap_gc_destroy(heap);
	cancel_delayed_work_sync(&heap->scavenge);
	if (heap->pcp)
		gcheap_cache_teardown(heap);
	gcheap_span_teardown(heap);
	for (i = 0; heap->pagemap && i < heap->nr_pagemap; i++)
		if (heap->pagemap[i])
			gcheap_page_free(heap, heap->pagemap[i]);
	kvfree(heap->pagemap);
	for (i = 0; heap->meta && i < heap->nr_meta; i++)
		if (heap->meta[i])
			gcheap_page_free(heap, heap->meta[i]);
	kvfree(heap->meta);
	kvfree(heap->used);
	gcheap_barrier_destroy(heap);
	if (heap->mm)
		mmdrop(heap->mm);
	gcheap_user_put(heap->user);
	kfree(heap);
	atomic_dec(&gcheap_nr_heaps);
}

void gcheap_heap_put(struct gcheap_heap *heap)
{
	kref_put(&heap->ref, gcheap_heap_release);
}

static void gcheap_header_fill(struct gcheap_heap *heap)
{
	struct gcheap_header *h = page_address(heap->meta[0]);

	h->magic = GCHEAP_HEADER_MAGIC;
	h->nr_classes = gcheap_nr_classes;
	memcpy(h->classes, gcheap_classes, gcheap_nr_classes * sizeof(h->classes[0]));
}

/**
 * gcheap_heap_new() - a new heap for the calling process
 * @gf: the file it will belong to (not yet published there)
 * @hc: the validated request; the layout is written back into it
 * @snapshot: a fork snapshot: owned by no process, no collector thread yet
 *
 * Return: the heap with one reference, or an ERR_PTR.
 */
struct gcheap_heap *gcheap_heap_new(struct gcheap_file *gf, struct gcheap_heap_create *hc,
				    bool snapshot)
{
	unsigned long arena_pages = DIV_ROUND_UP(hc->arena_bytes, PAGE_SIZE);
	unsigned long slot_pages, i;
	struct gcheap_heap *heap;
	int ret = -ENOMEM;

	heap = kzalloc(sizeof(*heap), GFP_KERNEL_ACCOUNT);
	if (!heap)
		return ERR_PTR(-ENOMEM);
	atomic_inc(&gcheap_nr_heaps);
	kref_init(&heap->ref);
	mutex_init(&heap->mheap_lock);
	seqcount_mutex_init(&heap->resident_seq, &heap->mheap_lock);
	spin_lock_init(&heap->thread_lock);
	INIT_LIST_HEAD(&heap->thread_spans);
	INIT_DELAYED_WORK(&heap->scavenge, gcheap_scavenge_work);
	xa_init(&heap->pages);
	xa_init(&heap->spans);
	heap->user = gcheap_user_get();
	if (!heap->user) {
		kfree(heap);
		atomic_dec(&gcheap_nr_heaps);
		return ERR_PTR(-ENOMEM);
	}
	ret = gcheap_gc_init(heap, hc);
	if (ret)
		goto fail;
	ret = -ENOMEM;

	heap->arena_pages = arena_pages;
	heap->nr_sc = 2 * gcheap_nr_classes;
	heap->cpu_stride = heap->nr_sc * GCHEAP_SLOT_SIZE;
	slot_pages = DIV_ROUND_UP((unsigned long)nr_cpu_ids * heap->cpu_stride, PAGE_SIZE);
	heap->slots_pgoff = 1;
	heap->pagemap_pgoff = 1 + slot_pages;
	heap->nr_meta = heap->pagemap_pgoff;
	heap->nr_pagemap = DIV_ROUND_UP(arena_pages, GCHEAP_PAGEINFO_PER_PAGE);
	heap->arena_pgoff = heap->pagemap_pgoff + heap->nr_pagemap;
	heap->map_pages = heap->arena_pgoff + arena_pages;

	heap->meta = kvcalloc(heap->nr_meta, sizeof(*heap->meta), GFP_KERNEL_ACCOUNT);
	heap->pagemap = kvcalloc(heap->nr_pagemap, sizeof(*heap->pagemap), GFP_KERNEL_ACCOUNT);
	heap->used = kvcalloc(BITS_TO_LONGS(arena_pages), sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!heap->meta || !heap->pagemap || !heap->used || gcheap_barrier_init(heap))
		goto fail;
	for (i = 0; i < heap->nr_meta; i++) {
		heap->meta[i] = gcheap_page_alloc(heap);
		if (!heap->meta[i])
			goto fail;
	}
	gcheap_header_fill(heap);
	ret = gcheap_pcp_init(heap);
	if (ret)
		goto fail;
	heap->mapping = gf->inode->i_mapping;
	heap->file = gf->file;
	heap->snapshot = snapshot;
	/* A snapshot is no process's until one adopts it. */
	if (!snapshot) {
		heap->mm = current->mm;
		mmgrab(heap->mm);
		ret = gcheap_gc_start(heap);
		if (ret)
			goto fail;
	}

	hc->map_bytes = (u64)heap->map_pages << PAGE_SHIFT;
	hc->slots_offset = (u64)heap->slots_pgoff << PAGE_SHIFT;
	hc->pagemap_offset = (u64)heap->pagemap_pgoff << PAGE_SHIFT;
	hc->arena_offset = (u64)heap->arena_pgoff << PAGE_SHIFT;
	hc->cpu_stride = heap->cpu_stride;
	hc->nr_cpus = nr_cpu_ids;
	hc->nr_span_classes = heap->nr_sc;
	hc->pad2 = 0;
	return heap;
fail:
	gcheap_heap_put(heap);
	return ERR_PTR(ret);
}

/**
 * gcheap_heap_adopt() - make a fork snapshot the calling process's heap
 * @heap: the snapshot
 *
 * Context: the file's lock held.
 * Return: 0, -EBUSY if it was adopted, or the collector's start error.
 */
int gcheap_heap_adopt(struct gcheap_heap *heap)
{
	int ret;

	if (READ_ONCE(heap->mm) || heap->gc.thread)
		return -EBUSY;
	heap->gc.pid = task_tgid_nr(current);
	/* The collector skips cycles until the heap has its process. */
	ret = gcheap_gc_start(heap);
	if (ret)
		return ret;
	mmgrab(current->mm);
	WRITE_ONCE(heap->mm, current->mm);
	return 0;
}

/* --- the mapping --- */

static void gcheap_vm_open(struct vm_area_struct *vma)
{
	struct gcheap_heap *heap = vma->vm_private_data;

	kref_get(&heap->ref);
}

static void gcheap_vm_close(struct vm_area_struct *vma)
{
	struct gcheap_heap *heap = vma->vm_private_data;

	if (vma == READ_ONCE(heap->vma))
		WRITE_ONCE(heap->mapped, false);
	gcheap_heap_put(heap);
}

static int gcheap_vm_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static int gcheap_vm_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

/* A page-map page, allocated on first touch by either side. */
struct page *gcheap_pagemap_page(struct gcheap_heap *heap, unsigned long n)
{
	struct page *page = READ_ONCE(heap->pagemap[n]), *old;

	if (page)
		return page;
	page = gcheap_page_alloc(heap);
	if (!page)
		return NULL;
	old = cmpxchg(&heap->pagemap[n], NULL, page);
	if (old) {
		gcheap_page_free(heap, page);
		page = old;
	}
	return page;
}

static vm_fault_t gcheap_vm_fault(struct vm_fault *vmf)
{
	struct gcheap_heap *heap = vmf->vma->vm_private_data;
	pgoff_t pgoff = vmf->pgoff;
	unsigned long idx;
	struct page *page;

	if (vmf->vma->vm_mm != READ_ONCE(heap->mm) || pgoff >= heap->map_pages)
		return VM_FAULT_SIGBUS;
	if (pgoff < heap->pagemap_pgoff) {
		page = heap->meta[pgoff];
	} else if (pgoff < heap->arena_pgoff) {
		page = gcheap_pagemap_page(heap, pgoff - heap->pagemap_pgoff);
		if (!page)
			return VM_FAULT_OOM;
	} else {
		/*
		 * An arena page: take a reference under the xarray lock, then
		 * the page lock, and check the page is still the heap's: the
		 * scavenger removes pages under their lock, after unmapping
		 * them, so a page we return locked is never one it let go.
		 */
		idx = pgoff - heap->arena_pgoff;
		xa_lock(&heap->pages);
		page = xa_load(&heap->pages, idx);
		if (page)
			get_page(page);
		xa_unlock(&heap->pages);
		if (!page)
			return VM_FAULT_SIGBUS;
		lock_page(page);
		if (xa_load(&heap->pages, idx) != page) {
			unlock_page(page);
			put_page(page);
			return VM_FAULT_NOPAGE;
		}
		vmf->page = page;
		return VM_FAULT_LOCKED;
	}
	get_page(page);
	vmf->page = page;
	return 0;
}

/*
 * The first write to a page since it was mapped or last write-protected
 * (barrier.c).  The page is locked here and stays locked (VM_FAULT_LOCKED)
 * until the kernel has made its entry writable, which is what lets the
 * collector's re-protection tell an in-flight fault from a finished one.
 */
static vm_fault_t gcheap_vm_page_mkwrite(struct vm_fault *vmf)
{
	struct gcheap_heap *heap = vmf->vma->vm_private_data;
	struct page *page = vmf->page;
	pgoff_t pgoff = vmf->pgoff;

	lock_page(page);
	if (pgoff >= heap->arena_pgoff) {
		unsigned long idx = pgoff - heap->arena_pgoff;

		/* The scavenger took the page meanwhile: fault again. */
		if (xa_load(&heap->pages, idx) != page) {
			unlock_page(page);
			return VM_FAULT_NOPAGE;
		}
		gcheap_barrier_fault(heap, idx);
	}
	return VM_FAULT_LOCKED;
}

static const struct vm_operations_struct gcheap_vm_ops = {
	.open		= gcheap_vm_open,
	.close		= gcheap_vm_close,
	.may_split	= gcheap_vm_may_split,
	.mremap		= gcheap_vm_mremap,
	.fault		= gcheap_vm_fault,
	.page_mkwrite	= gcheap_vm_page_mkwrite,
};

int gcheap_heap_mmap(struct gcheap_heap *heap, struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED) || vma->vm_pgoff ||
	    vma_pages(vma) != heap->map_pages)
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (current->mm != READ_ONCE(heap->mm))
		return -EACCES;
	/* One mapping per heap, for the heap's life. */
	if (cmpxchg(&heap->vma, NULL, vma))
		return -EBUSY;
	gcheap_vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTCOPY | VM_MIXEDMAP,
			    VM_MAYEXEC);
	vma->vm_ops = &gcheap_vm_ops;
	vma->vm_private_data = heap;
	kref_get(&heap->ref);
	heap->user_base = vma->vm_start;
	/* Pairs with smp_load_acquire() in gcheap_ioc_cache(). */
	smp_store_release(&heap->mapped, true);
	return 0;
}

void gcheap_heap_stats(struct gcheap_heap *heap, struct gcheap_heap_stats *st)
{
	unsigned long i, meta = heap->nr_meta, resident, free;
	unsigned int seq;

	for (i = 0; i < heap->nr_pagemap; i++)
		meta += !!READ_ONCE(heap->pagemap[i]);
	/*
	 * Not under mheap_lock: the collector, the sweeper and the scavenger
	 * hold it for long stretches, and a program polling its statistics
	 * waited up to 64 ms for it.
	 */
	do {
		seq = read_seqcount_begin(&heap->resident_seq);
		resident = heap->nr_resident;
		free = heap->nr_free_resident;
	} while (read_seqcount_retry(&heap->resident_seq, seq));
	st->heap_bytes = (u64)(resident - free) << PAGE_SHIFT;
	st->resident_bytes = (u64)(resident + meta) << PAGE_SHIFT;
	st->arena_bytes = (u64)heap->arena_pages << PAGE_SHIFT;
	st->live_bytes = atomic64_read(&heap->live_bytes);
	st->spans = atomic64_read(&heap->nr_spans);
	st->large_objects = atomic64_read(&heap->nr_large);
	st->refills = atomic64_read(&heap->nr_refills);
	gcheap_gc_stats(heap, st);
}
