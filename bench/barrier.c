// SPDX-License-Identifier: MIT
/*
 * bench/barrier: the cost of a page-protection write barrier, the first
 * write to a heap page that a collection left write-protected.
 *
 *	barrier-gcheap gcheap [PAGES [ROUNDS]]
 *	barrier-bdwgc bdwgc-mprotect|bdwgc-softdirty [PAGES [ROUNDS]]
 *
 * One scanned (pointerful) block of PAGES pages (default 16384, 64 MiB) is
 * allocated and every page written once.  Then, ROUNDS times (default 7):
 * a full collection, which leaves each page written since the last one
 * write-protected; a timed pass writing one word per page, where every
 * write takes the barrier's fault; a second timed pass over the same pages,
 * which takes none.  The difference of the two passes divided by PAGES is
 * the cost of one barrier fault, with the cost of the stores and of the TLB
 * misses of the walk taken out.
 *
 *   gcheap           gcheap_collect(); the fault is the module's
 *                    page_mkwrite, counted in gcheap_stats' barrier_faults
 *   bdwgc-mprotect   GC_enable_incremental() with bdwgc's mprotect dirty
 *                    bits (forced with GC_USE_GETWRITEWATCH=0): GC_gcollect()
 *                    mprotects the heap, each fault is a SIGSEGV that
 *                    bdwgc's handler answers with an mprotect of the page;
 *                    the signals are counted by a handler chained in front
 *   bdwgc-softdirty  GC_enable_incremental() with the dirty bits bdwgc 8.2
 *                    prefers on Linux: GC_gcollect() clears the soft-dirty
 *                    bits through /proc/self/clear_refs, which
 *                    write-protects every page of the process; each fault
 *                    is taken and resolved in the kernel, no signal
 *
 * The faults the kernel resolves itself (gcheap's, soft-dirty's) show in
 * the process's minor page faults too (getrusage()), counted for all three
 * as a check; bdwgc's SIGSEGVs do not, they are counted by the handler.
 *
 * Transparent huge pages are turned off for the process
 * (PR_SET_THP_DISABLE): on a huge page soft-dirty takes one fault per
 * 2 MiB, and mprotect of one page splits it, so that the passes would not
 * measure one fault per page.  bdwgc's heap comes from anonymous mmap,
 * which THP backs by default; gcheap's arena is the module's mapping,
 * whose barrier_faults show one fault per page either way.
 *
 * Output, one line on stdout:
 *
 *	barrier COLLECTOR NS_PER_FAULT FAULTS MINFLT PAGES
 *
 * the median over the rounds of the ns per fault, of the faults the
 * collector counted in the first pass (barrier_faults, the SIGSEGVs, or
 * for soft-dirty the minor faults) and of the minor faults of that pass.
 * Exit status: 0; 2 when the collector or its mode cannot be used here;
 * 1 on any other error.  A first pass that faulted on fewer than half the
 * pages is reported on stderr but still exits 0: the module may predate
 * its write barrier, and the figure is then no barrier's cost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(WITH_GCHEAP)
#include <gcheap.h>
#elif defined(WITH_BDWGC)
#include <gc.h>
#else
#error "build with -DWITH_GCHEAP or -DWITH_BDWGC"
#endif

#define DEFAULT_PAGES	16384ul
#define MAX_PAGES	(1ul << 20)
#define DEFAULT_ROUNDS	7ul
#define MAX_ROUNDS	1000ul

enum mode { M_GCHEAP, M_BDWGC_MPROTECT, M_BDWGC_SOFTDIRTY, NR_MODES };

static const char *const mode_names[NR_MODES] = {
	[M_GCHEAP] = "gcheap",
	[M_BDWGC_MPROTECT] = "bdwgc-mprotect",
	[M_BDWGC_SOFTDIRTY] = "bdwgc-softdirty",
};

static enum mode mode;
static size_t page_size;

/*
 * The block, in a global so that it is a root of either collector (both
 * scan data and bss) and the collections between the rounds keep it.
 */
static char *volatile block;

static void usage(void)
{
#ifdef WITH_GCHEAP
	fprintf(stderr, "usage: barrier-gcheap gcheap [PAGES [ROUNDS]]\n");
#else
	fprintf(stderr, "usage: barrier-bdwgc bdwgc-mprotect|bdwgc-softdirty [PAGES [ROUNDS]]\n");
#endif
	fprintf(stderr, "  PAGES: 1..%lu (default %lu); ROUNDS: 1..%lu (default %lu)\n",
		MAX_PAGES, DEFAULT_PAGES, MAX_ROUNDS, DEFAULT_ROUNDS);
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
	printf("%s: unavailable (%s)\n", mode_names[mode], why);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_minflt;
}

/*
 * One word into each page.  Small integers, which neither conservative
 * collector can take for pointers; volatile so that every store is made,
 * in page order, in both passes alike.
 */
static void write_pages(char *base, size_t pages, uintptr_t v)
{
	size_t i;

	for (i = 0; i < pages; i++)
		*(volatile uintptr_t *)(base + i * page_size) = v + i;
}

#ifdef WITH_GCHEAP

static uint64_t barrier_faults(void)
{
	struct gcheap_stats st;
	int ret = gcheap_stats(&st);

	if (ret < 0) {
		fprintf(stderr, "barrier: gcheap_stats: %s\n", strerror(-ret));
		exit(1);
	}
	return st.barrier_faults;
}

static void setup(size_t bytes)
{
	/*
	 * No pacing: only the collections this program asks for run, so
	 * none can protect the pages again between the two passes.
	 */
	struct gcheap_config cfg = {
		.flags = GCHEAP_CONFIG_GOGC,
		.gogc = GCHEAP_GOGC_OFF,
	};
	int ret;

	if (mode != M_GCHEAP)
		usage();
	ret = gcheap_init(&cfg);
	if (ret < 0 && ret != -EALREADY)
		unavailable(strerror(-ret));
	errno = 0;
	block = gcheap_alloc(bytes);
	if (!block) {
		fprintf(stderr, "barrier: gcheap_alloc(%zu): %s\n", bytes,
			strerror(errno ? errno : ENOMEM));
		exit(1);
	}
}

static void collect(void)
{
	int ret = gcheap_collect();

	if (ret < 0) {
		fprintf(stderr, "barrier: gcheap_collect: %s\n", strerror(-ret));
		exit(1);
	}
}

/* The faults the collector itself counted. */
static uint64_t collector_faults(void)
{
	return barrier_faults();
}

#else /* WITH_BDWGC */

static volatile unsigned long segv_count;
static struct sigaction bdwgc_segv;

/*
 * In front of bdwgc's write-fault handler: count the signal and hand it
 * on.  bdwgc's handler unprotects the page and returns, and the write is
 * made again; a fault outside its heap it passes to the handler before it.
 */
static void count_segv(int sig, siginfo_t *si, void *ctx)
{
	segv_count++;
	if (bdwgc_segv.sa_flags & SA_SIGINFO)
		bdwgc_segv.sa_sigaction(sig, si, ctx);
	else
		bdwgc_segv.sa_handler(sig);
}

static void setup(size_t bytes)
{
	struct sigaction sa;
	bool handler;

	if (mode != M_BDWGC_MPROTECT && mode != M_BDWGC_SOFTDIRTY)
		usage();
	/*
	 * bdwgc 8.2 on Linux has both soft-dirty and mprotect dirty bits and
	 * takes soft-dirty where the kernel has it; "0" makes it mprotect.
	 */
	if (mode == M_BDWGC_MPROTECT)
		setenv("GC_USE_GETWRITEWATCH", "0", 1);
	else
		unsetenv("GC_USE_GETWRITEWATCH");
	GC_enable_incremental();
	GC_INIT();
	if (!GC_is_incremental_mode())
		unavailable("no incremental mode: no dirty bits");

	/* Only the mprotect dirty bits install a SIGSEGV handler. */
	if (sigaction(SIGSEGV, NULL, &bdwgc_segv) < 0) {
		perror("barrier: sigaction");
		exit(1);
	}
	handler = (bdwgc_segv.sa_flags & SA_SIGINFO) ||
		  (bdwgc_segv.sa_handler != SIG_DFL && bdwgc_segv.sa_handler != SIG_IGN);
	if (mode == M_BDWGC_SOFTDIRTY && handler)
		unavailable("bdwgc took mprotect dirty bits: no soft-dirty bits here");
	if (mode == M_BDWGC_MPROTECT && !handler) {
		fprintf(stderr, "barrier: bdwgc installed no SIGSEGV handler in mprotect mode\n");
		exit(1);
	}
	if (mode == M_BDWGC_MPROTECT) {
		sa = bdwgc_segv;
		sa.sa_flags |= SA_SIGINFO;
		sa.sa_sigaction = count_segv;
		if (sigaction(SIGSEGV, &sa, NULL) < 0) {
			perror("barrier: sigaction");
			exit(1);
		}
	}

	block = GC_MALLOC(bytes);
	if (!block) {
		fprintf(stderr, "barrier: GC_MALLOC(%zu) failed\n", bytes);
		exit(1);
	}
}

static void collect(void)
{
	GC_gcollect();
}

static uint64_t collector_faults(void)
{
	return mode == M_BDWGC_MPROTECT ? segv_count : minor_faults();
}

#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t pages = DEFAULT_PAGES, rounds = DEFAULT_ROUNDS, r;
	double *ns_per_fault;
	uint64_t *faults, *minflt;
	long ps;

	if (argc < 2 || argc > 4)
		usage();
	for (mode = 0; mode < NR_MODES; mode++)
		if (!strcmp(argv[1], mode_names[mode]))
			break;
	if (mode == NR_MODES)
		usage();
	if (argc > 2)
		pages = parse_number(argv[2], MAX_PAGES);
	if (argc > 3)
		rounds = parse_number(argv[3], MAX_ROUNDS);
	ps = sysconf(_SC_PAGESIZE);
	page_size = ps > 0 ? (size_t)ps : 4096;

	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0) {
		perror("barrier: prctl(PR_SET_THP_DISABLE)");
		return 1;
	}

	/* The results go where no collector protects or scans them. */
	ns_per_fault = mmap(NULL, rounds * (sizeof(double) + 2 * sizeof(uint64_t)),
			    PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (ns_per_fault == MAP_FAILED) {
		perror("barrier: mmap");
		return 1;
	}
	faults = (uint64_t *)(ns_per_fault + rounds);
	minflt = faults + rounds;

	setup(pages * page_size);
	/* Every page backed and written before the first collection. */
	write_pages(block, pages, 1);

	for (r = 0; r < rounds; r++) {
		uint64_t f0, f1, f2, m0, m1, m2;
		int64_t t0, t1, t2, t3;

		collect();
		f0 = collector_faults();
		m0 = minor_faults();
		t0 = now_ns();
		write_pages(block, pages, 2);
		t1 = now_ns();
		f1 = collector_faults();
		m1 = minor_faults();
		t2 = now_ns();
		write_pages(block, pages, 3);
		t3 = now_ns();
		f2 = collector_faults();
		m2 = minor_faults();

		ns_per_fault[r] = (double)((t1 - t0) - (t3 - t2)) / (double)pages;
		/*
		 * Soft-dirty's counter is the minor faults: clear_refs
		 * protects every page of the process, so the stack and
		 * this loop's own pages add a few to the block's.
		 */
		faults[r] = f1 - f0;
		minflt[r] = m1 - m0;
		if (getenv("BARRIER_VERBOSE"))
			fprintf(stderr,
				"barrier: %s round %zu: pass 1 %.0f ns/page, %llu faults, %llu minor; pass 2 %.0f ns/page, %llu faults, %llu minor\n",
				mode_names[mode], r + 1, (double)(t1 - t0) / (double)pages,
				(unsigned long long)(f1 - f0), (unsigned long long)(m1 - m0),
				(double)(t3 - t2) / (double)pages,
				(unsigned long long)(f2 - f1), (unsigned long long)(m2 - m1));
		if (f2 - f1 > pages / 100 + 2)
			fprintf(stderr, "barrier: %s round %zu: the second pass took %llu faults, not none\n",
				mode_names[mode], r + 1, (unsigned long long)(f2 - f1));
	}

	qsort(ns_per_fault, rounds, sizeof(*ns_per_fault), cmp_double);
	qsort(faults, rounds, sizeof(*faults), cmp_u64);
	qsort(minflt, rounds, sizeof(*minflt), cmp_u64);
	/* The upper median for an even count: one measured value. */
	r = rounds / 2;
	if (faults[r] < pages / 2)
		fprintf(stderr,
			"barrier: %s: the first pass took %llu faults for %zu pages: no write barrier measured\n",
			mode_names[mode], (unsigned long long)faults[r], pages);
	printf("barrier %s %.1f %llu %llu %zu\n", mode_names[mode], ns_per_fault[r],
	       (unsigned long long)faults[r], (unsigned long long)minflt[r], pages);
	return 0;
}
