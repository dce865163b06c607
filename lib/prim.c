// SPDX-License-Identifier: MIT
/*
 * libgcheap's system calls on /dev/gcheap; see prim.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "prim.h"

int gcheap_prim_open(void)
{
	int fd = open(GCHEAP_DEVICE, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void gcheap_prim_close(int fd)
{
	close(fd);
}

static int prim_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret, saved = errno;

	ret = ioctl(fd, cmd, arg) < 0 ? -errno : 0;
	errno = saved;
	return ret;
}

int gcheap_prim_api(int fd, uint64_t features, struct gcheap_api *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->api = GCHEAP_API;
	reply->features = features;
	return prim_ioctl(fd, GCHEAP_IOC_API, reply);
}

int gcheap_prim_open_api(struct gcheap_api *reply)
{
	int fd = gcheap_prim_open(), ret;

	if (fd < 0)
		return fd;
	ret = gcheap_prim_api(fd, 0, reply);
	if (!ret)
		return fd;
	gcheap_prim_close(fd);
	/* EINVAL for a handshake that asks for nothing: another API. */
	return ret == -EINVAL ? -EPROTO : ret;
}

int gcheap_prim_info(int fd, struct gcheap_info *info)
{
	memset(info, 0, sizeof(*info));
	return prim_ioctl(fd, GCHEAP_IOC_INFO, info);
}

int gcheap_prim_heap_create(int fd, struct gcheap_heap_create *hc)
{
	return prim_ioctl(fd, GCHEAP_IOC_HEAP_CREATE, hc);
}

int gcheap_prim_map(int fd, size_t bytes, void **addr)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	*addr = p;
	return 0;
}

int gcheap_prim_cache(int fd, struct gcheap_cache_op *ops, unsigned int nr)
{
	struct gcheap_cache c = { .ops = (uintptr_t)ops, .nr = nr };

	return prim_ioctl(fd, GCHEAP_IOC_CACHE, &c);
}

int gcheap_prim_stats(int fd, struct gcheap_heap_stats *st)
{
	memset(st, 0, sizeof(*st));
	return prim_ioctl(fd, GCHEAP_IOC_STATS, st);
}

int gcheap_prim_thread(int fd, uint32_t op, pid_t tid, uintptr_t stack_lo, uintptr_t stack_hi,
		       const void *extra, uint32_t extra_len)
{
	struct gcheap_thread_reg tr = {
		.op = op, .tid = (uint32_t)tid, .stack_lo = stack_lo, .stack_hi = stack_hi,
		.extra = (uintptr_t)extra, .extra_len = extra_len,
	};

	return prim_ioctl(fd, GCHEAP_IOC_THREAD, &tr);
}

int gcheap_prim_roots(int fd, const struct gcheap_range *r, unsigned int nr)
{
	struct gcheap_roots rt = { .ranges = (uintptr_t)r, .nr = nr };

	return prim_ioctl(fd, GCHEAP_IOC_ROOTS, &rt);
}

int gcheap_prim_gc(int fd, struct gcheap_gc *g)
{
	return prim_ioctl(fd, GCHEAP_IOC_GC, g);
}

int gcheap_prim_fork(int fd, struct gcheap_fork *fk)
{
	return prim_ioctl(fd, GCHEAP_IOC_FORK, fk);
}
