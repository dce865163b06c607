/* SPDX-License-Identifier: MIT */
/*
 * libgcheap internals shared between its files.  Everything is compiled
 * with -fvisibility=hidden; only functions marked GCHEAP_EXPORT and listed
 * in libgcheap.map are visible to programs.
 */
#ifndef GCHEAP_INTERNAL_H
#define GCHEAP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/gcheap.h>

#include "gcheap.h"

#define GCHEAP_EXPORT	__attribute__((visibility("default")))
#define GCHEAP_HIDDEN	__attribute__((visibility("hidden")))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define READ_ONCE(x)	(*(const volatile __typeof__(x) *)&(x))

/* Frees a thread gathers before handing them to the module in one call. */
#define GCHEAP_FREE_BATCH	32

/**
 * struct gcheap_thread - what the library knows of one thread
 * @next: on gcheap_g.threads while registered
 * @registered: by gcheap_register_thread() or the pthread_create wrapper;
 *	the module knows the thread (and stops it for collections)
 * @tid: the kernel thread id
 * @stack_lo: lowest address of the thread's stack
 * @stack_hi: one past its highest address
 * @slots: the per-thread slots (where rseq is not available), or NULL
 * @nfree: pending explicit frees
 * @frees: their addresses
 */
struct gcheap_thread {
	struct gcheap_thread *next;
	bool registered;
	pid_t tid;
	uintptr_t stack_lo;
	uintptr_t stack_hi;
	struct gcheap_slot *slots;
	unsigned int nfree;
	uint64_t frees[GCHEAP_FREE_BATCH];
};

struct gcheap_root {
	struct gcheap_root *next;
	uintptr_t start;
	uintptr_t end;
};

/**
 * struct gcheap_state - the process's heap, the one instance gcheap_g
 *
 * Written once by heap_setup() under @lock before @ready is published with
 * a release store; read without a lock after an acquire load of @ready.
 */
struct gcheap_state {
	pthread_mutex_t lock;		/* setup, @threads, @roots */
	int ready;			/* 1 when set up (acquire/release) */
	bool fast;			/* ready and using per-CPU slots */
	int fd;
	bool use_rseq;
	bool atfork_done;
	bool has_config;		/* a fork child sets up with @config */
	struct gcheap_config config;
	bool key_done;
	ptrdiff_t rseq_offset;
	char *map;
	size_t map_bytes;
	char *slots;
	uint32_t cpu_stride;
	uint32_t nr_cpus;
	uint32_t nr_sc;
	uint32_t nr_classes;
	const struct gcheap_pageinfo *pagemap;
	/*
	 * The arena's offset in the mapping, not its address: this state is
	 * in a root range, and the arena's address is the first object's.
	 */
	uintptr_t arena_offset;
	uintptr_t arena_end;
	struct gcheap_class classes[GCHEAP_CLASSES_MAX];
	uint8_t class_of[GCHEAP_SMALL_MAX / 16 + 1];
	struct gcheap_thread *threads;
	struct gcheap_root *roots;
	pthread_key_t thread_key;
	pthread_mutex_t roots_lock;	/* one root-set update at a time */
	struct gcheap_start *starting;	/* threads not yet registered */
	int fork_fd;			/* the snapshot for a fork() child */
};

/*
 * A thread pthread_create() is starting: its argument may be the only
 * pointer to an object, so the record is a heap object reachable from
 * gcheap_g (a root) until the thread has registered.
 */
struct gcheap_start {
	struct gcheap_start *next;
	void *(*fn)(void *);
	void *arg;
	bool gc;			/* from the heap, not malloc */
};

extern struct gcheap_state gcheap_g GCHEAP_HIDDEN;

int gcheap_ensure(void) GCHEAP_HIDDEN;
struct gcheap_thread *gcheap_thread_self(bool create) GCHEAP_HIDDEN;
void gcheap_thread_release(struct gcheap_thread *t) GCHEAP_HIDDEN;
void gcheap_thread_forget(struct gcheap_thread *t) GCHEAP_HIDDEN;
void gcheap_flush_frees(struct gcheap_thread *t) GCHEAP_HIDDEN;
void gcheap_threads_init(void) GCHEAP_HIDDEN;
void gcheap_register_main(void) GCHEAP_HIDDEN;
int gcheap_roots_stats(uint64_t *ranges, uint64_t *bytes) GCHEAP_HIDDEN;
int gcheap_roots_sync(void) GCHEAP_HIDDEN;
int gcheap_collect_now(void) GCHEAP_HIDDEN;
int gcheap_snapshot_now(struct gcheap_fork *fk) GCHEAP_HIDDEN;
void *gcheap_alloc_internal(size_t size) GCHEAP_HIDDEN;
int gcheap_create_thread(int (*real)(pthread_t *, const pthread_attr_t *,
				     void *(*)(void *), void *),
			 pthread_t *thread, const pthread_attr_t *attr,
			 void *(*fn)(void *), void *arg) GCHEAP_HIDDEN;

#endif
