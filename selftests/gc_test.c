// SPDX-License-Identifier: GPL-2.0
/*
 * The collector, end to end through libgcheap: what survives (objects
 * reachable only from a register, another thread's stack, an added root
 * range, a global, an interior pointer, or a large object), what is
 * reclaimed (the arena's very first object too), atomic objects, threads
 * blocked in system calls, many threads, exiting threads, a process killed
 * mid-cycle, fork(), pacing (GOGC, the soft limit, the hard limit, from the
 * configuration and the environment), checkmark mode and the mark-stack
 * overflow path.
 *
 * Every object a test keeps carries canaries: each word is a function of
 * the object's address, the word's index and a generation, so an object
 * the collector wrongly freed (zeroed, then reused by the garbage the
 * tests allocate between cycles) fails its check.  Pointers a test drops
 * are never dereferenced again; reclamation is seen in the statistics.
 *
 * The harness runs each test in a process of its own, so each one sets up
 * a fresh heap.
 */
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <gcheap.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

#define KiB		1024ul
#define MiB		(1024ul * 1024)
#define noinline	__attribute__((noinline))

/* Hides a pointer from a conservative scan: p ^ MASK is never canonical. */
#define MASK		0xa5c35a3cc35aa53cull

/* Per-test time limit, in seconds: the guest may be emulated (TCG). */
#define GC_TIMEOUT	120

/* --- canaried objects --- */

/*
 * An object: a tag word (its length in words and how many pointers
 * follow, xor a canary of its address), @nptr pointers, then canary words
 * of a generation up to the end.
 */
struct obj {
	uint64_t tag;
	struct obj *ptr[];
};

#define TAG_GEN		0xffu

static inline uint64_t canary(const void *o, size_t i, unsigned int gen)
{
	return mix64((uint64_t)(uintptr_t)o ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull) ^
		     ((uint64_t)gen << 52) ^ 0x2545f4914f6cdd1dull);
}

static inline bool is_obj(const void *p)
{
	return p && gcheap_base(p) == p;
}

static void obj_fill(struct obj *o, unsigned int gen)
{
	uint64_t t = o->tag ^ canary(o, 0, TAG_GEN), *w = (uint64_t *)o;
	size_t nwords = (uint32_t)t, i;

	for (i = 1 + (t >> 32); i < nwords; i++)
		w[i] = canary(o, i, gen);
}

static struct obj *obj_init(void *p, size_t size, unsigned int nptr, unsigned int gen)
{
	struct obj *o = p;

	if (!o)
		return NULL;
	o->tag = ((uint64_t)nptr << 32 | size / 8) ^ canary(o, 0, TAG_GEN);
	obj_fill(o, gen);
	return o;
}

static size_t obj_round(size_t size, unsigned int nptr)
{
	if (size < 8 * (nptr + 1ul) + 8)
		size = 8 * (nptr + 1ul) + 8;
	return (size + 15) & ~15ul;
}

static struct obj *obj_new(size_t size, unsigned int nptr, unsigned int gen)
{
	size = obj_round(size, nptr);
	return obj_init(gcheap_alloc(size), size, nptr, gen);
}

/*
 * 0 when @o is an object whose tag and canaries of @gen are whole, words
 * [@hole_lo, @hole_hi) excepted; -1 when it is no object's start; else
 * 1 + the index of the first bad word.
 */
static long obj_check(const struct obj *o, unsigned int gen, size_t hole_lo, size_t hole_hi)
{
	const uint64_t *w = (const uint64_t *)o;
	size_t nwords, nptr, i;
	uint64_t t;

	if (!is_obj(o))
		return -1;
	t = o->tag ^ canary(o, 0, TAG_GEN);
	nwords = (uint32_t)t;
	nptr = t >> 32;
	if (nwords < 2 || nwords * 8 > gcheap_size(o) || nptr >= nwords)
		return 1;
	for (i = 1 + nptr; i < nwords; i++)
		if ((i < hole_lo || i >= hole_hi) && w[i] != canary(o, i, gen))
			return 1 + (long)i;
	return 0;
}

static size_t obj_nptr(const struct obj *o)
{
	return (o->tag ^ canary(o, 0, TAG_GEN)) >> 32;
}

/* A list of @n objects of @min to @max bytes, linked through ptr[0]. */
static struct obj *list_new(size_t n, size_t min, size_t max, unsigned int gen, uint32_t *seed)
{
	struct obj *head = NULL, *o;
	size_t i;

	for (i = 0; i < n; i++) {
		o = obj_new(min + rnd(seed) % (max - min + 1), 1, gen);
		if (!o)
			return NULL;
		o->ptr[0] = head;
		head = o;
	}
	return head;
}

/* 0 when the list has @n whole nodes of @gen; else 1 + the bad node's index. */
static long list_check(const struct obj *o, size_t n, unsigned int gen)
{
	size_t i;

	for (i = 0; o; i++) {
		if (i >= n || obj_check(o, gen, 0, 0) || obj_nptr(o) != 1)
			return (long)i + 1;
		o = o->ptr[0];
		if (o && !is_obj(o))
			return (long)i + 2;
	}
	return i == n ? 0 : (long)i + 1;
}

static void list_fill(struct obj *o, unsigned int gen)
{
	for (; o; o = o->ptr[0])
		obj_fill(o, gen);
}

/*
 * Replace every @stride'th node after the head, from @offset, with a new
 * one: the old ones become garbage.  0, or -1 when an allocation failed.
 */
static int list_replace(struct obj *head, size_t stride, size_t offset, size_t min, size_t max,
			unsigned int gen, uint32_t *seed)
{
	struct obj *prev = head, *o;
	size_t i;

	for (i = 1; prev && (o = prev->ptr[0]); i++) {
		if (i % stride == offset % stride) {
			struct obj *n = obj_new(min + rnd(seed) % (max - min + 1), 1, gen);

			if (!n)
				return -1;
			n->ptr[0] = o->ptr[0];
			prev->ptr[0] = n;
			o = n;
		}
		prev = o;
	}
	return 0;
}

/* A binary tree of @depth levels (2^depth - 1 nodes). */
static struct obj *tree_new(int depth, unsigned int gen)
{
	struct obj *o;

	if (!depth)
		return NULL;
	o = obj_new(64, 2, gen);
	if (!o)
		return NULL;
	o->ptr[0] = tree_new(depth - 1, gen);
	o->ptr[1] = tree_new(depth - 1, gen);
	if (depth > 1 && (!o->ptr[0] || !o->ptr[1]))
		return NULL;
	return o;
}

/* The number of whole nodes, or -1 at the first bad one. */
static long tree_check(const struct obj *o, unsigned int gen)
{
	long l, r;

	if (!o)
		return 0;
	if (obj_check(o, gen, 0, 0) || obj_nptr(o) != 2)
		return -1;
	if ((o->ptr[0] && !is_obj(o->ptr[0])) || (o->ptr[1] && !is_obj(o->ptr[1])))
		return -1;
	l = tree_check(o->ptr[0], gen);
	r = tree_check(o->ptr[1], gen);
	return l < 0 || r < 0 ? -1 : 1 + l + r;
}

/* --- garbage and the stack --- */

static const size_t garbage_sizes[] = {
	16, 32, 48, 64, 96, 128, 160, 256, 512, 1024, 2048, 3000, 4096, 8192, 20000,
};

/*
 * At least @bytes of unreachable objects, in the size classes the tests'
 * own objects use, filled with a pattern that is no pointer; now and then
 * a large one.  Returns the bytes allocated, 0 when an allocation failed.
 */
static noinline size_t garbage(size_t bytes, uint32_t *seed)
{
	size_t done = 0, n = 0;

	while (done < bytes) {
		size_t size = ++n % 64 ? garbage_sizes[rnd(seed) % ARRAY_SIZE(garbage_sizes)]
				       : 40 * KiB + rnd(seed) % (200 * KiB);
		char *p = gcheap_alloc(size);

		if (!p)
			return 0;
		if (size <= 1024) {
			memset(p, 0xee, size);
		} else {
			memset(p, 0xee, 256);
			memset(p + size - 256, 0xee, 256);
		}
		done += gcheap_size(p);
	}
	return done;
}

/* Overwrite dead stack below the caller, so that stale copies of
 * dropped pointers there cannot keep garbage alive.
 */
static noinline void scrub_stack(void)
{
	char buf[32 * 1024];

	memset(buf, 0, sizeof(buf));
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The system call thread @tid is in, from /proc: its number, -2 when it
 * runs in user space, -3 when the file cannot be read.
 */
static long task_syscall(pid_t tid)
{
	char path[64], buf[128];
	long nr = -3;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return -3;
	if (fgets(buf, sizeof(buf), f))
		nr = strncmp(buf, "running", 7) ? strtol(buf, NULL, 10) : -2;
	fclose(f);
	return nr;
}

/*
 * Wait up to 20 s until thread @tid is blocked in system call @a or @b, or
 * in restart_syscall(), which resumes a call with a timeout once it was
 * interrupted.
 */
static bool wait_syscall(pid_t tid, long a, long b)
{
	uint64_t end = now_ns() + 20000000000ull;

	while (now_ns() < end) {
		long nr = task_syscall(tid);

		if (nr == a || nr == b || nr == SYS_restart_syscall)
			return true;
		usleep(2000);
	}
	return false;
}

/* Wait up to 5 s until the heap counts @n registered threads. */
static uint64_t wait_threads(uint64_t n)
{
	struct gcheap_stats st;
	int i;

	for (i = 0; i < 500; i++) {
		if (gcheap_stats(&st))
			return UINT64_MAX;
		if (st.threads == n)
			break;
		usleep(10000);
	}
	return st.threads;
}

/* What a churn() saw. */
struct churn {
	size_t failed_at;	/* bytes allocated when one failed, or SIZE_MAX */
	uint64_t max_heap;	/* the highest heap_bytes seen */
	uint64_t cycles;	/* gc_cycles at the end */
	uint64_t ns;		/* how long it took */
	int stats_err;
};

/*
 * A steady allocation of @total bytes of @size-byte garbage objects,
 * sampling the statistics every MiB.  With @fill each object is written
 * whole, as a program initializing its memory would; else two words.
 */
static noinline void churn(size_t total, size_t size, bool fill, struct churn *c)
{
	uint64_t t0 = now_ns();
	struct gcheap_stats st;
	size_t done, since = 0;

	memset(c, 0, sizeof(*c));
	c->failed_at = SIZE_MAX;
	for (done = 0; done < total; done += size) {
		volatile uint64_t *p = gcheap_alloc(size);

		if (!p) {
			c->failed_at = done;
			break;
		}
		if (fill)
			memset((void *)p, 0x5c, size);
		p[0] = done;
		p[size / 8 - 1] = done;
		since += size;
		if (since >= MiB || done + size >= total) {
			since = 0;
			if (gcheap_stats(&st)) {
				c->stats_err = 1;
				break;
			}
			if (st.heap_bytes > c->max_heap)
				c->max_heap = st.heap_bytes;
			c->cycles = st.gc_cycles;
		}
	}
	c->ns = now_ns() - t0;
}

/*
 * How far a churn of @bytes may take the heap above a soft limit.  While
 * the limit binds, the collector lets the program run as long as the last
 * cycle took before it starts the next one (at most half of the time in
 * the collector), so the heap may overshoot by what the program allocates
 * in one cycle's time, at the rate it allocated between pauses; and by a
 * little more for spans in caches.
 */
static uint64_t soft_limit_slack(const struct churn *c, size_t bytes,
				 const struct gcheap_stats *before, const struct gcheap_stats *after)
{
	uint64_t paused = after->total_pause_ns - before->total_pause_ns;
	uint64_t ran = c->ns > paused + 1000000 ? c->ns - paused : 1000000;

	return (uint64_t)((double)bytes / (double)ran * (double)after->max_pause_ns * 1.5) + 8 * MiB;
}

/* --- module parameters --- */

#define MAX_SAVED	4

FIXTURE(gc) {
	int nsaved;
	char name[MAX_SAVED][32];
	char value[MAX_SAVED][32];
};

static int param_get(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "/sys/module/gcheap/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		ret = -EIO;
	else
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
	return ret;
}

/* Set a parameter, the teardown puts back the value it had. */
static int param_override(FIXTURE_DATA(gc) *self, const char *name, const char *value)
{
	int ret;

	if (self->nsaved == MAX_SAVED)
		return -ENOSPC;
	ret = param_get(name, self->value[self->nsaved], sizeof(self->value[0]));
	if (ret)
		return ret;
	snprintf(self->name[self->nsaved], sizeof(self->name[0]), "%s", name);
	self->nsaved++;
	return param_set(name, value);
}

FIXTURE_SETUP(gc)
{
	struct gcheap_device_info info;
	int ret = gcheap_device_info(&info);

	if (ret == -ENOENT)
		SKIP(return, "no /dev/gcheap: the module is not loaded");
	ASSERT_EQ(0, ret);
	/* The module has the collector. */
	ASSERT_TRUE(info.ioctls & (1ull << _IOC_NR(GCHEAP_IOC_GC)));
}

FIXTURE_TEARDOWN(gc)
{
	while (self->nsaved > 0) {
		self->nsaved--;
		EXPECT_EQ(0, param_set(self->name[self->nsaved], self->value[self->nsaved]))
			TH_LOG("restoring %s", self->name[self->nsaved]);
	}
}

/* A heap of @bytes with these pacing settings; the environment's own
 * GCHEAP_GOGC and GCHEAP_MEMLIMIT are ignored.
 */
static int heap_init(uint64_t bytes, uint32_t flags, int gogc, uint64_t soft_limit)
{
	struct gcheap_config cfg = {
		.heap_bytes = bytes,
		.flags = flags,
		.gogc = gogc,
		.soft_limit_bytes = soft_limit,
	};

	unsetenv("GCHEAP_GOGC");
	unsetenv("GCHEAP_MEMLIMIT");
	return gcheap_init(&cfg);
}

/* Set up the heap; the main thread is the one registered thread. */
#define HEAP_INIT(bytes, flags, gogc, soft) do {				\
		struct gcheap_stats __st;					\
									\
		ASSERT_EQ(0, heap_init(bytes, flags, gogc, soft));		\
		ASSERT_EQ(0, gcheap_stats(&__st));				\
		ASSERT_EQ(1, __st.threads);					\
		ASSERT_EQ(0, __st.gc_cycles);					\
	} while (0)

#define STATS(s)	ASSERT_EQ(0, gcheap_stats(&(s)))

/* ======================================================================
 * 1. Survivors
 * ====================================================================== */

/* (d) globals, one in .data and one in .bss. */
static void *g_data = &g_data;
static void *g_bss;

/* (e) objects reachable only through interior pointers, here in .bss. */
#define NINTERIOR	5
static char *g_interior[NINTERIOR];
static size_t g_interior_off[NINTERIOR];

/* (f) a 1 MiB object reachable only through an interior pointer, holding
 * the only pointers to two small objects (one of them interior) deep
 * inside it.
 */
#define BIG_SIZE	(1ul << 20)
#define BIG_OFF		(700 * KiB)
#define BIG_WORD	(900 * KiB / 8)
static char *g_big_interior;

/* Allocate an object of @gen and return its address ^ MASK only. */
static noinline uint64_t make_masked(size_t size, unsigned int gen)
{
	struct obj *o = obj_new(size, 0, gen);

	return o ? (uintptr_t)o ^ MASK : 0;
}

/* (a) registers: a thread holds the only pointers in rbx, r12 and r13,
 * spinning on sched_yield() until told to stop.
 */
struct reg_holder {
	uint64_t masked[3];	/* in: the objects ^ MASK */
	uint64_t out[3];	/* out: the registers at the end, ^ MASK */
	int ready;
	int stop;
};

static void *reg_thread(void *arg)
{
	struct reg_holder *h = arg;

	__asm__ volatile(
		"mov %[m0], %%rbx\n\t"
		"xor %[mask], %%rbx\n\t"
		"mov %[m1], %%r12\n\t"
		"xor %[mask], %%r12\n\t"
		"mov %[m2], %%r13\n\t"
		"xor %[mask], %%r13\n\t"
		"movl $1, %[ready]\n"
		"1:\n\t"
		"mov %[nr], %%eax\n\t"
		"syscall\n\t"
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"xor %[mask], %%rbx\n\t"
		"mov %%rbx, %[o0]\n\t"
		"xor %[mask], %%r12\n\t"
		"mov %%r12, %[o1]\n\t"
		"xor %[mask], %%r13\n\t"
		"mov %%r13, %[o2]\n\t"
		: [o0] "=m"(h->out[0]), [o1] "=m"(h->out[1]), [o2] "=m"(h->out[2]),
		  [ready] "=m"(h->ready)
		: [m0] "m"(h->masked[0]), [m1] "m"(h->masked[1]), [m2] "m"(h->masked[2]),
		  [mask] "r"(MASK), [nr] "i"(SYS_sched_yield), [stop] "m"(h->stop)
		: "rax", "rcx", "r11", "rbx", "r12", "r13", "memory", "cc");
	return NULL;
}

/* (b) another thread's stack: a registered thread blocked reading a pipe,
 * with the only pointers in its locals.
 */
struct pipe_holder {
	uint64_t masked[2];
	int fd;
	int ready;
	ssize_t got;
	char buf[8];
	long bad[2];
};

static void *pipe_thread(void *arg)
{
	struct pipe_holder *h = arg;
	struct obj *volatile small = (struct obj *)(uintptr_t)(h->masked[0] ^ MASK);
	struct obj *volatile large = (struct obj *)(uintptr_t)(h->masked[1] ^ MASK);

	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	h->got = read(h->fd, h->buf, sizeof(h->buf));
	h->bad[0] = obj_check(small, 1, 0, 0);
	h->bad[1] = obj_check(large, 1, 0, 0);
	return NULL;
}

static void wait_flag(int *flag)
{
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* (a) and (b): the holders start with nothing but masked addresses. */
static noinline int start_holders(struct reg_holder *rh, pthread_t *rt,
				  struct pipe_holder *ph, pthread_t *pt)
{
	rh->masked[0] = make_masked(64, 1);
	rh->masked[1] = make_masked(2048, 1);
	rh->masked[2] = make_masked(100 * KiB, 1);
	ph->masked[0] = make_masked(256, 1);
	ph->masked[1] = make_masked(64 * KiB, 1);
	if (!rh->masked[0] || !rh->masked[1] || !rh->masked[2] || !ph->masked[0] ||
	    !ph->masked[1])
		return -ENOMEM;
	if (pthread_create(rt, NULL, reg_thread, rh))
		return -EAGAIN;
	if (pthread_create(pt, NULL, pipe_thread, ph))
		return -EAGAIN;
	wait_flag(&rh->ready);
	wait_flag(&ph->ready);
	return 0;
}

#define NROOTS		64

static size_t root_size(unsigned int i)
{
	return i == NROOTS - 1 ? 48 * KiB : 16 + (i * 613) % 9000;
}

/* (c) a root range in malloc'd memory: the only pointers to its objects. */
static noinline int fill_roots(void **roots)
{
	unsigned int i;

	for (i = 0; i < NROOTS; i++) {
		roots[i] = obj_new(root_size(i), 0, 1);
		if (!roots[i])
			return -ENOMEM;
	}
	return 0;
}

/* (d), (e) and (f). */
static noinline int fill_globals(void)
{
	static const size_t sizes[NINTERIOR] = { 48, 2048, GCHEAP_SMALL_MAX, 200 * KiB, 4096 };
	struct obj *big, *s1, *s2;
	unsigned int i;

	g_data = obj_new(512, 0, 1);
	g_bss = obj_new(33000, 0, 1);
	if (!g_data || !g_bss)
		return -ENOMEM;
	for (i = 0; i < NINTERIOR; i++) {
		struct obj *o = obj_new(sizes[i], 0, 1);

		if (!o)
			return -ENOMEM;
		switch (i) {
		case 2:
			g_interior_off[i] = 20000;
			break;
		case 3:
			g_interior_off[i] = 150 * KiB + 8;
			break;
		case 4:		/* the object's last byte */
			g_interior_off[i] = gcheap_size(o) - 1;
			break;
		default:
			g_interior_off[i] = sizes[i] / 2;
		}
		g_interior[i] = (char *)o + g_interior_off[i];
	}
	big = obj_new(BIG_SIZE, 0, 1);
	s1 = obj_new(160, 0, 1);
	s2 = obj_new(3000, 0, 1);
	if (!big || !s1 || !s2)
		return -ENOMEM;
	((uint64_t *)big)[BIG_WORD] = (uintptr_t)s1;
	((uint64_t *)big)[BIG_WORD + 1] = (uintptr_t)s2 + 8;
	g_big_interior = (char *)big + BIG_OFF;
	return 0;
}

/* 0 when every object of (c) to (f) is whole, else a code saying which. */
static noinline long check_globals(void **roots)
{
	const struct obj *big;
	unsigned int i;

	for (i = 0; i < NROOTS; i++)
		if (obj_check(roots[i], 1, 0, 0))
			return 100 + i;
	if (obj_check(g_data, 1, 0, 0))
		return 200;
	if (obj_check(g_bss, 1, 0, 0))
		return 201;
	for (i = 0; i < NINTERIOR; i++) {
		const struct obj *o = (const void *)(g_interior[i] - g_interior_off[i]);

		if (gcheap_base(g_interior[i]) != o || obj_check(o, 1, 0, 0))
			return 300 + i;
	}
	big = (const void *)(g_big_interior - BIG_OFF);
	if (obj_check(big, 1, BIG_WORD, BIG_WORD + 2))
		return 400;
	if (obj_check((const void *)(uintptr_t)((uint64_t *)big)[BIG_WORD], 1, 0, 0))
		return 401;
	if (obj_check((const void *)(uintptr_t)(((uint64_t *)big)[BIG_WORD + 1] - 8), 1, 0, 0))
		return 402;
	return 0;
}

TEST_F_TIMEOUT(gc, survivors, GC_TIMEOUT)
{
	struct gcheap_stats s0, s1;
	struct reg_holder rh = { 0 };
	struct pipe_holder ph = { 0 };
	pthread_t rt, pt;
	uint32_t seed = 1;
	size_t total = 0;
	void **roots;
	int fds[2], i;

	/* No cycle may run before every holder holds its objects. */
	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	/* Should anything of the library's hold the arena's first object
	 * (first_object_reclaimed), let it not be one of ours.
	 */
	ASSERT_NE(0, make_masked(64, 0));
	ASSERT_EQ(0, pipe(fds));
	ph.fd = fds[0];
	ASSERT_EQ(0, start_holders(&rh, &rt, &ph, &pt));
	roots = malloc(NROOTS * sizeof(*roots));
	ASSERT_NE(NULL, roots);
	ASSERT_EQ(0, fill_roots(roots));
	ASSERT_EQ(0, gcheap_add_roots(roots, NROOTS * sizeof(*roots)));
	ASSERT_EQ(0, fill_globals());
	/* From here on, cycles of the pacer's as well as ours. */
	ASSERT_EQ(0, gcheap_set_gogc(100));

	STATS(s0);
	EXPECT_EQ(3, s0.threads);
	for (i = 0; i < 12; i++) {
		size_t g = garbage(4 * MiB, &seed);

		ASSERT_NE(0, g) TH_LOG("garbage, round %d", i);
		total += g;
		scrub_stack();
		ASSERT_EQ(0, gcheap_collect()) TH_LOG("round %d", i);
	}
	STATS(s1);
	EXPECT_LE(s0.gc_cycles + 12, s1.gc_cycles);
	EXPECT_EQ(3, s1.threads);
	EXPECT_EQ(0, s1.stop_aborts);
	/* The garbage really was collected and its memory reused. */
	EXPECT_LE(total / 2, s1.freed_bytes - s0.freed_bytes)
		TH_LOG("freed %llu of %zu", (unsigned long long)(s1.freed_bytes - s0.freed_bytes),
		       total);
	EXPECT_GT(s1.arena_bytes / 2, s1.heap_bytes);

	EXPECT_EQ(0, check_globals(roots));

	__atomic_store_n(&rh.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(rt, NULL));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(rh.masked[i], rh.out[i]) TH_LOG("register %d", i);
		EXPECT_EQ(0, obj_check((void *)(uintptr_t)(rh.out[i] ^ MASK), 1, 0, 0))
			TH_LOG("object held in register %d", i);
	}

	ASSERT_EQ(2, write(fds[1], "go", 2));
	ASSERT_EQ(0, pthread_join(pt, NULL));
	EXPECT_EQ(2, ph.got);
	EXPECT_EQ(0, memcmp(ph.buf, "go", 2));
	EXPECT_EQ(0, ph.bad[0]);
	EXPECT_EQ(0, ph.bad[1]);
	EXPECT_EQ(1, wait_threads(1));
	free(roots);
	close(fds[0]);
	close(fds[1]);
}

/* ======================================================================
 * 2. Reclaimed
 * ====================================================================== */

/* Unreachable objects of @bytes in all, a large one in 32; returns the
 * bytes allocated and counts the large ones in *@nlarge.
 */
static noinline size_t drop_objects(size_t bytes, size_t *nlarge)
{
	static const size_t sizes[] = { 64, 1024, 4096 };
	size_t done = 0, n;

	*nlarge = 0;
	for (n = 0; done < bytes; n++) {
		size_t size = n % 32 == 31 ? 64 * KiB : sizes[n % 3];
		struct obj *o = obj_new(size, 0, 1);

		if (!o)
			return 0;
		*nlarge += size > GCHEAP_SMALL_MAX;
		done += gcheap_size(o);
	}
	return done;
}

TEST_F_TIMEOUT(gc, reclaimed, GC_TIMEOUT)
{
	struct gcheap_stats s0, s1, s2, s3;
	size_t got, nlarge, again;

	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	ASSERT_EQ(0, gcheap_collect());
	STATS(s0);
	EXPECT_EQ(1, s0.gc_cycles);
	EXPECT_EQ(0, s0.next_gc_bytes);

	got = drop_objects(16 * MiB, &nlarge);
	ASSERT_LE(16 * MiB, got);
	STATS(s1);
	/* No collection ran by itself, and the module counts the objects. */
	EXPECT_EQ(s0.gc_cycles, s1.gc_cycles);
	EXPECT_LE(s0.live_bytes + got / 2, s1.live_bytes);
	EXPECT_EQ(s0.large_objects + nlarge, s1.large_objects);

	scrub_stack();
	ASSERT_EQ(0, gcheap_collect());
	STATS(s2);
	EXPECT_EQ(s0.gc_cycles + 1, s2.gc_cycles);
	EXPECT_LE(got * 3 / 4, s2.freed_bytes - s0.freed_bytes)
		TH_LOG("freed %llu of %zu", (unsigned long long)(s2.freed_bytes - s0.freed_bytes),
		       got);
	EXPECT_GE(s0.live_bytes + got / 4, s2.live_bytes)
		TH_LOG("live %llu -> %llu -> %llu", (unsigned long long)s0.live_bytes,
		       (unsigned long long)s1.live_bytes, (unsigned long long)s2.live_bytes);
	EXPECT_GT(got / 4, s2.marked_bytes);
	EXPECT_GE(s0.large_objects + nlarge / 8, s2.large_objects);

	/* The memory is reused: as much again hardly grows the heap. */
	again = drop_objects(16 * MiB, &nlarge);
	ASSERT_LE(16 * MiB, again);
	STATS(s3);
	EXPECT_GE(s1.heap_bytes + s1.heap_bytes / 4, s3.heap_bytes)
		TH_LOG("heap %llu then %llu", (unsigned long long)s1.heap_bytes,
		       (unsigned long long)s3.heap_bytes);
}

/*
 * The first object of the arena is reclaimed like any other: nothing the
 * library keeps (its record of where the arena starts, say) may hold it.
 */
TEST_F_TIMEOUT(gc, first_object_reclaimed, GC_TIMEOUT)
{
	struct gcheap_stats s0, s1;

	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	/* The heap's first allocation, dropped at once. */
	ASSERT_NE(0, make_masked(100 * KiB, 1));
	STATS(s0);
	ASSERT_EQ(1, s0.large_objects);
	scrub_stack();
	ASSERT_EQ(0, gcheap_collect());
	STATS(s1);
	EXPECT_EQ(0, s1.large_objects);
	EXPECT_LE(100 * KiB, s1.freed_bytes - s0.freed_bytes);
	EXPECT_EQ(0, s1.marked_bytes);
}

/* ======================================================================
 * 3. Atomic objects are not scanned
 * ====================================================================== */

static uint64_t *g_table;

/* Objects of @size whose only pointers are in @table. */
static noinline size_t fill_table(uint64_t *table, size_t n, size_t size)
{
	size_t i, bytes = 0;

	for (i = 0; i < n; i++) {
		struct obj *o = obj_new(size, 0, 1);

		if (!o)
			return 0;
		table[i] = (uintptr_t)o;
		bytes += gcheap_size(o);
	}
	return bytes;
}

TEST_F_TIMEOUT(gc, atomic_not_scanned, GC_TIMEOUT)
{
	/* A small table and a large one, atomic then scanned. */
	static const struct { size_t n; bool atomic; } phase[] = {
		{ 3000, true }, { 6000, true }, { 3000, false }, { 6000, false },
	};
	unsigned int k;

	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	for (k = 0; k < ARRAY_SIZE(phase); k++) {
		size_t n = phase[k].n, bytes, i;
		struct gcheap_stats s0, s1;
		uint64_t *copy;
		uint64_t freed;

		g_table = NULL;
		scrub_stack();
		ASSERT_EQ(0, gcheap_collect());
		STATS(s0);
		g_table = phase[k].atomic ? gcheap_alloc_atomic(n * 8) : gcheap_alloc(n * 8);
		ASSERT_NE(NULL, g_table);
		copy = malloc(n * 8);
		ASSERT_NE(NULL, copy);
		bytes = fill_table(g_table, n, 512);
		ASSERT_LE(n * 512, bytes);
		memcpy(copy, g_table, n * 8);
		scrub_stack();
		ASSERT_EQ(0, gcheap_collect());
		STATS(s1);
		freed = s1.freed_bytes - s0.freed_bytes;
		if (phase[k].atomic) {
			/* The pointers in the table retained nothing. */
			EXPECT_LE(bytes * 9 / 10, freed)
				TH_LOG("phase %u: freed %llu of %zu", k, (unsigned long long)freed, bytes);
			EXPECT_GT(bytes / 4, s1.marked_bytes) TH_LOG("phase %u", k);
			/* The table itself is alive and untouched. */
			EXPECT_EQ(g_table, gcheap_base(g_table));
			EXPECT_EQ(0, memcmp(copy, g_table, n * 8));
		} else {
			EXPECT_LE(bytes + n * 8, s1.marked_bytes) TH_LOG("phase %u", k);
			EXPECT_GT(bytes / 10, freed)
				TH_LOG("phase %u: freed %llu of %zu", k, (unsigned long long)freed, bytes);
			for (i = 0; i < n; i++) {
				ASSERT_EQ(0, obj_check((void *)(uintptr_t)g_table[i], 1, 0, 0))
					TH_LOG("phase %u entry %zu", k, i);
			}
		}
		free(copy);
	}
}

/* ======================================================================
 * 4. Threads blocked in system calls
 * ====================================================================== */

/*
 * Threads blocked in a system call while the world is stopped around them:
 * each call must go on as if nothing had happened and return what it
 * would have returned, once what it waits for comes.
 */
enum {
	B_READ,		/* read() on a pipe: the data, written afterwards */
	B_FUTEX,	/* FUTEX_WAIT: 0 after a FUTEX_WAKE */
	B_SLEEP,	/* nanosleep(): 0, and all of its time */
	B_POLL,		/* poll() with a timeout: the pipe readable */
	B_TFUTEX,	/* FUTEX_WAIT with a timeout: 0 after a FUTEX_WAKE */
	B_NR,
};

#define SLEEP_NS	300000000ull
#define LONG_WAIT_S	60

struct blocked {
	int fd[B_NR];		/* the pipe read end it waits on, or -1 */
	uint32_t word[B_NR];	/* the futex word it waits on */
	pid_t tid[B_NR];
	int started[B_NR];
	int done[B_NR];
	long ret[B_NR];
	int err[B_NR];
	int calls[B_NR];
	char buf[16];
	uint64_t slept_ns;
};

struct blocker {
	struct blocked *b;
	int kind;
};

static void *blocked_thread(void *arg)
{
	struct blocker *k = arg;
	struct blocked *b = k->b;
	int i = k->kind;
	long ret = -1;

	b->tid[i] = gettid();
	__atomic_store_n(&b->started[i], 1, __ATOMIC_RELEASE);
	errno = 0;
	switch (i) {
	case B_READ:
		ret = read(b->fd[i], b->buf, sizeof(b->buf));
		break;
	case B_FUTEX:
	case B_TFUTEX: {
		struct timespec ts = { LONG_WAIT_S, 0 };

		while (!__atomic_load_n(&b->word[i], __ATOMIC_ACQUIRE)) {
			ret = syscall(SYS_futex, &b->word[i], FUTEX_WAIT_PRIVATE, 0,
				      i == B_TFUTEX ? &ts : NULL, NULL, 0);
			b->calls[i]++;
			if (ret)
				break;
		}
		break;
	}
	case B_SLEEP: {
		struct timespec ts = { 0, (long)SLEEP_NS };
		uint64_t t0 = now_ns();

		ret = nanosleep(&ts, NULL);
		b->slept_ns = now_ns() - t0;
		break;
	}
	case B_POLL: {
		struct pollfd p = { .fd = b->fd[i], .events = POLLIN };

		ret = poll(&p, 1, LONG_WAIT_S * 1000);
		break;
	}
	}
	b->ret[i] = ret;
	b->err[i] = errno;
	__atomic_store_n(&b->done[i], 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The system calls each kind blocks in (glibc may use either). */
static const long blocked_nr[B_NR][2] = {
	[B_READ] = { SYS_read, SYS_read },
	[B_FUTEX] = { SYS_futex, SYS_futex },
	[B_SLEEP] = { SYS_nanosleep, SYS_clock_nanosleep },
	[B_POLL] = { SYS_poll, SYS_ppoll },
	[B_TFUTEX] = { SYS_futex, SYS_futex },
};

static const char *const blocked_name[B_NR] = {
	"read", "futex wait", "nanosleep", "poll", "futex wait with timeout",
};

/*
 * Start a thread of each kind, wait until each is blocked in its call, and
 * collect until the sleeper is done; then give each what it waits for and
 * join them.
 */
static void run_blocked(struct __test_metadata *_metadata)
{
	struct blocker k[B_NR];
	struct blocked b;
	struct gcheap_stats s0, s1;
	int pipes[B_NR][2], i, n, during = 0;
	pthread_t t[B_NR];

	memset(&b, 0, sizeof(b));
	for (i = 0; i < B_NR; i++) {
		ASSERT_EQ(0, pipe(pipes[i]));
		b.fd[i] = pipes[i][0];
		k[i] = (struct blocker){ .b = &b, .kind = i };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, blocked_thread, &k[i]));
		wait_flag(&b.started[i]);
	}
	for (i = 0; i < B_NR; i++) {
		ASSERT_TRUE(wait_syscall(b.tid[i], blocked_nr[i][0], blocked_nr[i][1]))
			TH_LOG("%s: not blocked", blocked_name[i]);
	}
	STATS(s0);
	EXPECT_EQ(B_NR + 1, s0.threads);

	/* Collections while they are all blocked, and on until the sleep
	 * is over; count those that stopped the world during it.
	 */
	for (n = 0; n < 4 || (!__atomic_load_n(&b.done[B_SLEEP], __ATOMIC_ACQUIRE) &&
			      n < 1000); n++) {
		bool sleeping = !__atomic_load_n(&b.done[B_SLEEP], __ATOMIC_ACQUIRE);

		ASSERT_EQ(0, gcheap_collect()) TH_LOG("collection %d", n);
		during += sleeping;
	}
	STATS(s1);
	EXPECT_LE(s0.gc_cycles + 4, s1.gc_cycles);
	EXPECT_EQ(0, s1.stop_aborts);

	/* None of them returned early; each is waiting again. */
	for (i = 0; i < B_NR; i++) {
		if (i == B_SLEEP)
			continue;
		EXPECT_EQ(0, __atomic_load_n(&b.done[i], __ATOMIC_ACQUIRE))
			TH_LOG("%s returned %ld, errno %d", blocked_name[i], b.ret[i], b.err[i]);
		if (!__atomic_load_n(&b.done[i], __ATOMIC_ACQUIRE)) {
			EXPECT_TRUE(wait_syscall(b.tid[i], blocked_nr[i][0], blocked_nr[i][1]))
				TH_LOG("%s: not blocked again", blocked_name[i]);
		}
	}
	for (i = 0; i < B_NR; i++) {
		switch (i) {
		case B_READ:
		case B_POLL:
			ASSERT_EQ(6, write(pipes[i][1], "hello", 6));
			break;
		case B_FUTEX:
		case B_TFUTEX:
			__atomic_store_n(&b.word[i], 1, __ATOMIC_RELEASE);
			syscall(SYS_futex, &b.word[i], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
			break;
		}
	}
	for (i = 0; i < B_NR; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		close(pipes[i][0]);
		close(pipes[i][1]);
	}

	for (i = 0; i < B_NR; i++) {
		long want = i == B_READ ? 6 : i == B_POLL ? 1 : 0;

		EXPECT_EQ(want, b.ret[i]) TH_LOG("%s: errno %d", blocked_name[i], b.err[i]);
	}
	EXPECT_STREQ("hello", b.buf);
	EXPECT_EQ(1, b.calls[B_FUTEX]);
	EXPECT_EQ(1, b.calls[B_TFUTEX]);
	EXPECT_LE(1, during);
	EXPECT_LE(SLEEP_NS, b.slept_ns);
	EXPECT_EQ(1, wait_threads(1));
}

/* read(), futex waits, nanosleep() and poll(). */
TEST_F_TIMEOUT(gc, blocked_syscalls, GC_TIMEOUT)
{
	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	run_blocked(_metadata);
}

/*
 * Not tested: epoll_wait(), sigtimedwait() and the other calls that fail
 * with EINTR on any pending signal return EINTR when a stop interrupts
 * them (Documentation/collector.rst, "Programs and the stop").
 */

/* ======================================================================
 * 5. Many threads
 * ====================================================================== */

#define NWORKERS	32
#define WORKER_NODES	400

struct worker {
	int id;
	int *stop;
	pthread_barrier_t *barrier;
	int *pace;		/* if set: do round r once *pace > r */
	int rounds;
	long bad;
};

static void *list_worker(void *arg)
{
	struct worker *w = arg;
	uint32_t seed = (uint32_t)w->id * 7919 + 1;
	unsigned int gen = 1;
	struct obj *head = list_new(WORKER_NODES, 32, 192, gen, &seed);

	if (!head)
		w->bad = -1;
	pthread_barrier_wait(w->barrier);
	while (!w->bad && !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		long r;

		if (w->pace && __atomic_load_n(w->pace, __ATOMIC_ACQUIRE) <= w->rounds) {
			usleep(500);
			continue;
		}
		r = list_check(head, WORKER_NODES, gen);
		if (r) {
			w->bad = r;
			break;
		}
		/* A new generation in place, a tenth of the nodes new. */
		gen = 1 + (gen % 200);
		list_fill(head, gen);
		if (list_replace(head, 10, (size_t)w->rounds, 32, 192, gen, &seed) ||
		    !garbage(64 * KiB, &seed)) {
			w->bad = -2;
			break;
		}
		__atomic_store_n(&w->rounds, w->rounds + 1, __ATOMIC_RELEASE);
	}
	if (!w->bad)
		w->bad = list_check(head, WORKER_NODES, gen);
	return NULL;
}

TEST_F_TIMEOUT(gc, many_threads, GC_TIMEOUT)
{
	struct worker w[NWORKERS];
	pthread_barrier_t barrier;
	pthread_t t[NWORKERS];
	struct gcheap_stats s0, s1;
	int i, n, stop = 0;
	uint64_t end;

	HEAP_INIT(512 * MiB, 0, 0, 0);
	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, NWORKERS + 1));
	for (i = 0; i < NWORKERS; i++) {
		w[i] = (struct worker){ .id = i, .stop = &stop, .barrier = &barrier };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, list_worker, &w[i]));
	}
	pthread_barrier_wait(&barrier);
	STATS(s0);
	EXPECT_EQ(NWORKERS + 1, s0.threads);

	/* At least 12 collections, and until every worker did 3 rounds. */
	end = now_ns() + 60000000000ull;
	for (n = 0; ; n++) {
		bool all = true;

		ASSERT_EQ(0, gcheap_collect()) TH_LOG("collection %d", n);
		for (i = 0; i < NWORKERS; i++) {
			ASSERT_EQ(0, __atomic_load_n(&w[i].bad, __ATOMIC_ACQUIRE))
				TH_LOG("worker %d after %d rounds", i, w[i].rounds);
			all &= __atomic_load_n(&w[i].rounds, __ATOMIC_ACQUIRE) >= 3;
		}
		if (n >= 12 && all)
			break;
		if (now_ns() >= end) {
			int least = w[0].rounds;

			for (i = 1; i < NWORKERS; i++)
				if (w[i].rounds < least)
					least = w[i].rounds;
			STATS(s1);
			ASSERT_GT(end, now_ns())
				TH_LOG("the workers make no progress: %d collections, the slowest worker did %d rounds, max pause %llu ns, %llu cycles",
				       n, least, (unsigned long long)s1.max_pause_ns,
				       (unsigned long long)(s1.gc_cycles - s0.gc_cycles));
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < NWORKERS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].bad) TH_LOG("worker %d after %d rounds", i, w[i].rounds);
	}
	STATS(s1);
	EXPECT_LE(s0.gc_cycles + 12, s1.gc_cycles);
	EXPECT_EQ(0, s1.stop_aborts);
	EXPECT_LT(0, s1.freed_bytes);
	EXPECT_EQ(1, wait_threads(1));
	pthread_barrier_destroy(&barrier);
}

/*
 * Stops given up.  A thread that waits for its vfork() child cannot park
 * (the wait is killable, not interruptible), so a stop that meets it
 * waits until the child exits or stop_timeout_ms (10 ms here) runs out,
 * and is then given up.  The children sleep 0 to 25 ms, so some stops are
 * given up and some end just as, or just after, the waiting thread
 * returns and parks last -- the pause is then its to run, while the
 * collector's timeout may be running out: exactly one of the two must
 * win.  Two list workers and the vforking thread's own list, held only
 * on its stack, must come through every cycle whole.
 */
#define VFORK_MAX_US	25000

struct vforker {
	int *stop;
	long forks;
	long bad;
};

/* vfork() a child that sleeps @ns and exits; 0 once it has. */
static noinline int vfork_sleep(long ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	int status;
	pid_t pid;

	pid = vfork();
	if (!pid) {
		/* The child shares the stack: a system call, and out. */
		syscall(SYS_nanosleep, &ts, NULL);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return 0;
}

static void *vfork_thread(void *arg)
{
	struct vforker *v = arg;
	uint32_t seed = 4099;
	struct obj *head = list_new(WORKER_NODES, 32, 192, 1, &seed);

	if (!head) {
		v->bad = -1;
		return NULL;
	}
	while (!__atomic_load_n(v->stop, __ATOMIC_ACQUIRE)) {
		if (vfork_sleep((long)(rnd(&seed) % VFORK_MAX_US) * 1000)) {
			v->bad = -2;
			break;
		}
		__atomic_store_n(&v->forks, v->forks + 1, __ATOMIC_RELEASE);
		v->bad = list_check(head, WORKER_NODES, 1);
		if (v->bad)
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(gc, given_up_stops, GC_TIMEOUT)
{
	int i, n, ret, stop = 0, given_up = 0, done = 0;
	struct vforker v = { .stop = &stop };
	pthread_barrier_t barrier;
	struct gcheap_stats s0, s1;
	struct worker w[2];
	pthread_t t[2], vt;

	ASSERT_EQ(0, param_override(self, "stop_timeout_ms", "10"));
	HEAP_INIT(256 * MiB, 0, 0, 0);
	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, 3));
	for (i = 0; i < 2; i++) {
		w[i] = (struct worker){ .id = i, .stop = &stop, .barrier = &barrier };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, list_worker, &w[i]));
	}
	pthread_barrier_wait(&barrier);
	ASSERT_EQ(0, pthread_create(&vt, NULL, vfork_thread, &v));
	STATS(s0);

	/* At least 40 collections, and until each outcome came 3 times. */
	for (n = 0; n < 400 && (n < 40 || given_up < 3 || done < 3); n++) {
		ret = gcheap_collect();
		ASSERT_TRUE(ret == 0 || ret == -EAGAIN) TH_LOG("collection %d: %d", n, ret);
		if (ret)
			given_up++;
		else
			done++;
		for (i = 0; i < 2; i++)
			ASSERT_EQ(0, __atomic_load_n(&w[i].bad, __ATOMIC_ACQUIRE))
				TH_LOG("worker %d, collection %d", i, n);
		ASSERT_EQ(0, __atomic_load_n(&v.bad, __ATOMIC_ACQUIRE))
			TH_LOG("the vforking thread, collection %d", n);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].bad) TH_LOG("worker %d after %d rounds", i, w[i].rounds);
	}
	ASSERT_EQ(0, pthread_join(vt, NULL));
	EXPECT_EQ(0, v.bad);
	STATS(s1);
	TH_LOG("%d collections: %d given up, %d done; %ld vforks", n, given_up, done, v.forks);
	EXPECT_LE(3, given_up);
	EXPECT_LE(3, done);
	/* The pacer's own cycles may be given up too. */
	EXPECT_LE((uint64_t)given_up, s1.stop_aborts - s0.stop_aborts);
	/* Nothing holds a stop up now. */
	EXPECT_EQ(0, gcheap_collect());
	EXPECT_EQ(1, wait_threads(1));
	pthread_barrier_destroy(&barrier);
}

/* ======================================================================
 * 6. Threads exiting while collections run
 * ====================================================================== */

struct spawner {
	int stop;
	long spawned;
	long bad;
	long create_err;
};

/* pthread_exit() a few calls deep; returns only for a negative @depth. */
static noinline int exit_from_depth(int depth)
{
	if (depth < 0)
		return -1;
	if (depth)
		return exit_from_depth(depth - 1);
	pthread_exit(NULL);
}

static void *short_thread(void *arg)
{
	long kind = (long)arg;
	uint32_t seed = (uint32_t)kind + 1;
	struct obj *l = list_new(50, 32, 256, 1, &seed);

	if (!l || !garbage(16 * KiB, &seed) || list_check(l, 50, 1))
		return (void *)1;
	switch (kind % 3) {
	case 0:
		return NULL;
	case 1:
		exit_from_depth(3);
		return (void *)2;	/* not reached */
	default:
		return gcheap_unregister_thread() ? (void *)3 : NULL;
	}
}

static void *spawner_thread(void *arg)
{
	struct spawner *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		pthread_t t[4];
		int i, n = 0;

		for (i = 0; i < 4; i++, n++)
			if (pthread_create(&t[i], NULL, short_thread, (void *)(s->spawned + i))) {
				s->create_err++;
				break;
			}
		for (i = 0; i < n; i++) {
			void *res;

			pthread_join(t[i], &res);
			s->bad += res != NULL;
		}
		__atomic_store_n(&s->spawned, s->spawned + n, __ATOMIC_RELEASE);
	}
	return NULL;
}

TEST_F_TIMEOUT(gc, exiting_threads, GC_TIMEOUT)
{
	struct spawner sp[2] = { { 0 }, { 0 } };
	struct gcheap_stats s0, s1;
	long before, during;
	pthread_t t[2];
	int i;

	HEAP_INIT(256 * MiB, 0, 0, 0);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_create(&t[i], NULL, spawner_thread, &sp[i]));
	}
	while (__atomic_load_n(&sp[0].spawned, __ATOMIC_ACQUIRE) < 4 ||
	       __atomic_load_n(&sp[1].spawned, __ATOMIC_ACQUIRE) < 4)
		usleep(1000);
	STATS(s0);
	before = __atomic_load_n(&sp[0].spawned, __ATOMIC_ACQUIRE) +
		 __atomic_load_n(&sp[1].spawned, __ATOMIC_ACQUIRE);
	for (i = 0; i < 30; i++) {
		ASSERT_EQ(0, gcheap_collect()) TH_LOG("collection %d", i);
	}
	STATS(s1);
	during = __atomic_load_n(&sp[0].spawned, __ATOMIC_ACQUIRE) +
		 __atomic_load_n(&sp[1].spawned, __ATOMIC_ACQUIRE) - before;
	for (i = 0; i < 2; i++) {
		__atomic_store_n(&sp[i].stop, 1, __ATOMIC_RELEASE);
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, sp[i].bad);
		EXPECT_EQ(0, sp[i].create_err);
	}
	EXPECT_LE(s0.gc_cycles + 30, s1.gc_cycles);
	EXPECT_EQ(0, s1.stop_aborts);
	/* Threads came and went during the collections. */
	EXPECT_LE(16, during);
	TH_LOG("%ld threads exited during 30 collections", during);
	EXPECT_EQ(1, wait_threads(1));
}

/* ======================================================================
 * 7. A process killed in the middle of collections
 * ====================================================================== */

static void *child_churn(void *arg)
{
	uint32_t seed = (uint32_t)(uintptr_t)arg;

	for (;;)
		if (!garbage(256 * KiB, &seed))
			_exit(3);
	return NULL;
}

/* Allocate and collect forever, with two more threads allocating. */
static __attribute__((noreturn)) void killable_child(int ready_fd)
{
	struct gcheap_config cfg = { .heap_bytes = 128 * MiB, .flags = GCHEAP_CONFIG_GOGC, .gogc = 50 };
	uint32_t seed = (uint32_t)getpid();
	struct obj *live;
	pthread_t t;
	int i;

	if (gcheap_init(&cfg))
		_exit(1);
	live = list_new(2000, 32, 512, 1, &seed);
	if (!live)
		_exit(2);
	for (i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, child_churn, (void *)(uintptr_t)(i + 7)))
			_exit(4);
	if (gcheap_collect() || write(ready_fd, "r", 1) != 1)
		_exit(5);
	for (;;) {
		if (!garbage(512 * KiB, &seed) || gcheap_collect())
			_exit(6);
		if (list_check(live, 2000, 1))
			_exit(7);
	}
}

TEST_F_TIMEOUT(gc, killed_mid_cycle, GC_TIMEOUT)
{
	long pages0, heaps0, heaps = -1;
	unsigned int seed = (unsigned int)(now_ns() ^ (uint64_t)getpid());
	int round, i;

	/* This process has no heap of its own: the children are the heaps. */
	pages0 = pages_settled();
	heaps0 = debugfs_counter("heaps");
	if (pages0 < 0 || heaps0 < 0)
		SKIP(return, "no /sys/kernel/debug/gcheap counters");
	TH_LOG("seed %u", seed);
	for (round = 0; round < 5; round++) {
		int fds[2], status;
		char c;
		pid_t pid;

		ASSERT_EQ(0, pipe(fds));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(fds[0]);
			killable_child(fds[1]);
		}
		close(fds[1]);
		/* The child is up and has collected once; kill it at some
		 * point of its next cycles.
		 */
		EXPECT_EQ(1, read(fds[0], &c, 1)) TH_LOG("round %d: the child did not start", round);
		close(fds[0]);
		usleep(rand_r(&seed) % 400000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("round %d: status %#x", round, status);
	}
	EXPECT_EQ(pages0, pages_settled());
	for (i = 0; i < 200; i++) {
		heaps = debugfs_counter("heaps");
		if (heaps == heaps0)
			break;
		usleep(10000);
	}
	EXPECT_EQ(heaps0, heaps);
}

/* ======================================================================
 * 8. fork()
 * ====================================================================== */

#define FORK_NODES	3000

static struct obj *g_fork_list;
static struct obj *g_fork_large;

static void *blocked_reader(void *arg)
{
	char c;

	return read(*(int *)arg, &c, 1) == 1 ? NULL : (void *)1;
}

/* The child: its copy of the heap, its own collections.  Exit status 0,
 * or the step that failed.
 */
static __attribute__((noreturn)) void fork_child(int from_parent, int to_parent)
{
	struct gcheap_stats st;
	uint32_t seed = 99;
	struct obj *mine;
	char c;
	int i;

	if (gcheap_stats(&st) || st.threads != 1)
		_exit(10);
	if (list_check(g_fork_list, FORK_NODES, 1) || obj_check(g_fork_large, 1, 0, 0))
		_exit(11);
	/* The parent has rewritten its list: not this one. */
	if (read(from_parent, &c, 1) != 1)
		_exit(12);
	if (list_check(g_fork_list, FORK_NODES, 1) || obj_check(g_fork_large, 1, 0, 0))
		_exit(13);
	list_fill(g_fork_list, 3);
	obj_fill(g_fork_large, 3);
	if (write(to_parent, "c", 1) != 1)
		_exit(14);
	mine = list_new(500, 32, 1024, 4, &seed);
	if (!mine)
		_exit(15);
	for (i = 0; i < 5; i++) {
		if (!garbage(2 * MiB, &seed))
			_exit(16);
		scrub_stack();
		if (gcheap_collect())
			_exit(17);
		if (list_check(g_fork_list, FORK_NODES, 3) || obj_check(g_fork_large, 3, 0, 0))
			_exit(18);
		if (list_check(mine, 500, 4))
			_exit(19);
	}
	if (gcheap_stats(&st) || st.gc_cycles < 5 || !st.freed_bytes)
		_exit(20);
	_exit(0);
}

TEST_F_TIMEOUT(gc, fork, GC_TIMEOUT)
{
	int p2c[2], c2p[2], blk[2], status, i;
	struct gcheap_stats st;
	uint32_t seed = 5;
	pthread_t t;
	void *res;
	pid_t pid;
	char c;

	HEAP_INIT(256 * MiB, 0, 0, 0);
	g_fork_list = list_new(FORK_NODES, 32, 1024, 1, &seed);
	g_fork_large = obj_new(300 * KiB, 0, 1);
	ASSERT_NE(NULL, g_fork_list);
	ASSERT_NE(NULL, g_fork_large);
	ASSERT_EQ(0, gcheap_collect());
	/* Another registered thread, blocked, while the heap is copied. */
	ASSERT_EQ(0, pipe(blk));
	ASSERT_EQ(0, pthread_create(&t, NULL, blocked_reader, &blk[0]));
	ASSERT_EQ(2, wait_threads(2));
	ASSERT_EQ(0, pipe(p2c));
	ASSERT_EQ(0, pipe(c2p));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(p2c[1]);
		close(c2p[0]);
		fork_child(p2c[0], c2p[1]);
	}
	close(p2c[0]);
	close(c2p[1]);
	EXPECT_EQ(0, list_check(g_fork_list, FORK_NODES, 1));
	EXPECT_EQ(0, obj_check(g_fork_large, 1, 0, 0));
	list_fill(g_fork_list, 2);
	obj_fill(g_fork_large, 2);
	for (i = 0; i < 3; i++) {
		ASSERT_NE(0, garbage(2 * MiB, &seed));
		ASSERT_EQ(0, gcheap_collect());
	}
	ASSERT_EQ(1, write(p2c[1], "p", 1));
	/* The child has rewritten its copy: not ours. */
	EXPECT_EQ(1, read(c2p[0], &c, 1));
	EXPECT_EQ(0, list_check(g_fork_list, FORK_NODES, 2));
	EXPECT_EQ(0, obj_check(g_fork_large, 2, 0, 0));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the child failed at step %d", WEXITSTATUS(status));

	ASSERT_EQ(1, write(blk[1], "x", 1));
	ASSERT_EQ(0, pthread_join(t, &res));
	EXPECT_EQ(NULL, res);
	ASSERT_EQ(0, gcheap_collect());
	STATS(st);
	EXPECT_EQ(0, st.stop_aborts);
	EXPECT_EQ(0, list_check(g_fork_list, FORK_NODES, 2));
	EXPECT_EQ(0, obj_check(g_fork_large, 2, 0, 0));
	close(p2c[1]);
	close(c2p[0]);
	close(blk[0]);
	close(blk[1]);
}

/* ======================================================================
 * 9, 10. Pacing: GOGC, the hard limit, the soft limit
 * ====================================================================== */

static struct obj *g_live;

TEST_F_TIMEOUT(gc, pacing_gogc, GC_TIMEOUT)
{
	struct gcheap_stats st;
	struct churn c;
	uint32_t seed = 3;

	/* GOGC 100, the default. */
	HEAP_INIT(256 * MiB, 0, 0, 0);
	/* A 4 MiB live set. */
	g_live = list_new(1024, 4096, 4096, 1, &seed);
	ASSERT_NE(NULL, g_live);
	churn(128 * MiB, 2048, true, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	/* Collections came by themselves and kept the heap small. */
	EXPECT_LE(4, st.gc_cycles);
	EXPECT_GT(64 * MiB, c.max_heap) TH_LOG("heap grew to %llu", (unsigned long long)c.max_heap);
	TH_LOG("%llu cycles, heap at most %llu MiB", (unsigned long long)st.gc_cycles,
	       (unsigned long long)(c.max_heap >> 20));
	EXPECT_NE(0, st.next_gc_bytes);
	EXPECT_LE(4 * MiB, st.marked_bytes);
	EXPECT_EQ(0, list_check(g_live, 1024, 1));
}

/* With GOGC off nothing is collected until asked; turned on, it is. */
TEST_F_TIMEOUT(gc, pacing_off_then_on, GC_TIMEOUT)
{
	struct gcheap_stats st;
	struct churn c;

	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	churn(64 * MiB, 4096, false, &c);
	ASSERT_EQ(0, c.stats_err);
	ASSERT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	EXPECT_EQ(0, st.gc_cycles);
	EXPECT_EQ(0, st.next_gc_bytes);
	EXPECT_LE(60 * MiB, st.heap_bytes);
	EXPECT_EQ(0, st.freed_bytes);

	EXPECT_EQ(-EINVAL, gcheap_set_gogc(-2));
	ASSERT_EQ(0, gcheap_set_gogc(100));
	churn(64 * MiB, 4096, false, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	EXPECT_LE(2, st.gc_cycles);
	EXPECT_LT(0, st.freed_bytes);
}

/* GOGC off and a 64 MiB heap: 1 GiB of garbage goes through it, every
 * allocation succeeding thanks to collections at the limit.
 */
TEST_F_TIMEOUT(gc, hard_limit, GC_TIMEOUT)
{
	struct gcheap_stats st;
	struct churn c;
	uint32_t seed = 4;
	uint64_t t0 = now_ns();

	HEAP_INIT(64 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	g_live = list_new(256, 4096, 4096, 1, &seed);
	ASSERT_NE(NULL, g_live);
	/* Far from the limit: no collection. */
	churn(24 * MiB, 8192, false, &c);
	ASSERT_EQ(0, c.stats_err);
	ASSERT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	EXPECT_EQ(0, st.gc_cycles);

	churn(1024 * MiB - 24 * MiB, 8192, false, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at) TH_LOG("allocation failed after %zu MiB", c.failed_at / MiB);
	STATS(st);
	EXPECT_LE(8, st.gc_cycles);
	EXPECT_GE(64 * MiB, c.max_heap);
	EXPECT_EQ(0, st.stop_aborts);
	EXPECT_EQ(0, list_check(g_live, 256, 1));
	TH_LOG("%llu cycles, %.1f s", (unsigned long long)st.gc_cycles, (now_ns() - t0) / 1e9);
}

TEST_F_TIMEOUT(gc, soft_limit, GC_TIMEOUT)
{
	struct gcheap_stats s0, st, s1;
	uint64_t slack;
	struct churn c;
	uint32_t seed = 6;

	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 32 * MiB);
	g_live = list_new(1024, 4096, 4096, 1, &seed);
	ASSERT_NE(NULL, g_live);
	STATS(s0);
	churn(192 * MiB, 2048, true, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	/* Without the limit there would be no cycle at all. */
	EXPECT_LE(4, st.gc_cycles);
	slack = soft_limit_slack(&c, 192 * MiB, &s0, &st);
	EXPECT_GE(32 * MiB + slack, c.max_heap)
		TH_LOG("heap grew to %llu", (unsigned long long)c.max_heap);
	TH_LOG("%llu cycles, heap at most %llu MiB (limit 32 MiB + %llu MiB), longest pause %llu ms",
	       (unsigned long long)st.gc_cycles, (unsigned long long)(c.max_heap >> 20),
	       (unsigned long long)(slack >> 20), (unsigned long long)(st.max_pause_ns / 1000000));
	EXPECT_EQ(0, list_check(g_live, 1024, 1));

	/* Without the limit (and GOGC off) nothing is collected any more.
	 * (The collection settles a paced one the churn may have started.)
	 */
	ASSERT_EQ(0, gcheap_set_soft_limit(0));
	ASSERT_EQ(0, gcheap_collect());
	STATS(st);
	churn(48 * MiB, 2048, true, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at);
	STATS(s1);
	EXPECT_EQ(st.gc_cycles, s1.gc_cycles);
}

/* The same settings from the environment. */
TEST_F_TIMEOUT(gc, pacing_environment, GC_TIMEOUT)
{
	struct gcheap_config cfg = { .heap_bytes = 256 * MiB };
	struct gcheap_stats s0, st;
	uint64_t slack;
	struct churn c;

	ASSERT_EQ(0, setenv("GCHEAP_GOGC", "off", 1));
	ASSERT_EQ(0, setenv("GCHEAP_MEMLIMIT", "24MiB", 1));
	ASSERT_EQ(0, gcheap_init(&cfg));
	STATS(s0);
	churn(96 * MiB, 2048, true, &c);
	ASSERT_EQ(0, c.stats_err);
	EXPECT_EQ(SIZE_MAX, c.failed_at);
	STATS(st);
	EXPECT_LE(2, st.gc_cycles);
	slack = soft_limit_slack(&c, 96 * MiB, &s0, &st);
	EXPECT_GE(24 * MiB + slack, c.max_heap)
		TH_LOG("heap grew to %llu", (unsigned long long)c.max_heap);
	TH_LOG("%llu cycles, heap at most %llu MiB (limit 24 MiB + %llu MiB), longest pause %llu ms",
	       (unsigned long long)st.gc_cycles, (unsigned long long)(c.max_heap >> 20),
	       (unsigned long long)(slack >> 20), (unsigned long long)(st.max_pause_ns / 1000000));
}

/* ======================================================================
 * 11. Checkmark mode
 * ====================================================================== */

#define CK_NODES	5000
#define CK_DEPTH	11
#define CK_LARGE	6
#define CK_LARGE_PTRS	64
#define CK_THREADS	4

static struct obj *g_ck_list, *g_ck_tree, *g_ck_large[CK_LARGE];

static noinline int ck_build(uint32_t *seed)
{
	int i, k;

	g_ck_list = list_new(CK_NODES, 32, 512, 1, seed);
	g_ck_tree = tree_new(CK_DEPTH, 1);
	if (!g_ck_list || !g_ck_tree)
		return -ENOMEM;
	for (i = 0; i < CK_LARGE; i++) {
		g_ck_large[i] = obj_new(40 * KiB + i * 60 * KiB, CK_LARGE_PTRS, 1);
		if (!g_ck_large[i])
			return -ENOMEM;
		for (k = 0; k < CK_LARGE_PTRS; k++) {
			g_ck_large[i]->ptr[k] = obj_new(16 + (k * 97) % 3000, 0, 1);
			if (!g_ck_large[i]->ptr[k])
				return -ENOMEM;
		}
	}
	return 0;
}

/* One round of changes: new list nodes, a new subtree, new children of
 * the large objects.
 */
static noinline int ck_mutate(int round, uint32_t *seed)
{
	struct obj *o = g_ck_tree;
	int k;

	if (list_replace(g_ck_list, 16, (size_t)round, 32, 512, 1, seed))
		return -ENOMEM;
	for (k = 0; k < round % (CK_DEPTH - 2); k++)
		o = o->ptr[k & 1];
	o->ptr[round & 1] = tree_new(CK_DEPTH - 1 - k, 1);
	if (!o->ptr[round & 1])
		return -ENOMEM;
	for (k = round % 4; k < CK_LARGE_PTRS; k += 4) {
		struct obj *n = obj_new(16 + (rnd(seed) % 3000), 0, 1);

		if (!n)
			return -ENOMEM;
		g_ck_large[round % CK_LARGE]->ptr[k] = n;
	}
	return garbage(256 * KiB, seed) ? 0 : -ENOMEM;
}

static noinline long ck_check(void)
{
	long r = list_check(g_ck_list, CK_NODES, 1);
	int i, k;

	if (r)
		return r;
	if (tree_check(g_ck_tree, 1) != (1l << CK_DEPTH) - 1)
		return -1;
	for (i = 0; i < CK_LARGE; i++) {
		if (obj_check(g_ck_large[i], 1, 0, 0))
			return -100 - i;
		for (k = 0; k < CK_LARGE_PTRS; k++)
			if (obj_check(g_ck_large[i]->ptr[k], 1, 0, 0))
				return -1000 - i * 100 - k;
	}
	return 0;
}

TEST_F_TIMEOUT(gc, checkmark, GC_TIMEOUT)
{
	struct worker w[CK_THREADS];
	pthread_barrier_t barrier;
	pthread_t t[CK_THREADS];
	struct gcheap_stats s0, st;
	uint32_t seed = 11;
	int i, k, stop = 0, pace = 0;

	/* Paced cycles now and then besides ours, not after every round. */
	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_CHECKMARK | GCHEAP_CONFIG_GOGC, 400, 0);
	ASSERT_EQ(0, ck_build(&seed));
	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, CK_THREADS + 1));
	for (i = 0; i < CK_THREADS; i++) {
		w[i] = (struct worker){
			.id = 100 + i, .stop = &stop, .barrier = &barrier, .pace = &pace,
		};
		ASSERT_EQ(0, pthread_create(&t[i], NULL, list_worker, &w[i]));
	}
	pthread_barrier_wait(&barrier);
	STATS(s0);
	EXPECT_EQ(CK_THREADS + 1, s0.threads);
	for (i = 0; i < 20; i++) {
		/* The workers change their lists too, a round each. */
		__atomic_store_n(&pace, i + 1, __ATOMIC_RELEASE);
		ASSERT_EQ(0, ck_mutate(i, &seed)) TH_LOG("round %d", i);
		scrub_stack();
		ASSERT_EQ(0, gcheap_collect()) TH_LOG("round %d", i);
		STATS(st);
		ASSERT_EQ(0, st.checkmark_errors) TH_LOG("after round %d", i);
		for (k = 0; k < CK_THREADS; k++) {
			ASSERT_EQ(0, __atomic_load_n(&w[k].bad, __ATOMIC_ACQUIRE))
				TH_LOG("worker %d after %d rounds", k, w[k].rounds);
		}
	}
	EXPECT_EQ(0, ck_check());
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < CK_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].bad) TH_LOG("worker %d after %d rounds", i, w[i].rounds);
		EXPECT_LE(1, w[i].rounds);
	}
	ASSERT_EQ(0, gcheap_collect());
	STATS(st);
	EXPECT_LE(s0.gc_cycles + 21, st.gc_cycles);
	TH_LOG("%llu cycles checked", (unsigned long long)st.gc_cycles);
	EXPECT_EQ(0, st.checkmark_errors);
	EXPECT_EQ(0, st.stop_aborts);
	EXPECT_LT(0, st.freed_bytes);
	EXPECT_EQ(0, ck_check());
	pthread_barrier_destroy(&barrier);
}

/* ======================================================================
 * 12. Mark-stack overflow
 * ====================================================================== */

#define MS_LIST		100000
#define MS_WIDE		4000	/* the root's children */
#define MS_FAN		16	/* each child's leaves */

static struct obj *g_ms_list, *g_ms_wide;

static noinline size_t ms_build(uint32_t *seed)
{
	size_t bytes = 0, i, k;

	g_ms_list = list_new(MS_LIST, 32, 32, 1, seed);
	g_ms_wide = obj_new(GCHEAP_SMALL_MAX, MS_WIDE, 1);
	if (!g_ms_list || !g_ms_wide)
		return 0;
	bytes += MS_LIST * 32 + gcheap_size(g_ms_wide);
	for (i = 0; i < MS_WIDE; i++) {
		struct obj *c = obj_new(256, MS_FAN, 1);

		if (!c)
			return 0;
		g_ms_wide->ptr[i] = c;
		bytes += gcheap_size(c);
		for (k = 0; k < MS_FAN; k++) {
			c->ptr[k] = obj_new(32, 0, 1);
			if (!c->ptr[k])
				return 0;
			bytes += gcheap_size(c->ptr[k]);
		}
	}
	return bytes;
}

static noinline long ms_check(void)
{
	long r = list_check(g_ms_list, MS_LIST, 1);
	size_t i, k;

	if (r)
		return r;
	if (obj_check(g_ms_wide, 1, 0, 0))
		return -1;
	for (i = 0; i < MS_WIDE; i++) {
		const struct obj *c = g_ms_wide->ptr[i];

		if (obj_check(c, 1, 0, 0))
			return -2 - (long)i;
		for (k = 0; k < MS_FAN; k++)
			if (obj_check(c->ptr[k], 1, 0, 0))
				return -100000 - (long)(i * MS_FAN + k);
	}
	return 0;
}

TEST_F_TIMEOUT(gc, mark_stack_overflow, GC_TIMEOUT)
{
	struct gcheap_stats st;
	uint32_t seed = 12;
	char value[32];
	size_t bytes;
	int i;

	ASSERT_EQ(0, param_override(self, "mark_stack", "16"));
	ASSERT_EQ(0, param_get("mark_stack", value, sizeof(value)));
	ASSERT_STREQ("16", value);
	/* Checkmark mode through the module parameter: every object the
	 * overflow path loses is reported.
	 */
	ASSERT_EQ(0, param_override(self, "checkmark", "1"));
	HEAP_INIT(256 * MiB, GCHEAP_CONFIG_GOGC, GCHEAP_GOGC_OFF, 0);
	bytes = ms_build(&seed);
	ASSERT_NE(0, bytes);
	for (i = 0; i < 3; i++) {
		ASSERT_NE(0, garbage(4 * MiB, &seed));
		scrub_stack();
		ASSERT_EQ(0, gcheap_collect());
		STATS(st);
		EXPECT_LE(bytes, st.marked_bytes) TH_LOG("cycle %d", i);
		EXPECT_EQ(0, st.checkmark_errors) TH_LOG("cycle %d", i);
	}
	EXPECT_LT(0, st.freed_bytes);
	EXPECT_EQ(0, ms_check());
}

TEST_HARNESS_MAIN
