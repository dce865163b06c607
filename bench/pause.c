// SPDX-License-Identifier: MIT
/*
 * bench/pause: the stop-the-world pauses a collector makes under two
 * classic garbage-collector workloads, and how long the workload takes.
 *
 *	pause-gcheap gcheap PROGRAM [DEPTH]
 *	pause-bdwgc bdwgc|bdwgc-incremental PROGRAM [DEPTH]
 *
 * PROGRAM is one of
 *
 *   binarytrees  tools/binarytrees.c's workload, the benchmarks game's
 *                binary-trees: a stretch tree of depth DEPTH+1, a
 *                long-lived tree of depth DEPTH, and for each depth d of
 *                4, 6, .. DEPTH, 2^(DEPTH-d+4) trees built bottom-up,
 *                checked and dropped (DEPTH default 18)
 *   gcbench      Boehm's GCBench (after Ellis and Kovac): a stretch tree
 *                of depth DEPTH (default 18), a long-lived tree of depth
 *                DEPTH-2 built top-down and a long-lived array of 500000
 *                doubles (scaled by 2^(DEPTH-18)), then for each depth d
 *                of 4, 6, .. DEPTH-2, 2*TreeSize(DEPTH)/TreeSize(d) trees
 *                built top-down and as many built bottom-up, all dropped
 *
 * Both check their trees' node counts and fail if one is wrong.
 *
 * The pauses: bdwgc reports each stop of the world as it happens
 * (GC_set_on_collection_event()); a pause runs from GC_EVENT_PRE_STOP_WORLD
 * to GC_EVENT_POST_START_WORLD, by CLOCK_MONOTONIC.  gcheap's module times
 * its stops itself and has no event per pause: a thread the collector does
 * not stop (unregistered) polls gcheap_stats() every 200 us
 * (PAUSE_POLL_US) and takes last_pause_ns, the longest stop of the last
 * cycle, each time gc_cycles moves.  A cycle that ends within one gap
 * between polls of the next is missed, and counted as missed (the gaps a
 * busy guest really gives are reported on stderr); the maximum and the
 * total do not depend on the polling, they are the module's max_pause_ns
 * and total_pause_ns.  So gcheap has one sample per cycle, its longest stop
 * (a concurrent cycle stops the world twice), bdwgc one per stop.
 *
 * Output, one line on stdout:
 *
 *	pause PROGRAM COLLECTOR SECONDS CYCLES PAUSES MAX_NS P99_NS TOTAL_NS MISSED
 *
 * the workload's run time (from after the collector's set-up to its end);
 * the collections completed meanwhile; the pause samples taken; the
 * longest, the 99th percentile (nearest rank) and the sum of the pauses;
 * the cycles gcheap's poller missed (0 for bdwgc).  With PAUSE_DUMP=FILE
 * every sample is written to FILE, in ns, one per line.  Notes on the
 * run go to stderr.  Exit status: 0; 2 when the collector cannot be used
 * here; 1 on any other error.
 *
 * bdwgc runs in its default settings, which for a program that starts no
 * thread means marking on the program's own thread; PAUSE_BDWGC_PARALLEL=1
 * starts its parallel markers (one per CPU) first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(WITH_GCHEAP)
#include <pthread.h>
#include <gcheap.h>
#elif defined(WITH_BDWGC)
#include <signal.h>
/* For GC_start_mark_threads(); this program starts no thread of its own. */
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc.h>
#else
#error "build with -DWITH_GCHEAP or -DWITH_BDWGC"
#endif

#define MIN_DEPTH	4
#define DEFAULT_DEPTH	18
#define MAX_DEPTH	24
/* GCBench's long-lived array at its stretch depth of 18. */
#define GCBENCH_ARRAY	500000
#define GCBENCH_CHECKED	1000
#define DEFAULT_POLL_US	200
/* Samples kept: far more than either collector makes in a run. */
#define MAX_SAMPLES	(1ul << 22)

enum collector { C_GCHEAP, C_BDWGC, C_BDWGC_INCREMENTAL, NR_COLLECTORS };

static const char *const collector_names[NR_COLLECTORS] = {
	[C_GCHEAP] = "gcheap",
	[C_BDWGC] = "bdwgc",
	[C_BDWGC_INCREMENTAL] = "bdwgc-incremental",
};

static enum collector collector;
static const char *program;

/*
 * The pause samples, in memory from mmap: neither collector scans it, so
 * durations are never taken for pointers, and filling it allocates
 * nothing from the heap being measured.
 */
static uint64_t *samples;
static size_t nr_samples;
static uint64_t lost_samples;	/* beyond MAX_SAMPLES */

static void record(uint64_t ns)
{
	if (nr_samples < MAX_SAMPLES)
		samples[nr_samples++] = ns;
	else
		lost_samples++;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die_alloc(void)
{
	fprintf(stderr, "pause: %s: %s: allocation failed\n", program,
		collector_names[collector]);
	exit(1);
}

#ifdef WITH_GCHEAP

/* Zeroed, scanned. */
static inline void *gc_alloc(size_t size)
{
	void *p = gcheap_alloc(size);

	if (__builtin_expect(!p, 0))
		die_alloc();
	return p;
}

/* Zeroed, never scanned. */
static inline void *gc_alloc_atomic(size_t size)
{
	void *p = gcheap_alloc_atomic(size);

	if (__builtin_expect(!p, 0))
		die_alloc();
	return p;
}

#else

static inline void *gc_alloc(size_t size)
{
	void *p = GC_MALLOC(size);

	if (__builtin_expect(!p, 0))
		die_alloc();
	return p;
}

/* Not zeroed: GCBench writes what it reads. */
static inline void *gc_alloc_atomic(size_t size)
{
	void *p = GC_MALLOC_ATOMIC(size);

	if (__builtin_expect(!p, 0))
		die_alloc();
	return p;
}

#endif

static void check(const char *what, long got, long want)
{
	if (got != want) {
		fprintf(stderr, "pause: %s: %s: %s: %ld nodes, not %ld\n", program,
			collector_names[collector], what, got, want);
		exit(1);
	}
}

/* --- binary-trees --- */

struct bt_node {
	struct bt_node *left;
	struct bt_node *right;
};

static struct bt_node *bt_bottom_up(int depth)
{
	struct bt_node *n = gc_alloc(sizeof(*n));

	if (depth > 0) {
		n->left = bt_bottom_up(depth - 1);
		n->right = bt_bottom_up(depth - 1);
	}
	return n;
}

static long bt_check(const struct bt_node *t)
{
	if (!t->left)
		return 1;
	return 1 + bt_check(t->left) + bt_check(t->right);
}

static void binarytrees(int n)
{
	int max_depth = n > MIN_DEPTH + 2 ? n : MIN_DEPTH + 2;
	struct bt_node *long_lived;
	int depth;

	check("stretch tree", bt_check(bt_bottom_up(max_depth + 1)),
	      (2l << (max_depth + 1)) - 1);
	long_lived = bt_bottom_up(max_depth);
	for (depth = MIN_DEPTH; depth <= max_depth; depth += 2) {
		long iterations = 1l << (max_depth - depth + MIN_DEPTH), i, sum = 0;

		for (i = 0; i < iterations; i++)
			sum += bt_check(bt_bottom_up(depth));
		check("trees", sum, iterations * ((2l << depth) - 1));
	}
	check("long-lived tree", bt_check(long_lived), (2l << max_depth) - 1);
}

/* --- GCBench --- */

struct gcb_node {
	struct gcb_node *left;
	struct gcb_node *right;
	int i, j;
};

static long gcb_tree_size(int depth)
{
	return (2l << depth) - 1;
}

/* Top down: the children are younger than the node they are stored in. */
static void gcb_populate(int depth, struct gcb_node *n)
{
	if (depth <= 0)
		return;
	depth--;
	n->left = gc_alloc(sizeof(*n));
	n->right = gc_alloc(sizeof(*n));
	gcb_populate(depth, n->left);
	gcb_populate(depth, n->right);
}

/* Bottom up: every store is into the youngest object. */
static struct gcb_node *gcb_make_tree(int depth)
{
	struct gcb_node *n, *left, *right;

	if (depth <= 0)
		return gc_alloc(sizeof(*n));
	left = gcb_make_tree(depth - 1);
	right = gcb_make_tree(depth - 1);
	n = gc_alloc(sizeof(*n));
	n->left = left;
	n->right = right;
	return n;
}

static long gcb_count(const struct gcb_node *t)
{
	if (!t)
		return 0;
	return 1 + gcb_count(t->left) + gcb_count(t->right);
}

static void gcbench(int stretch_depth)
{
	int long_lived_depth = stretch_depth - 2, depth;
	long array_size = stretch_depth >= DEFAULT_DEPTH ?
		(long)GCBENCH_ARRAY << (stretch_depth - DEFAULT_DEPTH) :
		(long)GCBENCH_ARRAY >> (DEFAULT_DEPTH - stretch_depth);
	struct gcb_node *long_lived;
	double *array;
	long i;

	/* Room for the element checked at the end, array[1000]. */
	if (array_size < 2 * GCBENCH_CHECKED + 2)
		array_size = 2 * GCBENCH_CHECKED + 2;
	/* Stretch the heap: the first collections see a large dead tree. */
	check("stretch tree", gcb_count(gcb_make_tree(stretch_depth)),
	      gcb_tree_size(stretch_depth));

	long_lived = gc_alloc(sizeof(*long_lived));
	gcb_populate(long_lived_depth, long_lived);
	array = gc_alloc_atomic(sizeof(double) * (size_t)array_size);
	for (i = 0; i < array_size / 2; i++)
		array[i] = 1.0 / (double)i;

	for (depth = MIN_DEPTH; depth <= long_lived_depth; depth += 2) {
		long iters = 2 * gcb_tree_size(stretch_depth) / gcb_tree_size(depth);
		long sum = 0;

		for (i = 0; i < iters; i++) {
			struct gcb_node *t = gc_alloc(sizeof(*t));

			gcb_populate(depth, t);
			sum += gcb_count(t);
		}
		check("top-down trees", sum, iters * gcb_tree_size(depth));
		sum = 0;
		for (i = 0; i < iters; i++)
			sum += gcb_count(gcb_make_tree(depth));
		check("bottom-up trees", sum, iters * gcb_tree_size(depth));
	}

	check("long-lived tree", gcb_count(long_lived), gcb_tree_size(long_lived_depth));
	if (array[GCBENCH_CHECKED] != 1.0 / GCBENCH_CHECKED) {
		fprintf(stderr, "pause: gcbench: %s: the long-lived array changed\n",
			collector_names[collector]);
		exit(1);
	}
}

/* --- the collectors --- */

struct result {
	double seconds;
	uint64_t cycles;
	uint64_t max_ns;
	uint64_t total_ns;
	uint64_t missed;
};

static void unavailable(const char *why)
{
	printf("%s: unavailable (%s)\n", collector_names[collector], why);
	exit(2);
}

#ifdef WITH_GCHEAP

static long poll_ns;
static bool monitor_stop;
static int monitor_err;
/* The poller's: its last look at the figures, what it has seen. */
static struct gcheap_stats last_stats;
static uint64_t seen_cycles, missed_cycles;
static uint64_t nr_polls;
static int64_t last_poll, longest_gap, longest_call;

static void get_stats(struct gcheap_stats *st)
{
	int ret = gcheap_stats(st);

	if (ret < 0) {
		fprintf(stderr, "pause: gcheap_stats: %s\n", strerror(-ret));
		exit(1);
	}
}

static void poll_once(void)
{
	int64_t now = now_ns();
	int ret;

	/* The polling the run really got, on a guest that may be busy. */
	if (last_poll && now - last_poll > longest_gap)
		longest_gap = now - last_poll;
	last_poll = now;
	nr_polls++;
	ret = gcheap_stats(&last_stats);
	if (ret < 0) {
		monitor_err = -ret;
		return;
	}
	/* The module's figures sit behind a lock the collector takes too. */
	if (now_ns() - now > longest_call)
		longest_call = now_ns() - now;
	if (last_stats.gc_cycles == seen_cycles)
		return;
	/* One sample for the newest cycle; those before it went unseen. */
	missed_cycles += last_stats.gc_cycles - seen_cycles - 1;
	seen_cycles = last_stats.gc_cycles;
	record(last_stats.last_pause_ns);
}

static void *monitor(void *arg)
{
	struct timespec interval = { 0, poll_ns };
	int ret;

	(void)arg;
	/*
	 * libgcheap's pthread_create() registered this thread: unregistered,
	 * the collector neither stops it nor scans its stack, and it can
	 * watch the pauses from outside them.
	 */
	ret = gcheap_unregister_thread();
	if (ret < 0 && ret != -ENOENT) {
		monitor_err = -ret;
		return NULL;
	}
	while (!__atomic_load_n(&monitor_stop, __ATOMIC_ACQUIRE)) {
		poll_once();
		if (monitor_err)
			return NULL;
		nanosleep(&interval, NULL);
	}
	/*
	 * The last look, after the workload: the run's figures are the ones
	 * it reads, so no cycle can end between the samples and the totals.
	 */
	poll_once();
	return NULL;
}

static void run(void (*workload)(int), int depth, struct result *res)
{
	const char *env = getenv("PAUSE_POLL_US");
	struct gcheap_stats st;
	pthread_t thread;
	int64_t t0, t1;
	long us = DEFAULT_POLL_US;
	int ret;

	if (env && *env) {
		char *end;

		errno = 0;
		us = strtol(env, &end, 10);
		if (errno || *end || us < 1 || us > 999999) {
			fprintf(stderr, "pause: PAUSE_POLL_US must be 1..999999, not '%s'\n", env);
			exit(1);
		}
	}
	poll_ns = us * 1000;

	ret = gcheap_init(NULL);
	if (ret < 0 && ret != -EALREADY)
		unavailable(strerror(-ret));
	/* A new heap: no cycle yet, and no pause, so the figures are the run's. */
	get_stats(&st);
	if (st.gc_cycles)
		fprintf(stderr, "pause: %s gcheap: %llu collections before the run\n", program,
			(unsigned long long)st.gc_cycles);
	seen_cycles = st.gc_cycles;

	ret = pthread_create(&thread, NULL, monitor, NULL);
	if (ret) {
		fprintf(stderr, "pause: pthread_create: %s\n", strerror(ret));
		exit(1);
	}
	t0 = now_ns();
	workload(depth);
	t1 = now_ns();
	__atomic_store_n(&monitor_stop, true, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	if (monitor_err) {
		fprintf(stderr, "pause: the poller: %s\n", strerror(monitor_err));
		exit(1);
	}

	res->seconds = (double)(t1 - t0) / 1e9;
	res->cycles = last_stats.gc_cycles - st.gc_cycles;
	res->missed = missed_cycles;
	res->max_ns = last_stats.max_pause_ns;
	res->total_ns = last_stats.total_pause_ns;
	fprintf(stderr,
		"pause: %s gcheap: %llu polls, at most %.1f ms apart, the longest call %.1f ms; %llu barrier faults; final pauses rescanned up to %llu pages; %llu thread(s) registered\n",
		program, (unsigned long long)nr_polls, (double)longest_gap / 1e6,
		(double)longest_call / 1e6,
		(unsigned long long)last_stats.barrier_faults,
		(unsigned long long)last_stats.pause_pages_max,
		(unsigned long long)last_stats.threads);
	if (last_stats.stop_aborts)
		fprintf(stderr, "pause: %s gcheap: %llu collections given up (a thread did not stop)\n",
			program, (unsigned long long)last_stats.stop_aborts);
}

#else /* WITH_BDWGC */

static int64_t stop_begin;

/* Called by the collecting thread, with bdwgc's lock held. */
static void GC_CALLBACK on_event(GC_EventType ev)
{
	if (ev == GC_EVENT_PRE_STOP_WORLD) {
		stop_begin = now_ns();
	} else if (ev == GC_EVENT_POST_START_WORLD && stop_begin) {
		record((uint64_t)(now_ns() - stop_begin));
		stop_begin = 0;
	}
}

static void run(void (*workload)(int), int depth, struct result *res)
{
	GC_word gc0;
	int64_t t0, t1;
	size_t i;

	if (collector == C_BDWGC_INCREMENTAL)
		GC_enable_incremental();
	GC_INIT();
	if (collector == C_BDWGC_INCREMENTAL) {
		struct sigaction sa;

		if (!GC_is_incremental_mode())
			unavailable("no incremental mode: no dirty bits");
		/* Only bdwgc's mprotect dirty bits install a SIGSEGV handler. */
		sigaction(SIGSEGV, NULL, &sa);
		fprintf(stderr, "pause: %s bdwgc-incremental: %s dirty bits\n", program,
			(sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL ?
			"mprotect" : "soft-dirty");
	}
	/*
	 * bdwgc 8.2 starts its parallel markers with the program's first
	 * thread, so a single-threaded program marks on its own thread
	 * unless it asks for them.
	 */
	if (getenv("PAUSE_BDWGC_PARALLEL") && !strcmp(getenv("PAUSE_BDWGC_PARALLEL"), "1"))
		GC_start_mark_threads();
	fprintf(stderr, "pause: %s %s: bdwgc marks with %d thread(s)\n", program,
		collector_names[collector], GC_get_parallel() + 1);
	GC_set_on_collection_event(on_event);
	gc0 = GC_get_gc_no();

	t0 = now_ns();
	workload(depth);
	t1 = now_ns();

	GC_set_on_collection_event(NULL);
	res->seconds = (double)(t1 - t0) / 1e9;
	res->cycles = GC_get_gc_no() - gc0;
	res->missed = 0;
	res->max_ns = 0;
	res->total_ns = 0;
	for (i = 0; i < nr_samples; i++) {
		if (samples[i] > res->max_ns)
			res->max_ns = samples[i];
		res->total_ns += samples[i];
	}
}

#endif

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
#ifdef WITH_GCHEAP
	fprintf(stderr, "usage: pause-gcheap gcheap binarytrees|gcbench [DEPTH]\n");
#else
	fprintf(stderr, "usage: pause-bdwgc bdwgc|bdwgc-incremental binarytrees|gcbench [DEPTH]\n");
#endif
	fprintf(stderr, "  DEPTH: %d..%d (default %d)\n", MIN_DEPTH + 2, MAX_DEPTH,
		DEFAULT_DEPTH);
	exit(1);
}

static void dump(const char *path)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (!f) {
		fprintf(stderr, "pause: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (i = 0; i < nr_samples; i++)
		fprintf(f, "%llu\n", (unsigned long long)samples[i]);
	if (fclose(f)) {
		fprintf(stderr, "pause: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	void (*workload)(int);
	int depth = DEFAULT_DEPTH;
	const char *path;
	struct result res;
	uint64_t p99 = 0;

	if (argc < 3 || argc > 4)
		usage();
	for (collector = 0; collector < NR_COLLECTORS; collector++)
		if (!strcmp(argv[1], collector_names[collector]))
			break;
#ifdef WITH_GCHEAP
	if (collector != C_GCHEAP)
		usage();
#else
	if (collector != C_BDWGC && collector != C_BDWGC_INCREMENTAL)
		usage();
#endif
	program = argv[2];
	if (!strcmp(program, "binarytrees"))
		workload = binarytrees;
	else if (!strcmp(program, "gcbench"))
		workload = gcbench;
	else
		usage();
	if (argc > 3) {
		char *end;
		long v;

		errno = 0;
		v = strtol(argv[3], &end, 10);
		if (errno || end == argv[3] || *end || v < MIN_DEPTH + 2 || v > MAX_DEPTH)
			usage();
		depth = (int)v;
	}

	samples = mmap(NULL, MAX_SAMPLES * sizeof(*samples), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (samples == MAP_FAILED) {
		perror("pause: mmap");
		return 1;
	}

	run(workload, depth, &res);

	path = getenv("PAUSE_DUMP");
	if (path && *path)
		dump(path);
	if (nr_samples) {
		/* Nearest rank: the smallest sample at or above 99% of them. */
		size_t rank = (nr_samples * 99 + 99) / 100;

		qsort(samples, nr_samples, sizeof(*samples), cmp_u64);
		p99 = samples[rank - 1];
	}
	if (lost_samples)
		fprintf(stderr, "pause: %s %s: %llu pauses beyond the first %lu not kept\n", program,
			collector_names[collector], (unsigned long long)lost_samples,
			MAX_SAMPLES);
	printf("pause %s %s %.3f %llu %zu %llu %llu %llu %llu\n", program,
	       collector_names[collector], res.seconds, (unsigned long long)res.cycles,
	       nr_samples, (unsigned long long)res.max_ns, (unsigned long long)p99,
	       (unsigned long long)res.total_ns, (unsigned long long)res.missed);
	return 0;
}
