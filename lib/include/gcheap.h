/* SPDX-License-Identifier: MIT */
/*
 * libgcheap: garbage-collected memory for C programs, backed by the gcheap
 * kernel module (/dev/gcheap).
 *
 * Conventions (liburing's): functions return 0 or a positive value on
 * success and -errno on failure; the library never prints, never aborts and
 * keeps no global error state.  See gcheap(7).
 */
#ifndef GCHEAP_H
#define GCHEAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GCHEAP_MALLOC		__attribute__((malloc, warn_unused_result))
#define GCHEAP_ALLOC_SIZE(n)	__attribute__((alloc_size(n)))
#define GCHEAP_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#else
#define GCHEAP_MALLOC
#define GCHEAP_ALLOC_SIZE(n)
#define GCHEAP_ALLOC_SIZE2(n, m)
#endif

/** Every object is aligned to this many bytes. */
#define GCHEAP_ALIGNMENT	16

/**
 * struct gcheap_config - how gcheap_init() sets up the heap
 * @heap_bytes: the heap's size limit, the size of its arena (0: the
 *	GCHEAP_HEAP_MB environment variable, else 1 GiB, capped by the
 *	module's max_heap_mb)
 * @flags: GCHEAP_CONFIG_* flags
 * @gogc: with GCHEAP_CONFIG_GOGC: the next collection starts when the
 *	heap has grown by gogc percent of what the last one found live;
 *	GCHEAP_GOGC_OFF for none (without the flag: the GCHEAP_GOGC
 *	environment variable, a number or "off", else 100)
 * @soft_limit_bytes: a soft memory limit the collector works to keep the
 *	heap under, as Go's GOMEMLIMIT (0: the GCHEAP_MEMLIMIT environment
 *	variable, bytes with an optional KiB, MiB or GiB suffix, else none)
 * @reserved: must be zero
 */
struct gcheap_config {
	uint64_t heap_bytes;
	uint32_t flags;
	int32_t gogc;
	uint64_t soft_limit_bytes;
	uint32_t reserved[2];
};

/* Use per-thread caches even where rseq is available (GCHEAP_RSEQ=0). */
#define GCHEAP_CONFIG_NO_RSEQ	(1u << 0)
/* @gogc is set. */
#define GCHEAP_CONFIG_GOGC	(1u << 1)
/* Checkmark mode: every collection is verified by a second, from-scratch
 * marking with the world stopped (GCHEAP_CHECKMARK=1); slow, for testing. */
#define GCHEAP_CONFIG_CHECKMARK	(1u << 2)

/* gogc: collect only on demand (gcheap_collect()) or at the heap's limit. */
#define GCHEAP_GOGC_OFF		(-1)

/**
 * struct gcheap_stats - what gcheap_stats() reports
 * @gc_cycles: collections completed
 * @heap_bytes: bytes of the arena held in spans (pages backing objects)
 * @live_bytes: bytes in objects known to be allocated
 * @max_pause_ns: the longest single stop of the world (a collection
 *	stops it twice)
 * @total_pause_ns: the sum of all stops of the world, both of every
 *	collection
 * @arena_bytes: the heap's size limit
 * @resident_bytes: bytes of memory the module holds for the heap,
 *	including free pages not yet returned to the system
 * @spans: spans in use
 * @large_objects: objects above the largest size class, each in a span
 *	of its own
 * @refills: spans installed in caches so far (each one a slow-path call)
 * @root_ranges: root ranges the collector scans: data and bss segments of
 *	every loaded object, and ranges added with gcheap_add_roots()
 * @root_bytes: their total size
 * @flags: GCHEAP_STATS_* flags
 * @marked_bytes: bytes the last collection kept: found reachable, or
 *	allocated while it marked
 * @freed_bytes: bytes of unreachable objects freed by all collections
 * @next_gc_bytes: the goal: the next paced collection should end by the
 *	time the bytes allocated (live_bytes plus free objects handed to the
 *	caches) reach it, and starts before (0: pacing is off and there is
 *	no soft limit)
 * @last_pause_ns: the longer of the last collection's two stops
 * @stop_aborts: collections given up because a thread did not stop
 * @checkmark_errors: reachable objects checkmark mode found unmarked
 *	(always 0 unless the collector has a bug)
 * @threads: threads registered with the collector
 * @pause_pages_last: heap pages the last collection's final pause
 *	rescanned: those written while it marked concurrently
 * @pause_pages_max: the most any final pause rescanned
 * @barrier_faults: first writes to clean heap pages, each one fault
 *	taken by the module's write barrier
 * @reserved: zero
 */
struct gcheap_stats {
	uint64_t gc_cycles;
	uint64_t heap_bytes;
	uint64_t live_bytes;
	uint64_t max_pause_ns;
	uint64_t total_pause_ns;
	uint64_t arena_bytes;
	uint64_t resident_bytes;
	uint64_t spans;
	uint64_t large_objects;
	uint64_t refills;
	uint64_t root_ranges;
	uint64_t root_bytes;
	uint64_t flags;
	uint64_t marked_bytes;
	uint64_t freed_bytes;
	uint64_t next_gc_bytes;
	uint64_t last_pause_ns;
	uint64_t stop_aborts;
	uint64_t checkmark_errors;
	uint64_t threads;
	uint64_t pause_pages_last;
	uint64_t pause_pages_max;
	uint64_t barrier_faults;
	uint64_t reserved[1];
};

/* The calling thread allocates from per-CPU caches (rseq), not its own. */
#define GCHEAP_STATS_PERCPU	(1ull << 0)

/*
 * Set up the process's heap.  Optional: the first allocation initializes it
 * with defaults and the GCHEAP_* environment variables.  0 or -errno;
 * -EALREADY if the heap exists.
 */
int gcheap_init(const struct gcheap_config *config);

/* Zeroed memory of at least size bytes, scanned for pointers; NULL with
 * errno ENOMEM on failure. */
void *gcheap_alloc(size_t size) GCHEAP_MALLOC GCHEAP_ALLOC_SIZE(1);
/* Zeroed memory that the collector never scans for pointers. */
void *gcheap_alloc_atomic(size_t size) GCHEAP_MALLOC GCHEAP_ALLOC_SIZE(1);
void *gcheap_calloc(size_t nmemb, size_t size) GCHEAP_MALLOC GCHEAP_ALLOC_SIZE2(1, 2);
void *gcheap_realloc(void *ptr, size_t size) GCHEAP_ALLOC_SIZE(2);
/* Optional explicit free of an object's start address; NULL is ignored. */
void gcheap_free(void *ptr);
/* The usable size of the object ptr starts, 0 if ptr is not a heap object. */
size_t gcheap_size(const void *ptr);
/* The start of the object an interior pointer points into, or NULL. */
void *gcheap_base(const void *ptr);

/* Threads started by pthread_create() are registered automatically. */
int gcheap_register_thread(void);
int gcheap_unregister_thread(void);

/* Extra root ranges the collector scans: 0 or -errno. */
int gcheap_add_roots(void *start, size_t len);
int gcheap_remove_roots(void *start, size_t len);

int gcheap_stats(struct gcheap_stats *stats);

/*
 * A full collection, now: returns when one that started after the call
 * has completed, its sweep included.  0 or -errno (-EAGAIN: a thread
 * would not stop).
 */
int gcheap_collect(void);
/* Change the pacing (GCHEAP_GOGC_OFF or 0 to 1000000) or the soft limit
 * (0: none) of the running heap. */
int gcheap_set_gogc(int gogc);
int gcheap_set_soft_limit(uint64_t bytes);

/**
 * struct gcheap_device_info - what the loaded gcheap module offers
 * @version:   the module version, (major << 16) | (minor << 8) | patch
 * @nr_cpus:   one more than the highest possible CPU number of the machine
 * @features:  the optional features the module supports (GCHEAP_FEATURE_*)
 * @ioctls:    the commands it supports, bit _IOC_NR(cmd) for each
 * @page_size: the page size heaps are made of
 */
struct gcheap_device_info {
	uint32_t version;
	uint32_t nr_cpus;
	uint64_t features;
	uint64_t ioctls;
	uint64_t page_size;
};

/*
 * Open /dev/gcheap, perform the API handshake and describe the module.
 * Returns 0, or -errno: -ENOENT when the module is not loaded, -EPROTO when
 * it speaks another API.
 */
int gcheap_device_info(struct gcheap_device_info *info);

#define GCHEAP_VERSION_MAJOR(v)	(((v) >> 16) & 0xff)
#define GCHEAP_VERSION_MINOR(v)	(((v) >> 8) & 0xff)
#define GCHEAP_VERSION_PATCH(v)	((v) & 0xff)

#ifdef __cplusplus
}
#endif

#endif /* GCHEAP_H */
