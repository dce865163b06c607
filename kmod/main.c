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
 * it was.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "gcheap.h"

typedef long (*gcheap_ioctl_fn)(struct gcheap_file *gf, void __user *argp);

static long gcheap_ioc_api(struct gcheap_file *gf, void __user *argp);
static long gcheap_ioc_info(struct gcheap_file *gf, void __user *argp);

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
	mutex_init(&gf->lock);
	file->private_data = gf;
	return 0;
}

static int gcheap_release(struct inode *inode, struct file *file)
{
	struct gcheap_file *gf = file->private_data;

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
	BUILD_BUG_ON(ARRAY_SIZE(gcheap_ioctls) > 64);
}

static int __init gcheap_init(void)
{
	int ret;

	gcheap_build_check_abi();
	ret = misc_register(&gcheap_misc);
	if (ret) {
		pr_err("cannot register /dev/gcheap: %d\n", ret);
		return ret;
	}
	pr_info("version %s loaded\n", GCHEAP_VERSION_STRING);
	return 0;
}

static void __exit gcheap_exit(void)
{
	misc_deregister(&gcheap_misc);
}

module_init(gcheap_init);
module_exit(gcheap_exit);

MODULE_DESCRIPTION("Garbage-collected memory for ordinary processes");
MODULE_AUTHOR("The gcheap developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(GCHEAP_VERSION_STRING);
