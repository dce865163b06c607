/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gcheap private header: the structures shared between the files of the
 * module and the seams between them.
 *
 * Glossary (defined once, used everywhere):
 *
 *  file	an open /dev/gcheap; one per open(), its state in
 *		&struct gcheap_file.
 *  handshake	the one-shot GCHEAP_IOC_API call that must succeed on a file
 *		before any other command is accepted.
 */
#ifndef _GCHEAP_H
#define _GCHEAP_H

#include <linux/mutex.h>
#include <linux/types.h>

#include "../uapi/linux/gcheap.h"

#define GCHEAP_VERSION_MAJOR	0
#define GCHEAP_VERSION_MINOR	1
#define GCHEAP_VERSION_PATCH	0
#define GCHEAP_VERSION_STRING	"0.1.0"
#define GCHEAP_VERSION_CODE	((GCHEAP_VERSION_MAJOR << 16) | \
				 (GCHEAP_VERSION_MINOR << 8) | \
				 GCHEAP_VERSION_PATCH)

/**
 * struct gcheap_file - the state of one open /dev/gcheap
 * @lock: serialises the handshake against itself.  Never held across a
 *	user memory access: later commands take it under mmap_lock (from
 *	->mmap), so a fault taken while holding it would invert that order.
 * @api_done: false until the handshake succeeds, then true for the life of
 *	the file.  Written once under @lock with smp_store_release(); read
 *	without the lock with smp_load_acquire(), which orders the reader
 *	after @features.
 * @features: the features userspace asked for in the handshake.  Written
 *	once, before @api_done is published; constant afterwards.
 */
struct gcheap_file {
	struct mutex lock;	/* the handshake; see above */
	bool api_done;
	u64 features;
};

#endif /* _GCHEAP_H */
