// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap: the /dev/gcheap device, the front of the module.
 *
 * This file owns the character device: the file operations, the ioctl
 * dispatch and every copy from and to userspace.  Everything it hands to the
 * rest of the module has been copied into kernel memory and validated here,
 * so the files behind it trust their inputs (the split of fs/userfaultfd.c
 * and mm/userfaultfd.c).
 *
 * Protocol.  A process opens /dev/gcheap (mode 0666: any user may have a
 * garbage-collected heap, within the module's limits) and performs the
 * handshake, GCHEAP_IOC_API, modelled on UFFDIO_API:
 *
 *  - the API number must be GCHEAP_API, padding zero, and every requested
 *    feature bit known, or the call fails with EINVAL;
 *  - the reply carries every supported feature, a mask of the supported
 *    commands (bit _IOC_NR(cmd)) and the module version;
 *  - it succeeds once per file; a second handshake fails with EBUSY;
 *  - a failed handshake (EINVAL, EFAULT) changes nothing, so it can be
 *    retried with corrected arguments.
 *
 * Until the handshake has succeeded every other known command fails with
 * EBADFD ("file descriptor in bad state"); a command the module does not
 * know fails with ENOTTY whether or not the handshake was done, which is what
 * lets userspace probe for commands safely.
 *
 * The reply is copied out before the file is marked ready, and the mark is
 * taken under gcheap_file.lock, so of two racing handshakes exactly one
 * succeeds and a handshake whose reply cannot be written leaves the file as
 * it was.  Heap creation follows the same pattern.
 *
 * After the handshake: GCHEAP_IOC_HEAP_CREATE makes the file's heap (one
 * per file), mmap maps it (heap.c), GCHEAP_IOC_CACHE carries out batches of
 * refills, releases, large allocations and frees (cache.c), and
 * GCHEAP_IOC_STATS reports the heap's figures.  Each batch is copied in and
 * validated whole before any of it is carried out.  The collector's
 * commands (gc.c): GCHEAP_IOC_THREAD registers the threads it stops,
 * GCHEAP_IOC_ROOTS sets the root ranges, GCHEAP_IOC_GC collects or sets the
 * pacing, and GCHEAP_IOC_FORK takes a fork() snapshot of a heap or adopts
 * one in the child.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/build_bug.h>
#include <linux/file.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "gcheap.h"

typedef long (*gcheap_ioctl_fn)(struct gcheap_file *gf, void __user *argp);

unsigned int gcheap_max_heap_mb = 16384;
module_param_named(max_heap_mb, gcheap_max_heap_mb, uint, 0644);
MODULE_PARM_DESC(max_heap_mb, "Largest heap (arena) a process may create, in MiB (default 16384)");

unsigned int gcheap_max_user_mb;
module_param_named(max_user_mb, gcheap_max_user_mb, uint, 0644);
MODULE_PARM_DESC(max_user_mb, "Memory all heaps of one user may hold, in MiB; 0: no limit but the memory cgroup's (default 0)");

unsigned int gcheap_scavenge_delay_ms = 1000;
module_param_named(scavenge_delay_ms, gcheap_scavenge_delay_ms, uint, 0644);
MODULE_PARM_DESC(scavenge_delay_ms, "Free heap pages go back to the system this long after they became free (default 1000)");

unsigned int gcheap_scavenge_retain_mb = 64;
module_param_named(scavenge_retain_mb, gcheap_scavenge_retain_mb, uint, 0644);
MODULE_PARM_DESC(scavenge_retain_mb, "Free heap pages above this many MiB go back at once (default 64)");

bool gcheap_checkmark;
module_param_named(checkmark, gcheap_checkmark, bool, 0644);
MODULE_PARM_DESC(checkmark, "Check every collection of every heap by marking again from scratch (slow; default off)");

unsigned int gcheap_mark_stack = 16384;
module_param_named(mark_stack, gcheap_mark_stack, uint, 0644);
MODULE_PARM_DESC(mark_stack, "Entries of a new heap's mark stack; more objects wait for an overflow pass (default 16384, at least 16)");

unsigned int gcheap_stop_timeout_ms = 10000;
module_param_named(stop_timeout_ms, gcheap_stop_timeout_ms, uint, 0644);
MODULE_PARM_DESC(stop_timeout_ms, "A collection is given up when a registered thread has not stopped after this long (default 10000)");

unsigned int gcheap_pause_pages = 2048;
module_param_named(pause_pages, gcheap_pause_pages, uint, 0644);
MODULE_PARM_DESC(pause_pages, "While the collector marks, threads that write more heap pages than this wait for it, which bounds the pages its final pause rescans (default 2048)");

unsigned int gcheap_fault_delay_us;
module_param_named(fault_delay_us, gcheap_fault_delay_us, uint, 0644);
MODULE_PARM_DESC(fault_delay_us, "Testing aid: every 16th barrier fault sleeps this long between reading the epoch and recording its page, which widens the window the fault and a collector's round must agree in (default 0)");

atomic_long_t gcheap_nr_pages = ATOMIC_LONG_INIT(0);
atomic_t gcheap_nr_heaps = ATOMIC_INIT(0);

static long gcheap_ioc_api(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_info(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_heap_create(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_cache(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_stats(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_thread(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_roots(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_gc(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_fork(struct gcheap_file *gf, void __user *argp);

/*
 * The command table, indexed by _IOC_NR.  A command is known only if its
 * whole number (direction, size, type and nr) matches the entry, so a
 * caller built against a struct of another size gets ENOTTY, not a
 * misread argument.
 */
static const struct gcheap_ioctl_desc {
	unsigned int cmd;
	gcheap_ioctl_fn fn;
} gcheap_ioctls[] = {
	[_IOC_NR(GCHEAP_IOC_API)] = { GCHEAP_IOC_API, gcheap_ioc_api },
	[_IOC_NR(GCHEAP_IOC_INFO)] = { GCHEAP_IOC_INFO, gcheap_ioc_info },
	[_IOC_NR(GCHEAP_IOC_HEAP_CREATE)] = { GCHEAP_IOC_HEAP_CREATE, gcheap_ioc_heap_create },
	[_IOC_NR(GCHEAP_IOC_CACHE)] = { GCHEAP_IOC_CACHE, gcheap_ioc_cache },
	[_IOC_NR(GCHEAP_IOC_STATS)] = { GCHEAP_IOC_STATS, gcheap_ioc_stats },
	[_IOC_NR(GCHEAP_IOC_THREAD)] = { GCHEAP_IOC_THREAD, gcheap_ioc_thread },
	[_IOC_NR(GCHEAP_IOC_ROOTS)] = { GCHEAP_IOC_ROOTS, gcheap_ioc_roots },
	[_IOC_NR(GCHEAP_IOC_GC)] = { GCHEAP_IOC_GC, gcheap_ioc_gc },
	[_IOC_NR(GCHEAP_IOC_FORK)] = { GCHEAP_IOC_FORK, gcheap_ioc_fork },
};

static u64 gcheap_ioctl_mask(void)
{
	u64 mask = 0;
	unsigned int nr;

	for (nr = 0; nr < ARRAY_SIZE(gcheap_ioctls); nr++)
		if (gcheap_ioctls[nr].fn)
			mask |= BIT_ULL(nr);
	return mask;
}

static long gcheap_ioc_api(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_api api;
	long ret = 0;

	if (copy_from_user(&api, argp, sizeof(api)))
		return -EFAULT;
	if (api.api != GCHEAP_API || api.pad)
		return -EINVAL;
	if (api.features & ~GCHEAP_FEATURES_ALL)
		return -EINVAL;
	/* Cheap early refusal; the decisive check is under the lock below. */
	if (smp_load_acquire(&gf->api_done))
		return -EBUSY;

	/*
	 * Copy the reply out before publishing: a reply that cannot be
	 * written leaves the file without a handshake, free to retry.
	 */
	api.features = GCHEAP_FEATURES_ALL;
	api.ioctls = gcheap_ioctl_mask();
	api.version = GCHEAP_VERSION_CODE;
	api.pad2 = 0;
	if (copy_to_user(argp, &api, sizeof(api)))
		return -EFAULT;

	mutex_lock(&gf->lock);
	if (gf->api_done) {
		ret = -EBUSY;
	} else {
		gf->features = api.features & GCHEAP_FEATURES_ALL;
		/* Pairs with smp_load_acquire() in gcheap_ioctl(). */
		smp_store_release(&gf->api_done, true);
	}
	mutex_unlock(&gf->lock);
	return ret;
}

static long gcheap_ioc_info(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_info info;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.pad)
		return -EINVAL;

	info.page_size = PAGE_SIZE;
	info.nr_cpu_ids = nr_cpu_ids;
	info.pad2 = 0;
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long gcheap_ioc_heap_create(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_heap_create hc;
	struct gcheap_heap *heap;
	long ret = 0;

	if (copy_from_user(&hc, argp, sizeof(hc)))
		return -EFAULT;
	if ((hc.flags & ~GCHEAP_HEAP_FLAGS_ALL) || !hc.arena_bytes)
		return -EINVAL;
	if (hc.flags & GCHEAP_HEAP_GOGC ?
	    hc.gogc < GCHEAP_GOGC_OFF || hc.gogc > GCHEAP_GOGC_MAX : hc.gogc)
		return -EINVAL;
	if (hc.arena_bytes > (u64)READ_ONCE(gcheap_max_heap_mb) << 20)
		return -EINVAL;
	/* Cheap early refusal; the decisive check is under the lock below. */
	if (smp_load_acquire(&gf->heap))
		return -EEXIST;

	heap = gcheap_heap_new(gf, &hc, false);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	/* As for the handshake: reply first, then publish. */
	if (copy_to_user(argp, &hc, sizeof(hc))) {
		gcheap_heap_put(heap);
		return -EFAULT;
	}
	mutex_lock(&gf->lock);
	if (gf->heap)
		ret = -EEXIST;
	else
		/* Pairs with smp_load_acquire() wherever gf->heap is read. */
		smp_store_release(&gf->heap, heap);
	mutex_unlock(&gf->lock);
	if (ret)
		gcheap_heap_put(heap);
	return ret;
}

/* The file's heap, mapped by the calling process, or an error. */
static struct gcheap_heap *gcheap_file_heap(struct gcheap_file *gf, bool need_map)
{
	/* Pairs with smp_store_release() in gcheap_ioc_heap_create(). */
	struct gcheap_heap *heap = smp_load_acquire(&gf->heap);

	if (!heap)
		return ERR_PTR(-ENODEV);
	if (current->mm != READ_ONCE(heap->mm))
		return ERR_PTR(-EACCES);
	/* Pairs with smp_store_release() in gcheap_heap_mmap(). */
	if (need_map && !smp_load_acquire(&heap->mapped))
		return ERR_PTR(-EINVAL);
	return heap;
}

static bool gcheap_op_valid(struct gcheap_heap *heap, const struct gcheap_cache_op *op)
{
	if (op->pad || op->result || op->error)
		return false;
	switch (op->op) {
	case GCHEAP_OP_REFILL:
	case GCHEAP_OP_RELEASE:
		return op->cls < heap->nr_sc && !op->arg;
	case GCHEAP_OP_REFILL_THREAD:
	case GCHEAP_OP_RELEASE_THREAD:
		return op->cls < heap->nr_sc;
	case GCHEAP_OP_ALLOC_LARGE:
		return op->cls <= 1;
	case GCHEAP_OP_FREE:
		return !op->cls;
	}
	return false;
}

static long gcheap_ioc_cache(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_cache_op *ops;
	struct gcheap_mutator *m;
	struct gcheap_heap *heap;
	struct gcheap_cache c;
	long ret = 0;
	u32 i;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.flags || c.pad || c.done || !c.nr || c.nr > GCHEAP_CACHE_OPS_MAX)
		return -EINVAL;
	heap = gcheap_file_heap(gf, true);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	ops = memdup_user(u64_to_user_ptr(c.ops), c.nr * sizeof(*ops));
	if (IS_ERR(ops))
		return PTR_ERR(ops);
	for (i = 0; i < c.nr; i++) {
		if (!gcheap_op_valid(heap, &ops[i])) {
			ret = -EINVAL;
			goto out;
		}
	}
	/*
	 * A refill may wait for mheap_lock, for new pages or for the marker:
	 * meanwhile the caller counts as parked, so that a stop does not wait
	 * for it to finish and return to user mode (under TCG that was the
	 * longest wait of a GCBench stop).  It goes on with its operations
	 * during a pause, as an unregistered thread would, and returns only
	 * after it.  That holds until a large object is allocated: its
	 * address, until the program has it, is a reference no root holds,
	 * and a whole cycle could pass with the thread still counted as
	 * parked in here (race_test's large variant lost such objects).  So
	 * from that operation on the thread is stopped as usual, on its way
	 * back to user mode, with the address in its registers.
	 */
	m = gcheap_gc_block(heap);
	for (i = 0; i < c.nr; i++) {
		if (ops[i].op == GCHEAP_OP_ALLOC_LARGE && m) {
			gcheap_gc_unblock(heap, m);
			m = NULL;
		}
		ops[i].error = gcheap_cache_op(heap, &ops[i]);
		c.done += !ops[i].error;
	}
	gcheap_gc_unblock(heap, m);
	if (copy_to_user(u64_to_user_ptr(c.ops), ops, c.nr * sizeof(*ops)) ||
	    copy_to_user(argp, &c, sizeof(c)))
		ret = -EFAULT;
out:
	kfree(ops);
	return ret;
}

static long gcheap_ioc_stats(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_heap_stats st;
	struct gcheap_heap *heap;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (st.flags || st.pad)
		return -EINVAL;
	heap = gcheap_file_heap(gf, false);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	gcheap_heap_stats(heap, &st);
	if (copy_to_user(argp, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

static long gcheap_ioc_thread(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_thread_reg tr;
	struct gcheap_heap *heap;

	if (copy_from_user(&tr, argp, sizeof(tr)))
		return -EFAULT;
	if (tr.pad2)
		return -EINVAL;
	switch (tr.op) {
	case GCHEAP_THREAD_REGISTER:
		if (tr.stack_lo >= tr.stack_hi ||
		    !access_ok(u64_to_user_ptr(tr.stack_lo), tr.stack_hi - tr.stack_lo))
			return -EINVAL;
		if (!tr.extra != !tr.extra_len || tr.extra_len > GCHEAP_EXTRA_MAX ||
		    !access_ok(u64_to_user_ptr(tr.extra), tr.extra_len))
			return -EINVAL;
		break;
	case GCHEAP_THREAD_UNREGISTER:
		if (tr.tid || tr.stack_lo || tr.stack_hi || tr.extra || tr.extra_len)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	heap = gcheap_file_heap(gf, false);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	return gcheap_gc_thread(heap, &tr);
}

static long gcheap_ioc_roots(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_range *r = NULL;
	struct gcheap_heap *heap;
	struct gcheap_roots rt;
	u32 i;

	if (copy_from_user(&rt, argp, sizeof(rt)))
		return -EFAULT;
	if (rt.flags || rt.nr > GCHEAP_ROOTS_MAX)
		return -EINVAL;
	heap = gcheap_file_heap(gf, false);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	if (rt.nr) {
		r = memdup_user(u64_to_user_ptr(rt.ranges), rt.nr * sizeof(*r));
		if (IS_ERR(r))
			return PTR_ERR(r);
	}
	for (i = 0; i < rt.nr; i++) {
		if (!r[i].len || r[i].start + r[i].len < r[i].start ||
		    !access_ok(u64_to_user_ptr(r[i].start), r[i].len)) {
			kfree(r);
			return -EINVAL;
		}
	}
	return gcheap_gc_set_roots(heap, r, rt.nr);
}

static long gcheap_ioc_gc(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_heap *heap;
	struct gcheap_gc g;
	long ret;

	if (copy_from_user(&g, argp, sizeof(g)))
		return -EFAULT;
	if (g.flags || g.cycle)
		return -EINVAL;
	switch (g.op) {
	case GCHEAP_GC_COLLECT:
		if (g.value)
			return -EINVAL;
		break;
	case GCHEAP_GC_SET_GOGC:
		if (g.value < GCHEAP_GOGC_OFF || g.value > GCHEAP_GOGC_MAX)
			return -EINVAL;
		break;
	case GCHEAP_GC_SET_SOFT_LIMIT:
		if (g.value < 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	heap = gcheap_file_heap(gf, g.op == GCHEAP_GC_COLLECT);
	if (IS_ERR(heap))
		return PTR_ERR(heap);
	if (g.op != GCHEAP_GC_COLLECT)
		return gcheap_gc_set(heap, g.op, g.value);
	ret = gcheap_gc_collect(heap, &g.cycle);
	if (ret)
		return ret;
	return copy_to_user(argp, &g, sizeof(g)) ? -EFAULT : 0;
}

static const struct file_operations gcheap_fops;
static struct gcheap_file *gcheap_file_alloc(void);
static void gcheap_file_free(struct gcheap_file *gf);

/*
 * A fork snapshot of @heap in a new file, as a new descriptor (installed
 * only once the reply is written).
 */
static long gcheap_fork_snapshot(struct gcheap_heap *heap, struct gcheap_fork *fk,
				 void __user *argp)
{
	struct gcheap_heap_create hc = {
		.arena_bytes = (u64)heap->arena_pages << PAGE_SHIFT,
		.flags = GCHEAP_HEAP_GOGC | (heap->gc.checkmark ? GCHEAP_HEAP_CHECKMARK : 0),
		.gogc = READ_ONCE(heap->gc.gogc),
		.soft_limit_bytes = READ_ONCE(heap->gc.soft_limit),
	};
	struct gcheap_heap *copy;
	struct gcheap_file *gf;
	struct file *file;
	long ret;
	int fd;

	gf = gcheap_file_alloc();
	if (IS_ERR(gf))
		return PTR_ERR(gf);
	gf->api_done = true;
	copy = gcheap_heap_new(gf, &hc, true);
	if (IS_ERR(copy)) {
		gcheap_file_free(gf);
		return PTR_ERR(copy);
	}
	gf->heap = copy;
	ret = gcheap_gc_snapshot(heap, copy);
	if (ret)
		goto fail;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto fail;
	}
	file = anon_inode_getfile("[gcheap]", &gcheap_fops, gf, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		ret = PTR_ERR(file);
		goto fail;
	}
	/* From here on the file owns gf. */
	file->f_mapping = gf->inode->i_mapping;
	gf->file = file;
	copy->file = file;
	fk->fd = fd;
	if (copy_to_user(argp, fk, sizeof(*fk))) {
		put_unused_fd(fd);
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;
fail:
	gcheap_file_free(gf);
	return ret;
}

static long gcheap_ioc_fork(struct gcheap_file *gf, void __user *argp)
{
	struct gcheap_heap *heap;
	struct gcheap_fork fk;
	long ret;

	if (copy_from_user(&fk, argp, sizeof(fk)))
		return -EFAULT;
	if (fk.flags || fk.pad || fk.fd != -1)
		return -EINVAL;
	switch (fk.op) {
	case GCHEAP_FORK_SNAPSHOT:
		heap = gcheap_file_heap(gf, true);
		if (IS_ERR(heap))
			return PTR_ERR(heap);
		return gcheap_fork_snapshot(heap, &fk, argp);
	case GCHEAP_FORK_ADOPT:
		/* Pairs with smp_store_release() in gcheap_ioc_heap_create(). */
		heap = smp_load_acquire(&gf->heap);
		if (!heap || !heap->snapshot)
			return -ENODEV;
		mutex_lock(&gf->lock);
		ret = gcheap_heap_adopt(heap);
		mutex_unlock(&gf->lock);
		return ret;
	}
	return -EINVAL;
}

static int gcheap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct gcheap_file *gf = file->private_data;
	struct gcheap_heap *heap;

	/* Pairs with smp_store_release() in gcheap_ioc_api(). */
	if (!smp_load_acquire(&gf->api_done))
		return -EBADFD;
	/* Pairs with smp_store_release() in gcheap_ioc_heap_create(). */
	heap = smp_load_acquire(&gf->heap);
	if (!heap)
		return -ENODEV;
	return gcheap_heap_mmap(heap, vma);
}

static long gcheap_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct gcheap_file *gf = file->private_data;
	unsigned int nr = _IOC_NR(cmd);

	if (_IOC_TYPE(cmd) != GCHEAP_IOC_MAGIC || nr >= ARRAY_SIZE(gcheap_ioctls))
		return -ENOTTY;
	if (!gcheap_ioctls[nr].fn || gcheap_ioctls[nr].cmd != cmd)
		return -ENOTTY;
	/* Pairs with smp_store_release() in gcheap_ioc_api(). */
	if (cmd != GCHEAP_IOC_API && !smp_load_acquire(&gf->api_done))
		return -EBADFD;
	return gcheap_ioctls[nr].fn(gf, (void __user *)arg);
}

static struct gcheap_file *gcheap_file_alloc(void)
{
	struct gcheap_file *gf;

	gf = kzalloc(sizeof(*gf), GFP_KERNEL_ACCOUNT);
	if (!gf)
		return ERR_PTR(-ENOMEM);
	/*
	 * A private address space per open file, so that a heap's VMA is
	 * found by unmap_mapping_range() on that heap alone.
	 */
	gf->inode = gcheap_inode_alloc();
	if (IS_ERR(gf->inode)) {
		struct inode *err = gf->inode;

		kfree(gf);
		return ERR_CAST(err);
	}
	mutex_init(&gf->lock);
	return gf;
}

static void gcheap_file_free(struct gcheap_file *gf)
{
	if (gf->heap) {
		/* Nothing can ask the heap for a collection any more. */
		gcheap_gc_stop(gf->heap);
		gcheap_heap_put(gf->heap);
	}
	gcheap_inode_free(gf->inode);
	mutex_destroy(&gf->lock);
	kfree(gf);
}

static int gcheap_open(struct inode *inode, struct file *file)
{
	struct gcheap_file *gf = gcheap_file_alloc();

	if (IS_ERR(gf))
		return PTR_ERR(gf);
	file->f_mapping = gf->inode->i_mapping;
	file->private_data = gf;
	gf->file = file;
	return 0;
}

static int gcheap_release(struct inode *inode, struct file *file)
{
	gcheap_file_free(file->private_data);
	return 0;
}

static const struct file_operations gcheap_fops = {
	.owner		= THIS_MODULE,
	.open		= gcheap_open,
	.release	= gcheap_release,
	.unlocked_ioctl	= gcheap_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= gcheap_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice gcheap_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "gcheap",
	.fops	= &gcheap_fops,
	.mode	= 0666,
};

/* The uAPI layout is ABI: any change of size is a break (cf. landlock). */
static void __init gcheap_build_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct gcheap_api) != 32);
	BUILD_BUG_ON(sizeof(struct gcheap_info) != 24);
	BUILD_BUG_ON(sizeof(struct gcheap_class) != 16);
	BUILD_BUG_ON(sizeof(struct gcheap_header) > PAGE_SIZE);
	BUILD_BUG_ON(sizeof(struct gcheap_slot) != 256);
	BUILD_BUG_ON(PAGE_SIZE % sizeof(struct gcheap_slot));
	BUILD_BUG_ON(sizeof(struct gcheap_pageinfo) != 8);
	BUILD_BUG_ON(sizeof(struct gcheap_heap_create) != 72);
	BUILD_BUG_ON(sizeof(struct gcheap_thread_reg) != 40);
	BUILD_BUG_ON(sizeof(struct gcheap_range) != 16);
	BUILD_BUG_ON(sizeof(struct gcheap_roots) != 16);
	BUILD_BUG_ON(sizeof(struct gcheap_gc) != 24);
	BUILD_BUG_ON(sizeof(struct gcheap_fork) != 16);
	BUILD_BUG_ON(sizeof(struct gcheap_cache_op) != 32);
	BUILD_BUG_ON(sizeof(struct gcheap_cache) != 24);
	BUILD_BUG_ON(sizeof(struct gcheap_heap_stats) != 168);
	BUILD_BUG_ON(ARRAY_SIZE(gcheap_ioctls) > 64);
}

static int gcheap_pages_get(void *data, u64 *val)
{
	*val = atomic_long_read(&gcheap_nr_pages);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(gcheap_pages_fops, gcheap_pages_get, NULL, "%llu\n");

static int gcheap_heaps_get(void *data, u64 *val)
{
	*val = atomic_read(&gcheap_nr_heaps);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(gcheap_heaps_fops, gcheap_heaps_get, NULL, "%llu\n");

static struct dentry *gcheap_debugfs;

static int __init gcheap_init(void)
{
	int ret;

	gcheap_build_check_abi();
	gcheap_sizeclass_init();
	ret = gcheap_sizeclass_check();
	if (ret)
		return ret;
	ret = gcheap_span_cache_init();
	if (ret)
		return ret;
	/* The counters tests use to prove every page comes back. */
	gcheap_debugfs = debugfs_create_dir("gcheap", NULL);
	debugfs_create_file_unsafe("pages", 0444, gcheap_debugfs, NULL, &gcheap_pages_fops);
	debugfs_create_file_unsafe("heaps", 0444, gcheap_debugfs, NULL, &gcheap_heaps_fops);
	ret = misc_register(&gcheap_misc);
	if (ret) {
		pr_err("cannot register /dev/gcheap: %d\n", ret);
		goto err_debugfs;
	}
	pr_info("version %s loaded\n", GCHEAP_VERSION_STRING);
	return 0;

err_debugfs:
	debugfs_remove_recursive(gcheap_debugfs);
	gcheap_span_cache_exit();
	return ret;
}

static void __exit gcheap_exit(void)
{
	misc_deregister(&gcheap_misc);
	debugfs_remove_recursive(gcheap_debugfs);
	gcheap_span_cache_exit();
}

module_init(gcheap_init);
module_exit(gcheap_exit);

MODULE_DESCRIPTION("Garbage-collected memory for ordinary processes");
MODULE_AUTHOR("The gcheap developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(GCHEAP_VERSION_STRING);
