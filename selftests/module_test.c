// SPDX-License-Identifier: GPL-2.0
/*
 * Unloading and reloading gcheap.ko: refused while a file is open, clean
 * when none is, and the device works again after every reload.  Needs root
 * and the module's path in GCHEAP_KO (tools/vmrun sets it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/gcheap.h>
#include <gcheap.h>

#include "kselftest_harness.h"

#define DEV "/dev/gcheap"

static int unload(void)
{
	return syscall(SYS_delete_module, "gcheap", O_NONBLOCK) ? -errno : 0;
}

static int load(const char *ko)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int loaded(void)
{
	return access("/sys/module/gcheap", F_OK) == 0;
}

static int handshake_ok(void)
{
	struct gcheap_api api = { .api = GCHEAP_API };
	int fd = open(DEV, O_RDWR), ret;

	if (fd < 0)
		return 0;
	ret = ioctl(fd, GCHEAP_IOC_API, &api);
	close(fd);
	return ret == 0;
}

FIXTURE(mod) {
	const char *ko;
};

FIXTURE_SETUP(mod)
{
	self->ko = getenv("GCHEAP_KO");
	if (geteuid() != 0)
		SKIP(return, "needs root");
	if (!self->ko || !*self->ko)
		SKIP(return, "GCHEAP_KO does not name gcheap.ko");
	if (access("/sys/module/gcheap/initstate", F_OK) != 0 && loaded())
		SKIP(return, "gcheap is built in");
	if (!loaded())
		ASSERT_EQ(0, load(self->ko));
}

/* Whatever a test did, leave the module loaded for the tests after it. */
FIXTURE_TEARDOWN(mod)
{
	if (self->ko && *self->ko && !loaded())
		load(self->ko);
}

TEST_F(mod, unload_refused_while_open)
{
	int fd = open(DEV, O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EWOULDBLOCK, unload());
	EXPECT_TRUE(loaded());
	EXPECT_TRUE(handshake_ok());

	/* Still refused after a handshake on that file. */
	{
		struct gcheap_api api = { .api = GCHEAP_API };

		ASSERT_EQ(0, ioctl(fd, GCHEAP_IOC_API, &api));
		EXPECT_EQ(-EWOULDBLOCK, unload());
	}
	close(fd);
	EXPECT_EQ(0, unload());
	EXPECT_FALSE(loaded());
}

TEST_F(mod, unload_and_reload)
{
	struct stat st;

	ASSERT_EQ(0, unload());
	EXPECT_FALSE(loaded());
	EXPECT_EQ(-1, stat(DEV, &st));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, open(DEV, O_RDWR));

	ASSERT_EQ(0, load(self->ko));
	ASSERT_EQ(0, stat(DEV, &st));
	EXPECT_EQ(0666, st.st_mode & 07777);
	EXPECT_TRUE(handshake_ok());

	/* Loading it twice is refused and leaves the first one working. */
	EXPECT_EQ(-EEXIST, load(self->ko));
	EXPECT_TRUE(handshake_ok());
}

/* Without the module the library says so with -ENOENT, and finds it again
 * once it is back.
 */
TEST_F(mod, library_without_module)
{
	struct gcheap_device_info info;

	ASSERT_EQ(0, unload());
	EXPECT_EQ(-ENOENT, gcheap_device_info(&info));
	ASSERT_EQ(0, load(self->ko));
	EXPECT_EQ(0, gcheap_device_info(&info));
}

/* Many cycles: module init and exit leave nothing behind (kmemleak on the
 * debug kernel) and never leave the device half-registered.
 */
TEST_F(mod, reload_cycles)
{
	int i;

	for (i = 0; i < 20; i++) {
		int fd;

		ASSERT_EQ(0, unload()) TH_LOG("cycle %d", i);
		ASSERT_EQ(0, load(self->ko)) TH_LOG("cycle %d", i);
		fd = open(DEV, O_RDWR);
		ASSERT_LE(0, fd) TH_LOG("cycle %d", i);
		if (i & 1) {
			struct gcheap_api api = { .api = GCHEAP_API };

			EXPECT_EQ(0, ioctl(fd, GCHEAP_IOC_API, &api));
		}
		close(fd);
	}
	EXPECT_TRUE(handshake_ok());
}

TEST_HARNESS_MAIN
