// SPDX-License-Identifier: GPL-2.0
/*
 * The collector's commands through the raw uAPI, without libgcheap: every
 * validation error of GCHEAP_IOC_THREAD, GCHEAP_IOC_ROOTS, GCHEAP_IOC_GC and
 * GCHEAP_IOC_FORK, and what a collection does to objects a root range does
 * and does not reach.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

#define ARENA		(64ull << 20)

struct raw {
	int fd;
	struct gcheap_heap_create hc;
	char *map;
};

static int raw_open(struct raw *r)
{
	int ret;

	r->map = NULL;
	r->fd = open_api();
	if (r->fd < 0)
		return r->fd;
	ret = heap_create(r->fd, ARENA, &r->hc);
	if (ret)
		return ret;
	r->map = mmap(NULL, r->hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -errno;
	}
	return 0;
}

static void raw_close(struct raw *r)
{
	if (r->map)
		munmap(r->map, r->hc.map_bytes);
	if (r->fd >= 0)
		close(r->fd);
}

static int thread_op(int fd, struct gcheap_thread_reg tr)
{
	return xioctl(fd, GCHEAP_IOC_THREAD, &tr);
}

static int roots(int fd, struct gcheap_range *r, unsigned int nr)
{
	struct gcheap_roots rt = { .ranges = (uintptr_t)r, .nr = nr };

	return xioctl(fd, GCHEAP_IOC_ROOTS, &rt);
}

static int gc_op(int fd, struct gcheap_gc *g)
{
	return xioctl(fd, GCHEAP_IOC_GC, g);
}

static int collect(int fd)
{
	struct gcheap_gc g = { .op = GCHEAP_GC_COLLECT };

	return gc_op(fd, &g);
}

FIXTURE(raw) {
	struct raw r;
	char stack[4096];
};

FIXTURE_SETUP(raw)
{
	ASSERT_EQ(0, raw_open(&self->r));
}

FIXTURE_TEARDOWN(raw)
{
	raw_close(&self->r);
}

TEST_F(raw, thread_validation)
{
	uintptr_t lo = (uintptr_t)self->stack, hi = lo + sizeof(self->stack);
	struct gcheap_heap_stats st;
	int fd = self->r.fd;

	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){ .op = 3 }));
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = hi, .stack_hi = lo }));
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi, .pad2 = 1 }));
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = -1ull }));
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi, .extra = lo }));
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi, .extra = lo,
		.extra_len = GCHEAP_EXTRA_MAX + 1 }));
	/* Not a thread of this process: the init process. */
	EXPECT_EQ(-ESRCH, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .tid = 1, .stack_lo = lo, .stack_hi = hi }));
	EXPECT_EQ(-ENOENT, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_UNREGISTER }));
	ASSERT_EQ(0, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi }));
	EXPECT_EQ(-EEXIST, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi }));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(1, st.threads);
	EXPECT_EQ(-EINVAL, thread_op(fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_UNREGISTER, .stack_hi = hi }));
	EXPECT_EQ(0, thread_op(fd, (struct gcheap_thread_reg){ .op = GCHEAP_THREAD_UNREGISTER }));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(0, st.threads);
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_THREAD, NULL));
}

TEST_F(raw, roots_validation)
{
	struct gcheap_range r[2] = { { (uintptr_t)self->stack, sizeof(self->stack) } };
	struct gcheap_roots rt = { .ranges = (uintptr_t)r, .nr = 1, .flags = 1 };
	int fd = self->r.fd;

	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_ROOTS, &rt));
	rt = (struct gcheap_roots){ .ranges = (uintptr_t)r, .nr = GCHEAP_ROOTS_MAX + 1 };
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_ROOTS, &rt));
	r[1] = (struct gcheap_range){ (uintptr_t)self->stack, 0 };
	EXPECT_EQ(-EINVAL, roots(fd, r, 2));
	r[1] = (struct gcheap_range){ -4096ull, 8192 };
	EXPECT_EQ(-EINVAL, roots(fd, r, 2));
	r[1] = (struct gcheap_range){ 1ull << 62, 4096 };
	EXPECT_EQ(-EINVAL, roots(fd, r, 2));
	rt = (struct gcheap_roots){ .ranges = 8, .nr = 1 };
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_ROOTS, &rt));
	EXPECT_EQ(0, roots(fd, r, 1));
	/* An empty set clears them. */
	EXPECT_EQ(0, roots(fd, NULL, 0));
}

TEST_F(raw, gc_validation)
{
	struct gcheap_heap_stats st;
	int fd = self->r.fd;
	struct gcheap_gc g;

	g = (struct gcheap_gc){ .op = 9 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_COLLECT, .flags = 1 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_COLLECT, .value = 1 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_COLLECT, .cycle = 1 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_GOGC, .value = -2 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_GOGC, .value = GCHEAP_GOGC_MAX + 1 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_SOFT_LIMIT, .value = -1 };
	EXPECT_EQ(-EINVAL, gc_op(fd, &g));
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_GC, NULL));

	/* The settings show in the goal. */
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_GOGC, .value = 50 };
	ASSERT_EQ(0, gc_op(fd, &g));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(4ull << 20, st.next_gc_bytes);
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_SOFT_LIMIT, .value = 2 << 20 };
	ASSERT_EQ(0, gc_op(fd, &g));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(2ull << 20, st.next_gc_bytes);
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_SOFT_LIMIT, .value = 0 };
	ASSERT_EQ(0, gc_op(fd, &g));
	g = (struct gcheap_gc){ .op = GCHEAP_GC_SET_GOGC, .value = GCHEAP_GOGC_OFF };
	ASSERT_EQ(0, gc_op(fd, &g));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(0, st.next_gc_bytes);

	g = (struct gcheap_gc){ .op = GCHEAP_GC_COLLECT };
	ASSERT_EQ(0, gc_op(fd, &g));
	EXPECT_EQ(1, g.cycle);
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(1, st.cycles);
}

/* A heap that is not mapped cannot be collected. */
TEST(gc_needs_mapping)
{
	struct gcheap_heap_create hc;
	int fd = open_api();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, heap_create(fd, ARENA, &hc));
	EXPECT_EQ(-EINVAL, collect(fd));
	close(fd);
}

/*
 * A chain of objects reachable only from a root range survives any number
 * of collections; once the range is dropped, the collection frees it all,
 * and the memory comes back zero.
 */
TEST_F(raw, root_range_keeps_chain)
{
	unsigned long long first = 0, prev = 0, a;
	struct gcheap_heap_stats st;
	struct gcheap_range r;
	int fd = self->r.fd, i, k;
	uint64_t *o;

	/* 100 large objects (noscan 0), each pointing into the previous. */
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, 64 << 10, &a));
		o = (uint64_t *)(uintptr_t)a;
		o[0] = prev ? prev + 1000 : 0;	/* an interior pointer */
		o[1] = 0xfeedf00d00000000ull | i;
		if (!first)
			first = a;
		prev = a;
	}
	r = (struct gcheap_range){ (uintptr_t)&prev, sizeof(prev) };
	ASSERT_EQ(0, roots(fd, &r, 1));
	for (k = 0; k < 3; k++) {
		ASSERT_EQ(0, collect(fd));
		ASSERT_EQ(0, heap_stats(fd, &st));
		EXPECT_EQ(100ull * (64 << 10), st.marked_bytes);
		EXPECT_EQ(0, st.freed_bytes);
	}
	for (o = (uint64_t *)(uintptr_t)prev, i = 99; o; i--) {
		ASSERT_EQ(0xfeedf00d00000000ull | i, o[1]);
		o = o[0] ? (uint64_t *)(uintptr_t)(o[0] - 1000) : NULL;
	}
	EXPECT_EQ(-1, i);
	/* Unrooted: everything goes, zeroed. */
	ASSERT_EQ(0, roots(fd, NULL, 0));
	ASSERT_EQ(0, collect(fd));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(0, st.marked_bytes);
	EXPECT_EQ(100ull * (64 << 10), st.freed_bytes);
	EXPECT_EQ(0, st.large_objects);
	EXPECT_EQ(0, st.live_bytes);
}

/* Pointers inside a noscan (atomic) object keep nothing. */
TEST_F(raw, noscan_retains_nothing)
{
	unsigned long long keep, victim;
	struct gcheap_heap_stats st;
	struct gcheap_range r;
	int fd = self->r.fd;

	ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 1, 64 << 10, &keep));
	ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, 64 << 10, &victim));
	*(uint64_t *)(uintptr_t)keep = victim;
	r = (struct gcheap_range){ (uintptr_t)&keep, sizeof(keep) };
	ASSERT_EQ(0, roots(fd, &r, 1));
	victim = 0;
	ASSERT_EQ(0, collect(fd));
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(64 << 10, st.marked_bytes);
	EXPECT_EQ(64 << 10, st.freed_bytes);
	EXPECT_EQ(1, st.large_objects);
}

TEST_F(raw, fork_validation)
{
	struct gcheap_fork fk = { .op = GCHEAP_FORK_SNAPSHOT, .fd = 0 };
	int fd = self->r.fd, snap;

	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_SNAPSHOT, .fd = -1, .flags = 1 };
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_SNAPSHOT, .fd = -1, .pad = 1 };
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	fk = (struct gcheap_fork){ .op = 7, .fd = -1 };
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	/* A heap that is no snapshot cannot be adopted. */
	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_ADOPT, .fd = -1 };
	EXPECT_EQ(-ENODEV, xioctl(fd, GCHEAP_IOC_FORK, &fk));

	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_SNAPSHOT, .fd = -1 };
	ASSERT_EQ(0, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	snap = fk.fd;
	ASSERT_LE(0, snap);
	EXPECT_EQ(FD_CLOEXEC, fcntl(snap, F_GETFD) & FD_CLOEXEC);
	/* Owned by no process yet: nothing but adoption works on it. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->r.hc.map_bytes, PROT_READ | PROT_WRITE,
				   MAP_SHARED, snap, 0));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-EACCES, collect(snap));
	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_ADOPT, .fd = -1 };
	EXPECT_EQ(0, xioctl(snap, GCHEAP_IOC_FORK, &fk));
	EXPECT_EQ(-EBUSY, xioctl(snap, GCHEAP_IOC_FORK, &fk));
	close(snap);
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_FORK, NULL));
}

/* The snapshot holds the live objects, at the same places, as they were. */
TEST_F(raw, snapshot_copies_live_objects)
{
	unsigned long long live, dead;
	struct gcheap_heap_stats st;
	struct gcheap_range r;
	int fd = self->r.fd, status;
	struct gcheap_fork fk;
	pid_t pid;

	ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, 40 << 10, &live));
	ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, 40 << 10, &dead));
	memset((void *)(uintptr_t)live, 0x5a, 40 << 10);
	memset((void *)(uintptr_t)dead, 0xa5, 40 << 10);
	r = (struct gcheap_range){ (uintptr_t)&live, sizeof(live) };
	ASSERT_EQ(0, roots(fd, &r, 1));
	fk = (struct gcheap_fork){ .op = GCHEAP_FORK_SNAPSHOT, .fd = -1 };
	ASSERT_EQ(0, xioctl(fd, GCHEAP_IOC_FORK, &fk));
	/* The parent's heap goes on; its later writes are its own. */
	memset((void *)(uintptr_t)live, 0x11, 40 << 10);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct gcheap_fork ad = { .op = GCHEAP_FORK_ADOPT, .fd = -1 };
		unsigned char *p;
		char *map;

		if (xioctl(fk.fd, GCHEAP_IOC_FORK, &ad))
			_exit(1);
		map = mmap(self->r.map, self->r.hc.map_bytes, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_FIXED_NOREPLACE, fk.fd, 0);
		if (map != self->r.map)
			_exit(2);
		p = (unsigned char *)(uintptr_t)live;
		if (p[0] != 0x5a || p[(40 << 10) - 1] != 0x5a)
			_exit(3);
		if (heap_stats(fk.fd, &st) || st.large_objects != 1 ||
		    st.live_bytes != 40 << 10)
			_exit(4);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(fk.fd);
	/* The snapshot's collection freed the unrooted object here too. */
	ASSERT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(1, st.large_objects);
	EXPECT_EQ(0x11, *(unsigned char *)(uintptr_t)live);
}

/* Another thread of the process can be registered by its id. */
struct other {
	int fd;
	int pipefd[2];
	pid_t tid;
	char stack[4096];
	int own, again;
	ssize_t got;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	uintptr_t lo = (uintptr_t)o->stack, hi = lo + sizeof(o->stack);
	char c;

	__atomic_store_n(&o->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	/* Blocked here while the main thread collects: stopped, then resumed. */
	o->got = read(o->pipefd[0], &c, 1);
	/* Its own registration completes the record the main thread made. */
	o->own = thread_op(o->fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi,
		.extra = lo, .extra_len = 64 });
	o->again = thread_op(o->fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .stack_lo = lo, .stack_hi = hi });
	return NULL;
}

TEST_F(raw, register_other_thread)
{
	static struct other o;
	struct gcheap_heap_stats st;
	pthread_t t;

	o.fd = self->r.fd;
	ASSERT_EQ(0, pipe(o.pipefd));
	ASSERT_EQ(0, pthread_create(&t, NULL, other_thread, &o));
	while (!__atomic_load_n(&o.tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	ASSERT_EQ(0, thread_op(o.fd, (struct gcheap_thread_reg){
		.op = GCHEAP_THREAD_REGISTER, .tid = (uint32_t)o.tid,
		.stack_lo = (uintptr_t)o.stack,
		.stack_hi = (uintptr_t)o.stack + sizeof(o.stack) }));
	ASSERT_EQ(0, heap_stats(o.fd, &st));
	EXPECT_EQ(1, st.threads);
	/* The other thread is stopped in its read() and resumes it. */
	EXPECT_EQ(0, collect(o.fd));
	EXPECT_EQ(0, collect(o.fd));
	ASSERT_EQ(1, write(o.pipefd[1], "x", 1));
	pthread_join(t, NULL);
	EXPECT_EQ(1, o.got);
	EXPECT_EQ(0, o.own);
	EXPECT_EQ(-EEXIST, o.again);
	ASSERT_EQ(0, heap_stats(o.fd, &st));
	EXPECT_EQ(2, st.cycles);
	close(o.pipefd[0]);
	close(o.pipefd[1]);
}

TEST_HARNESS_MAIN
