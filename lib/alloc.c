// SPDX-License-Identifier: MIT
/*
 * libgcheap's allocator: heap setup, the fast paths, and the allocation
 * API.
 *
 * Small objects (up to GCHEAP_SMALL_MAX) come from slots: a span and a
 * bitmap of its free objects.  With rseq (glibc 2.35+ registers it for
 * every thread) the slot is the one of the CPU the thread runs on, in the
 * cache area the module maps into the process; allocation finds a set bit
 * and clears it with gcheap_rseq_commit(), which commits only if the thread
 * is still on that CPU and the slot's generation has not changed -- no
 * system call, no lock, no atomic read-modify-write.  Without rseq the slot
 * is the thread's own (struct gcheap_thread.slots) and a plain store will
 * do.  An empty slot costs one GCHEAP_IOC_CACHE call to refill.  Objects
 * above GCHEAP_SMALL_MAX take one call for a span of their own.
 *
 * Memory from the module is always zero (the module zeroes objects when
 * they are freed), so nothing here clears memory.
 *
 * gcheap_size() and gcheap_base() read the page map the module keeps in the
 * mapping: they make no system call either.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gcheap.h"
#include "internal.h"
#include "prim.h"
#include "rseq.h"

struct gcheap_state gcheap_g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.roots_lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = -1,
	.fork_fd = -1,
};

#define DEFAULT_HEAP_BYTES	(1ull << 30)

static uint64_t env_heap_bytes(void)
{
	const char *s = getenv("GCHEAP_HEAP_MB");
	char *end;
	unsigned long long mb;

	if (!s || !*s)
		return DEFAULT_HEAP_BYTES;
	errno = 0;
	mb = strtoull(s, &end, 10);
	if (errno || *end || !mb || mb > (1ull << 44))
		return DEFAULT_HEAP_BYTES;
	return mb << 20;
}

/* GCHEAP_GOGC: a percentage or "off"; false when unset or malformed. */
static bool env_gogc(int32_t *gogc)
{
	const char *s = getenv("GCHEAP_GOGC");
	char *end;
	long v;

	if (!s || !*s)
		return false;
	if (!strcmp(s, "off")) {
		*gogc = GCHEAP_GOGC_OFF;
		return true;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > GCHEAP_GOGC_MAX)
		return false;
	*gogc = (int32_t)v;
	return true;
}

/* GCHEAP_MEMLIMIT: bytes, with an optional KiB, MiB or GiB suffix. */
static uint64_t env_memlimit(void)
{
	const char *s = getenv("GCHEAP_MEMLIMIT");
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return 0;
	if (!strcmp(end, "KiB"))
		shift = 10;
	else if (!strcmp(end, "MiB"))
		shift = 20;
	else if (!strcmp(end, "GiB"))
		shift = 30;
	else if (*end)
		return 0;
	if (v > (UINT64_MAX >> 1) >> shift)
		return 0;
	return (uint64_t)v << shift;
}

static bool env_checkmark(void)
{
	const char *s = getenv("GCHEAP_CHECKMARK");

	return s && !strcmp(s, "1");
}

static bool env_rseq_disabled(void)
{
	const char *s = getenv("GCHEAP_RSEQ");

	return s && !strcmp(s, "0");
}

/* The heap-creation request a configuration (and the environment) asks for. */
static void create_request(const struct gcheap_config *cfg, uint64_t bytes,
			   struct gcheap_heap_create *hc)
{
	int32_t gogc;

	memset(hc, 0, sizeof(*hc));
	hc->arena_bytes = bytes;
	if (cfg && (cfg->flags & GCHEAP_CONFIG_GOGC)) {
		hc->flags |= GCHEAP_HEAP_GOGC;
		hc->gogc = cfg->gogc;
	} else if (env_gogc(&gogc)) {
		hc->flags |= GCHEAP_HEAP_GOGC;
		hc->gogc = gogc;
	}
	if ((cfg && (cfg->flags & GCHEAP_CONFIG_CHECKMARK)) || env_checkmark())
		hc->flags |= GCHEAP_HEAP_CHECKMARK;
	hc->soft_limit_bytes = cfg && cfg->soft_limit_bytes ? cfg->soft_limit_bytes :
			       env_memlimit();
}

/*
 * fork().  The heap's mapping is not inherited (the module maps a heap into
 * one process only), so the child gets a copy: just before fork() the
 * parent asks the module for a snapshot of its heap (GCHEAP_FORK_SNAPSHOT:
 * a collection that, with the world stopped, copies every live object into
 * a new heap behind a new descriptor), the child adopts that heap and maps
 * it at the parent's address, and the parent closes its descriptor.  The
 * child then sees every object as it was, at the same address.
 */
static void atfork_prepare(void)
{
	struct gcheap_thread *t = gcheap_thread_self(false);
	struct gcheap_fork fk;

	gcheap_g.fork_fd = -1;
	if (!__atomic_load_n(&gcheap_g.ready, __ATOMIC_ACQUIRE))
		return;
	if (t)
		gcheap_flush_frees(t);
	gcheap_roots_sync();
	if (!gcheap_snapshot_now(&fk))
		gcheap_g.fork_fd = fk.fd;
}

static void atfork_parent(void)
{
	if (gcheap_g.fork_fd >= 0)
		gcheap_prim_close(gcheap_g.fork_fd);
	gcheap_g.fork_fd = -1;
}

/* Make the snapshot the child's heap, mapped where the parent's was. */
static int adopt_snapshot(int fd)
{
	struct gcheap_fork fk;
	void *map;

	memset(&fk, 0, sizeof(fk));
	fk.op = GCHEAP_FORK_ADOPT;
	fk.fd = -1;
	if (gcheap_prim_fork(fd, &fk))
		return -1;
	map = mmap(gcheap_g.map, gcheap_g.map_bytes, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (map == MAP_FAILED)
		return -1;
	if (map != gcheap_g.map) {
		munmap(map, gcheap_g.map_bytes);
		return -1;
	}
	return 0;
}

/*
 * In the child, only the forking thread exists, and a lock may have been
 * held by another thread.  With the snapshot adopted, the heap goes on
 * where it was; without one (the snapshot failed), the child forgets the
 * heap and its first allocation sets up a heap of its own.
 */
static void atfork_child(void)
{
	struct gcheap_thread *t = gcheap_thread_self(false);
	int snap = gcheap_g.fork_fd;

	/* Its slots name the parent's spans; its frees were done before. */
	if (t)
		gcheap_thread_forget(t);
	gcheap_g.threads = NULL;
	gcheap_g.starting = NULL;
	gcheap_g.fork_fd = -1;
	pthread_mutex_init(&gcheap_g.lock, NULL);
	pthread_mutex_init(&gcheap_g.roots_lock, NULL);
	if (gcheap_g.fd >= 0)
		gcheap_prim_close(gcheap_g.fd);
	gcheap_g.fd = -1;
	if (snap >= 0 && !adopt_snapshot(snap)) {
		gcheap_g.fd = snap;
		gcheap_roots_sync();
		gcheap_register_thread();
		return;
	}
	if (snap >= 0)
		gcheap_prim_close(snap);
	__atomic_store_n(&gcheap_g.fast, false, __ATOMIC_RELAXED);
	__atomic_store_n(&gcheap_g.ready, 0, __ATOMIC_RELAXED);
	gcheap_g.map = NULL;
}

/* Called with gcheap_g.lock held. */
static int heap_setup(const struct gcheap_config *cfg)
{
	struct gcheap_heap_create hc;
	const struct gcheap_header *h;
	struct gcheap_api api;
	uint64_t bytes;
	unsigned int c, i;
	void *map;
	int fd, ret;

	bytes = cfg && cfg->heap_bytes ? cfg->heap_bytes : env_heap_bytes();
	fd = gcheap_prim_open_api(&api);
	if (fd < 0)
		return fd;
	create_request(cfg, bytes, &hc);
	ret = gcheap_prim_heap_create(fd, &hc);
	/* A default above the module's max_heap_mb: settle for less. */
	if (ret == -EINVAL && !(cfg && cfg->heap_bytes)) {
		for (bytes /= 2; ret == -EINVAL && bytes >= (64u << 20); bytes /= 2) {
			create_request(cfg, bytes, &hc);
			ret = gcheap_prim_heap_create(fd, &hc);
		}
	}
	if (ret)
		goto fail;
	ret = gcheap_prim_map(fd, hc.map_bytes, &map);
	if (ret)
		goto fail;
	h = map;
	if (h->magic != GCHEAP_HEADER_MAGIC || !h->nr_classes ||
	    h->nr_classes > GCHEAP_CLASSES_MAX || hc.nr_span_classes != 2 * h->nr_classes) {
		munmap(map, hc.map_bytes);
		ret = -EPROTO;
		goto fail;
	}

	gcheap_g.fd = fd;
	gcheap_g.map = map;
	gcheap_g.map_bytes = hc.map_bytes;
	gcheap_g.slots = (char *)map + hc.slots_offset;
	gcheap_g.cpu_stride = hc.cpu_stride;
	gcheap_g.nr_cpus = hc.nr_cpus;
	gcheap_g.nr_sc = hc.nr_span_classes;
	gcheap_g.pagemap = (const void *)((char *)map + hc.pagemap_offset);
	gcheap_g.arena_offset = hc.arena_offset;
	gcheap_g.arena_end = (uintptr_t)map + hc.map_bytes;
	gcheap_g.nr_classes = h->nr_classes;
	memcpy(gcheap_g.classes, h->classes, h->nr_classes * sizeof(h->classes[0]));
	/* class_of[(n + 15) / 16]: the smallest class that holds n bytes. */
	for (i = 0, c = 0; i <= GCHEAP_SMALL_MAX / 16; i++) {
		while (c < h->nr_classes && h->classes[c].size < i * 16)
			c++;
		gcheap_g.class_of[i] = c;
	}
	gcheap_g.use_rseq = !(cfg && (cfg->flags & GCHEAP_CONFIG_NO_RSEQ)) &&
			    !env_rseq_disabled() && __rseq_size >= GCHEAP_RSEQ_MIN_SIZE;
	gcheap_g.rseq_offset = __rseq_offset;
	gcheap_threads_init();
	if (!gcheap_g.atfork_done) {
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		gcheap_g.atfork_done = true;
	}
	__atomic_store_n(&gcheap_g.ready, 1, __ATOMIC_RELEASE);
	/* The fast path's one test; published after everything it needs. */
	__atomic_store_n(&gcheap_g.fast, gcheap_g.use_rseq, __ATOMIC_RELEASE);
	return 0;
fail:
	gcheap_prim_close(fd);
	return ret;
}

GCHEAP_EXPORT int gcheap_init(const struct gcheap_config *config)
{
	int ret;

	if (config) {
		if (config->flags & ~(GCHEAP_CONFIG_NO_RSEQ | GCHEAP_CONFIG_GOGC |
				      GCHEAP_CONFIG_CHECKMARK) || config->reserved[0] ||
		    config->reserved[1])
			return -EINVAL;
		if (config->flags & GCHEAP_CONFIG_GOGC ?
		    config->gogc < GCHEAP_GOGC_OFF || config->gogc > GCHEAP_GOGC_MAX :
		    config->gogc != 0)
			return -EINVAL;
	}
	pthread_mutex_lock(&gcheap_g.lock);
	if (gcheap_g.ready) {
		ret = -EALREADY;
	} else {
		/* A fork child set up implicitly takes its parent's choices. */
		if (!config && gcheap_g.has_config)
			config = &gcheap_g.config;
		ret = heap_setup(config);
		if (!ret && config) {
			gcheap_g.config = *config;
			gcheap_g.has_config = true;
		}
	}
	pthread_mutex_unlock(&gcheap_g.lock);
	if (ret)
		return ret;
	/* The roots, and the main thread, once the lock is free. */
	gcheap_roots_sync();
	gcheap_register_main();
	return 0;
}

/* The heap is set up (with defaults if need be): 0 or -errno. */
int gcheap_ensure(void)
{
	int ret;

	if (likely(__atomic_load_n(&gcheap_g.ready, __ATOMIC_ACQUIRE)))
		return 0;
	ret = gcheap_init(NULL);
	return ret == -EALREADY ? 0 : ret;
}

static struct gcheap_slot *cpu_slot(uint32_t cpu, unsigned int sc)
{
	return (struct gcheap_slot *)(gcheap_g.slots + (size_t)cpu * gcheap_g.cpu_stride +
				      sc * sizeof(struct gcheap_slot));
}

/*
 * The heap is at its limit (or the user's): a full collection before the
 * allocation fails.  0 when it ran.
 */
static int collect_for_memory(void)
{
	struct gcheap_thread *t = gcheap_thread_self(false);

	if (t)
		gcheap_flush_frees(t);
	gcheap_roots_sync();
	return gcheap_collect_now();
}

static int refill(unsigned int op, unsigned int sc, struct gcheap_slot *slot)
{
	struct gcheap_cache_op o = { .op = op, .cls = sc, .arg = (uintptr_t)slot };
	int ret = gcheap_prim_cache(gcheap_g.fd, &o, 1);

	return ret ? ret : o.error;
}

/* A refill; at the heap's limit, a collection and one more try. */
static int refill_or_collect(unsigned int op, unsigned int sc, struct gcheap_slot *slot)
{
	int ret = refill(op, sc, slot);

	if (ret != -ENOMEM || collect_for_memory())
		return ret;
	return refill(op, sc, slot);
}

/*
 * The first word of @free with a free object, looking from @hint on and
 * then below it; *@bits is 0 when there is none.  Objects are taken lowest
 * first, so words below the hint are usually empty.
 */
static inline unsigned int find_word(const __u64 *free, unsigned int hint, uint64_t *bits)
{
	unsigned int w;

	/*
	 * No need to know how many words the span uses: the module writes
	 * zero to the words past it.  A hint out of range starts at 0.
	 */
	if (hint >= GCHEAP_SLOT_WORDS)
		hint = 0;
	for (w = hint; w < GCHEAP_SLOT_WORDS; w++)
		if ((*bits = READ_ONCE(free[w])))
			return w;
	for (w = 0; w < hint; w++)
		if ((*bits = READ_ONCE(free[w])))
			return w;
	*bits = 0;
	return 0;
}

/*
 * One try at the per-CPU fast path, small enough to stay a leaf function
 * with no stack frame: NULL when the thread has no rseq CPU, the slot is
 * empty, or the sequence did not commit; the slow path sorts those out.
 */
static inline __attribute__((always_inline)) void *cpu_try(unsigned int sc)
{
	ptrdiff_t off = gcheap_g.rseq_offset;
	uint32_t cpu = gcheap_rseq_cpu(off), size, hint, w;
	struct gcheap_slot *s;
	uint64_t gen, base, bits;
	void *p;

	if (unlikely(cpu >= gcheap_g.nr_cpus))
		return NULL;
	s = cpu_slot(cpu, sc);
	/* The generation first: the commit checks it is unchanged. */
	gen = READ_ONCE(s->gen);
	__asm__ __volatile__("" ::: "memory");
	base = READ_ONCE(s->base);
	size = READ_ONCE(s->size);
	hint = READ_ONCE(s->hint);
	w = find_word(s->free, hint, &bits);
	if (unlikely(!bits || !base))
		return NULL;
	/* Before the commit: from then on the thread must hold it (rseq.h). */
	p = (void *)(uintptr_t)(base + ((uint64_t)w * 64 + __builtin_ctzll(bits)) * size);
	if (unlikely(gcheap_rseq_commit(off, cpu, &s->gen, gen, &s->free[w], bits,
					bits & (bits - 1), p)))
		return NULL;
	/* A hint only: a stale one just starts the search elsewhere. */
	if (unlikely(w != hint))
		s->hint = w;
	return p;
}

static bool cpu_slot_empty(unsigned int sc)
{
	uint32_t cpu = gcheap_rseq_cpu(gcheap_g.rseq_offset), w;
	struct gcheap_slot *s = cpu_slot(cpu, sc);

	if (!READ_ONCE(s->base))
		return true;
	for (w = 0; w < READ_ONCE(s->nwords) && w < GCHEAP_SLOT_WORDS; w++)
		if (READ_ONCE(s->free[w]))
			return false;
	return true;
}

/* The per-thread fast path. */
static void *alloc_thread(unsigned int sc)
{
	struct gcheap_thread *t = gcheap_thread_self(true);
	struct gcheap_slot *s;
	unsigned int w;

	if (!t || !t->slots)
		return NULL;
	s = &t->slots[sc];
	for (;;) {
		uint64_t bits;

		w = find_word(s->free, s->hint, &bits);
		if (bits) {
			void *p = (void *)(uintptr_t)(s->base + ((uint64_t)w * 64 +
				__builtin_ctzll(bits)) * s->size);

			/* The pointer exists before the store allocates it. */
			__asm__ __volatile__("" : : "r"(p) : "memory");
			s->free[w] = bits & (bits - 1);
			s->hint = w;
			return p;
		}
		if (refill_or_collect(GCHEAP_OP_REFILL_THREAD, sc, s))
			return NULL;
	}
}

static void *alloc_large(size_t size, bool noscan)
{
	struct gcheap_cache_op o = {
		.op = GCHEAP_OP_ALLOC_LARGE, .cls = noscan, .arg = size,
	};

	if (gcheap_prim_cache(gcheap_g.fd, &o, 1) || o.error) {
		/* At the heap's limit: collect, then try once more. */
		if (o.error != -ENOMEM || collect_for_memory())
			return NULL;
		memset(&o, 0, sizeof(o));
		o.op = GCHEAP_OP_ALLOC_LARGE;
		o.cls = noscan;
		o.arg = size;
		if (gcheap_prim_cache(gcheap_g.fd, &o, 1) || o.error)
			return NULL;
	}
	return (void *)(uintptr_t)o.result;
}

static bool thread_uses_rseq(void)
{
	return gcheap_g.use_rseq && (int32_t)gcheap_rseq_cpu(gcheap_g.rseq_offset) >= 0;
}

static inline unsigned int span_class(size_t size, bool noscan)
{
	return (unsigned int)gcheap_g.class_of[(size + 15) / 16] << 1 | noscan;
}

/* A small object of span class @sc, by any means but the first try. */
static __attribute__((noinline)) void *alloc_small_slow(unsigned int sc)
{
	void *p;

	if (!thread_uses_rseq()) {
		p = alloc_thread(sc);
		goto out;
	}
	while (!(p = cpu_try(sc))) {
		/* Empty: refill it.  Otherwise the sequence was interrupted. */
		if (cpu_slot_empty(sc) && refill_or_collect(GCHEAP_OP_REFILL, sc, NULL))
			break;
	}
out:
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

/* Before set-up, and large objects. */
static __attribute__((noinline)) void *alloc_slow(size_t size, bool noscan)
{
	void *p;

	if (unlikely(gcheap_ensure())) {
		errno = ENOMEM;
		return NULL;
	}
	if (size <= GCHEAP_SMALL_MAX)
		return alloc_small_slow(span_class(size, noscan));
	p = alloc_large(size, noscan);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static inline __attribute__((always_inline)) void *alloc(size_t size, bool noscan)
{
	if (likely(size <= GCHEAP_SMALL_MAX && __atomic_load_n(&gcheap_g.fast, __ATOMIC_ACQUIRE))) {
		unsigned int sc = span_class(size, noscan);
		void *p = cpu_try(sc);

		/* From here on the size is dead: the class says it all. */
		if (likely(p))
			return p;
		return alloc_small_slow(sc);
	}
	return alloc_slow(size, noscan);
}

GCHEAP_EXPORT void *gcheap_alloc(size_t size)
{
	return alloc(size, false);
}

void *gcheap_alloc_internal(size_t size)
{
	return alloc(size, false);
}

GCHEAP_EXPORT void *gcheap_alloc_atomic(size_t size)
{
	return alloc(size, true);
}

GCHEAP_EXPORT void *gcheap_calloc(size_t nmemb, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc(n, false);
}

/* The page-map entry of an arena address; false outside the arena. */
static bool pageinfo(uintptr_t p, uint64_t *entry)
{
	uintptr_t arena = (uintptr_t)gcheap_g.map + gcheap_g.arena_offset;

	if (!__atomic_load_n(&gcheap_g.ready, __ATOMIC_ACQUIRE) ||
	    p < arena || p >= gcheap_g.arena_end)
		return false;
	*entry = READ_ONCE(*(const uint64_t *)&gcheap_g.pagemap[(p - arena) / 4096]);
	return true;
}

/* The object @p points into: its start, size and whether it is noscan. */
static bool object_of(const void *ptr, uintptr_t *start, size_t *size, bool *noscan)
{
	uintptr_t p = (uintptr_t)ptr, span;
	uint32_t kind, off;
	uint64_t e;

	if (!pageinfo(p, &e))
		return false;
	kind = e >> 32;
	off = (uint32_t)e;
	if (!kind)
		return false;
	span = (p & ~(uintptr_t)4095) - (uintptr_t)off * 4096;
	if (kind & GCHEAP_PAGE_LARGE) {
		*start = span;
		*size = (size_t)(kind & ~(GCHEAP_PAGE_LARGE | GCHEAP_PAGE_NOSCAN)) * 4096;
		*noscan = kind & GCHEAP_PAGE_NOSCAN;
		return p < span + *size;
	}
	kind--;
	if (kind >= gcheap_g.nr_sc)
		return false;
	{
		const struct gcheap_class *c = &gcheap_g.classes[kind >> 1];
		uintptr_t i = (p - span) / c->size;

		if (i >= c->objects)
			return false;
		*start = span + i * c->size;
		*size = c->size;
		*noscan = kind & 1;
	}
	return true;
}

GCHEAP_EXPORT void *gcheap_base(const void *ptr)
{
	uintptr_t start;
	size_t size;
	bool noscan;

	return object_of(ptr, &start, &size, &noscan) ? (void *)start : NULL;
}

GCHEAP_EXPORT size_t gcheap_size(const void *ptr)
{
	uintptr_t start;
	size_t size;
	bool noscan;

	if (!object_of(ptr, &start, &size, &noscan) || start != (uintptr_t)ptr)
		return 0;
	return size;
}

GCHEAP_EXPORT void gcheap_free(void *ptr)
{
	struct gcheap_thread *t;

	if (!ptr || !gcheap_size(ptr))
		return;
	t = gcheap_thread_self(true);
	if (!t)
		return;
	t->frees[t->nfree++] = (uintptr_t)ptr;
	/*
	 * A registered thread's batch is a root while it waits (the stop
	 * handler names it), so the object cannot be collected and handed
	 * out again before the free is carried out.  Nobody scans an
	 * unregistered thread's batch: free at once.
	 */
	if (t->nfree == GCHEAP_FREE_BATCH || !t->registered)
		gcheap_flush_frees(t);
}

GCHEAP_EXPORT void *gcheap_realloc(void *ptr, size_t size)
{
	uintptr_t start;
	size_t old;
	bool noscan;
	void *p;

	if (!ptr)
		return gcheap_alloc(size);
	if (!object_of(ptr, &start, &old, &noscan) || start != (uintptr_t)ptr) {
		errno = EINVAL;
		return NULL;
	}
	if (size <= old)
		return ptr;
	p = alloc(size, noscan);
	if (!p)
		return NULL;
	memcpy(p, ptr, old);
	gcheap_free(ptr);
	return p;
}

GCHEAP_EXPORT int gcheap_stats(struct gcheap_stats *stats)
{
	struct gcheap_heap_stats st;
	int ret;

	if (!stats)
		return -EINVAL;
	ret = gcheap_ensure();
	if (!ret)
		ret = gcheap_prim_stats(gcheap_g.fd, &st);
	if (ret)
		return ret;
	memset(stats, 0, sizeof(*stats));
	stats->heap_bytes = st.heap_bytes;
	stats->live_bytes = st.live_bytes;
	stats->arena_bytes = st.arena_bytes;
	stats->resident_bytes = st.resident_bytes;
	stats->spans = st.spans;
	stats->large_objects = st.large_objects;
	stats->refills = st.refills;
	stats->gc_cycles = st.cycles;
	stats->marked_bytes = st.marked_bytes;
	stats->freed_bytes = st.freed_bytes;
	stats->next_gc_bytes = st.next_gc_bytes;
	stats->max_pause_ns = st.max_pause_ns;
	stats->total_pause_ns = st.total_pause_ns;
	stats->last_pause_ns = st.last_pause_ns;
	stats->stop_aborts = st.stop_aborts;
	stats->checkmark_errors = st.checkmark_errors;
	stats->threads = st.threads;
	stats->pause_pages_last = st.pause_pages_last;
	stats->pause_pages_max = st.pause_pages_max;
	stats->barrier_faults = st.barrier_faults;
	if (thread_uses_rseq())
		stats->flags |= GCHEAP_STATS_PERCPU;
	return gcheap_roots_stats(&stats->root_ranges, &stats->root_bytes);
}
