// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/gcheap device and its one-shot API handshake: every accepted and
 * every refused case of GCHEAP_IOC_API, the commands gated behind it, and
 * the errno of each validation failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/gcheap.h>

#include "kselftest_harness.h"

#define DEV "/dev/gcheap"

static int api_call(int fd, uint32_t api_nr, uint64_t features, struct gcheap_api *out)
{
	struct gcheap_api api = { .api = api_nr, .features = features };
	int ret = ioctl(fd, GCHEAP_IOC_API, &api);

	if (out)
		*out = api;
	return ret < 0 ? -errno : ret;
}

static int info_call(int fd, struct gcheap_info *info)
{
	return ioctl(fd, GCHEAP_IOC_INFO, info) < 0 ? -errno : 0;
}

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", DEV, strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST(device_node)
{
	struct stat st;

	ASSERT_EQ(0, stat(DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 07777);
	EXPECT_EQ(10, major(st.st_rdev)); /* a misc device */
}

/* Mode 0666 means what it says: an unprivileged user can open and use it. */
TEST(unprivileged_open)
{
	pid_t pid = fork();
	int status;

	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = open(DEV, O_RDWR);
		if (fd < 0)
			_exit(3);
		_exit(api_call(fd, GCHEAP_API, 0, NULL) == 0 ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(dev, handshake)
{
	struct gcheap_api api;

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, &api));
	EXPECT_EQ(GCHEAP_API, api.api);
	EXPECT_EQ(GCHEAP_FEATURES_ALL, api.features);
	EXPECT_EQ((1ull << _IOC_NR(GCHEAP_IOC_API)) | (1ull << _IOC_NR(GCHEAP_IOC_INFO)) |
		  (1ull << _IOC_NR(GCHEAP_IOC_HEAP_CREATE)) |
		  (1ull << _IOC_NR(GCHEAP_IOC_CACHE)) | (1ull << _IOC_NR(GCHEAP_IOC_STATS)) |
		  (1ull << _IOC_NR(GCHEAP_IOC_THREAD)) |
		  (1ull << _IOC_NR(GCHEAP_IOC_ROOTS)) | (1ull << _IOC_NR(GCHEAP_IOC_GC)) |
		  (1ull << _IOC_NR(GCHEAP_IOC_FORK)),
		  api.ioctls);
	EXPECT_NE(0, api.version);
	EXPECT_EQ(0, api.pad2);
}

/* The version the handshake reports is the one the module declares. */
TEST_F(dev, handshake_version_matches_module)
{
	struct gcheap_api api;
	unsigned int maj, min, pat;
	FILE *f;

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, &api));
	f = fopen("/sys/module/gcheap/version", "r");
	if (!f)
		SKIP(return, "gcheap is built in or has no version in sysfs");
	ASSERT_EQ(3, fscanf(f, "%u.%u.%u", &maj, &min, &pat));
	fclose(f);
	EXPECT_EQ((maj << 16) | (min << 8) | pat, api.version);
}

TEST_F(dev, handshake_bad_api)
{
	EXPECT_EQ(-EINVAL, api_call(self->fd, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, api_call(self->fd, GCHEAP_API + 1, 0, NULL));
	EXPECT_EQ(-EINVAL, api_call(self->fd, ~0u, 0, NULL));
	/* None of that counts as a handshake. */
	EXPECT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
}

TEST_F(dev, handshake_nonzero_padding)
{
	struct gcheap_api api = { .api = GCHEAP_API, .pad = 1 };

	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_API, &api));
	EXPECT_EQ(EINVAL, errno);
	api.pad = 0x80000000u;
	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_API, &api));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
}

TEST_F(dev, handshake_unknown_features)
{
	int bit;

	for (bit = 0; bit < 64; bit++) {
		uint64_t f = 1ull << bit;

		if (f & GCHEAP_FEATURES_ALL)
			continue;
		EXPECT_EQ(-EINVAL, api_call(self->fd, GCHEAP_API, f, NULL))
			TH_LOG("feature bit %d accepted", bit);
	}
	EXPECT_EQ(-EINVAL, api_call(self->fd, GCHEAP_API, ~GCHEAP_FEATURES_ALL, NULL));
	EXPECT_EQ(0, api_call(self->fd, GCHEAP_API, GCHEAP_FEATURES_ALL, NULL));
}

TEST_F(dev, handshake_twice)
{
	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	EXPECT_EQ(-EBUSY, api_call(self->fd, GCHEAP_API, 0, NULL));
	EXPECT_EQ(-EBUSY, api_call(self->fd, GCHEAP_API, 0, NULL));
}

/* An argument the kernel cannot read or write leaves the file untouched. */
TEST_F(dev, handshake_efault)
{
	struct gcheap_api api = { .api = GCHEAP_API };
	void *ro;

	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_API, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_API, (void *)16));
	EXPECT_EQ(EFAULT, errno);

	/* Readable but not writable: the reply cannot be copied out. */
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memcpy(ro, &api, sizeof(api));
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_API, ro));
	EXPECT_EQ(EFAULT, errno);
	munmap(ro, 4096);

	EXPECT_EQ(-EBADFD, info_call(self->fd, &(struct gcheap_info){ 0 }));
	EXPECT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
}

TEST_F(dev, commands_before_handshake)
{
	struct gcheap_info info = { 0 };

	EXPECT_EQ(-EBADFD, info_call(self->fd, &info));
	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	EXPECT_EQ(0, info_call(self->fd, &info));
}

/* Every command the handshake advertises, except itself, is gated by it. */
TEST_F(dev, every_advertised_command_is_gated)
{
	struct gcheap_api api;
	unsigned int nr, gated = 0;
	int probe;

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, &api));
	probe = open(DEV, O_RDWR);
	ASSERT_LE(0, probe);
	for (nr = 0; nr < 64; nr++) {
		char buf[256] = { 0 };
		unsigned int size;

		if (!(api.ioctls & (1ull << nr)) || nr == _IOC_NR(GCHEAP_IOC_API))
			continue;
		/* Whatever its size, the answer before the handshake is EBADFD or,
		 * if the size is not the command's, ENOTTY; never success.
		 */
		for (size = 8; size <= sizeof(buf); size += 8) {
			int r = ioctl(probe, _IOC(_IOC_READ | _IOC_WRITE,
						  GCHEAP_IOC_MAGIC, nr, size), buf);

			EXPECT_EQ(-1, r);
			EXPECT_TRUE(errno == EBADFD || errno == ENOTTY)
				TH_LOG("nr %u size %u: %s", nr, size, strerror(errno));
			if (errno == EBADFD)
				gated++;
		}
	}
	EXPECT_LE(1, gated);
	close(probe);
}

static void expect_enotty(struct __test_metadata *_metadata, int fd)
{
	char buf[64] = { 0 };

	/* Wrong magic, an unknown number, a known number with the wrong size
	 * or direction, and a plain non-gcheap ioctl.
	 */
	EXPECT_EQ(-1, ioctl(fd, _IOWR(0xAB, 0x00, struct gcheap_api), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR(GCHEAP_IOC_MAGIC, 0x3f, struct gcheap_api), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR(GCHEAP_IOC_MAGIC, 0xff, struct gcheap_api), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR(GCHEAP_IOC_MAGIC, 0x00, char[16]), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOR(GCHEAP_IOC_MAGIC, 0x00, struct gcheap_api), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOW(GCHEAP_IOC_MAGIC, 0x01, struct gcheap_info), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IO(GCHEAP_IOC_MAGIC, 0x00), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, FIONREAD, buf));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, unknown_commands)
{
	expect_enotty(_metadata, self->fd);
	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	expect_enotty(_metadata, self->fd);
}

TEST_F(dev, info)
{
	struct gcheap_info info = { 0 };

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	ASSERT_EQ(0, info_call(self->fd, &info));
	EXPECT_EQ(sysconf(_SC_PAGESIZE), (long)info.page_size);
	EXPECT_LE(sysconf(_SC_NPROCESSORS_CONF), (long)info.nr_cpu_ids);
	EXPECT_EQ(0, info.pad2);
}

TEST_F(dev, info_bad_arguments)
{
	struct gcheap_info info = { .flags = 1 };

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	EXPECT_EQ(-EINVAL, info_call(self->fd, &info));
	info = (struct gcheap_info){ .flags = 0x80000000u };
	EXPECT_EQ(-EINVAL, info_call(self->fd, &info));
	info = (struct gcheap_info){ .pad = 1 };
	EXPECT_EQ(-EINVAL, info_call(self->fd, &info));
	EXPECT_EQ(-1, ioctl(self->fd, GCHEAP_IOC_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/* The handshake belongs to the open file: another open of the device has
 * its own, a dup() of the descriptor shares it.
 */
TEST_F(dev, handshake_is_per_open_file)
{
	struct gcheap_info info = { 0 };
	int other, dupfd;

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	other = open(DEV, O_RDWR);
	ASSERT_LE(0, other);
	dupfd = dup(self->fd);
	ASSERT_LE(0, dupfd);
	EXPECT_EQ(-EBADFD, info_call(other, &info));
	EXPECT_EQ(0, info_call(dupfd, &info));
	EXPECT_EQ(-EBUSY, api_call(dupfd, GCHEAP_API, 0, NULL));
	EXPECT_EQ(0, api_call(other, GCHEAP_API, 0, NULL));
	close(other);
	close(dupfd);
}

/* The handshake is not a mapping: nothing can be mapped yet. */
TEST_F(dev, no_mmap)
{
	void *p;

	ASSERT_EQ(0, api_call(self->fd, GCHEAP_API, 0, NULL));
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);
}

#define RACERS 16

struct racer {
	int fd;
	pthread_barrier_t *start;
	int result;
};

static void *race_handshake(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->start);
	r->result = api_call(r->fd, GCHEAP_API, 0, NULL);
	return NULL;
}

/* Of handshakes racing on one file exactly one succeeds, many times over. */
TEST(handshake_race)
{
	struct racer r[RACERS];
	pthread_t t[RACERS];
	pthread_barrier_t start;
	int round, i;

	for (round = 0; round < 50; round++) {
		int fd = open(DEV, O_RDWR), ok = 0, busy = 0;

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, pthread_barrier_init(&start, NULL, RACERS));
		for (i = 0; i < RACERS; i++) {
			r[i] = (struct racer){ .fd = fd, .start = &start };
			ASSERT_EQ(0, pthread_create(&t[i], NULL, race_handshake, &r[i]));
		}
		for (i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			ok += r[i].result == 0;
			busy += r[i].result == -EBUSY;
		}
		pthread_barrier_destroy(&start);
		EXPECT_EQ(1, ok) TH_LOG("round %d", round);
		EXPECT_EQ(RACERS - 1, busy) TH_LOG("round %d", round);
		close(fd);
	}
}

/* Opening and closing many files, some with a handshake, from many
 * threads: release must free each file's state exactly once (the debug
 * kernel's KASAN and kmemleak watch this).
 */
static void *open_close_loop(void *arg)
{
	long i, n = (long)arg;

	for (i = 0; i < n; i++) {
		int fd = open(DEV, O_RDWR);

		if (fd < 0)
			return (void *)1;
		if (i & 1)
			api_call(fd, GCHEAP_API, 0, NULL);
		close(fd);
	}
	return NULL;
}

TEST(open_close_threads)
{
	pthread_t t[4];
	void *res;
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, open_close_loop, (void *)500L));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(t[i], &res));
		EXPECT_EQ(NULL, res);
	}
}

TEST_HARNESS_MAIN
