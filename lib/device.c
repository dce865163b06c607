// SPDX-License-Identifier: MIT
/*
 * gcheap_device_info(): is the module there, and what does it offer?
 */
#include <errno.h>

#include "gcheap.h"
#include "internal.h"
#include "prim.h"

GCHEAP_EXPORT int gcheap_device_info(struct gcheap_device_info *info)
{
	struct gcheap_api api;
	struct gcheap_info ki;
	int fd, ret;

	if (!info)
		return -EINVAL;
	fd = gcheap_prim_open_api(&api);
	if (fd < 0)
		return fd;
	ret = gcheap_prim_info(fd, &ki);
	gcheap_prim_close(fd);
	if (ret)
		return ret;

	info->version = api.version;
	info->nr_cpus = ki.nr_cpu_ids;
	info->features = api.features;
	info->ioctls = api.ioctls;
	info->page_size = ki.page_size;
	return 0;
}
