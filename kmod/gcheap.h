/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gcheap private header: the structures shared between the files of the
 * module and the seams between them.
 *
 * Glossary (defined once, used everywhere):
 *
 *  file	an open /dev/gcheap; one per open(), its state in
 *		&struct gcheap_file.  A file has at most one heap.
 *  handshake	the one-shot GCHEAP_IOC_API call that must succeed on a file
 *		before any other command is accepted.
 *  heap	&struct gcheap_heap: one process's garbage-collected memory,
 *		mapped once, whole, into that process.
 *  arena	the part of the heap's mapping that holds objects; pages are
 *		numbered from its start ("arena page index").
 *  size class	one of the object sizes of sizeclass.c, 16 bytes to 32 KiB.
 *  span class	(size class << 1) | noscan: spans of noscan classes hold
 *		objects the collector never scans.
 *  span	&struct gcheap_span: a run of arena pages holding objects of
 *		one span class, or one large object.
 *  mheap	the arena's page allocator: which pages are in spans.
 *  mcentral	per span class, the spans with free objects no cache holds.
 *  slot	&struct gcheap_slot in the mapped cache area: the span a CPU
 *		(or a thread) allocates from, with a bitmap of its free objects.
 *  pcp		&struct gcheap_pcp: the module's per-CPU state of a heap: the
 *		span installed in each of the CPU's slots, spare spans ready to
 *		install, and spans that came back full.
 *  resident	an arena page with memory behind it.
 *
 * Lock order, outermost first:
 *
 *	gcheap_file.lock
 *	gcheap_collector.snap_lock (mutex)
 *	gcheap_collector.world_lock (mutex)
 *	  mmap_lock (faults on user memory: roots are read under world_lock)
 *	  gcheap_heap.mheap_lock (mutex)
 *	    page lock (lock_page)
 *	      mapping->i_mmap_rwsem (unmap_mapping_range)
 *	    gcheap_pcp.lock / gcheap_central.lock / gcheap_heap.thread_lock
 *	      gcheap_span.lock
 *	gcheap_collector.lock (spinlock, innermost: requests and figures)
 *
 * No two pcp, central or span locks are ever held at once.  User memory is
 * never touched with mheap_lock held.
 */
#ifndef _GCHEAP_H
#define _GCHEAP_H

#include <linux/kref.h>
#include <linux/wait.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "../uapi/linux/gcheap.h"

#define GCHEAP_VERSION_MAJOR	0
#define GCHEAP_VERSION_MINOR	4
#define GCHEAP_VERSION_PATCH	0
#define GCHEAP_VERSION_STRING	"0.4.0"
#define GCHEAP_VERSION_CODE	((GCHEAP_VERSION_MAJOR << 16) | \
				 (GCHEAP_VERSION_MINOR << 8) | \
				 GCHEAP_VERSION_PATCH)

#define GCHEAP_MAX_OBJS		(GCHEAP_SLOT_WORDS * 64)
#define GCHEAP_SPAN_BYTES	(128u << 10)
#define GCHEAP_SLOT_SIZE	256
#define GCHEAP_PAGEINFO_PER_PAGE (PAGE_SIZE / sizeof(struct gcheap_pageinfo))

/* --- sizeclass.c --- */

extern struct gcheap_class gcheap_classes[GCHEAP_CLASSES_MAX];
extern unsigned int gcheap_nr_classes;
void gcheap_sizeclass_init(void);
u32 gcheap_sc_div_mul(unsigned int size);
int gcheap_sizeclass_check(void);

static inline unsigned int gcheap_sc_class(unsigned int sc)
{
	return sc >> 1;
}

/* --- spans --- */

/*
 * Span states and who owns the span in each (the owner's lock protects the
 * state and the list membership; only the owner changes them):
 *
 *  CENTRAL	on heap->central[sc].partial		central lock
 *  SPARE	on pcp(owner_cpu)->cls[sc].spare	pcp lock
 *  CPU		installed in slot (owner_cpu, sc)	pcp lock
 *  FULL	on pcp(owner_cpu)->full			pcp lock
 *  THREAD	held by a thread's slot; heap->thread_spans	thread_lock
 *  LARGE	one large object, on no list		mheap_lock
 *  TRANSIT	taken off every list by one operation, which alone may touch it
 *
 * Transitions: mheap -> TRANSIT (gcheap_span_alloc); TRANSIT -> CPU/THREAD
 * (installed in a slot), SPARE, CENTRAL, FULL, LARGE; CPU/THREAD -> TRANSIT
 * (detached, then gcheap_span_put()); SPARE/CENTRAL/FULL -> TRANSIT (taken
 * by gcheap_acquire()); TRANSIT/LARGE -> mheap (gcheap_span_free(), with
 * mheap_lock, every object free and zero).  Spans are freed to mheap only
 * under mheap_lock, so holding it pins every span found in heap->spans.
 */
enum gcheap_span_state {
	GCHEAP_SPAN_TRANSIT,
	GCHEAP_SPAN_CENTRAL,
	GCHEAP_SPAN_SPARE,
	GCHEAP_SPAN_CPU,
	GCHEAP_SPAN_FULL,
	GCHEAP_SPAN_THREAD,
	GCHEAP_SPAN_LARGE,
};

/**
 * struct gcheap_span - a run of arena pages of one span class
 * @node: list membership, as the state says
 * @lock: protects the bitmaps and @nalloc; taken inside every other lock
 * @start: the first arena page index
 * @npages: its length in pages
 * @sc: the span class; for a large object only its noscan bit
 * @large: one large object
 * @fresh: every page was newly allocated for the span, so none is mapped
 *	in the process yet: the first handout maps them all at once
 * @elem_size: the object size (a large object: the span's bytes)
 * @div_mul: (offset * @div_mul) >> 32 is the index of the object at that
 *	offset in the span (sizeclass.c); 0 for a large object
 * @nobjs: the objects in the span
 * @nalloc: objects allocated as far as the module knows: set in @alloc
 * @state: see above; written by the owner only
 * @owner_cpu: the CPU whose pcp lists or slot hold the span
 * @alloc: a bit per allocated object, the module's own record
 * @handed: while the span is in a slot, the objects that were free when it
 *	was installed, or when the collector last settled the slot; the
 *	slot's free[] bits decide their fate, read back in each pause
 *	(CPU slots) and when the span leaves the slot.  Zero otherwise.
 * @freed: objects of @handed explicitly freed while the span was in a slot
 * @mark: a bit per object reached in the current collection; cleared at
 *	the start of each collection, written by the collector alone
 * @cmark: the same for checkmark mode's second marking
 * @black: objects allocated from a CPU slot while the collector marked
 *	(allocate-black): they survive the cycle unscanned, their contents
 *	covered by the write barrier.  Set under @lock, cleared with @mark.
 * @swept_gen: the sweep generation (gcheap_collector.sweep_gen) the span
 *	was last swept in, or created in; under @lock
 */
struct gcheap_span {
	struct list_head node;
	spinlock_t lock;		/* the bitmaps and nalloc */
	unsigned long start;
	unsigned int npages;
	unsigned int sc;
	bool large;
	bool fresh;
	unsigned int elem_size;
	u32 div_mul;
	unsigned int nobjs;
	unsigned int nalloc;
	enum gcheap_span_state state;
	int owner_cpu;
	u64 alloc[GCHEAP_SLOT_WORDS];
	u64 handed[GCHEAP_SLOT_WORDS];
	u64 freed[GCHEAP_SLOT_WORDS];
	u64 mark[GCHEAP_SLOT_WORDS];
	u64 cmark[GCHEAP_SLOT_WORDS];
	u64 black[GCHEAP_SLOT_WORDS];
	u64 swept_gen;
};

/* --- the heap --- */

/**
 * struct gcheap_central - spans of one span class that no cache holds
 * @lock: protects @partial
 * @partial: spans in state CENTRAL, each with at least one free object
 */
struct gcheap_central {
	spinlock_t lock;		/* partial */
	struct list_head partial;
};

/**
 * struct gcheap_pcp_class - one span class of a CPU
 * @slot: the span installed in the CPU's slot, or NULL
 * @spare: spans (state SPARE) ready to install
 */
struct gcheap_pcp_class {
	struct gcheap_span *slot;
	struct list_head spare;
};

/**
 * struct gcheap_pcp - a heap's state on one CPU
 * @lock: protects everything here and the CPU's slots in the cache area.
 *	Taken with preemption disabled on the CPU itself to install spans
 *	(see cache.c); from other CPUs by the collector, which only reads the
 *	slots (settling them in a pause, sweeping their spans in place), and
 *	at teardown.
 * @full: spans (state FULL) that left this CPU's slots with no free object
 * @cls: per span class
 */
struct gcheap_pcp {
	spinlock_t lock;		/* everything here, this CPU's slots */
	struct list_head full;
	struct gcheap_pcp_class cls[];
};

struct gcheap_user;

/**
 * struct gcheap_barrier - a heap's write barrier (barrier.c)
 * @dirty: per epoch, a bit per arena page written in it
 * @nr: per epoch, the pages set in @dirty
 * @epoch: the epoch faults record into now, counted; its lowest bit picks
 *	@dirty and @nr.  Advanced by the collector only (barrier.c)
 * @limit: the pages the current epoch may reach before threads that write
 *	more wait for the marker: pause_pages while it traces, fewer while
 *	it terminates (set by the collector only)
 * @faults: barrier faults taken
 * @assists: times a thread waited for the marker
 * @assist_wq: such threads wait here
 */
struct gcheap_barrier {
	unsigned long *dirty[2];
	atomic_long_t nr[2];
	unsigned int epoch;
	unsigned long limit;
	atomic64_t faults;
	atomic64_t assists;
	wait_queue_head_t assist_wq;
};

/* What the collector is doing (gcheap_collector.phase). */
enum gcheap_gc_phase {
	GCHEAP_GC_IDLE,
	GCHEAP_GC_MARK,
	GCHEAP_GC_SWEEP,
};

/**
 * struct gcheap_grey - an object marked but not yet scanned
 * @off: its offset from the arena's start
 * @len: its length in bytes
 */
struct gcheap_grey {
	unsigned long off;
	unsigned long len;
};

struct gcheap_heap;

/**
 * struct gcheap_collector - a heap's collector (gc.c)
 * @thread: the kernel thread that collects the heap
 * @wake: the collector thread sleeps here: for requests, for threads to
 *	park, for a thread running a pause to restart the world
 * @done_wq: COLLECT callers wait here for cycles, parked threads for the
 *	world to restart
 * @world_lock: the registry, the roots, the stop state; held across the
 *	stopped part of a cycle, by whoever runs the pause
 * @mutators: pid -> &struct gcheap_mutator, the registered threads
 * @nr_mutators: their number
 * @nr_parked: of those, parked for the current stop
 * @stop_seq: the number of the current (or last) stop
 * @run_seq: the last stop that has ended: threads parked for a stop
 *	@run_seq or below may run
 * @stopping: a stop is under way
 * @pause_job: what the current stop runs with the world stopped (NULL
 *	once it restarted)
 * @pause_claimed: the thread that completed the stop, or the collector,
 *	runs @pause_job (written under @world_lock, read without)
 * @pause_end: when the last pause ended (restart), for its length
 * @ended_seq: the last stop whose @pause_end is set
 * @pause_errors: what the last final pause's checkmark found
 * @pause_marked: the bytes the last final pause found marked or black
 * @roots: the root ranges, @nr_roots of them
 * @nr_roots: see above
 * @pid: the process the heap was created by, for messages
 * @lock: protects the fields below
 * @requested: the highest cycle number anyone asked for
 * @started: cycles begun (the current cycle's number while one runs)
 * @done: cycles ended, successfully or not
 * @last_ok: the number of the last cycle that completed
 * @gogc: pacing, -1 for off
 * @soft_limit: bytes, 0 for none
 * @goal: the allocated bytes the next cycle should end by (U64_MAX: never)
 * @trigger: the allocated bytes at which the next cycle starts: before the
 *	goal by @runway, so it can end near it
 * @runway: the bytes the program allocated while the last cycle ran
 * @not_before: jiffies before which a paced cycle may not start (the soft
 *	limit's cap on the collector's share of time)
 * @checkmark: every cycle of this heap is checked
 * @st: the figures GCHEAP_IOC_STATS reports
 * @grey: the mark stack, @grey_cap entries, @grey_top in use
 * @grey_cap: see above
 * @grey_top: see above
 * @overflow: an object was marked but could not be pushed
 * @checking: the current marking is checkmark mode's (marks go to cmark)
 * @marked: bytes marked in the current marking
 * @traced: bytes the marker has scanned, ever
 * @remarked_at: @traced when the last concurrent re-mark round ended
 * @hot: the span the last pointer marked was in (valid under mheap_lock)
 * @hot_page: the page the last object scanned was in, arena page
 *	@hot_pidx (valid under mheap_lock, like @hot)
 * @hot_pidx: see above
 * @cand: candidate pointers read from user memory, @nr_cand of them
 * @nr_cand: see above
 * @snap_lock: one fork snapshot at a time
 * @snap_dst: the heap the next stopped cycle copies this one into, or NULL
 *	(world_lock)
 * @snap_ret: the copy's result (world_lock)
 * @phase: IDLE, MARK (from the first stop to the end of the final one) or
 *	SWEEP; changed by the collector with the world stopped, except the
 *	return to IDLE
 * @tracing: draining the grey stack as candidates are marked (not during
 *	the first stop, which only greys what the stacks point to)
 * @final: in the final stop: the grey stack grows instead of overflowing
 * @sweep_gen: bumped by each final stop; spans with another swept_gen
 *	still have to be swept with this cycle's marks
 * @sweep_lock: protects @sweep_list
 * @sweep_list: the spans (TRANSIT) the sweeper has still to sweep
 * @black_bytes: bytes allocated black this cycle
 * @swept_bytes: bytes freed by sweeping since the last cycle's end
 * @dirty_scanned: arena pages the current stop's rescan went through
 */
struct gcheap_collector {
	struct task_struct *thread;
	wait_queue_head_t wake;
	wait_queue_head_t done_wq;
	struct mutex world_lock;	/* registry, roots, stop state */
	struct xarray mutators;
	unsigned int nr_mutators;
	unsigned int nr_parked;
	u64 stop_seq;
	u64 run_seq;
	bool stopping;
	void (*pause_job)(struct gcheap_heap *heap);
	bool pause_claimed;
	u64 pause_end;
	u64 ended_seq;
	u64 pause_errors;
	u64 pause_marked;
	struct gcheap_range *roots;
	unsigned int nr_roots;
	pid_t pid;
	spinlock_t lock;		/* requests, pacing, figures */
	u64 requested;
	u64 started;
	u64 done;
	u64 last_ok;
	int gogc;
	u64 soft_limit;
	u64 goal;
	u64 trigger;
	u64 runway;
	unsigned long not_before;
	bool checkmark;
	struct {
		u64 cycles;
		u64 marked_bytes;
		u64 freed_bytes;
		u64 max_pause_ns;
		u64 total_pause_ns;
		u64 last_pause_ns;
		u64 stop_aborts;
		u64 checkmark_errors;
		u64 pause_pages_last;
		u64 pause_pages_max;
	} st;
	struct gcheap_grey *grey;
	unsigned long grey_cap;
	unsigned long grey_top;
	bool overflow;
	bool checking;
	u64 marked;
	u64 traced;
	u64 remarked_at;
	struct gcheap_span *hot;
	struct page *hot_page;
	unsigned long hot_pidx;
	unsigned long *cand;
	unsigned int nr_cand;
	struct mutex snap_lock;		/* one snapshot at a time */
	struct gcheap_heap *snap_dst;
	int snap_ret;
	enum gcheap_gc_phase phase;
	bool tracing;
	bool final;
	u64 sweep_gen;
	spinlock_t sweep_lock;		/* sweep_list */
	struct list_head sweep_list;
	atomic64_t black_bytes;
	atomic64_t swept_bytes;
	unsigned long dirty_scanned;
};

/**
 * struct gcheap_heap - one process's heap
 * @ref: held by the file and by each VMA mapping the heap
 * @mm: the process that created the heap (mmgrab); only it may map and use it
 * @mapping: the file's private address space, which the heap's VMA is on
 * @user: the per-user page account the heap charges
 * @arena_pages: the arena's size in pages: the heap's limit
 * @nr_sc: span classes, slots per CPU
 * @cpu_stride: bytes between two CPUs' slot arrays
 * @slots_pgoff: page offset of the cache area in the mapping
 * @pagemap_pgoff: page offset of the page map
 * @arena_pgoff: page offset of the arena
 * @map_pages: the mapping's length in pages
 * @meta: the header and cache-area pages, allocated at creation
 * @nr_meta: their number (= @pagemap_pgoff)
 * @pagemap: the page-map pages, allocated when first needed (cmpxchg)
 * @nr_pagemap: their number
 * @pages: arena page index -> struct page, the resident pages; the heap
 *	holds one reference on each.  Readers take xa_lock to get a page
 *	reference.
 * @spans: arena page index -> struct gcheap_span, for every page of every
 *	span; written under @mheap_lock
 * @mheap_lock: the page allocator: @used, @used_hint, @nr_free_resident,
 *	span creation and destruction, and @pages removals
 * @used: a bit per arena page in a span
 * @used_hint: no free page below it
 * @nr_resident: arena pages in @pages
 * @nr_free_resident: resident pages in no span (the scavenger's work)
 * @resident_seq: written around every change of @nr_resident and
 *	@nr_free_resident (under @mheap_lock), so that the statistics read
 *	the two together without taking the lock
 * @central: per span class
 * @pcp: per CPU
 * @thread_lock: protects @thread_spans
 * @thread_spans: spans in state THREAD
 * @scavenge: returns free resident pages to the system
 * @vma: the VMA the heap is mapped by (compared, never dereferenced)
 * @user_base: that VMA's start; valid while @mapped
 * @mapped: the heap is mapped; cache operations need it
 * @live_bytes: bytes in allocated objects, as far as the module knows
 * @nr_spans: spans in use
 * @nr_large: large objects
 * @nr_refills: spans installed in slots
 * @file: the file the heap belongs to (not a reference: the file holds
 *	the heap, and the collector stops before the file goes)
 * @snapshot: a fork snapshot, owned by no process until adopted
 * @handed_bytes: bytes of the objects that were free when their spans were
 *	installed in slots and whose spans are still there: with
 *	@live_bytes, what the pacer counts as allocated
 * @wp: the write barrier
 * @gc: the collector
 */
struct gcheap_heap {
	struct kref ref;
	struct mm_struct *mm;
	struct address_space *mapping;
	struct gcheap_user *user;
	unsigned long arena_pages;
	unsigned int nr_sc;
	unsigned int cpu_stride;
	unsigned long slots_pgoff;
	unsigned long pagemap_pgoff;
	unsigned long arena_pgoff;
	unsigned long map_pages;
	struct page **meta;
	unsigned long nr_meta;
	struct page **pagemap;
	unsigned long nr_pagemap;
	struct xarray pages;
	struct xarray spans;
	struct mutex mheap_lock;	/* the page allocator, see above */
	unsigned long *used;
	unsigned long used_hint;
	unsigned long nr_resident;
	unsigned long nr_free_resident;
	seqcount_mutex_t resident_seq;
	struct gcheap_central *central;
	struct gcheap_pcp __percpu *pcp;
	spinlock_t thread_lock;		/* thread_spans */
	struct list_head thread_spans;
	struct delayed_work scavenge;
	struct vm_area_struct *vma;
	unsigned long user_base;
	bool mapped;
	atomic64_t live_bytes;
	atomic64_t nr_spans;
	atomic64_t nr_large;
	atomic64_t nr_refills;
	atomic64_t handed_bytes;
	struct file *file;
	bool snapshot;
	struct gcheap_barrier wp;
	struct gcheap_collector gc;
};

/**
 * struct gcheap_file - the state of one open /dev/gcheap
 * @lock: serialises the handshake and heap creation.  Never held across a
 *	user memory access: ->mmap runs under mmap_lock and takes it, so a
 *	fault taken while holding it would invert that order.
 * @api_done: false until the handshake succeeds, then true for the life of
 *	the file.  Written once under @lock with smp_store_release(); read
 *	without the lock with smp_load_acquire(), which orders the reader
 *	after @features.
 * @features: the features userspace asked for in the handshake.  Written
 *	once, before @api_done is published; constant afterwards.
 * @heap: the file's heap, or NULL.  Published once under @lock with
 *	smp_store_release(); read with smp_load_acquire().
 * @inode: the file's private inode, whose address space the heap's VMA
 *	is on (DRM's anon-inode pattern)
 * @file: the file itself
 */
struct gcheap_file {
	struct mutex lock;	/* the handshake and heap creation */
	bool api_done;
	u64 features;
	struct gcheap_heap *heap;
	struct inode *inode;
	struct file *file;
};

/* --- module parameters and counters (main.c) --- */

extern unsigned int gcheap_max_heap_mb;
extern unsigned int gcheap_max_user_mb;
extern unsigned int gcheap_scavenge_delay_ms;
extern unsigned int gcheap_scavenge_retain_mb;
extern bool gcheap_checkmark;
extern unsigned int gcheap_mark_stack;
extern unsigned int gcheap_stop_timeout_ms;
extern unsigned int gcheap_pause_pages;
extern unsigned int gcheap_fault_delay_us;
extern atomic_long_t gcheap_nr_pages;
extern atomic_t gcheap_nr_heaps;

/* --- heap.c --- */

struct gcheap_heap *gcheap_heap_new(struct gcheap_file *gf, struct gcheap_heap_create *hc,
				    bool snapshot);
int gcheap_heap_adopt(struct gcheap_heap *heap);
void gcheap_heap_put(struct gcheap_heap *heap);
int gcheap_heap_mmap(struct gcheap_heap *heap, struct vm_area_struct *vma);
void gcheap_heap_stats(struct gcheap_heap *heap, struct gcheap_heap_stats *st);
struct page *gcheap_page_alloc(struct gcheap_heap *heap);
void gcheap_page_free(struct gcheap_heap *heap, struct page *page);
struct page *gcheap_pagemap_page(struct gcheap_heap *heap, unsigned long n);
void gcheap_scavenge_kick(struct gcheap_heap *heap);
struct inode *gcheap_inode_alloc(void);
void gcheap_inode_free(struct inode *inode);

/* --- span.c --- */

int gcheap_span_cache_init(void);
void gcheap_span_cache_exit(void);
struct gcheap_span *gcheap_span_alloc(struct gcheap_heap *heap, unsigned int sc,
				      bool large, unsigned long npages);
void gcheap_span_free(struct gcheap_heap *heap, struct gcheap_span *span);
void gcheap_span_zero(struct gcheap_heap *heap, unsigned long byte_off,
		      unsigned long len);
void gcheap_span_teardown(struct gcheap_heap *heap);
void gcheap_span_prefault(struct gcheap_heap *heap, struct gcheap_span *span);
unsigned long gcheap_scavenge(struct gcheap_heap *heap);
int gcheap_span_copy_all(struct gcheap_heap *dst, struct gcheap_heap *src);

/* --- cache.c --- */

int gcheap_pcp_init(struct gcheap_heap *heap);
void gcheap_cache_teardown(struct gcheap_heap *heap);
int gcheap_cache_op(struct gcheap_heap *heap, struct gcheap_cache_op *op);
void gcheap_cache_settle(struct gcheap_heap *heap);
void gcheap_cache_sweep_slots(struct gcheap_heap *heap);
void gcheap_cache_gather(struct gcheap_heap *heap, struct list_head *todo);
void gcheap_span_put(struct gcheap_heap *heap, struct gcheap_span *span);

/* --- barrier.c --- */

int gcheap_barrier_init(struct gcheap_heap *heap);
void gcheap_barrier_destroy(struct gcheap_heap *heap);
void gcheap_barrier_fault(struct gcheap_heap *heap, unsigned long idx);
void gcheap_barrier_assist(struct gcheap_heap *heap);
unsigned long gcheap_barrier_pending(struct gcheap_heap *heap);
unsigned int gcheap_barrier_round(struct gcheap_heap *heap);
void gcheap_barrier_clear(struct gcheap_heap *heap, unsigned int e);
unsigned long gcheap_barrier_audit(struct gcheap_heap *heap);

/* --- gc.c --- */

struct gcheap_mutator;

int gcheap_gc_init(struct gcheap_heap *heap, const struct gcheap_heap_create *hc);
int gcheap_gc_start(struct gcheap_heap *heap);
void gcheap_gc_stop(struct gcheap_heap *heap);
void gcheap_gc_destroy(struct gcheap_heap *heap);
void gcheap_gc_note_alloc(struct gcheap_heap *heap, bool may_wait);
void gcheap_gc_throttle(struct gcheap_heap *heap);
int gcheap_gc_thread(struct gcheap_heap *heap, const struct gcheap_thread_reg *tr);
int gcheap_gc_set_roots(struct gcheap_heap *heap, struct gcheap_range *r, unsigned int nr);
int gcheap_gc_collect(struct gcheap_heap *heap, u64 *cycle);
struct gcheap_mutator *gcheap_gc_block(struct gcheap_heap *heap);
int gcheap_gc_unblock(struct gcheap_heap *heap, struct gcheap_mutator *m);
int gcheap_gc_set(struct gcheap_heap *heap, unsigned int op, s64 value);
void gcheap_gc_stats(struct gcheap_heap *heap, struct gcheap_heap_stats *st);
int gcheap_gc_snapshot(struct gcheap_heap *heap, struct gcheap_heap *dst);
u64 gcheap_sweep_span(struct gcheap_heap *heap, struct gcheap_span *span);
struct gcheap_span *gcheap_sweep_take(struct gcheap_heap *heap);

static inline unsigned long gcheap_arena_addr(struct gcheap_heap *heap,
					      unsigned long page)
{
	return heap->user_base + ((heap->arena_pgoff + page) << PAGE_SHIFT);
}

#endif /* _GCHEAP_H */
