// SPDX-License-Identifier: GPL-2.0
/*
 * Heaps through the raw uAPI: creation, the mapping and what may be done
 * to it, the cache operations and every validation failure, limits, and
 * lifetime (close, munmap, exit, SIGKILL) with the module's page counter
 * back to zero after each test.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

#define ARENA		(64ull << 20)

struct layout {
	int fd;
	struct gcheap_heap_create hc;
	char *map;
	const struct gcheap_header *hdr;
};

static int heap_open(struct layout *l, unsigned long long bytes)
{
	int ret;

	l->map = NULL;
	l->fd = open_api();
	if (l->fd < 0)
		return l->fd;
	ret = heap_create(l->fd, bytes, &l->hc);
	if (ret)
		return ret;
	l->map = mmap(NULL, l->hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (l->map == MAP_FAILED) {
		l->map = NULL;
		return -errno;
	}
	l->hdr = (const void *)l->map;
	return 0;
}

static void heap_close(struct layout *l)
{
	if (l->map)
		munmap(l->map, l->hc.map_bytes);
	if (l->fd >= 0)
		close(l->fd);
	l->map = NULL;
	l->fd = -1;
}

static struct gcheap_slot *slot_of(struct layout *l, int cpu, unsigned int sc)
{
	return (struct gcheap_slot *)(l->map + l->hc.slots_offset +
				      (size_t)cpu * l->hc.cpu_stride + sc * sizeof(struct gcheap_slot));
}

/*
 * A refill fills the slot of the CPU the call ran on and says which; a test
 * that then reads or writes that slot and calls again must still be on that
 * CPU, or its second call works on another CPU's slot.  Stay where we are.
 */
static int pin_here(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static unsigned int popcount_slot(const struct gcheap_slot *s)
{
	unsigned int w, n = 0;

	for (w = 0; w < GCHEAP_SLOT_WORDS; w++)
		n += __builtin_popcountll(s->free[w]);
	return n;
}

FIXTURE(heap) {
	struct layout l;
};

FIXTURE_SETUP(heap)
{
	if (debugfs_counter("pages") < 0)
		SKIP(return, "no /sys/kernel/debug/gcheap/pages");
	ASSERT_EQ(0, debugfs_counter("pages"));
	ASSERT_EQ(0, heap_open(&self->l, ARENA));
}

/* Every test gives every page back. */
FIXTURE_TEARDOWN(heap)
{
	heap_close(&self->l);
	EXPECT_EQ(0, pages_settled());
	EXPECT_EQ(0, debugfs_counter("heaps"));
}

/* --- creation --- */

TEST(create_validation)
{
	struct gcheap_heap_create hc;
	int fd = open(DEV, O_RDWR);

	ASSERT_LE(0, fd);
	/* Before the handshake. */
	EXPECT_EQ(-EBADFD, heap_create(fd, ARENA, &hc));
	close(fd);

	fd = open_api();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, heap_create(fd, 0, &hc));
	EXPECT_EQ(-EINVAL, heap_create(fd, 1ull << 62, &hc));
	memset(&hc, 0, sizeof(hc));
	hc.arena_bytes = ARENA;
	hc.flags = 1u << 31;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_HEAP_CREATE, &hc));
	hc.flags = 0;
	/* GOGC only with its flag, and within range. */
	hc.gogc = 100;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_HEAP_CREATE, &hc));
	hc.flags = GCHEAP_HEAP_GOGC;
	hc.gogc = -2;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_HEAP_CREATE, &hc));
	hc.gogc = GCHEAP_GOGC_MAX + 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_HEAP_CREATE, &hc));
	hc.flags = 0;
	hc.gogc = 0;
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_HEAP_CREATE, NULL));
	/* None of that made a heap. */
	EXPECT_EQ(0, debugfs_counter("heaps"));
	ASSERT_EQ(0, heap_create(fd, ARENA, &hc));
	EXPECT_EQ(-EEXIST, heap_create(fd, ARENA, &hc));
	EXPECT_EQ(1, debugfs_counter("heaps"));
	close(fd);
	EXPECT_EQ(0, pages_settled());
	EXPECT_EQ(0, debugfs_counter("heaps"));
}

/* The max_heap_mb parameter caps the arena. */
TEST(create_max_heap_param)
{
	struct gcheap_heap_create hc;
	int fd = open_api();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, param_set("max_heap_mb", "32"));
	EXPECT_EQ(-EINVAL, heap_create(fd, 33ull << 20, &hc));
	EXPECT_EQ(0, heap_create(fd, 32ull << 20, &hc));
	ASSERT_EQ(0, param_set("max_heap_mb", "16384"));
	close(fd);
}

TEST_F(heap, layout)
{
	const struct gcheap_heap_create *hc = &self->l.hc;
	unsigned int i;

	EXPECT_EQ(4096u, hc->slots_offset);
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_CONF), (long)hc->nr_cpus);
	EXPECT_EQ(hc->nr_span_classes * sizeof(struct gcheap_slot), hc->cpu_stride);
	EXPECT_LE(hc->slots_offset + hc->nr_cpus * hc->cpu_stride, hc->pagemap_offset);
	EXPECT_EQ(hc->arena_offset + ARENA, hc->map_bytes);
	EXPECT_LE(hc->pagemap_offset + ARENA / 4096 * 8, hc->arena_offset);
	EXPECT_EQ(GCHEAP_HEADER_MAGIC, self->l.hdr->magic);
	EXPECT_EQ(2 * self->l.hdr->nr_classes, hc->nr_span_classes);
	ASSERT_LE(1u, self->l.hdr->nr_classes);
	EXPECT_EQ(16u, self->l.hdr->classes[0].size);
	EXPECT_EQ(GCHEAP_SMALL_MAX, self->l.hdr->classes[self->l.hdr->nr_classes - 1].size);
	/* Every slot starts empty. */
	for (i = 0; i < hc->nr_span_classes; i++)
		EXPECT_EQ(0, slot_of(&self->l, 0, i)->base);
}

/* The size classes keep their promises: 16-byte multiples, ascending,
 * internal waste at most 12.5% beyond 16-byte rounding, span tails at most
 * an eighth of the span, and at most 1024 objects a span.
 */
TEST_F(heap, size_classes)
{
	const struct gcheap_header *h = self->l.hdr;
	unsigned int c;

	for (c = 0; c < h->nr_classes; c++) {
		const struct gcheap_class *k = &h->classes[c];
		unsigned int prev = c ? h->classes[c - 1].size : 0;
		unsigned int span = k->span_pages * 4096;

		EXPECT_EQ(0u, k->size % 16);
		EXPECT_LT(prev, k->size);
		/* The worst request: prev + 16 (rounded) in a class of size. */
		if (prev)
			EXPECT_LE((k->size - (prev + 16)) * 8, k->size) TH_LOG("class %u", k->size);
		EXPECT_EQ(span / k->size, k->objects);
		EXPECT_LE(span % k->size * 8, span) TH_LOG("class %u tail", k->size);
		EXPECT_LE(k->objects, GCHEAP_SLOT_WORDS * 64u);
		EXPECT_LE(1u, k->objects);
	}
}

/* --- the mapping --- */

TEST(mmap_validation)
{
	struct gcheap_heap_create hc;
	int fd = open_api();
	void *p;

	ASSERT_LE(0, fd);
	/* No heap yet. */
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, heap_create(fd, ARENA, &hc));

	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes - 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes - 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0));
	EXPECT_EQ(EPERM, errno);

	p = mmap(NULL, hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* One mapping per heap, even after the first is gone. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EBUSY, errno);
	munmap(p, hc.map_bytes);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
	EXPECT_EQ(EBUSY, errno);
	close(fd);
	EXPECT_EQ(0, pages_settled());
}

/* The mapping can be neither split, grown, shrunk nor moved, nor made
 * executable, and it stays whole and usable after every refusal.
 */
TEST_F(heap, mapping_is_pinned)
{
	size_t len = self->l.hc.map_bytes;
	char *m = self->l.map;
	unsigned long long cpu;
	void *q;

	EXPECT_EQ(-1, munmap(m + self->l.hc.arena_offset, 4096));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, munmap(m, 4096));
	EXPECT_EQ(-1, mprotect(m + self->l.hc.arena_offset, 4096, PROT_READ));
	EXPECT_EQ(-1, mprotect(m, len, PROT_READ | PROT_WRITE | PROT_EXEC));
	q = mremap(m, len, len + 4096, 0);
	EXPECT_EQ(MAP_FAILED, q);
	q = mremap(m, len, len - 4096, 0);
	EXPECT_EQ(MAP_FAILED, q);
	q = mremap(m, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, m + len + (1 << 30));
	EXPECT_EQ(MAP_FAILED, q);
	/* Still whole: a refill works and its span is readable and writable. */
	ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu));
	{
		struct gcheap_slot *s = slot_of(&self->l, cpu, 0);
		char *obj = (char *)(unsigned long)s->base;

		ASSERT_NE(0, s->base);
		EXPECT_EQ(0, obj[0]);
		obj[0] = 42;
		EXPECT_EQ(42, obj[0]);
	}
}

static sigjmp_buf fault_jmp;

static void fault_handler(int sig)
{
	siglongjmp(fault_jmp, sig);
}

/* Arena pages outside any span are not there to touch (SIGBUS), and a
 * child does not inherit the mapping at all (SIGSEGV).
 */
TEST_F(heap, untouched_arena_faults)
{
	volatile char *p = self->l.map + self->l.hc.arena_offset + ARENA - 4096;
	struct sigaction sa = { .sa_handler = fault_handler }, old;
	int status, sig;
	pid_t pid;

	ASSERT_EQ(0, sigaction(SIGBUS, &sa, &old));
	sig = sigsetjmp(fault_jmp, 1);
	if (!sig)
		(void)*p;
	EXPECT_EQ(SIGBUS, sig);
	sigaction(SIGBUS, &old, NULL);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		(void)*p;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
}

/* Another process cannot map or use the heap through an inherited fd. */
TEST(other_process_refused)
{
	struct gcheap_heap_create hc;
	int fd = open_api(), status;
	pid_t pid;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, heap_create(fd, ARENA, &hc));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct gcheap_heap_stats st;
		void *p = mmap(NULL, hc.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (p != MAP_FAILED || errno != EACCES)
			_exit(1);
		if (heap_stats(fd, &st) != -EACCES)
			_exit(2);
		if (cache_op(fd, GCHEAP_OP_REFILL, 0, 0, NULL) != -EACCES)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(fd);
	EXPECT_EQ(0, pages_settled());
}

/* --- cache operations --- */

TEST(cache_before_heap_or_map)
{
	struct gcheap_heap_create hc;
	struct gcheap_heap_stats st;
	int fd = open(DEV, O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBADFD, cache_op(fd, GCHEAP_OP_REFILL, 0, 0, NULL));
	EXPECT_EQ(-EBADFD, heap_stats(fd, &st));
	close(fd);
	fd = open_api();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENODEV, cache_op(fd, GCHEAP_OP_REFILL, 0, 0, NULL));
	EXPECT_EQ(-ENODEV, heap_stats(fd, &st));
	ASSERT_EQ(0, heap_create(fd, ARENA, &hc));
	/* Created, not mapped: nothing to hand out addresses in. */
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_REFILL, 0, 0, NULL));
	EXPECT_EQ(0, heap_stats(fd, &st));
	EXPECT_EQ(ARENA, st.arena_bytes);
	close(fd);
	EXPECT_EQ(0, pages_settled());
}

TEST_F(heap, cache_batch_validation)
{
	struct gcheap_cache_op ops[GCHEAP_CACHE_OPS_MAX + 1];
	struct gcheap_cache c = { .ops = (unsigned long)ops };
	unsigned int nsc = self->l.hc.nr_span_classes;
	int fd = self->l.fd;

	memset(ops, 0, sizeof(ops));
	ops[0].op = GCHEAP_OP_REFILL;
	c.nr = 0;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.nr = GCHEAP_CACHE_OPS_MAX + 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.nr = 1;
	c.flags = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.flags = 0;
	c.pad = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.pad = 0;
	c.done = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.done = 0;
	c.ops = 16;
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	c.ops = (unsigned long)ops;
	EXPECT_EQ(-EFAULT, xioctl(fd, GCHEAP_IOC_CACHE, NULL));

	/* One bad op refuses the whole batch before anything is done. */
	ops[1].op = GCHEAP_OP_REFILL;
	ops[1].cls = nsc;
	c.nr = 2;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	EXPECT_EQ(0, slot_of(&self->l, 0, 0)->base);
	EXPECT_EQ(0, slot_of(&self->l, 1 % self->l.hc.nr_cpus, 0)->base);
#define BAD_OP(field, value) do {					\
		memset(ops, 0, sizeof(ops));				\
		ops[0].op = GCHEAP_OP_REFILL;				\
		ops[0].field = value;					\
		c.nr = 1;						\
		EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c))	\
			TH_LOG(#field " = " #value);			\
	} while (0)
	BAD_OP(op, 0);
	BAD_OP(op, 7);
	BAD_OP(op, ~0u);
	BAD_OP(cls, nsc);
	BAD_OP(cls, ~0u);
	BAD_OP(arg, 1);
	BAD_OP(pad, 1);
	BAD_OP(result, 1);
	BAD_OP(error, -1);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GCHEAP_OP_ALLOC_LARGE;
	ops[0].cls = 2;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	ops[0].op = GCHEAP_OP_FREE;
	ops[0].cls = 1;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
	ops[0].op = GCHEAP_OP_RELEASE_THREAD;
	ops[0].cls = nsc;
	EXPECT_EQ(-EINVAL, xioctl(fd, GCHEAP_IOC_CACHE, &c));
}

/* Operations that validate but cannot be carried out fail alone. */
TEST_F(heap, cache_op_errors)
{
	unsigned long arena = (unsigned long)self->l.map + self->l.hc.arena_offset;
	struct gcheap_slot bogus = { .base = arena };
	unsigned long long addr;
	int fd = self->l.fd;

	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, 100, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, GCHEAP_SMALL_MAX, NULL));
	EXPECT_EQ(-ENOMEM, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, ARENA + 1, NULL));
	EXPECT_EQ(-ENOMEM, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 0, ~0ull, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, arena, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, arena - 16, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, arena + ARENA, NULL));
	/* A thread slot that names a span it does not hold. */
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_REFILL_THREAD, 0, (unsigned long)&bogus, NULL));
	bogus.base = arena + 8;
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_RELEASE_THREAD, 0, (unsigned long)&bogus, NULL));
	bogus.base = 12345;
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_REFILL_THREAD, 0, (unsigned long)&bogus, NULL));
	EXPECT_EQ(-EFAULT, cache_op(fd, GCHEAP_OP_REFILL_THREAD, 0, 16, NULL));

	/* A large object: freed once, the second free is refused. */
	ASSERT_EQ(0, cache_op(fd, GCHEAP_OP_ALLOC_LARGE, 1, GCHEAP_SMALL_MAX + 1, &addr));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, addr + 4096, NULL));
	EXPECT_EQ(0, cache_op(fd, GCHEAP_OP_FREE, 0, addr, NULL));
	EXPECT_EQ(-EINVAL, cache_op(fd, GCHEAP_OP_FREE, 0, addr, NULL));
}

TEST_F(heap, stats_validation)
{
	struct gcheap_heap_stats st = { .flags = 1 };

	EXPECT_EQ(-EINVAL, xioctl(self->l.fd, GCHEAP_IOC_STATS, &st));
	st = (struct gcheap_heap_stats){ .pad = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->l.fd, GCHEAP_IOC_STATS, &st));
	EXPECT_EQ(-EFAULT, xioctl(self->l.fd, GCHEAP_IOC_STATS, NULL));
}

/* Refill and release every span class, on whatever CPU we run, checking
 * what the slot says against the class table and the page map.
 */
TEST_F(heap, refill_release_all_classes)
{
	unsigned int nsc = self->l.hc.nr_span_classes, sc, round;
	unsigned long arena = (unsigned long)self->l.map + self->l.hc.arena_offset;
	const struct gcheap_pageinfo *pm = (const void *)(self->l.map + self->l.hc.pagemap_offset);
	struct gcheap_heap_stats st;

	ASSERT_EQ(0, pin_here());
	for (round = 0; round < 3; round++) {
		for (sc = 0; sc < nsc; sc++) {
			const struct gcheap_class *k = &self->l.hdr->classes[sc >> 1];
			unsigned long long cpu, gen;
			struct gcheap_slot *s;
			unsigned long page;

			ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_REFILL, sc, 0, &cpu));
			ASSERT_LT(cpu, self->l.hc.nr_cpus);
			s = slot_of(&self->l, cpu, sc);
			gen = s->gen;
			ASSERT_LE(arena, s->base);
			ASSERT_GT(arena + ARENA, s->base);
			EXPECT_EQ(k->size, s->size);
			EXPECT_EQ((k->objects + 63) / 64, s->nwords);
			/* Fresh, or a span that came back with the two objects
			 * each earlier round kept: all free but those.
			 */
			EXPECT_GE(k->objects, popcount_slot(s));
			EXPECT_LE(k->objects - 2 * round, popcount_slot(s));
			page = (s->base - arena) / 4096;
			EXPECT_EQ(sc + 1, pm[page].kind);
			EXPECT_EQ(0u, pm[page].span_offset);
			EXPECT_EQ(k->span_pages - 1, pm[page + k->span_pages - 1].span_offset);
			/* Allocate two objects the way the fast path does. */
			s->free[0] &= ~3ull;
			((char *)(unsigned long)s->base)[0] = 1;
			ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_RELEASE, sc, 0, &cpu));
			s = slot_of(&self->l, cpu, sc);
			EXPECT_EQ(0, s->base);
			EXPECT_EQ(0u, popcount_slot(s));
			EXPECT_LT(gen, s->gen);
		}
	}
	ASSERT_EQ(0, heap_stats(self->l.fd, &st));
	EXPECT_LE(nsc, st.refills);
	EXPECT_LE(1u, st.spans);
	/* Two objects a class and round were kept. */
	EXPECT_LT(0, st.live_bytes);
}

/* A slot's lie about its span is the process's own loss, nothing more:
 * bits the module did not hand out are ignored.
 */
TEST_F(heap, hostile_slot_contents)
{
	unsigned long long cpu, cpu2;
	struct gcheap_heap_stats st;
	struct gcheap_slot *s;
	int i;

	ASSERT_EQ(0, pin_here());
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu));
		s = slot_of(&self->l, cpu, 0);
		s->base = 0xdeadbeef;
		s->size = 1;
		s->nwords = 1000;
		memset(s->free, 0xff, sizeof(s->free));
		s->free[i % 8] = 0;
		s->gen = 0;
		ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu2));
		/* Another slot's garbage too. */
		memset(slot_of(&self->l, 0, 1), 0xa5, sizeof(struct gcheap_slot));
		ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_RELEASE, 1, 0, &cpu2));
	}
	ASSERT_EQ(0, heap_stats(self->l.fd, &st));
	EXPECT_LE(st.live_bytes, st.heap_bytes);
}

/* --- limits --- */

/* A heap at its limit gets ENOMEM from refills, never a warning; what it
 * holds stays usable; freeing makes room again.
 */
TEST(arena_limit)
{
	struct layout l;
	unsigned long long cpu, addr, first = 0;
	int refills = 0, ret;

	ASSERT_EQ(0, pin_here());
	ASSERT_EQ(0, heap_open(&l, 1 << 20));
	for (;;) {
		ret = cache_op(l.fd, GCHEAP_OP_REFILL, 2, 0, &cpu);
		if (ret)
			break;
		/* Take every object, as the fast path would. */
		memset(slot_of(&l, cpu, 2)->free, 0, sizeof(slot_of(&l, cpu, 2)->free));
		refills++;
		ASSERT_LT(refills, 1000);
	}
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_LE(32, refills);
	EXPECT_EQ(-ENOMEM, cache_op(l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 64 << 10, &addr));
	EXPECT_EQ(-ENOMEM, cache_op(l.fd, GCHEAP_OP_REFILL, 10, 0, &cpu));
	heap_close(&l);
	EXPECT_EQ(0, pages_settled());

	/* Large objects up to the arena's size. */
	ASSERT_EQ(0, heap_open(&l, 1 << 20));
	ASSERT_EQ(0, cache_op(l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 1 << 20, &first));
	EXPECT_EQ(-ENOMEM, cache_op(l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 40 << 10, &addr));
	EXPECT_EQ(0, cache_op(l.fd, GCHEAP_OP_FREE, 0, first, NULL));
	EXPECT_EQ(0, cache_op(l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 40 << 10, &addr));
	heap_close(&l);
	EXPECT_EQ(0, pages_settled());
}

/* max_user_mb: all of one user's heaps together. */
TEST(user_limit)
{
	struct layout a, b;
	unsigned long long addr;
	int ret, n = 0;

	ASSERT_EQ(0, param_set("max_user_mb", "4"));
	ASSERT_EQ(0, heap_open(&a, 64 << 20));
	ASSERT_EQ(0, heap_open(&b, 64 << 20));
	while (!(ret = cache_op(a.fd, GCHEAP_OP_ALLOC_LARGE, 0, 256 << 10, &addr)))
		n++;
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_GE(16, n);
	EXPECT_LE(8, n);
	EXPECT_EQ(-ENOMEM, cache_op(b.fd, GCHEAP_OP_ALLOC_LARGE, 0, 256 << 10, &addr));
	ASSERT_EQ(0, param_set("max_user_mb", "0"));
	EXPECT_EQ(0, cache_op(b.fd, GCHEAP_OP_ALLOC_LARGE, 0, 256 << 10, &addr));
	heap_close(&a);
	heap_close(&b);
	EXPECT_EQ(0, pages_settled());
}

/* --- lifetime --- */

/* Close and munmap in either order free everything. */
TEST(close_and_unmap_orders)
{
	unsigned long long cpu;
	struct layout l;

	ASSERT_EQ(0, heap_open(&l, ARENA));
	ASSERT_EQ(0, cache_op(l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu));
	close(l.fd);
	/* The mapping keeps the heap. */
	EXPECT_EQ(1, debugfs_counter("heaps"));
	EXPECT_EQ(0, ((char *)(unsigned long)slot_of(&l, cpu, 0)->base)[0]);
	munmap(l.map, l.hc.map_bytes);
	EXPECT_EQ(0, pages_settled());
	EXPECT_EQ(0, debugfs_counter("heaps"));

	ASSERT_EQ(0, heap_open(&l, ARENA));
	ASSERT_EQ(0, cache_op(l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu));
	munmap(l.map, l.hc.map_bytes);
	EXPECT_EQ(1, debugfs_counter("heaps"));
	/* Unmapped: operations need the mapping. */
	EXPECT_EQ(-EINVAL, cache_op(l.fd, GCHEAP_OP_REFILL, 0, 0, &cpu));
	close(l.fd);
	EXPECT_EQ(0, pages_settled());
	EXPECT_EQ(0, debugfs_counter("heaps"));
}

/* Many heaps in one process, and in many processes at once. */
TEST(many_heaps)
{
	struct layout l[24];
	unsigned long long cpu;
	int i, status;
	pid_t pids[4];

	for (i = 0; i < 24; i++) {
		ASSERT_EQ(0, heap_open(&l[i], 16 << 20));
		ASSERT_EQ(0, cache_op(l[i].fd, GCHEAP_OP_REFILL, i % 8, 0, &cpu));
		*(int *)(unsigned long)slot_of(&l[i], cpu, i % 8)->base = i;
	}
	EXPECT_EQ(24, debugfs_counter("heaps"));
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			struct layout c[8];
			int j;

			for (j = 0; j < 8; j++)
				if (heap_open(&c[j], 16 << 20) ||
				    cache_op(c[j].fd, GCHEAP_OP_REFILL, j, 0, &cpu))
					_exit(1);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* Each heap kept its own data. */
	for (i = 0; i < 24; i++) {
		int found = 0;
		unsigned int c;

		for (c = 0; c < l[i].hc.nr_cpus; c++) {
			struct gcheap_slot *s = slot_of(&l[i], c, i % 8);

			if (s->base && *(int *)(unsigned long)s->base == i)
				found = 1;
		}
		EXPECT_TRUE(found) TH_LOG("heap %d", i);
		heap_close(&l[i]);
	}
	EXPECT_EQ(0, pages_settled());
}

/* SIGKILL at any point frees everything the process held. */
TEST(sigkill_while_holding)
{
	int round, status;

	for (round = 0; round < 6; round++) {
		int pipefd[2];
		pid_t pid;
		char c;

		ASSERT_EQ(0, pipe(pipefd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			struct gcheap_slot ts = { 0 };
			unsigned long long cpu, addr;
			struct layout l;
			int i;

			close(pipefd[0]);
			if (heap_open(&l, ARENA))
				_exit(1);
			for (i = 0; i < 40; i++)
				cache_op(l.fd, GCHEAP_OP_REFILL, i, 0, &cpu);
			cache_op(l.fd, GCHEAP_OP_REFILL_THREAD, 3, (unsigned long)&ts, NULL);
			cache_op(l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 1 << 20, &addr);
			if (write(pipefd[1], "x", 1) != 1)
				_exit(1);
			/* Keep refilling until killed, some rounds. */
			for (;;)
				if (round & 1)
					cache_op(l.fd, GCHEAP_OP_REFILL, round, 0, &cpu);
				else
					pause();
		}
		close(pipefd[1]);
		ASSERT_EQ(1, read(pipefd[0], &c, 1));
		close(pipefd[0]);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
		EXPECT_EQ(0, pages_settled()) TH_LOG("round %d", round);
		EXPECT_EQ(0, debugfs_counter("heaps"));
	}
}

/* --- threads --- */

struct refiller {
	struct layout *l;
	int id;
	int errors;
};

static void *refill_loop(void *arg)
{
	struct refiller *r = arg;
	struct gcheap_slot ts[4];
	unsigned long long cpu;
	int i;

	memset(ts, 0, sizeof(ts));
	for (i = 0; i < 300; i++) {
		unsigned int sc = (r->id + i) % 12;

		if (cache_op(r->l->fd, GCHEAP_OP_REFILL, sc, 0, &cpu))
			r->errors++;
		if (cache_op(r->l->fd, GCHEAP_OP_REFILL_THREAD, sc % 4,
			     (unsigned long)&ts[sc % 4], NULL))
			r->errors++;
		if (!(i % 7) && cache_op(r->l->fd, GCHEAP_OP_RELEASE, sc, 0, &cpu))
			r->errors++;
	}
	for (i = 0; i < 4; i++)
		if (cache_op(r->l->fd, GCHEAP_OP_RELEASE_THREAD, i, (unsigned long)&ts[i], NULL))
			r->errors++;
	return NULL;
}

/* Threads refilling at once on all CPUs, per-CPU and per-thread slots. */
TEST_F(heap, concurrent_refills)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) * 3;
	struct refiller r[64];
	pthread_t t[64];
	int i;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++) {
		r[i] = (struct refiller){ .l = &self->l, .id = i };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, refill_loop, &r[i]));
	}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, r[i].errors) TH_LOG("thread %d", i);
	}
}

/* --- the scavenger --- */

TEST_F(heap, scavenger_returns_pages)
{
	struct gcheap_heap_stats before, after;
	unsigned long long addr[8];
	int i;

	ASSERT_EQ(0, param_set("scavenge_delay_ms", "0"));
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 1 << 20, &addr[i]));
		memset((void *)(unsigned long)addr[i], 0x5a, 1 << 20);
	}
	ASSERT_EQ(0, heap_stats(self->l.fd, &before));
	EXPECT_LE(8ull << 20, before.resident_bytes);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_FREE, 0, addr[i], NULL));
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, heap_stats(self->l.fd, &after));
		if (after.resident_bytes + (8ull << 20) <= before.resident_bytes)
			break;
		usleep(20000);
	}
	EXPECT_GE(before.resident_bytes - (8ull << 20), after.resident_bytes);
	EXPECT_EQ(0, after.live_bytes);
	ASSERT_EQ(0, param_set("scavenge_delay_ms", "1000"));
	/* The same addresses come back zeroed, from fresh pages. */
	ASSERT_EQ(0, cache_op(self->l.fd, GCHEAP_OP_ALLOC_LARGE, 0, 1 << 20, &addr[0]));
	for (i = 0; i < (1 << 20); i += 4096)
		ASSERT_EQ(0, ((char *)(unsigned long)addr[0])[i]);
}

TEST_HARNESS_MAIN
