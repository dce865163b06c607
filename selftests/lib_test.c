// SPDX-License-Identifier: GPL-2.0
/*
 * libgcheap over the device: what the library reports is what the module
 * says, and its errors are -errno values.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/gcheap.h>
#include <gcheap.h>

#include "kselftest_harness.h"

TEST(device_info_matches_ioctls)
{
	struct gcheap_api api = { .api = GCHEAP_API };
	struct gcheap_info ki = { 0 };
	struct gcheap_device_info info;
	int fd = open("/dev/gcheap", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, GCHEAP_IOC_API, &api));
	ASSERT_EQ(0, ioctl(fd, GCHEAP_IOC_INFO, &ki));
	close(fd);

	ASSERT_EQ(0, gcheap_device_info(&info));
	EXPECT_EQ(api.version, info.version);
	EXPECT_EQ(api.features, info.features);
	EXPECT_EQ(api.ioctls, info.ioctls);
	EXPECT_EQ(ki.page_size, info.page_size);
	EXPECT_EQ(ki.nr_cpu_ids, info.nr_cpus);
}

TEST(device_info_null)
{
	EXPECT_EQ(-EINVAL, gcheap_device_info(NULL));
}

/* The library keeps no descriptor open behind the caller's back. */
TEST(device_info_leaks_no_fd)
{
	struct gcheap_device_info info;
	int before = dup(0), after;

	ASSERT_LE(0, before);
	close(before);
	ASSERT_EQ(0, gcheap_device_info(&info));
	after = dup(0);
	close(after);
	EXPECT_EQ(before, after);
}

TEST_HARNESS_MAIN
