// SPDX-License-Identifier: GPL-2.0
/*
 * libgcheap's allocator: the API's behaviour at every size class boundary,
 * zeroing, alignment, interior pointers, explicit frees, ENOMEM, threads on
 * all CPUs and migrating between them (the rseq abort path), per-thread
 * caches, thread registration and roots.  Tests that involve the fast path
 * run twice: with per-CPU slots (rseq) and with per-thread slots.
 *
 * The harness runs each test in a process of its own, so each one sets up
 * a fresh heap.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <gcheap.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

FIXTURE(lib) {
	int unused;
};

FIXTURE_VARIANT(lib) {
	bool rseq;
};

FIXTURE_VARIANT_ADD(lib, percpu) {
	.rseq = true,
};

FIXTURE_VARIANT_ADD(lib, perthread) {
	.rseq = false,
};

FIXTURE_SETUP(lib)
{
	struct gcheap_config cfg = { .heap_bytes = 512ull << 20 };
	struct gcheap_stats st;

	if (!variant->rseq)
		cfg.flags = GCHEAP_CONFIG_NO_RSEQ;
	else if (__rseq_size < 20 || (int)((struct rseq *)((char *)__builtin_thread_pointer() +
						  __rseq_offset))->cpu_id < 0)
		SKIP(return, "glibc did not register rseq: no per-CPU caches");
	ASSERT_EQ(0, gcheap_init(&cfg));
	ASSERT_EQ(0, gcheap_stats(&st));
	/* The variant really is the fast path it says it is. */
	ASSERT_EQ(variant->rseq, !!(st.flags & GCHEAP_STATS_PERCPU));
}

FIXTURE_TEARDOWN(lib)
{
}

static bool all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST(init_validation)
{
	struct gcheap_config cfg = { .flags = 1u << 5 };

	EXPECT_EQ(-EINVAL, gcheap_init(&cfg));
	cfg = (struct gcheap_config){ .reserved[1] = 1 };
	EXPECT_EQ(-EINVAL, gcheap_init(&cfg));
	/* GOGC only with its flag, and within range. */
	cfg = (struct gcheap_config){ .gogc = 50 };
	EXPECT_EQ(-EINVAL, gcheap_init(&cfg));
	cfg = (struct gcheap_config){ .flags = GCHEAP_CONFIG_GOGC, .gogc = -2 };
	EXPECT_EQ(-EINVAL, gcheap_init(&cfg));
	cfg = (struct gcheap_config){ .heap_bytes = 1ull << 60 };
	EXPECT_EQ(-EINVAL, gcheap_init(&cfg));
	/* A failed init leaves the way open. */
	ASSERT_EQ(0, gcheap_init(NULL));
	EXPECT_EQ(-EALREADY, gcheap_init(NULL));
}

TEST(implicit_init)
{
	void *p = gcheap_alloc(10);

	ASSERT_NE(NULL, p);
	EXPECT_EQ(-EALREADY, gcheap_init(NULL));
	/* The main thread was registered at set-up. */
	EXPECT_EQ(-EALREADY, gcheap_register_thread());
}

/* Every size up to past the largest class: zeroed, aligned, the size it
 * reports, its own memory (a pattern written into each survives).
 */
TEST_F(lib, sizes_zero_align)
{
	static unsigned char *ptr[4200];
	size_t n = 0, size, i;

	for (size = 0; size <= GCHEAP_SMALL_MAX + 300; size += size < 1024 ? 1 : 61) {
		unsigned char *p = gcheap_alloc(size);

		ASSERT_NE(NULL, p) TH_LOG("size %zu", size);
		EXPECT_EQ(0, (uintptr_t)p % GCHEAP_ALIGNMENT);
		EXPECT_LE(size, gcheap_size(p));
		ASSERT_TRUE(all_zero(p, gcheap_size(p))) TH_LOG("size %zu", size);
		EXPECT_EQ(p, gcheap_base(p));
		if (size)
			EXPECT_EQ(p, gcheap_base(p + size - 1));
		memset(p, (int)(n & 0xff), size);
		ASSERT_LT(n, sizeof(ptr) / sizeof(ptr[0]));
		ptr[n++] = p;
	}
	for (i = 0, size = 0; i < n; i++, size += size < 1024 ? 1 : 61) {
		size_t k;

		for (k = 0; k < size; k++)
			ASSERT_EQ(i & 0xff, ptr[i][k]) TH_LOG("object %zu byte %zu", i, k);
	}
}

/* Class boundaries: a class's size fits in it, one byte more does not. */
TEST_F(lib, class_boundaries)
{
	size_t s = 16, last = 0;

	while (s <= GCHEAP_SMALL_MAX) {
		void *a = gcheap_alloc(s), *b = gcheap_alloc(s + 1);

		ASSERT_NE(NULL, a);
		ASSERT_NE(NULL, b);
		EXPECT_EQ(s, gcheap_size(a)) TH_LOG("size %zu", s);
		EXPECT_LT(s, gcheap_size(b));
		/* Waste stays within an eighth beyond 16-byte rounding. */
		EXPECT_LE((gcheap_size(b) - ((s + 1 + 15) & ~15ul)) * 8, gcheap_size(b));
		last = s;
		s = gcheap_size(b);
	}
	EXPECT_EQ(GCHEAP_SMALL_MAX, last);
}

TEST_F(lib, large_objects)
{
	size_t sizes[] = { GCHEAP_SMALL_MAX + 1, 40000, 1 << 20, (3 << 20) + 5 };
	unsigned int i;

	for (i = 0; i < 4; i++) {
		unsigned char *p = gcheap_alloc(sizes[i]);
		unsigned char *q = gcheap_alloc_atomic(sizes[i]);

		ASSERT_NE(NULL, p);
		ASSERT_NE(NULL, q);
		EXPECT_EQ(0, (uintptr_t)p % 4096);
		EXPECT_EQ((sizes[i] + 4095) & ~4095ul, gcheap_size(p));
		EXPECT_EQ(p, gcheap_base(p + sizes[i] - 1));
		EXPECT_EQ(0, gcheap_size(p + 16));
		EXPECT_TRUE(all_zero(p, sizes[i]));
		memset(p, 0x77, sizes[i]);
		EXPECT_TRUE(all_zero(q, sizes[i]));
	}
}

TEST_F(lib, not_heap_pointers)
{
	int local;

	EXPECT_EQ(NULL, gcheap_base(&local));
	EXPECT_EQ(0, gcheap_size(&local));
	EXPECT_EQ(NULL, gcheap_base(NULL));
	EXPECT_EQ(0, gcheap_size((void *)16));
	/* Ignored, never a crash. */
	gcheap_free(&local);
	gcheap_free(NULL);
}

TEST_F(lib, zero_size_unique)
{
	void *a = gcheap_alloc(0), *b = gcheap_alloc(0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_NE(a, b);
}

TEST_F(lib, calloc_and_realloc)
{
	volatile size_t huge = SIZE_MAX / 2;
	unsigned char *p, *q;
	size_t i;

	errno = 0;
	EXPECT_EQ(NULL, gcheap_calloc(huge, 3));
	EXPECT_EQ(ENOMEM, errno);
	p = gcheap_calloc(100, 3);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, 300));

	for (i = 0; i < 300; i++)
		p[i] = (unsigned char)i;
	/* Shrinking, or growing within the class, keeps the object. */
	EXPECT_EQ(p, gcheap_realloc(p, 10));
	EXPECT_EQ(p, gcheap_realloc(p, gcheap_size(p)));
	q = gcheap_realloc(p, 5000);
	ASSERT_NE(NULL, q);
	EXPECT_NE(p, q);
	for (i = 0; i < 300; i++)
		ASSERT_EQ((unsigned char)i, q[i]);
	EXPECT_TRUE(all_zero(q + gcheap_size(p), 5000 - gcheap_size(p)));
	p = gcheap_realloc(q, 100000);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 300; i++)
		ASSERT_EQ((unsigned char)i, p[i]);
	q = gcheap_realloc(NULL, 64);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(64, gcheap_size(q));
	/* Not an object's start: refused, nothing freed. */
	errno = 0;
	EXPECT_EQ(NULL, gcheap_realloc(q + 16, 128));
	EXPECT_EQ(EINVAL, errno);
}

/* Explicit frees reach the module in batches and the memory comes back
 * zeroed.
 */
TEST_F(lib, free_and_reuse)
{
	struct gcheap_stats before, after;
	unsigned char *p[256];
	int i, reused = 0;

	for (i = 0; i < 256; i++) {
		p[i] = gcheap_alloc(200);
		ASSERT_NE(NULL, p[i]);
		memset(p[i], 0xee, 200);
	}
	ASSERT_EQ(0, gcheap_stats(&before));
	for (i = 0; i < 256; i++)
		gcheap_free(p[i]);
	for (i = 0; i < 4000; i++) {
		unsigned char *q = gcheap_alloc(200);
		int j;

		ASSERT_NE(NULL, q);
		ASSERT_TRUE(all_zero(q, 208));
		for (j = 0; j < 256; j++)
			reused += q == p[j];
	}
	EXPECT_LT(0, reused);
	ASSERT_EQ(0, gcheap_stats(&after));
	EXPECT_LT(0, after.refills);
	/* A large object's free is seen at once in the next batch. */
	{
		struct gcheap_stats s1, s2;
		void *big = gcheap_alloc(1 << 20);

		ASSERT_NE(NULL, big);
		ASSERT_EQ(0, gcheap_stats(&s1));
		gcheap_free(big);
		for (i = 0; i < 31; i++)
			gcheap_free(gcheap_alloc(16));
		ASSERT_EQ(0, gcheap_stats(&s2));
		EXPECT_EQ(s1.large_objects - 1, s2.large_objects);
	}
}

/* A small heap runs out with ENOMEM, never worse. */
/* Every object reachable: at the limit, a collection frees nothing. */
static void **chain;

TEST(enomem)
{
	struct gcheap_config cfg = { .heap_bytes = 4 << 20 };
	size_t n = 0;
	void **p;

	ASSERT_EQ(0, gcheap_init(&cfg));
	while ((p = gcheap_alloc(64))) {
		*p = chain;
		chain = p;
		n++;
	}
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_LE((size_t)(3 << 20) / 64, n);
	EXPECT_EQ(NULL, gcheap_alloc(1 << 20));
	EXPECT_EQ(ENOMEM, errno);
}

/* --- threads --- */

#define CANARY(t, i)	(0x9e3779b97f4a7c15ull * ((uint64_t)(t) << 32 | (i)))

struct worker {
	int id;
	int count;
	bool migrate;
	uint64_t **objs;
	int bad;
};

static void *alloc_worker(void *arg)
{
	struct worker *w = arg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	for (i = 0; i < w->count; i++) {
		size_t size = 16 + (size_t)((i * 7 + w->id) % 40) * 16;
		uint64_t *o;

		if (w->migrate && !(i % 50)) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET((i / 50 + w->id) % ncpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		o = gcheap_alloc(size);
		if (!o || o[0] || o[size / 8 - 1]) {
			w->bad++;
			continue;
		}
		o[0] = CANARY(w->id, i);
		o[size / 8 - 1] = CANARY(w->id, i);
		w->objs[i] = o;
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* Many threads allocating at once, optionally bouncing between CPUs: every
 * object is distinct, zero when handed out, and keeps its canary.
 */
static void run_workers(struct __test_metadata *_metadata, int nthreads, int count,
			bool migrate, bool signals)
{
	struct worker w[32];
	pthread_t t[32];
	uintptr_t *all;
	size_t total = 0, k;
	int i, j;

	if (signals) {
		struct itimerval it = { { 0, 200 }, { 0, 200 } };
		/* A handler, not SIG_IGN: delivery must interrupt sequences. */
		struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };

		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
	}
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .id = i, .count = count, .migrate = migrate };
		/* A heap object reachable from this stack: the collector runs. */
		w[i].objs = gcheap_alloc(count * sizeof(*w[i].objs));
		ASSERT_NE(NULL, w[i].objs);
		ASSERT_EQ(0, pthread_create(&t[i], NULL, alloc_worker, &w[i]));
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	if (signals) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &off, NULL);
	}
	all = calloc((size_t)nthreads * count, sizeof(*all));
	ASSERT_NE(NULL, all);
	for (i = 0; i < nthreads; i++) {
		EXPECT_EQ(0, w[i].bad) TH_LOG("thread %d", i);
		for (j = 0; j < count; j++) {
			uint64_t *o = w[i].objs[j];
			size_t size = 16 + (size_t)((j * 7 + i) % 40) * 16;

			if (!o)
				continue;
			ASSERT_EQ(CANARY(i, j), o[0]) TH_LOG("thread %d object %d", i, j);
			ASSERT_EQ(CANARY(i, j), o[size / 8 - 1]);
			all[total++] = (uintptr_t)o;
		}
	}
	EXPECT_EQ((size_t)nthreads * count, total);
	qsort(all, total, sizeof(*all), cmp_ptr);
	for (k = 1; k < total; k++)
		ASSERT_NE(all[k - 1], all[k]);
	free(all);
}

TEST_F_TIMEOUT(lib, threads_on_all_cpus, 180)
{
	int n = (int)sysconf(_SC_NPROCESSORS_ONLN) * 4;

	run_workers(_metadata, n > 32 ? 32 : n, 20000, false, false);
}

/* Threads pinned to one CPU after another while allocating, with a storm
 * of signals: sequences are aborted mid-way and must retry cleanly.
 */
TEST_F_TIMEOUT(lib, cpu_migration_and_signals, 180)
{
	int n = (int)sysconf(_SC_NPROCESSORS_ONLN) * 2;

	run_workers(_metadata, n > 32 ? 32 : n, 20000, true, true);
}

static void *holder(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 1000; i++)
		if (!gcheap_alloc(64))
			return (void *)1;
	return NULL;
}

/* A thread's exit gives back its per-thread slots: what it allocated is
 * then counted live by the module.
 */
TEST(thread_exit_releases)
{
	struct gcheap_config cfg = { .flags = GCHEAP_CONFIG_NO_RSEQ };
	struct gcheap_stats st;
	pthread_t t[4];
	void *res;
	int i;

	ASSERT_EQ(0, gcheap_init(&cfg));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, holder, NULL));
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &res);
		EXPECT_EQ(NULL, res);
	}
	ASSERT_EQ(0, gcheap_stats(&st));
	EXPECT_LE(4 * 1000 * 64, st.live_bytes);
}

static void *registration(void *arg)
{
	long *r = arg;

	r[0] = gcheap_register_thread();	/* already, by pthread_create */
	r[1] = gcheap_unregister_thread();
	r[2] = gcheap_unregister_thread();
	r[3] = gcheap_register_thread();
	r[4] = gcheap_alloc(32) != NULL;
	return NULL;
}

TEST(thread_registration)
{
	long r[5];
	pthread_t t;

	ASSERT_EQ(0, gcheap_init(NULL));
	EXPECT_EQ(-EALREADY, gcheap_register_thread());
	ASSERT_EQ(0, pthread_create(&t, NULL, registration, r));
	pthread_join(t, NULL);
	EXPECT_EQ(-EALREADY, r[0]);
	EXPECT_EQ(0, r[1]);
	EXPECT_EQ(-ENOENT, r[2]);
	EXPECT_EQ(0, r[3]);
	EXPECT_EQ(1, r[4]);
}

/* --- roots --- */

TEST(roots)
{
	static char area[4096];
	struct gcheap_stats a, b;
	void *lib;

	ASSERT_EQ(0, gcheap_init(NULL));
	EXPECT_EQ(-EINVAL, gcheap_add_roots(NULL, 10));
	EXPECT_EQ(-EINVAL, gcheap_add_roots(area, 0));
	EXPECT_EQ(-EINVAL, gcheap_add_roots((void *)(UINTPTR_MAX - 8), 100));
	ASSERT_EQ(0, gcheap_stats(&a));
	/* The executable's and libraries' data and bss are there already. */
	EXPECT_LE(2, a.root_ranges);
	EXPECT_LE(sizeof(area), a.root_bytes);

	ASSERT_EQ(0, gcheap_add_roots(area + 1, 100));
	EXPECT_EQ(-EEXIST, gcheap_add_roots(area + 50, 100));
	ASSERT_EQ(0, gcheap_stats(&b));
	EXPECT_EQ(a.root_ranges + 1, b.root_ranges);
	EXPECT_EQ(a.root_bytes + 104, b.root_bytes);
	EXPECT_EQ(-ENOENT, gcheap_remove_roots(area, 50));
	EXPECT_EQ(0, gcheap_remove_roots(area + 1, 100));
	EXPECT_EQ(-ENOENT, gcheap_remove_roots(area + 1, 100));

	/* A library loaded later brings its segments; unloading takes them. */
	lib = dlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
	ASSERT_NE(NULL, lib);
	ASSERT_EQ(0, gcheap_stats(&b));
	EXPECT_LT(a.root_ranges, b.root_ranges);
	dlclose(lib);
	ASSERT_EQ(0, gcheap_stats(&b));
	EXPECT_EQ(a.root_ranges, b.root_ranges);
}

/* A fork() child does not share the parent's heap: its first allocation
 * sets up a heap of its own, and the parent's goes on undisturbed.
 */
TEST_F(lib, fork_child_keeps_heap)
{
	unsigned char *p = gcheap_alloc(100);
	int status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	memset(p, 0x33, 100);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct gcheap_stats st;
		unsigned char *q;
		int i;

		/* The parent's object, where it was, as it was. */
		if (gcheap_size(p) < 100 || p[0] != 0x33 || p[99] != 0x33)
			_exit(1);
		memset(p, 0x44, 100);
		for (i = 0; i < 5000; i++) {
			q = gcheap_alloc(100);
			if (!q || q[0])
				_exit(2);
			q[0] = 1;
		}
		if (gcheap_collect() || p[0] != 0x44 || p[99] != 0x44)
			_exit(3);
		if (gcheap_stats(&st) || !st.refills || st.gc_cycles < 1 || st.threads != 1)
			_exit(4);
		/* With the parent's choice of caches. */
		if (!!(st.flags & GCHEAP_STATS_PERCPU) != variant->rseq)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child's writes went to its own copy. */
	EXPECT_EQ(0x33, p[0]);
	EXPECT_EQ(0x33, p[99]);
	p = gcheap_alloc(100);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, p[0]);
}

/*
 * Allocation racing with collections: threads allocate small objects as
 * fast as they can, each stamped at once and kept in a ring, while the
 * main thread collects without pause.  A thread stopped between allocating
 * an object and holding a pointer to it would have it freed and handed out
 * again: found non-zero when allocated, or its stamp overwritten when the
 * ring comes round.
 */
#define STORM_RING	4096

struct storm {
	int id;
	uint64_t **ring;
	int stop;
	long allocs;
	int bad;
};

static void *storm_worker(void *arg)
{
	struct storm *w = arg;
	long i;

	for (i = 0; !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++) {
		uint64_t **slot = &w->ring[i % STORM_RING], *o, *old = *slot;

		if (old && (old[0] != CANARY(w->id, i - STORM_RING) ||
			    old[1] != ~CANARY(w->id, i - STORM_RING)))
			w->bad++;
		o = gcheap_alloc(16);
		if (!o || o[0] || o[1]) {
			w->bad++;
			continue;
		}
		o[0] = CANARY(w->id, i);
		o[1] = ~CANARY(w->id, i);
		*slot = o;
	}
	w->allocs = i;
	return NULL;
}

TEST_F_TIMEOUT(lib, allocation_races_collection, 240)
{
	int n = (int)sysconf(_SC_NPROCESSORS_ONLN) * 2, i, cycles = 0;
	struct timespec t0, now;
	struct storm w[16];
	pthread_t t[16];
	long total = 0;

	n = n > 16 ? 16 : n;
	for (i = 0; i < n; i++) {
		w[i] = (struct storm){ .id = i };
		w[i].ring = gcheap_alloc(STORM_RING * sizeof(*w[i].ring));
		ASSERT_NE(NULL, w[i].ring);
		ASSERT_EQ(0, pthread_create(&t[i], NULL, storm_worker, &w[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ASSERT_EQ(0, gcheap_collect());
		cycles++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	/* At least 100 collections: with the collector sharing the CPUs with
	 * the storm (it marks concurrently), they may take longer than 30 s.
	 */
	} while (cycles < 400 && (cycles < 100 || now.tv_sec - t0.tv_sec < 30) &&
		 now.tv_sec - t0.tv_sec < 200);
	for (i = 0; i < n; i++)
		__atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, w[i].bad) TH_LOG("thread %d", i);
		total += w[i].allocs;
	}
	TH_LOG("%d collections while %d threads allocated %ld objects", cycles, n, total);
	EXPECT_LE(100, cycles);
}

/* --- lifetime --- */

/* A process that allocates and exits, or is killed while allocating,
 * leaves nothing behind in the module.
 */
TEST(exit_and_kill_free_everything)
{
	int round, status;

	if (debugfs_counter("pages") < 0)
		SKIP(return, "no /sys/kernel/debug/gcheap/pages");
	for (round = 0; round < 4; round++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid) {
			int i;

			for (i = 0; ; i++) {
				if (!gcheap_alloc(16 + (i % 300) * 16))
					_exit(1);
				if (i == 30000 && round < 2)
					_exit(0);
			}
		}
		if (round >= 2) {
			usleep(100000);
			kill(pid, SIGKILL);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (round < 2)
			EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
		EXPECT_EQ(0, pages_settled()) TH_LOG("round %d", round);
	}
}

TEST_HARNESS_MAIN
