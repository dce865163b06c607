// SPDX-License-Identifier: MIT
/*
 * libgcheap's system calls on /dev/gcheap; see prim.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
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
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

int gcheap_prim_api(int fd, uint64_t features, struct gcheap_api *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->api = GCHEAP_API;
	reply->features = features;
	return prim_ioctl(fd, GCHEAP_IOC_API, reply);
}

int gcheap_prim_info(int fd, struct gcheap_info *info)
{
	memset(info, 0, sizeof(*info));
	return prim_ioctl(fd, GCHEAP_IOC_INFO, info);
}
