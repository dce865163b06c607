// SPDX-License-Identifier: MIT
/*
 * bench/alloc: the allocation microbenchmark.  One run measures one
 * allocator at one object size and thread count:
 *
 *	alloc glibc|mimalloc|bdwgc|gcheap SIZE THREADS
 *
 * Each thread allocates about 64 MiB in objects of SIZE bytes (at least
 * 16384 objects), writes a word into each and keeps every pointer; nothing
 * is ever freed.  The result is one line on stdout,
 *
 *	ALLOCATOR SIZE THREADS NS_PER_ALLOC
 *
 * the time from the threads' common start to the last one finishing,
 * divided by the allocations of one thread.  Exit status: 0, 2 when the
 * allocator cannot be used here (gcheap without its module), 1 otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/*
 * Threads register themselves with bdwgc (GC_register_my_thread()) rather
 * than being started through its pthread_create() wrapper, so that all four
 * allocators run in threads created the same way.
 */
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc.h>

/* Only for mi_malloc()'s type: mimalloc is loaded at run time, see below. */
#include <mimalloc.h>

#include <gcheap.h>

/*
 * The library grows its allocator while this benchmark is written against
 * it: referencing the calls weakly keeps the benchmark linkable against a
 * libgcheap that lacks them, and such a library is reported unavailable
 * (ENOSYS) like a missing module.
 */
#pragma weak gcheap_init
#pragma weak gcheap_alloc
#pragma weak gcheap_add_roots

#define BYTES_PER_THREAD	(64ul << 20)
#define MIN_OBJECTS		16384ul
#define MAX_SIZE		(1ul << 20)
#define MAX_THREADS		16

/*
 * Debian's libmimalloc.so exports malloc(), free() and the rest: linked
 * with -lmimalloc, it replaces glibc's malloc in the whole process and the
 * "glibc" runs would measure mimalloc.  Loaded with dlopen(RTLD_LOCAL) only
 * for the mimalloc runs, it serves nothing but the mi_malloc() calls.
 */
#define MIMALLOC_SONAME		"libmimalloc.so.2"

enum allocator { A_GLIBC, A_MIMALLOC, A_BDWGC, A_GCHEAP, NR_ALLOCATORS };

static const char *const allocator_names[NR_ALLOCATORS] = {
	[A_GLIBC] = "glibc",
	[A_MIMALLOC] = "mimalloc",
	[A_BDWGC] = "bdwgc",
	[A_GCHEAP] = "gcheap",
};

/* One per thread, cache-line aligned so the threads share no line. */
struct worker {
	pthread_t thread;
	void **slots;		/* warm-up objects, then the timed ones */
	size_t nr_slots;
	struct timespec start, end;
	size_t failed_at;	/* the allocation that failed; SIZE_MAX: the
				 * thread's registration with bdwgc */
	int err;		/* errno of the failure, 0 if none */
} __attribute__((aligned(64)));

static enum allocator allocator;
static size_t object_size;
static size_t nr_warm, nr_timed;	/* objects per thread */
static pthread_barrier_t start_line;
static __typeof__(mi_malloc) *mi_malloc_fn;

static void *bdwgc_malloc(size_t size)
{
	return GC_MALLOC(size);
}

/*
 * Allocate n objects into slot[], writing a word into each so that its
 * memory is really touched.  Inlined into fill() once per allocator, so
 * that each loop calls its allocator directly, as a program would (mimalloc
 * through the pointer dlsym() gave, no dearer than a call through the
 * PLT).  Returns how many objects it got; errno tells why it stopped short.
 */
static inline __attribute__((always_inline)) size_t
fill_with(void *(*alloc_fn)(size_t), void **slot, size_t n)
{
	const size_t size = object_size;
	size_t i;

	for (i = 0; i < n; i++) {
		void *p = alloc_fn(size);

		if (__builtin_expect(!p, 0))
			break;
		/* Small integers, which no collector takes for pointers. */
		if (size >= sizeof(uintptr_t))
			*(uintptr_t *)p = i;
		else
			*(unsigned char *)p = (unsigned char)i;
		slot[i] = p;
	}
	return i;
}

static size_t fill(void **slot, size_t n)
{
	__typeof__(mi_malloc) *mi = mi_malloc_fn;

	switch (allocator) {
	case A_GLIBC:
		return fill_with(malloc, slot, n);
	case A_MIMALLOC:
		return fill_with(mi, slot, n);
	case A_BDWGC:
		return fill_with(bdwgc_malloc, slot, n);
	case A_GCHEAP:
		return fill_with(gcheap_alloc, slot, n);
	default:
		return 0;
	}
}

/* Allocate n objects into slot[]; false, with the failure noted, if not. */
static bool fill_checked(struct worker *w, void **slot, size_t n)
{
	size_t got;

	/* Not every allocator sets errno when it returns NULL. */
	errno = 0;
	got = fill(slot, n);
	if (got == n)
		return true;
	w->err = errno ? errno : ENOMEM;
	w->failed_at = (size_t)(slot - w->slots) + got;
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	bool gc_registered = false;

	if (allocator == A_BDWGC) {
		struct GC_stack_base sb;

		if (GC_get_stack_base(&sb) != GC_SUCCESS ||
		    GC_register_my_thread(&sb) != GC_SUCCESS) {
			w->err = EINVAL;
			w->failed_at = SIZE_MAX;
		} else {
			gc_registered = true;
		}
	}

	/*
	 * The warm-up sets up the thread's caches and the first spans or
	 * arenas, which every real thread pays once, not per allocation.
	 */
	if (!w->err)
		fill_checked(w, w->slots, nr_warm);

	/* A failed thread still waits here, or the others would hang. */
	pthread_barrier_wait(&start_line);
	clock_gettime(CLOCK_MONOTONIC, &w->start);
	if (!w->err)
		fill_checked(w, w->slots + nr_warm, nr_timed);
	clock_gettime(CLOCK_MONOTONIC, &w->end);

	if (gc_registered)
		GC_unregister_my_thread();
	return NULL;
}

static int64_t ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: alloc glibc|mimalloc|bdwgc|gcheap SIZE THREADS\n"
		"  SIZE: object size in bytes, 1..%lu; THREADS: 1..%d\n",
		MAX_SIZE, MAX_THREADS);
	exit(1);
}

static unsigned long parse_number(const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < 1 || v > max)
		usage();
	return v;
}

static void unavailable(const char *why)
{
	printf("%s: unavailable (%s)\n", allocator_names[allocator], why);
	exit(2);
}

/*
 * Make the allocator ready in the main thread, before any worker starts.
 * The pointer arrays become roots of the two collectors: the objects stay
 * live as in a program that keeps what it allocates, and a collection that
 * runs during the benchmark finds them live rather than reclaiming them.
 */
static void setup(struct worker *workers, unsigned int nr_threads)
{
	unsigned int t;
	void *probe;
	int ret;

	switch (allocator) {
	case A_GLIBC:
		break;
	case A_MIMALLOC: {
		void *lib = dlopen(MIMALLOC_SONAME, RTLD_NOW | RTLD_LOCAL);

		if (!lib)
			unavailable(dlerror());
		*(void **)&mi_malloc_fn = dlsym(lib, "mi_malloc");
		if (!mi_malloc_fn)
			unavailable(dlerror());
		break;
	}
	case A_BDWGC:
		GC_INIT();
		GC_allow_register_threads();
		for (t = 0; t < nr_threads; t++)
			GC_add_roots(workers[t].slots,
				     workers[t].slots + workers[t].nr_slots);
		break;
	case A_GCHEAP:
		if (!gcheap_init || !gcheap_alloc)
			unavailable(strerror(ENOSYS));
		ret = gcheap_init(NULL);
		if (ret < 0 && ret != -EALREADY)
			unavailable(strerror(-ret));
		/* An initialized heap that cannot allocate is no better. */
		errno = 0;
		probe = gcheap_alloc(object_size);
		if (!probe)
			unavailable(strerror(errno ? errno : ENOMEM));
		for (t = 0; t < nr_threads && gcheap_add_roots; t++) {
			ret = gcheap_add_roots(workers[t].slots,
					       workers[t].nr_slots * sizeof(void *));
			if (ret < 0) {
				fprintf(stderr,
					"gcheap: gcheap_add_roots: %s; objects may be collected during the run\n",
					strerror(-ret));
				break;
			}
		}
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	struct worker *workers;
	unsigned int nr_threads, t;
	int64_t start = INT64_MAX, end = INT64_MIN;
	int ret;

	if (argc != 4)
		usage();
	for (allocator = 0; allocator < NR_ALLOCATORS; allocator++)
		if (!strcmp(argv[1], allocator_names[allocator]))
			break;
	if (allocator == NR_ALLOCATORS)
		usage();
	object_size = parse_number(argv[2], MAX_SIZE);
	nr_threads = parse_number(argv[3], MAX_THREADS);

	nr_timed = BYTES_PER_THREAD / object_size;
	if (nr_timed < MIN_OBJECTS)
		nr_timed = MIN_OBJECTS;
	nr_warm = nr_timed / 100;

	/*
	 * The bookkeeping comes from mmap, not from an allocator under test,
	 * and is populated now so that its page faults are not timed.
	 */
	workers = mmap(NULL, nr_threads * sizeof(*workers), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (workers == MAP_FAILED) {
		perror("alloc: mmap");
		return 1;
	}
	for (t = 0; t < nr_threads; t++) {
		struct worker *w = &workers[t];

		w->nr_slots = nr_warm + nr_timed;
		w->slots = mmap(NULL, w->nr_slots * sizeof(void *),
				PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (w->slots == MAP_FAILED) {
			perror("alloc: mmap");
			return 1;
		}
	}

	setup(workers, nr_threads);

	ret = pthread_barrier_init(&start_line, NULL, nr_threads);
	if (ret) {
		fprintf(stderr, "alloc: pthread_barrier_init: %s\n", strerror(ret));
		return 1;
	}
	for (t = 0; t < nr_threads; t++) {
		ret = pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
		if (ret) {
			/* The started threads would wait forever: just go. */
			fprintf(stderr, "alloc: pthread_create: %s\n", strerror(ret));
			return 1;
		}
	}
	for (t = 0; t < nr_threads; t++)
		pthread_join(workers[t].thread, NULL);

	for (t = 0; t < nr_threads; t++) {
		struct worker *w = &workers[t];

		if (w->err) {
			if (w->failed_at == SIZE_MAX)
				fprintf(stderr, "alloc: %s: thread %u: GC_register_my_thread failed\n",
					allocator_names[allocator], t);
			else
				fprintf(stderr, "alloc: %s: thread %u: allocation %zu of %zu bytes failed: %s\n",
					allocator_names[allocator], t, w->failed_at,
					object_size, strerror(w->err));
			return 1;
		}
		if (ns(&w->start) < start)
			start = ns(&w->start);
		if (ns(&w->end) > end)
			end = ns(&w->end);
	}

	/* elapsed * threads / (threads * nr_timed): one thread's cost. */
	printf("%s %zu %u %.2f\n", allocator_names[allocator], object_size,
	       nr_threads, (double)(end - start) / (double)nr_timed);
	return 0;
}
