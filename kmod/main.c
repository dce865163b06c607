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
 * validated whole before any of it is carried out.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
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

atomic_long_t gcheap_nr_pages = ATOMIC_LONG_INIT(0);
atomic_t gcheap_nr_heaps = ATOMIC_INIT(0);

static long gcheap_ioc_api(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_info(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_heap_create(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_cache(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_stats(struct gcheap_file *gf, void __user *argp);

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
	if (hc.flags || hc.pad || !hc.arena_bytes)
		return -EINVAL;
	if (hc.arena_bytes > (u64)READ_ONCE(gcheap_max_heap_mb) << 20)
		return -EINVAL;
	/* Cheap early refusal; the decisive check is under the lock below. */
	if (smp_load_acquire(&gf->heap))
		return -EEXIST;

	heap = gcheap_heap_new(gf, &hc);
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
	if (current->mm != heap->mm)
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
	for (i = 0; i < c.nr; i++) {
		ops[i].error = gcheap_cache_op(heap, &ops[i]);
		c.done += !ops[i].error;
	}
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

static int gcheap_open(struct inode *inode, struct file *file)
{
	struct gcheap_file *gf;

	gf = kzalloc(sizeof(*gf), GFP_KERNEL_ACCOUNT);
	if (!gf)
		return -ENOMEM;
	/*
	 * A private address space per open file, so that a heap's VMA is
	 * found by unmap_mapping_range() on that heap alone.
	 */
	gf->inode = gcheap_inode_alloc();
	if (IS_ERR(gf->inode)) {
		int ret = PTR_ERR(gf->inode);

		kfree(gf);
		return ret;
	}
	file->f_mapping = gf->inode->i_mapping;
	mutex_init(&gf->lock);
	file->private_data = gf;
	return 0;
}

static int gcheap_release(struct inode *inode, struct file *file)
{
	struct gcheap_file *gf = file->private_data;

	if (gf->heap)
		gcheap_heap_put(gf->heap);
	gcheap_inode_free(gf->inode);
	mutex_destroy(&gf->lock);
	kfree(gf);
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
	BUILD_BUG_ON(sizeof(struct gcheap_heap_create) != 64);
	BUILD_BUG_ON(sizeof(struct gcheap_cache_op) != 32);
	BUILD_BUG_ON(sizeof(struct gcheap_cache) != 24);
	BUILD_BUG_ON(sizeof(struct gcheap_heap_stats) != 96);
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
