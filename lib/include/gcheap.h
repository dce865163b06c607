/* SPDX-License-Identifier: MIT */
/*
 * libgcheap: garbage-collected memory for C programs, backed by the gcheap
 * kernel module (/dev/gcheap).
 *
 * Conventions (liburing's): functions return 0 or a positive value on
 * success and -errno on failure; the library never prints, never aborts and
 * keeps no global error state.  See gcheap(7).
 */
#ifndef GCHEAP_H
#define GCHEAP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct gcheap_device_info - what the loaded gcheap module offers
 * @version:   the module version, (major << 16) | (minor << 8) | patch
 * @nr_cpus:   one more than the highest possible CPU number of the machine
 * @features:  the optional features the module supports (GCHEAP_FEATURE_*)
 * @ioctls:    the commands it supports, bit _IOC_NR(cmd) for each
 * @page_size: the page size heaps are made of
 */
struct gcheap_device_info {
	uint32_t version;
	uint32_t nr_cpus;
	uint64_t features;
	uint64_t ioctls;
	uint64_t page_size;
};

/*
 * Open /dev/gcheap, perform the API handshake and describe the module.
 * Returns 0, or -errno: -ENOENT when the module is not loaded, -EPROTO when
 * it speaks another API.
 */
int gcheap_device_info(struct gcheap_device_info *info);

#define GCHEAP_VERSION_MAJOR(v)	(((v) >> 16) & 0xff)
#define GCHEAP_VERSION_MINOR(v)	(((v) >> 8) & 0xff)
#define GCHEAP_VERSION_PATCH(v)	((v) & 0xff)

#ifdef __cplusplus
}
#endif

#endif /* GCHEAP_H */
