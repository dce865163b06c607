/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * gcheap: garbage-collected memory for ordinary processes.
 *
 * The userspace ABI of /dev/gcheap.  A process opens the device and first
 * performs the one-shot API handshake (GCHEAP_IOC_API), in the manner of
 * UFFDIO_API: it states the API number it was built for and the optional
 * features it wants, and learns which features and commands the module
 * supports.  Every other command fails with EBADFD until the handshake has
 * succeeded on that file descriptor.
 *
 * Rules every structure here follows (see the kernel's
 * Documentation/process/botching-up-ioctls.rst): fixed-width types only,
 * pointers passed as __u64, explicit padding that must be zero, input fields
 * before output fields, and every unknown flag or feature bit refused with
 * EINVAL so that it can be given a meaning later.
 */
#ifndef _UAPI_LINUX_GCHEAP_H
#define _UAPI_LINUX_GCHEAP_H

#include <linux/ioctl.h>
#include <linux/types.h>

/** GCHEAP_API - the API number userspace passes in &gcheap_api.api. */
#define GCHEAP_API			1u

/* There are no optional features yet: any bit requested gives EINVAL. */
#define GCHEAP_FEATURES_ALL		0ull

/**
 * struct gcheap_api - the handshake, argument of %GCHEAP_IOC_API
 * @api: in: must be %GCHEAP_API.
 * @pad: in: must be zero.
 * @features: in: the optional features wanted, a subset of
 *	%GCHEAP_FEATURES_ALL; out: every feature this module supports.
 * @ioctls: out: the commands this module supports, as a mask with bit
 *	_IOC_NR(cmd) set for each supported cmd.
 * @version: out: the module's version, (major << 16) | (minor << 8) | patch.
 * @pad2: out: zero.
 *
 * The handshake succeeds once per file descriptor; a second one fails with
 * EBUSY.  A failed handshake changes nothing and may be retried.
 */
struct gcheap_api {
	__u32 api;
	__u32 pad;
	__u64 features;
	__u64 ioctls;
	__u32 version;
	__u32 pad2;
};

/**
 * struct gcheap_info - facts about the module, argument of %GCHEAP_IOC_INFO
 * @flags: in: must be zero.
 * @pad: in: must be zero.
 * @page_size: out: the page size the arena and spans are made of.
 * @nr_cpu_ids: out: one more than the highest possible CPU number; per-CPU
 *	structures shared with userspace have this many entries.
 * @pad2: out: zero.
 */
struct gcheap_info {
	__u32 flags;
	__u32 pad;
	__u64 page_size;
	__u32 nr_cpu_ids;
	__u32 pad2;
};

/* 0xC6 is unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define GCHEAP_IOC_MAGIC		0xC6

/** GCHEAP_IOC_API - the handshake; see &struct gcheap_api. */
#define GCHEAP_IOC_API		_IOWR(GCHEAP_IOC_MAGIC, 0x00, struct gcheap_api)
/** GCHEAP_IOC_INFO - read facts about the module; see &struct gcheap_info. */
#define GCHEAP_IOC_INFO		_IOWR(GCHEAP_IOC_MAGIC, 0x01, struct gcheap_info)

#endif /* _UAPI_LINUX_GCHEAP_H */
