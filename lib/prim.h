/* SPDX-License-Identifier: MIT */
/*
 * The OS contract of libgcheap: every system call the library makes on
 * /dev/gcheap goes through these few functions (mimalloc's prim.h), so the
 * rest of the library can be tested against a fake and reviewed for what it
 * asks of the kernel in one place.  All return 0 (or an fd) or -errno.
 */
#ifndef GCHEAP_PRIM_H
#define GCHEAP_PRIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/gcheap.h>

#include "internal.h"

#define GCHEAP_DEVICE	"/dev/gcheap"

int gcheap_prim_open(void) GCHEAP_HIDDEN;
void gcheap_prim_close(int fd) GCHEAP_HIDDEN;
int gcheap_prim_api(int fd, uint64_t features, struct gcheap_api *reply) GCHEAP_HIDDEN;
/* Open the device and do the handshake: the fd, or -errno (-EPROTO for a
 * module speaking another API). */
int gcheap_prim_open_api(struct gcheap_api *reply) GCHEAP_HIDDEN;
int gcheap_prim_info(int fd, struct gcheap_info *info) GCHEAP_HIDDEN;
/* @hc: the request, filled in; the reply is written back into it. */
int gcheap_prim_heap_create(int fd, struct gcheap_heap_create *hc) GCHEAP_HIDDEN;
int gcheap_prim_map(int fd, size_t bytes, void **addr) GCHEAP_HIDDEN;
int gcheap_prim_cache(int fd, struct gcheap_cache_op *ops, unsigned int nr) GCHEAP_HIDDEN;
int gcheap_prim_stats(int fd, struct gcheap_heap_stats *st) GCHEAP_HIDDEN;
/* @extra: the thread's batch of pending frees, scanned while it is stopped. */
int gcheap_prim_thread(int fd, uint32_t op, pid_t tid, uintptr_t stack_lo, uintptr_t stack_hi,
		       const void *extra, uint32_t extra_len) GCHEAP_HIDDEN;
int gcheap_prim_roots(int fd, const struct gcheap_range *r, unsigned int nr) GCHEAP_HIDDEN;
int gcheap_prim_gc(int fd, struct gcheap_gc *g) GCHEAP_HIDDEN;
int gcheap_prim_fork(int fd, struct gcheap_fork *fk) GCHEAP_HIDDEN;

#endif
