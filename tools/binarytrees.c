// SPDX-License-Identifier: MIT
/*
 * binarytrees: the binary-trees benchmark's workload, a garbage collector's
 * classic exercise.  Many short-lived trees are built bottom-up, walked and
 * dropped while one long-lived tree stays reachable throughout.
 *
 *   binarytrees [-s] [DEPTH]            gcheap: never frees, the collector
 *                                       reclaims the dropped trees
 *   binarytrees-malloc [-s] [DEPTH]     the same source built -DUSE_MALLOC:
 *                                       malloc(), and free() of every tree
 *
 * DEPTH (default 16) is the long-lived tree's depth.  The output on stdout
 * is the same for both builds.  With -s, or BINARYTREES_STATS=1 in the
 * environment, the figures of the run go to stderr after it: for the
 * gcheap build the collector's (collections, pauses, the peak heap size
 * and what was freed) beside the bytes the program allocated.  The peak
 * is sampled with gcheap_stats() after each tree of depth DEPTH or more,
 * about sixteen times during each batch of smaller trees and at its end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef USE_MALLOC
#include <gcheap.h>
#endif

#define MIN_DEPTH	4
#define DEFAULT_DEPTH	16
#define MAX_DEPTH	25

struct node {
	struct node *left;
	struct node *right;
};

static uint64_t nodes_allocated;

#ifdef USE_MALLOC

static struct node *new_node(void)
{
	struct node *n = malloc(sizeof(*n));

	if (!n) {
		fprintf(stderr, "binarytrees: out of memory after %llu nodes\n",
			(unsigned long long)nodes_allocated);
		exit(1);
	}
	n->left = NULL;
	n->right = NULL;
	nodes_allocated++;
	return n;
}

static void drop_tree(struct node *t)
{
	if (t->left) {
		drop_tree(t->left);
		drop_tree(t->right);
	}
	free(t);
}

static void sample(void)
{
}

#else /* gcheap */

static uint64_t peak_heap_bytes;

static struct node *new_node(void)
{
	/* Zeroed: both children start NULL. */
	struct node *n = gcheap_alloc(sizeof(*n));

	if (!n) {
		fprintf(stderr, "binarytrees: gcheap_alloc: %s after %llu nodes\n",
			strerror(errno), (unsigned long long)nodes_allocated);
		exit(1);
	}
	nodes_allocated++;
	return n;
}

/* Nothing to do: an unreachable tree is the collector's to reclaim. */
static void drop_tree(struct node *t)
{
	(void)t;
}

static void sample(void)
{
	struct gcheap_stats st;
	int ret = gcheap_stats(&st);

	if (ret < 0) {
		fprintf(stderr, "binarytrees: gcheap_stats: %s\n", strerror(-ret));
		exit(1);
	}
	if (st.heap_bytes > peak_heap_bytes)
		peak_heap_bytes = st.heap_bytes;
}

#endif

static struct node *bottom_up_tree(int depth)
{
	struct node *n = new_node();

	if (depth > 0) {
		n->left = bottom_up_tree(depth - 1);
		n->right = bottom_up_tree(depth - 1);
	}
	return n;
}

static int item_check(const struct node *t)
{
	if (!t->left)
		return 1;
	return 1 + item_check(t->left) + item_check(t->right);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024 * 1024);
}

static void print_figures(double seconds)
{
	uint64_t allocated = nodes_allocated * sizeof(struct node);

#ifdef USE_MALLOC
	fprintf(stderr, "binarytrees (malloc): %.2f s\n", seconds);
	fprintf(stderr, "  allocated         %12llu bytes (%.1f MiB) in %llu nodes, all freed\n",
		(unsigned long long)allocated, mib(allocated),
		(unsigned long long)nodes_allocated);
#else
	struct gcheap_stats st;
	int ret = gcheap_stats(&st);

	if (ret < 0) {
		fprintf(stderr, "binarytrees: gcheap_stats: %s\n", strerror(-ret));
		exit(1);
	}
	fprintf(stderr, "binarytrees (gcheap): %.2f s\n", seconds);
	fprintf(stderr, "  collections       %12llu\n", (unsigned long long)st.gc_cycles);
	fprintf(stderr, "  pause max         %12.3f ms\n", (double)st.max_pause_ns / 1e6);
	fprintf(stderr, "  pause total       %12.3f ms\n", (double)st.total_pause_ns / 1e6);
	fprintf(stderr, "  peak heap_bytes   %12llu bytes (%.1f MiB)\n",
		(unsigned long long)peak_heap_bytes, mib(peak_heap_bytes));
	fprintf(stderr, "  allocated         %12llu bytes (%.1f MiB) in %llu nodes\n",
		(unsigned long long)allocated, mib(allocated),
		(unsigned long long)nodes_allocated);
	fprintf(stderr, "  freed_bytes       %12llu bytes (%.1f MiB)\n",
		(unsigned long long)st.freed_bytes, mib(st.freed_bytes));
	fprintf(stderr, "  marked_bytes      %12llu bytes (%.1f MiB), by the last collection\n",
		(unsigned long long)st.marked_bytes, mib(st.marked_bytes));
	fprintf(stderr, "  heap_bytes now    %12llu bytes (%.1f MiB), next collection at %llu\n",
		(unsigned long long)st.heap_bytes, mib(st.heap_bytes),
		(unsigned long long)st.next_gc_bytes);
	if (st.stop_aborts || st.checkmark_errors)
		fprintf(stderr, "  stop_aborts       %12llu\n  checkmark_errors  %12llu\n",
			(unsigned long long)st.stop_aborts,
			(unsigned long long)st.checkmark_errors);
#endif
}

static void usage(void)
{
	fprintf(stderr, "usage: binarytrees [-s] [DEPTH]   (DEPTH %d to %d, default %d)\n",
		0, MAX_DEPTH, DEFAULT_DEPTH);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *env = getenv("BINARYTREES_STATS");
	int stats = env && *env && strcmp(env, "0") != 0;
	int n = DEFAULT_DEPTH, max_depth, depth, opt;
	struct node *long_lived, *t;
	double start;

	while ((opt = getopt(argc, argv, "s")) != -1) {
		if (opt != 's')
			usage();
		stats = 1;
	}
	if (optind < argc) {
		char *end;
		long v;

		errno = 0;
		v = strtol(argv[optind], &end, 10);
		if (errno || end == argv[optind] || *end || v < 0 || v > MAX_DEPTH)
			usage();
		n = (int)v;
		optind++;
	}
	if (optind < argc)
		usage();

#ifndef USE_MALLOC
	{
		int ret = gcheap_init(NULL);

		if (ret < 0 && ret != -EALREADY) {
			fprintf(stderr, "binarytrees: gcheap_init: %s\n", strerror(-ret));
			return 1;
		}
	}
#endif
	start = now();
	max_depth = n > MIN_DEPTH + 2 ? n : MIN_DEPTH + 2;

	t = bottom_up_tree(max_depth + 1);
	sample();
	printf("stretch tree of depth %d\t check: %d\n", max_depth + 1, item_check(t));
	drop_tree(t);

	long_lived = bottom_up_tree(max_depth);
	sample();

	for (depth = MIN_DEPTH; depth <= max_depth; depth += 2) {
		int iterations = 1 << (max_depth - depth + MIN_DEPTH);
		int stride = iterations / 16 ? iterations / 16 : 1;
		int check = 0, i;

		for (i = 1; i <= iterations; i++) {
			t = bottom_up_tree(depth);
			check += item_check(t);
			drop_tree(t);
			if (i % stride == 0)
				sample();
		}
		sample();
		printf("%d\t trees of depth %d\t check: %d\n", iterations, depth, check);
	}

	printf("long lived tree of depth %d\t check: %d\n", max_depth, item_check(long_lived));
	drop_tree(long_lived);
	fflush(stdout);

	if (stats)
		print_figures(now() - start);
	return 0;
}
