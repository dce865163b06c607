/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by gcheap's selftests: raw access to /dev/gcheap and the
 * module's debugfs counters.
 */
#ifndef GCHEAP_TEST_H
#define GCHEAP_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/gcheap.h>

#define DEV "/dev/gcheap"

/* A number read from file @name in directory @dir, or -1. */
static inline long read_number(const char *dir, const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static inline long debugfs_counter(const char *name)
{
	return read_number("/sys/kernel/debug/gcheap", name);
}

/* A deterministic pseudo-random stream (xorshift32) for tests' seeds. */
static inline uint32_t rnd(uint32_t *seed)
{
	uint32_t x = *seed ? *seed : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *seed = x;
}

/* A 64-bit finaliser (murmur3's): every input bit moves every output bit. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* The module's page counter, waiting briefly for deferred teardown. */
static inline long pages_settled(void)
{
	long v = debugfs_counter("pages");
	int i;

	for (i = 0; v > 0 && i < 100; i++) {
		usleep(20000);
		v = debugfs_counter("pages");
	}
	return v;
}

static inline int param_set(const char *name, const char *value)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/gcheap/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(value, f);
	return fclose(f) ? -errno : 0;
}

static inline int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static inline int open_api(void)
{
	struct gcheap_api api = { .api = GCHEAP_API };
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, GCHEAP_IOC_API, &api)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * A heap with pacing off: the allocator's tests keep their objects where
 * no collector looks (no roots are registered), so only a collection they
 * ask for may run.
 */
static inline int heap_create(int fd, unsigned long long bytes, struct gcheap_heap_create *hc)
{
	memset(hc, 0, sizeof(*hc));
	hc->arena_bytes = bytes;
	hc->flags = GCHEAP_HEAP_GOGC;
	hc->gogc = GCHEAP_GOGC_OFF;
	return xioctl(fd, GCHEAP_IOC_HEAP_CREATE, hc);
}

static inline int cache_ops(int fd, struct gcheap_cache_op *ops, unsigned int nr)
{
	struct gcheap_cache c = { .ops = (unsigned long)ops, .nr = nr };

	return xioctl(fd, GCHEAP_IOC_CACHE, &c);
}

/* One operation; its own error, or the call's. */
static inline int cache_op(int fd, unsigned int op, unsigned int cls,
			   unsigned long long arg, unsigned long long *result)
{
	struct gcheap_cache_op o = { .op = op, .cls = cls, .arg = arg };
	int ret = cache_ops(fd, &o, 1);

	if (result)
		*result = o.result;
	return ret ? ret : o.error;
}

static inline int heap_stats(int fd, struct gcheap_heap_stats *st)
{
	memset(st, 0, sizeof(*st));
	return xioctl(fd, GCHEAP_IOC_STATS, st);
}

#endif
