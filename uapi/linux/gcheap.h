/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * gcheap: garbage-collected memory for ordinary processes.
 *
 * The userspace ABI of /dev/gcheap.  A process opens the device and first
 * performs the one-shot API handshake (GCHEAP_IOC_API), in the manner of
 * UFFDIO_API: it states the API number it was built for and the optional
 * features it wants, and learns which features and commands the module
 * supports.  Every other command fails with EBADFD until the handshake has
 * succeeded on that file descriptor.
 *
 * Rules every structure here follows (see the kernel's
 * Documentation/process/botching-up-ioctls.rst): fixed-width types only,
 * pointers passed as __u64, explicit padding that must be zero, input fields
 * before output fields, and every unknown flag or feature bit refused with
 * EINVAL so that it can be given a meaning later.
 */
#ifndef _UAPI_LINUX_GCHEAP_H
#define _UAPI_LINUX_GCHEAP_H

#include <linux/ioctl.h>
#include <linux/types.h>

/** GCHEAP_API - the API number userspace passes in &gcheap_api.api. */
#define GCHEAP_API			1u

/* There are no optional features yet: any bit requested gives EINVAL. */
#define GCHEAP_FEATURES_ALL		0ull

/**
 * struct gcheap_api - the handshake, argument of %GCHEAP_IOC_API
 * @api: in: must be %GCHEAP_API.
 * @pad: in: must be zero.
 * @features: in: the optional features wanted, a subset of
 *	%GCHEAP_FEATURES_ALL; out: every feature this module supports.
 * @ioctls: out: the commands this module supports, as a mask with bit
 *	_IOC_NR(cmd) set for each supported cmd.
 * @version: out: the module's version, (major << 16) | (minor << 8) | patch.
 * @pad2: out: zero.
 *
 * The handshake succeeds once per file descriptor; a second one fails with
 * EBUSY.  A failed handshake changes nothing and may be retried.
 */
struct gcheap_api {
	__u32 api;
	__u32 pad;
	__u64 features;
	__u64 ioctls;
	__u32 version;
	__u32 pad2;
};

/**
 * struct gcheap_info - facts about the module, argument of %GCHEAP_IOC_INFO
 * @flags: in: must be zero.
 * @pad: in: must be zero.
 * @page_size: out: the page size the arena and spans are made of.
 * @nr_cpu_ids: out: one more than the highest possible CPU number; per-CPU
 *	structures shared with userspace have this many entries.
 * @pad2: out: zero.
 */
struct gcheap_info {
	__u32 flags;
	__u32 pad;
	__u64 page_size;
	__u32 nr_cpu_ids;
	__u32 pad2;
};

/*
 * Heaps.
 *
 * After the handshake a file may create one heap (GCHEAP_IOC_HEAP_CREATE)
 * and map it once, whole: mmap(NULL, map_bytes, PROT_READ | PROT_WRITE,
 * MAP_SHARED, fd, 0).  The mapping holds, at the offsets the create call
 * returns:
 *
 *   header    one page, struct gcheap_header: the size-class table
 *   slots     the per-CPU cache area: for each possible CPU, an array of
 *             struct gcheap_slot, one per span class, cpu_stride bytes apart
 *   pagemap   one struct gcheap_pageinfo per arena page: which span the
 *             page belongs to, so that userspace can find an object's start
 *             without a system call
 *   arena     the heap's objects
 *
 * Userspace may write only the free[] words (inside a restartable sequence)
 * and the hint of the slots of the CPU it runs on (see struct gcheap_slot).  The
 * module never trusts anything userspace can write for its own memory
 * safety: it reads slots once, validates them against its own records, and
 * keeps its own span map.
 *
 * A span class is (size class << 1) | noscan: objects from
 * gcheap_alloc_atomic() live in noscan spans that the collector never scans.
 */
#define GCHEAP_SMALL_MAX		32768u	/* the largest size class */
#define GCHEAP_SLOT_WORDS		16	/* at most 1024 objects a span */
#define GCHEAP_CLASSES_MAX		96	/* size classes, an upper bound */
#define GCHEAP_HEADER_MAGIC		0x67636870u	/* "gchp" */

/**
 * struct gcheap_class - one size class
 * @size: the object size, a multiple of 16
 * @span_pages: the pages of each span of this class
 * @objects: the objects in each span
 * @pad: zero
 */
struct gcheap_class {
	__u32 size;
	__u32 span_pages;
	__u32 objects;
	__u32 pad;
};

/**
 * struct gcheap_header - the first page of a heap's mapping, read-only in
 *	meaning (the module never reads it back)
 * @magic: %GCHEAP_HEADER_MAGIC
 * @nr_classes: the number of size classes; span classes are twice as many
 * @classes: the size-class table, sizes ascending
 */
struct gcheap_header {
	__u32 magic;
	__u32 nr_classes;
	struct gcheap_class classes[GCHEAP_CLASSES_MAX];
};

/**
 * struct gcheap_slot - one span class's cache of one CPU (or of one thread)
 * @gen: bumped by the module each time it installs a span in the slot.
 *	The allocation fast path reads @gen before the other fields and
 *	commits only if it is unchanged, so it never uses @base and @free from
 *	two different spans.
 * @base: the address of the span's first object; 0 when the slot is empty
 * @size: the object size
 * @nwords: the words of @free in use
 * @hint: userspace's own: the word of @free to look at first.  Stored
 *	outside the restartable sequence, so it is only ever a hint; the
 *	module resets it to 0 when it installs a span and never reads it.
 * @pad: zero
 * @free: a bit per object, set while the object is free.  Allocating an
 *	object clears its bit; that store is the commit of the fast path's
 *	restartable sequence.  The module installs spans with preemption
 *	disabled on the slot's own CPU, which aborts any sequence in flight
 *	there.
 * @reserved: zero
 */
struct gcheap_slot {
	__u64 gen;
	__u64 base;
	__u32 size;
	__u32 nwords;
	__u32 hint;
	__u32 pad;
	__u64 free[GCHEAP_SLOT_WORDS];
	__u64 reserved[12];
};

/**
 * struct gcheap_pageinfo - what one arena page belongs to
 * @span_offset: the page's index within its span (the span starts
 *	@span_offset pages before it)
 * @kind: 0 when the page is in no span; for a small-object span the span
 *	class + 1; for a large object %GCHEAP_PAGE_LARGE | its pages
 */
struct gcheap_pageinfo {
	__u32 span_offset;
	__u32 kind;
};

#define GCHEAP_PAGE_LARGE		0x80000000u
#define GCHEAP_PAGE_NOSCAN		0x40000000u	/* with GCHEAP_PAGE_LARGE */

/**
 * struct gcheap_heap_create - argument of %GCHEAP_IOC_HEAP_CREATE
 * @arena_bytes: in: the heap's size limit; rounded up to whole pages, at
 *	most the module parameter max_heap_mb
 * @flags: in: %GCHEAP_HEAP_* flags
 * @gogc: in: with %GCHEAP_HEAP_GOGC, the pacing target: the next collection
 *	starts when the heap has grown by @gogc percent of the bytes the last
 *	one found live; %GCHEAP_GOGC_OFF turns pacing off.  Without the flag
 *	it must be zero and the heap uses 100.
 * @soft_limit_bytes: in: a soft memory limit (GOMEMLIMIT's): the collector
 *	runs more often, and returns free pages sooner, to keep the heap
 *	below it; 0 for none
 * @map_bytes: out: the length to mmap, at offset 0
 * @slots_offset: out: where the per-CPU slots start in the mapping
 * @pagemap_offset: out: where the page map starts
 * @arena_offset: out: where the arena starts
 * @cpu_stride: out: bytes from one CPU's slots to the next one's
 * @nr_cpus: out: CPUs with slots (nr_cpu_ids)
 * @nr_span_classes: out: slots per CPU
 * @pad2: out: zero
 */
struct gcheap_heap_create {
	__u64 arena_bytes;
	__u32 flags;
	__s32 gogc;
	__u64 soft_limit_bytes;
	__u64 map_bytes;
	__u64 slots_offset;
	__u64 pagemap_offset;
	__u64 arena_offset;
	__u32 cpu_stride;
	__u32 nr_cpus;
	__u32 nr_span_classes;
	__u32 pad2;
};

/* @gogc is given; otherwise GOGC is 100. */
#define GCHEAP_HEAP_GOGC		0x1u
/*
 * Checkmark mode: after marking, mark the whole heap again from scratch
 * with the world stopped, and report (kernel log and statistics) any
 * reachable object the collection would have freed.  Also set for every
 * heap by the module parameter checkmark.
 */
#define GCHEAP_HEAP_CHECKMARK		0x2u
#define GCHEAP_HEAP_FLAGS_ALL		(GCHEAP_HEAP_GOGC | GCHEAP_HEAP_CHECKMARK)

/* @gogc: no pacing; the heap is collected only on demand or at its limit. */
#define GCHEAP_GOGC_OFF			(-1)
#define GCHEAP_GOGC_MAX			1000000

/* Operations of GCHEAP_IOC_CACHE: */
enum gcheap_cache_opcode {
	/* Install a span with free objects in this CPU's slot of span class
	 * @cls, returning the span the slot held (its free[] bits read back).
	 * @result: the CPU whose slot was refilled.
	 */
	GCHEAP_OP_REFILL = 1,
	/* Return this CPU's span of class @cls and leave the slot empty. */
	GCHEAP_OP_RELEASE = 2,
	/* The same for a per-thread slot at user address @arg. */
	GCHEAP_OP_REFILL_THREAD = 3,
	GCHEAP_OP_RELEASE_THREAD = 4,
	/* Allocate an object of @arg bytes (more than GCHEAP_SMALL_MAX) in a
	 * span of its own, noscan if @cls is 1; @result: its address.
	 */
	GCHEAP_OP_ALLOC_LARGE = 5,
	/* Free the object starting at @arg explicitly. */
	GCHEAP_OP_FREE = 6,
};

/**
 * struct gcheap_cache_op - one operation of a %GCHEAP_IOC_CACHE batch
 * @op: a &enum gcheap_cache_opcode
 * @cls: the span class, for the operations that take one
 * @arg: the operation's argument
 * @result: out: the operation's result
 * @error: out: 0 or a negative errno for this operation alone
 * @pad: must be zero
 */
struct gcheap_cache_op {
	__u32 op;
	__u32 cls;
	__u64 arg;
	__u64 result;
	__s32 error;
	__u32 pad;
};

#define GCHEAP_CACHE_OPS_MAX		64

/**
 * struct gcheap_cache - argument of %GCHEAP_IOC_CACHE: a batch of refills,
 *	releases, large allocations and frees
 * @ops: in: user address of an array of &struct gcheap_cache_op
 * @nr: in: its length, 1 to %GCHEAP_CACHE_OPS_MAX
 * @flags: in: must be zero
 * @done: out: operations that succeeded
 * @pad: out: zero
 *
 * The whole batch is validated first (EINVAL for an unknown op, a class out
 * of range or nonzero padding; nothing is done then).  Then every op is
 * carried out and given its own @error; the call succeeds if it could read
 * and write the batch.
 */
struct gcheap_cache {
	__u64 ops;
	__u32 nr;
	__u32 flags;
	__u32 done;
	__u32 pad;
};

/**
 * struct gcheap_heap_stats - argument of %GCHEAP_IOC_STATS
 * @flags: in: must be zero
 * @pad: in: must be zero
 * @arena_bytes: out: the heap's size limit
 * @heap_bytes: out: bytes of the arena in spans
 * @resident_bytes: out: bytes of memory the module holds for the heap:
 *	span pages, free pages not yet returned to the system, metadata
 * @live_bytes: out: bytes in objects allocated, as far as the module knows
 *	(a span in a cache is counted when it returns)
 * @spans: out: spans in use
 * @large_objects: out: large objects allocated
 * @refills: out: spans installed in caches
 * @cycles: out: collections completed
 * @marked_bytes: out: bytes the last collection found reachable or
 *	allocated while it marked
 * @freed_bytes: out: bytes of unreachable objects all collections freed
 * @next_gc_bytes: out: the goal: the bytes allocated (@live_bytes plus
 *	the free objects handed to caches) by which the next collection
 *	should be over (it starts before); 0 with pacing off and no soft
 *	limit
 * @max_pause_ns: out: the longest single stop of the world
 * @total_pause_ns: out: all stops together, two per collection
 * @last_pause_ns: out: the longer of the last collection's two stops
 * @stop_aborts: out: collections given up because a registered thread did
 *	not stop in time (stopped by a debugger or job control, or in an
 *	uninterruptible sleep)
 * @checkmark_errors: out: reachable objects checkmark mode found unmarked,
 *	and heap pages it found writable in a final pause without the write
 *	barrier having recorded them
 * @threads: out: registered threads
 * @pause_pages_last: out: arena pages the last collection's final pause
 *	rescanned (pages written while it marked, see collector.rst)
 * @pause_pages_max: out: the most any final pause rescanned
 * @barrier_faults: out: first writes to a clean heap page, each one a
 *	write-protection fault the module recorded the page dirty in
 */
struct gcheap_heap_stats {
	__u32 flags;
	__u32 pad;
	__u64 arena_bytes;
	__u64 heap_bytes;
	__u64 resident_bytes;
	__u64 live_bytes;
	__u64 spans;
	__u64 large_objects;
	__u64 refills;
	__u64 cycles;
	__u64 marked_bytes;
	__u64 freed_bytes;
	__u64 next_gc_bytes;
	__u64 max_pause_ns;
	__u64 total_pause_ns;
	__u64 last_pause_ns;
	__u64 stop_aborts;
	__u64 checkmark_errors;
	__u64 threads;
	__u64 pause_pages_last;
	__u64 pause_pages_max;
	__u64 barrier_faults;
};

/*
 * The collector.
 *
 * A heap is collected by a kernel thread of its own ("gcheap/<pid>"),
 * mostly while the program runs: the world is stopped twice per cycle,
 * briefly -- first to read the threads' registers and stacks, at the end
 * to rescan them, the root ranges and the heap pages written meanwhile
 * (Documentation/collector.rst).  The mapping is the write barrier: arena
 * pages are read-only until written, and the first write to one faults
 * into the module, which records it.  A stop stops every registered
 * thread where it is -- in its program, or in a system call, which is
 * interrupted as by a signal without a handler -- and keeps it in the
 * module until the stop is over.  A thread already waiting or refilling
 * in the module (GCHEAP_IOC_GC, GCHEAP_IOC_CACHE) is not interrupted: it
 * counts as stopped and returns only after the stop.  No signal is
 * delivered: calls the kernel restarts after such a
 * signal (read, write, nanosleep, poll, select, futex waits...) resume as
 * if nothing had happened; those that fail with EINTR on any signal
 * (epoll_wait, sigtimedwait, semop, io_getevents, socket calls with a
 * timeout) may return EINTR, as they would for a signal with SA_RESTART.
 * The roots are each stopped thread's registers and its stack, from its
 * stack pointer to the top it registered, the extra range it registered,
 * and the root ranges (GCHEAP_IOC_ROOTS).
 */

/**
 * struct gcheap_thread_reg - argument of %GCHEAP_IOC_THREAD
 * @op: %GCHEAP_THREAD_REGISTER or %GCHEAP_THREAD_UNREGISTER
 * @tid: REGISTER: the thread, another thread of the calling process
 *	(libgcheap registers the main thread when the heap is set up on
 *	another one), or 0 for the calling thread; UNREGISTER: 0, the
 *	calling thread
 * @stack_lo: REGISTER: the lowest address of the thread's stack
 * @stack_hi: REGISTER: one past its highest address
 * @extra: REGISTER: user address of another range of the thread's to scan
 *	(libgcheap's batch of pending explicit frees), or 0
 * @extra_len: REGISTER: its length, at most %GCHEAP_EXTRA_MAX
 * @pad2: must be zero
 *
 * Every field but @op is zero for UNREGISTER.  REGISTER fails with EINVAL
 * when the stack is empty or a range is not in user space, ESRCH when @tid
 * is no thread of the caller's process, EEXIST when the thread is
 * registered (except a thread registered by another that registers itself:
 * that replaces its stack and extra range); UNREGISTER with ENOENT when it
 * is not.  A thread that exits
 * is forgotten by itself.
 */
struct gcheap_thread_reg {
	__u32 op;
	__u32 tid;
	__u64 stack_lo;
	__u64 stack_hi;
	__u64 extra;
	__u32 extra_len;
	__u32 pad2;
};

#define GCHEAP_THREAD_REGISTER		1
#define GCHEAP_THREAD_UNREGISTER	2
#define GCHEAP_EXTRA_MAX		65536

/**
 * struct gcheap_range - a range of user memory
 * @start: its first byte
 * @len: its length in bytes
 */
struct gcheap_range {
	__u64 start;
	__u64 len;
};

/**
 * struct gcheap_roots - argument of %GCHEAP_IOC_ROOTS: the root ranges
 * @ranges: in: user address of an array of &struct gcheap_range
 * @nr: in: its length, at most %GCHEAP_ROOTS_MAX
 * @flags: in: must be zero
 *
 * Replaces the heap's root ranges with these (data and bss segments and
 * the ranges the program adds).  EINVAL for a range that is empty, wraps
 * or is not in user space.  Each range is scanned word by word (8-byte
 * aligned) in every collection.
 */
struct gcheap_roots {
	__u64 ranges;
	__u32 nr;
	__u32 flags;
};

#define GCHEAP_ROOTS_MAX		4096

/**
 * struct gcheap_gc - argument of %GCHEAP_IOC_GC
 * @op: a %GCHEAP_GC_* operation
 * @flags: must be zero
 * @value: SET_GOGC: the new GOGC (%GCHEAP_GOGC_OFF or 0 to
 *	%GCHEAP_GOGC_MAX); SET_SOFT_LIMIT: bytes, 0 for none; else zero
 * @cycle: out: COLLECT: the number of the collection that completed
 *
 * COLLECT starts a collection and waits until one that started after the
 * call has completed; a registered caller counts as stopped while it
 * waits.  EINTR if a fatal signal interrupts the wait; EAGAIN if the
 * collection had to be given up (see &gcheap_heap_stats.stop_aborts).
 */
struct gcheap_gc {
	__u32 op;
	__u32 flags;
	__s64 value;
	__u64 cycle;
};

#define GCHEAP_GC_COLLECT		1
#define GCHEAP_GC_SET_GOGC		2
#define GCHEAP_GC_SET_SOFT_LIMIT	3

/**
 * struct gcheap_fork - argument of %GCHEAP_IOC_FORK: copying a heap for a
 *	fork() child
 * @op: %GCHEAP_FORK_SNAPSHOT or %GCHEAP_FORK_ADOPT
 * @flags: must be zero
 * @fd: out: SNAPSHOT: a new file descriptor (close-on-exec) holding a copy
 *	of the heap taken with the world stopped; in: must be -1
 * @pad: must be zero
 *
 * The parent takes a snapshot just before fork() (a registered caller
 * counts as stopped meanwhile) and closes its descriptor after it; the
 * child calls ADOPT on the inherited snapshot descriptor, which makes the
 * copy its own heap, and maps it at the parent's address.  ADOPT fails
 * with EBUSY when the copy was adopted already, ENODEV on a file without a
 * snapshot.
 */
struct gcheap_fork {
	__u32 op;
	__u32 flags;
	__s32 fd;
	__u32 pad;
};

#define GCHEAP_FORK_SNAPSHOT		1
#define GCHEAP_FORK_ADOPT		2

/* 0xC6 is unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define GCHEAP_IOC_MAGIC		0xC6

/** GCHEAP_IOC_API - the handshake; see &struct gcheap_api. */
#define GCHEAP_IOC_API		_IOWR(GCHEAP_IOC_MAGIC, 0x00, struct gcheap_api)
/** GCHEAP_IOC_INFO - read facts about the module; see &struct gcheap_info. */
#define GCHEAP_IOC_INFO		_IOWR(GCHEAP_IOC_MAGIC, 0x01, struct gcheap_info)
/** GCHEAP_IOC_HEAP_CREATE - create the file's heap. */
#define GCHEAP_IOC_HEAP_CREATE	_IOWR(GCHEAP_IOC_MAGIC, 0x02, struct gcheap_heap_create)
/** GCHEAP_IOC_CACHE - a batch of cache operations. */
#define GCHEAP_IOC_CACHE	_IOWR(GCHEAP_IOC_MAGIC, 0x03, struct gcheap_cache)
/** GCHEAP_IOC_STATS - the heap's figures. */
#define GCHEAP_IOC_STATS	_IOWR(GCHEAP_IOC_MAGIC, 0x04, struct gcheap_heap_stats)
/** GCHEAP_IOC_THREAD - register or unregister the calling thread. */
#define GCHEAP_IOC_THREAD	_IOWR(GCHEAP_IOC_MAGIC, 0x05, struct gcheap_thread_reg)
/** GCHEAP_IOC_ROOTS - set the heap's root ranges. */
#define GCHEAP_IOC_ROOTS	_IOWR(GCHEAP_IOC_MAGIC, 0x06, struct gcheap_roots)
/** GCHEAP_IOC_GC - collect, or set the collector's pacing. */
#define GCHEAP_IOC_GC		_IOWR(GCHEAP_IOC_MAGIC, 0x07, struct gcheap_gc)
/** GCHEAP_IOC_FORK - snapshot a heap for a fork() child, or adopt one. */
#define GCHEAP_IOC_FORK		_IOWR(GCHEAP_IOC_MAGIC, 0x08, struct gcheap_fork)

#endif /* _UAPI_LINUX_GCHEAP_H */
