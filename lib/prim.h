/* SPDX-License-Identifier: MIT */
/*
 * The OS contract of libgcheap: every system call the library makes on
 * /dev/gcheap goes through these few functions (mimalloc's prim.h), so the
 * rest of the library can be tested against a fake and reviewed for what it
 * asks of the kernel in one place.  All return 0 (or an fd) or -errno.
 */
#ifndef GCHEAP_PRIM_H
#define GCHEAP_PRIM_H

#include <stdint.h>
#include <linux/gcheap.h>

#define GCHEAP_DEVICE	"/dev/gcheap"

int gcheap_prim_open(void);
void gcheap_prim_close(int fd);
int gcheap_prim_api(int fd, uint64_t features, struct gcheap_api *reply);
int gcheap_prim_info(int fd, struct gcheap_info *info);

#endif
