// SPDX-License-Identifier: GPL-2.0
/*
 * The lost-object race: the mutator hides the only reference to an object
 * from the collector by moving it while a cycle runs.
 *
 * A tri-color collector loses an object when the program loads the only
 * pointer to it from a place the collector has not scanned yet (an object
 * still grey or white), clears that place, and stores the pointer into a
 * place it has already scanned (a black object, a stack or register set it
 * took at the start of the cycle).  Nothing then leads marking to the
 * object, and the sweep frees it while it is reachable.  gcheap's concurrent
 * design answers with the MMU: heap pages are write-protected while marking
 * runs, the first write to a clean page records it dirty, and the final
 * pause rescans the roots and the dirty pages.  This test is the pattern
 * itself, as fast and in as many shapes as it can be made, on every CPU,
 * while collections follow each other without a break.
 *
 * Racers.  sysconf(_SC_NPROCESSORS_ONLN) + 1 threads (one pinned to each
 * CPU, the last one free to migrate) own a handful of objects each and
 * move them for ever.  Each object has exactly one reference at any time,
 * and each move takes it from one place to another:
 *
 *   (a) old: a slot of an old holder, a heap object allocated before the
 *       first cycle and reachable from a global;
 *   (b) fresh: a slot of a holder allocated by the move itself, during
 *       whatever cycle runs (allocated black by a concurrent collector),
 *       which is published in an old slot only after the object is in it;
 *   (c) stack: a slot of an array on the racer's stack;
 *   (d) nest: the pointer field of another of the racer's objects, which
 *       itself moves on, carrying it (chains of up to three).
 *
 * Every move holds the pointer, in between, only in (e) a register or a
 * volatile stack slot: one asm block loads it from the source, clears the
 * source, spins and may yield the CPU (sched_yield(), so the stop may
 * find the thread in a system call with the pointer in a register), and
 * stores it to the destination.  Half of the moves first write a scratch
 * word beside the destination slot, so the destination page is dirty
 * before the store; the other half store into a page that may be clean,
 * the store then being the page's first write.  A renewal replaces an
 * object by a fresh copy (allocated during the cycle) and moves its
 * nested object, register-held, from the old copy into the new.
 *
 * Canaries.  Each moved object carries a magic word at its start and at its
 * end (both mixed with its address), an id word (racer, index, length), and
 * a checksum over its payload, changed now and then by the racer.  It is
 * checked every time it is moved, and all of a racer's objects and holders
 * every few moves.  A collection that freed one (swept objects are zeroed
 * and handed out again, to the fresh holders and the garbage the racers
 * allocate) shows as a broken canary or a reference that is no longer
 * where the racer left it.  Checkmark mode is on (GCHEAP_CONFIG_CHECKMARK):
 * a reachable object the collection missed, which checkmark then keeps,
 * counts in checkmark_errors, which must stay 0.
 *
 * The main thread drives: it calls gcheap_collect() in a loop until the
 * heap has done the variant's number of cycles (a count; a time budget only
 * cuts a slow kernel short, never below RACE_MIN_CYCLES), checking
 * checkmark_errors and the racers' findings after each, then stops the
 * racers, collects once more while they still hold their objects, and has
 * them check everything again.
 *
 * Variants: small objects and holders; large ones (multi-page, above the
 * largest size class, the pointer fields on pages other than the first);
 * racers that also allocate garbage heavily, with pacing on (paced cycles,
 * allocation during marking, mark assists); per-thread slots instead of
 * per-CPU ones (GCHEAP_CONFIG_NO_RSEQ); and slow faults: heavy allocation
 * with the module's fault_delay_us set, so that every 16th barrier fault
 * sleeps between reading the barrier's epoch and recording its page, and
 * faults straddle the collector's rounds (checkmark mode's barrier audit
 * then fails a fault that records its page in an epoch already walked);
 * and throttled: heavy allocation with the module's pause_pages at 2, so
 * that while marking runs the racers wait for the marker at nearly every
 * barrier fault and refill, and the pauses find them waiting in the
 * module, counted as parked without being interrupted: a move whose store
 * faults then holds its pointer only in the registers the module saved
 * when the racer began to wait, and a racer in a refill goes on with it
 * during the pause.
 *
 * The racers' bookkeeping lives in malloc() memory, which the collector
 * does not scan, and holds object addresses only xor-ed with a mask, so
 * that it can never be the reference that keeps an object alive.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include <gcheap.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

#define KiB		1024ul
#define noinline	__attribute__((noinline))

/* Hides a pointer from a conservative scan: p ^ MASK is never canonical. */
#define MASK		0xa5c35a3cc35aa53cull

#define MAGIC_HEAD	0x4f424a4845414421ull
#define MAGIC_TAIL	0x4f424a5441494c21ull
#define MAGIC_HOLDER	0x484f4c4445522121ull

#define MAX_RACERS	64
#define MAX_OBJ		8	/* objects per racer */
#define NHOLD		3	/* old holders per racer */
#define NSLOT		8	/* slots per holder */
#define NSTACK		4	/* stack slots per racer */
#define CHECK_EVERY	16	/* moves between checks of everything */

/*
 * Each variant runs its number of cycles (FIXTURE_VARIANT.cycles), unless
 * they take longer than RACE_BUDGET_S seconds; then it stops early, but
 * never before RACE_MIN_CYCLES.  On 6.1 under TCG, 300 cycles take 5 to 15
 * seconds a variant; the budget keeps a slower kernel (debug) or
 * collector within the suite's time limit for a whole program (300 s).
 */
#define RACE_BUDGET_S	40
#define RACE_MIN_CYCLES	100

/* Per-test time limit, in seconds: the guest may be emulated (TCG). */
#define RACE_TIMEOUT	240

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t *unmask(uint64_t m)
{
	return (uint64_t *)(uintptr_t)(m ^ MASK);
}

static inline uint64_t mask(const void *p)
{
	return (uint64_t)(uintptr_t)p ^ MASK;
}

/* --- holding a pointer in a register or a stack slot only --- */

/*
 * The spin and the yields of a hold, shared by the asm blocks below:
 * @spin rounds of pause, then, while @yields is not 0, a sched_yield()
 * and @spin rounds again.  The system call clobbers rax, rcx and r11 only.
 */
#define HOLD_LOOP							\
	"1:\n\t"							\
	"mov %[spin], %%rcx\n\t"					\
	"jrcxz 3f\n"							\
	"2:\n\t"							\
	"pause\n\t"							\
	"loop 2b\n"							\
	"3:\n\t"							\
	"test %[yields], %[yields]\n\t"					\
	"jz 4f\n\t"							\
	"dec %[yields]\n\t"						\
	"mov %[nr], %%eax\n\t"						\
	"syscall\n\t"							\
	"jmp 1b\n"							\
	"4:\n\t"

/*
 * Move the pointer in *@src to *@dst through register @reg alone.
 *
 * The trick: a C local, even a `register` one with an asm("reg") name, is
 * only promised to be in that register where it is an asm operand; the
 * compiler may keep a copy in another register or spill one to the stack
 * anywhere else, and any such copy would be a root that keeps the object
 * alive and hides a collector bug.  So the whole move is one asm block:
 * the pointer is loaded into @reg (named in the clobbers, so the compiler
 * puts nothing of its own there), the source is cleared, the loop spins and
 * yields with the pointer nowhere but in @reg, the store puts it at the
 * destination, and @reg is cleared before the block ends.  During the loop
 * a collection can see the pointer only in the thread's saved user
 * registers: pt_regs of the interrupt that stopped it, or of the
 * sched_yield() system call it was in.
 */
#define DEFINE_HOLD(reg)							\
static noinline void hold_##reg(void **src, void **dst, unsigned long spin,	\
				unsigned long yields)				\
{										\
	__asm__ volatile(							\
		"mov (%[src]), %%" #reg "\n\t"					\
		"movq $0, (%[src])\n"						\
		HOLD_LOOP							\
		"mov %%" #reg ", (%[dst])\n\t"					\
		"xor %%" #reg ", %%" #reg "\n\t"				\
		: [yields] "+r"(yields)						\
		: [src] "r"(src), [dst] "r"(dst), [spin] "r"(spin),		\
		  [nr] "i"(SYS_sched_yield)					\
		: #reg, "rax", "rcx", "r11", "memory", "cc");			\
}

DEFINE_HOLD(rbx)
DEFINE_HOLD(r12)
DEFINE_HOLD(r13)
DEFINE_HOLD(r14)
DEFINE_HOLD(r15)
DEFINE_HOLD(rsi)
DEFINE_HOLD(r8)
DEFINE_HOLD(r10)

/*
 * The same through a volatile slot in this function's stack frame: the
 * pointer passes through rax, which is cleared at once, and waits only in
 * the slot (rax is also overwritten by each system call).  The function
 * makes no call, so the compiler may leave the slot in the red zone below
 * the stack pointer (at -O2 it does), which the collector scans as well.
 */
static noinline void hold_stack(void **src, void **dst, unsigned long spin,
				unsigned long yields)
{
	void *volatile slot = NULL;

	__asm__ volatile(
		"mov (%[src]), %%rax\n\t"
		"mov %%rax, %[slot]\n\t"
		"xor %%eax, %%eax\n\t"
		"movq $0, (%[src])\n"
		HOLD_LOOP
		"mov %[slot], %%rax\n\t"
		"mov %%rax, (%[dst])\n\t"
		"movq $0, %[slot]\n\t"
		"xor %%eax, %%eax\n\t"
		: [yields] "+r"(yields), [slot] "+m"(slot)
		: [src] "r"(src), [dst] "r"(dst), [spin] "r"(spin),
		  [nr] "i"(SYS_sched_yield)
		: "rax", "rcx", "r11", "memory", "cc");
}

typedef void (*hold_fn)(void **src, void **dst, unsigned long spin, unsigned long yields);

static const hold_fn holds[] = {
	hold_rbx, hold_r12, hold_r13, hold_r14, hold_r15, hold_rsi, hold_r8, hold_r10,
	hold_stack,
};

#define NHOLDS		ARRAY_SIZE(holds)

static const char *const hold_name[NHOLDS] = {
	"rbx", "r12", "r13", "r14", "r15", "rsi", "r8", "r10", "stack",
};

/* Spins of a hold: none, short, long. */
static const unsigned long hold_spins[] = { 0, 0, 16, 256, 4096 };

/* --- moved objects --- */

/*
 * A moved object, in 64-bit words: MAGIC_HEAD ^ its address, its id (racer,
 * index, length in words), the checksum of its payload, the index of its
 * pointer field, then the payload up to the last word, MAGIC_TAIL ^ its
 * address ^ its id.  The pointer field (the nested object, or 0) lies at
 * three quarters of the object -- on a later page than the start in a
 * large one -- and the word after it is scratch, written to dirty the
 * page; neither counts in the payload.
 */
enum { M_HEAD, M_ID, M_SUM, M_NEXT, M_PAY };

static size_t next_word(size_t nwords)
{
	size_t w = ((nwords - 2) * 3 / 4) & ~(size_t)1;

	return w < M_PAY ? M_PAY : w;
}

static bool in_payload(size_t i, size_t nwords, size_t next_w)
{
	return i >= M_PAY && i < nwords - 1 && i != next_w && i != next_w + 1;
}

static uint64_t payload_sum(const uint64_t *w, size_t nwords, size_t next_w)
{
	uint64_t sum = 0;
	size_t i;

	for (i = M_PAY; i < nwords - 1; i++)
		if (in_payload(i, nwords, next_w))
			sum += w[i] * (2 * i + 1);
	return sum;
}

/* NULL when the object at @w is whole, else what is broken. */
static const char *mobj_check(const uint64_t *w, uint64_t id, size_t nwords, size_t next_w)
{
	/* First the page map, so a freed and returned page is not read. */
	if (gcheap_size(w) < nwords * 8)
		return "no longer an allocated object's start";
	if (w[M_HEAD] != (MAGIC_HEAD ^ (uintptr_t)w))
		return "head canary broken";
	if (w[M_ID] != id)
		return "id broken";
	if (w[M_NEXT] != next_w)
		return "layout word broken";
	if (w[nwords - 1] != (MAGIC_TAIL ^ (uintptr_t)w ^ id))
		return "tail canary broken";
	if (w[M_SUM] != payload_sum(w, nwords, next_w))
		return "payload checksum broken";
	return NULL;
}

/* --- holders --- */

/*
 * A holder, in words: MAGIC_HOLDER ^ its address, its id, NSLOT slots
 * spread over its length (over all of its pages when it is large), each
 * paired with a scratch word in the same 16 bytes (so on the same page),
 * and MAGIC_HOLDER ^ its address ^ its id at the end.
 */
enum { H_HEAD, H_ID };

static size_t slot_word(size_t nwords, int j)
{
	size_t pairs = (nwords - 3) / 2, k = (pairs - 1) * (size_t)j / (NSLOT - 1);

	return 2 + 2 * k + (j & 1);
}

static void **slot_of(uint64_t *h, size_t nwords, int j)
{
	return (void **)&h[slot_word(nwords, j)];
}

static const char *holder_check(const uint64_t *h, uint64_t id, size_t nwords)
{
	if (gcheap_size(h) < nwords * 8)
		return "holder no longer an allocated object's start";
	if (h[H_HEAD] != (MAGIC_HOLDER ^ (uintptr_t)h))
		return "holder head canary broken";
	if (h[H_ID] != id)
		return "holder id broken";
	if (h[nwords - 1] != (MAGIC_HOLDER ^ (uintptr_t)h ^ id))
		return "holder tail canary broken";
	return NULL;
}

static uint64_t *holder_new(size_t nwords, uint64_t id)
{
	uint64_t *h = gcheap_alloc(nwords * 8);

	if (!h)
		return NULL;
	h[H_HEAD] = MAGIC_HOLDER ^ (uintptr_t)h;
	h[H_ID] = id;
	h[nwords - 1] = MAGIC_HOLDER ^ (uintptr_t)h ^ id;
	return h;
}

/* --- racers --- */

FIXTURE(race) {
	bool delayed;			/* fault_delay_us to be put back to 0 */
	long pause_pages;		/* pause_pages to put back, or 0 */
};

FIXTURE_VARIANT(race) {
	size_t obj_min, obj_max;	/* bytes of a moved object */
	size_t hold_min, hold_max;	/* bytes of a holder */
	int nobj;			/* objects per racer */
	size_t garbage;			/* bytes of garbage allocated per move */
	int gogc;			/* pacing */
	bool no_rseq;			/* per-thread slots */
	unsigned int fault_delay_us;	/* the module's fault_delay_us */
	unsigned int pause_pages;	/* the module's pause_pages, if not 0 */
	unsigned int cycles;		/* collections to run */
};

enum { LOC_OLD, LOC_FRESH, LOC_STACK, LOC_NEST, NLOC };

static const char *const loc_name[NLOC] = { "old", "fresh", "stack", "nest" };

/*
 * Where an object's one reference is: old holder @a's slot @b; a fresh
 * holder in old holder @a's slot @b, in its slot @c; stack slot @a; the
 * pointer field of object @a.
 */
struct loc {
	int kind, a, b, c;
};

struct mstate {
	uint64_t maddr;		/* its address ^ MASK */
	uint64_t id;
	size_t nwords, next_w;
	struct loc at;
	uint64_t fresh;		/* LOC_FRESH: the holder's address ^ MASK, */
	uint64_t fresh_id;	/* its id */
	size_t fresh_words;	/* and its length */
	int child;		/* the object nested in it, or -1 */
	char last[96];		/* how it got where it is */
};

/* A racer's state, in malloc() memory: never scanned. */
struct racer {
	int id, cpu;
	const FIXTURE_VARIANT(race) *v;
	int *stop;
	pthread_barrier_t *barrier;
	uint32_t seed;
	int nobj;
	void **stk;			/* its stack slots */
	size_t hold_words[NHOLD];
	uint64_t hold_id[NHOLD];
	int occ[NHOLD][NSLOT];		/* the object an old slot leads to, or -1 */
	int stk_occ[NSTACK];
	struct mstate m[MAX_OBJ];
	uint64_t fresh_seq;
	/* What it did. */
	long moves, renews, checks, yields, dirty, fresh_holders;
	long to[NLOC], via[NHOLDS];
	size_t garbage;
	/* What went wrong. */
	int bad;
	char why[512];
};

/* The old holders: the globals are roots. */
static uint64_t *g_hold[MAX_RACERS][NHOLD];

static __attribute__((format(printf, 2, 3))) void fail(struct racer *r, const char *fmt, ...)
{
	struct gcheap_stats st;
	va_list ap;
	int n;

	if (r->bad)
		return;
	n = snprintf(r->why, sizeof(r->why), "racer %d, move %ld: ", r->id, r->moves);
	va_start(ap, fmt);
	n += vsnprintf(r->why + n, sizeof(r->why) - n, fmt, ap);
	va_end(ap);
	if (!gcheap_stats(&st))
		snprintf(r->why + n, sizeof(r->why) - n, " (cycle %llu)",
			 (unsigned long long)st.gc_cycles);
	__atomic_store_n(&r->bad, 1, __ATOMIC_RELEASE);
}

static size_t rnd_words(struct racer *r, size_t min, size_t max)
{
	size_t bytes = min + rnd(&r->seed) % (max - min + 1);

	return ((bytes + 15) & ~(size_t)15) / 8;
}

static uint64_t holder_id(struct racer *r, uint64_t n, size_t nwords)
{
	return (uint64_t)r->id << 48 | n << 24 | nwords;
}

/* Where object @o's one reference is. */
static void **where(struct racer *r, int o)
{
	const struct mstate *m = &r->m[o];

	switch (m->at.kind) {
	case LOC_OLD:
		return slot_of(g_hold[r->id][m->at.a], r->hold_words[m->at.a], m->at.b);
	case LOC_FRESH:
		return slot_of(unmask(m->fresh), m->fresh_words, m->at.c);
	case LOC_STACK:
		return &r->stk[m->at.a];
	default:
		return (void **)(unmask(r->m[m->at.a].maddr) + r->m[m->at.a].next_w);
	}
}

static const char *describe(struct racer *r, int o)
{
	static __thread char buf[256];
	const struct mstate *m = &r->m[o];

	snprintf(buf, sizeof(buf), "object %d (%zu bytes at %p) in %s slot %d/%d/%d, %s", o,
		 m->nwords * 8, (void *)unmask(m->maddr), loc_name[m->at.kind], m->at.a, m->at.b,
		 m->at.c, m->last);
	return buf;
}

/*
 * What holds object @o's reference, checked before the reference is read
 * through it (a page the collector freed and returned would not be
 * readable): NULL when whole, else what is broken.
 */
static const char *container_check(struct racer *r, const struct mstate *m)
{
	const struct mstate *p;
	const char *why;
	void *f;

	switch (m->at.kind) {
	case LOC_OLD:
	case LOC_FRESH:
		why = holder_check(g_hold[r->id][m->at.a], r->hold_id[m->at.a],
				   r->hold_words[m->at.a]);
		if (why || m->at.kind == LOC_OLD)
			return why;
		f = *(void *volatile *)slot_of(g_hold[r->id][m->at.a], r->hold_words[m->at.a],
					       m->at.b);
		if (f != unmask(m->fresh))
			return "the old slot no longer holds its fresh holder";
		return holder_check(f, m->fresh_id, m->fresh_words);
	case LOC_NEST:
		p = &r->m[m->at.a];
		if (mobj_check(unmask(p->maddr), p->id, p->nwords, p->next_w))
			return "the object it is nested in is broken";
		return NULL;
	default:
		return NULL;
	}
}

/* Object @o, its reference and what holds the reference: 0 when whole. */
static noinline int check_obj(struct racer *r, int o, const char *when)
{
	const struct mstate *m = &r->m[o];
	uint64_t *want = unmask(m->maddr);
	const char *why;

	r->checks++;
	why = container_check(r, m);
	if (!why && *(void *volatile *)where(r, o) != want)
		why = "its reference is gone";
	if (!why)
		why = mobj_check(want, m->id, m->nwords, m->next_w);
	if (!why && m->child < 0 && ((void *volatile *)want)[m->next_w])
		why = "a pointer field that should be empty is not";
	if (why) {
		fail(r, "%s: %s: %s", when, describe(r, o), why);
		return -1;
	}
	return 0;
}

static noinline int check_all(struct racer *r, const char *when)
{
	int h, o;

	for (h = 0; h < NHOLD; h++) {
		uint64_t *p = g_hold[r->id][h];
		const char *why = holder_check(p, r->hold_id[h], r->hold_words[h]);

		if (why) {
			fail(r, "%s: old holder %d: %s", when, h, why);
			return -1;
		}
	}
	for (o = 0; o < r->nobj; o++)
		if (check_obj(r, o, when))
			return -1;
	return 0;
}

/* Change a payload word of object @o, and its checksum. */
static void touch(struct racer *r, int o)
{
	const struct mstate *m = &r->m[o];
	uint64_t *w = unmask(m->maddr), v;
	size_t i = M_PAY + rnd(&r->seed) % (m->nwords - 1 - M_PAY);

	if (!in_payload(i, m->nwords, m->next_w))
		return;
	v = mix(((uint64_t)r->seed << 32) ^ i);
	w[M_SUM] += (v - w[i]) * (2 * i + 1);
	w[i] = v;
}

static uint64_t *mobj_alloc(size_t nwords, uint64_t id, uint64_t salt)
{
	size_t next_w = next_word(nwords), i;
	uint64_t *w = gcheap_alloc(nwords * 8);

	if (!w)
		return NULL;
	w[M_HEAD] = MAGIC_HEAD ^ (uintptr_t)w;
	w[M_ID] = id;
	w[M_NEXT] = next_w;
	for (i = M_PAY; i < nwords - 1; i++)
		if (in_payload(i, nwords, next_w))
			w[i] = mix(salt ^ (i << 40));
	w[M_SUM] = payload_sum(w, nwords, next_w);
	w[nwords - 1] = MAGIC_TAIL ^ (uintptr_t)w ^ id;
	return w;
}

/* A free old slot: 0, or -1 when there is none. */
static int free_old(struct racer *r, struct loc *to)
{
	int i, k = rnd(&r->seed) % (NHOLD * NSLOT);

	for (i = 0; i < NHOLD * NSLOT; i++, k = (k + 1) % (NHOLD * NSLOT))
		if (r->occ[k / NSLOT][k % NSLOT] < 0) {
			to->a = k / NSLOT;
			to->b = k % NSLOT;
			return 0;
		}
	return -1;
}

/*
 * Where object @o goes next.  The nest must be an object of the racer's
 * own that is not nested itself, and so not inside @o: no cycle forms.
 */
static void pick(struct racer *r, int o, struct loc *to)
{
	static const int weights[NLOC] = { 3, 2, 2, 2 };
	int w = rnd(&r->seed) % 9, i, k;

	memset(to, 0, sizeof(*to));
	for (to->kind = 0; w >= weights[to->kind]; to->kind++)
		w -= weights[to->kind];
	switch (to->kind) {
	case LOC_STACK:
		k = rnd(&r->seed) % NSTACK;
		for (i = 0; i < NSTACK; i++, k = (k + 1) % NSTACK)
			if (r->stk_occ[k] < 0) {
				to->a = k;
				return;
			}
		break;
	case LOC_NEST:
		k = rnd(&r->seed) % r->nobj;
		for (i = 0; i < r->nobj; i++, k = (k + 1) % r->nobj)
			if (k != o && r->m[k].at.kind != LOC_NEST && r->m[k].child < 0) {
				to->a = k;
				return;
			}
		break;
	case LOC_FRESH:
		to->c = rnd(&r->seed) % NSLOT;
		if (!free_old(r, to))
			return;
		break;
	}
	to->kind = LOC_OLD;
	free_old(r, to);	/* There are more old slots than objects. */
}

/* The scratch word beside slot @p (in the same 16 bytes). */
static void dirty(void **p, uint64_t v)
{
	*(volatile uint64_t *)((uintptr_t)p ^ 8) = v;
}

static void leave(struct racer *r, const struct loc *at)
{
	switch (at->kind) {
	case LOC_OLD:
	case LOC_FRESH:
		r->occ[at->a][at->b] = -1;
		break;
	case LOC_STACK:
		r->stk_occ[at->a] = -1;
		break;
	case LOC_NEST:
		r->m[at->a].child = -1;
		break;
	}
}

static void enter(struct racer *r, int o, const struct loc *at)
{
	switch (at->kind) {
	case LOC_OLD:
	case LOC_FRESH:
		r->occ[at->a][at->b] = o;
		break;
	case LOC_STACK:
		r->stk_occ[at->a] = o;
		break;
	case LOC_NEST:
		r->m[at->a].child = o;
		break;
	}
}

/* Move object @o's one reference somewhere else. */
static noinline void move(struct racer *r, int o)
{
	struct mstate *m = &r->m[o];
	struct loc from = m->at, to;
	uint64_t *fresh = NULL, *old_fresh = NULL, fresh_id = 0, old_fresh_id = 0;
	size_t fresh_words = 0, old_fresh_words = 0;
	unsigned long spin, yields;
	void **src, **dst;
	bool dirtied;
	int hk;

	if (check_obj(r, o, "before a move"))
		return;
	pick(r, o, &to);
	hk = rnd(&r->seed) % NHOLDS;
	spin = hold_spins[rnd(&r->seed) % ARRAY_SIZE(hold_spins)];
	yields = rnd(&r->seed) % 8 ? 0 : 1 + rnd(&r->seed) % 2;
	if (rnd(&r->seed) & 1)
		touch(r, o);
	src = where(r, o);
	switch (to.kind) {
	case LOC_OLD:
		dst = slot_of(g_hold[r->id][to.a], r->hold_words[to.a], to.b);
		break;
	case LOC_FRESH:
		fresh_words = rnd_words(r, r->v->hold_min, r->v->hold_max);
		fresh_id = holder_id(r, NHOLD + ++r->fresh_seq % 1000000, fresh_words);
		fresh = holder_new(fresh_words, fresh_id);
		if (!fresh) {
			fail(r, "a fresh holder of %zu bytes: no memory", fresh_words * 8);
			return;
		}
		r->fresh_holders++;
		dst = slot_of(fresh, fresh_words, to.c);
		break;
	case LOC_STACK:
		dst = &r->stk[to.a];
		break;
	default:
		dst = (void **)(unmask(r->m[to.a].maddr) + r->m[to.a].next_w);
		break;
	}
	dirtied = to.kind != LOC_STACK && (rnd(&r->seed) & 1);
	if (dirtied) {
		dirty(dst, r->moves);
		r->dirty++;
	}
	if (from.kind == LOC_FRESH) {
		old_fresh = unmask(m->fresh);
		old_fresh_id = m->fresh_id;
		old_fresh_words = m->fresh_words;
	}

	holds[hk](src, dst, spin, yields);

	if (fresh) {
		/* Published only now that the object is in it. */
		*(void *volatile *)slot_of(g_hold[r->id][to.a], r->hold_words[to.a], to.b) = fresh;
		m->fresh = mask(fresh);
		m->fresh_id = fresh_id;
		m->fresh_words = fresh_words;
	}
	if (old_fresh) {
		/* The fresh holder it left becomes garbage. */
		void **slot = slot_of(g_hold[r->id][from.a], r->hold_words[from.a], from.b);
		const char *why = *slot != old_fresh ? "the old slot lost it" :
				  holder_check(old_fresh, old_fresh_id, old_fresh_words);

		if (why) {
			fail(r, "fresh holder %p left by %s: %s", (void *)old_fresh,
			     describe(r, o), why);
			return;
		}
		*(void *volatile *)slot = NULL;
	}
	leave(r, &from);
	enter(r, o, &to);
	m->at = to;
	snprintf(m->last, sizeof(m->last), "moved from %s via %s, %lu spins, %lu yields, %s page",
		 loc_name[from.kind], hold_name[hk], spin, yields,
		 to.kind == LOC_STACK ? "stack" : dirtied ? "dirtied" : "unwritten");
	r->moves++;
	r->to[to.kind]++;
	r->via[hk]++;
	r->yields += yields;
	check_obj(r, o, "after a move");
}

/*
 * Replace object @o by a copy allocated now, at the same place; its
 * nested object moves from the old copy to the new one in a register.
 */
static noinline void renew(struct racer *r, int o)
{
	struct mstate *m = &r->m[o];
	uint64_t *old = unmask(m->maddr), *n;
	size_t i;

	if (check_obj(r, o, "before a renewal"))
		return;
	n = gcheap_alloc(m->nwords * 8);
	if (!n) {
		fail(r, "a copy of %s: no memory", describe(r, o));
		return;
	}
	for (i = 1; i < m->nwords - 1; i++)
		if (i != m->next_w)
			n[i] = old[i];
	n[M_HEAD] = MAGIC_HEAD ^ (uintptr_t)n;
	n[m->nwords - 1] = MAGIC_TAIL ^ (uintptr_t)n ^ m->id;
	if (m->child >= 0) {
		unsigned long spin = hold_spins[rnd(&r->seed) % ARRAY_SIZE(hold_spins)];

		holds[rnd(&r->seed) % NHOLDS]((void **)&old[m->next_w], (void **)&n[m->next_w],
					      spin, 0);
	}
	*(void *volatile *)where(r, o) = n;
	m->maddr = mask(n);
	snprintf(m->last, sizeof(m->last), "renewed in %s", loc_name[m->at.kind]);
	r->renews++;
	if (!check_obj(r, o, "after a renewal") && m->child >= 0)
		check_obj(r, m->child, "after its parent's renewal");
}

/* Unreachable objects: small ones, now and then a large one. */
static noinline void garbage(struct racer *r, size_t bytes)
{
	size_t done = 0;

	while (done < bytes) {
		uint32_t x = rnd(&r->seed);
		size_t size = x % 64 ? 16 + x % 4096 : 40 * KiB + x % (120 * KiB);
		uint64_t *p = gcheap_alloc(size);

		if (!p) {
			fail(r, "garbage of %zu bytes: no memory", size);
			return;
		}
		p[0] = 0xeeeeeeeeeeeeeeeeull;
		p[size / 8 - 1] = 0xeeeeeeeeeeeeeeeeull;
		done += size;
	}
	r->garbage += done;
}

static noinline int racer_setup(struct racer *r)
{
	int h, s, o;

	for (h = 0; h < NHOLD; h++) {
		r->hold_words[h] = rnd_words(r, r->v->hold_min, r->v->hold_max);
		r->hold_id[h] = holder_id(r, h, r->hold_words[h]);
		g_hold[r->id][h] = holder_new(r->hold_words[h], r->hold_id[h]);
		if (!g_hold[r->id][h])
			return -1;
		for (s = 0; s < NSLOT; s++)
			r->occ[h][s] = -1;
	}
	for (s = 0; s < NSTACK; s++)
		r->stk_occ[s] = -1;
	for (o = 0; o < r->nobj; o++) {
		struct mstate *m = &r->m[o];
		uint64_t *w;

		m->nwords = rnd_words(r, r->v->obj_min, r->v->obj_max);
		m->next_w = next_word(m->nwords);
		m->id = (uint64_t)r->id << 48 | (uint64_t)o << 32 | m->nwords;
		m->child = -1;
		m->at = (struct loc){ .kind = LOC_OLD, .a = o % NHOLD, .b = o / NHOLD };
		w = mobj_alloc(m->nwords, m->id, m->id);
		if (!w)
			return -1;
		*where(r, o) = w;
		m->maddr = mask(w);
		enter(r, o, &m->at);
		snprintf(m->last, sizeof(m->last), "placed there first");
	}
	return 0;
}

static noinline void race(struct racer *r)
{
	unsigned long n;

	for (n = 1; !__atomic_load_n(r->stop, __ATOMIC_ACQUIRE) && !r->bad; n++) {
		int o = rnd(&r->seed) % r->nobj;

		if (rnd(&r->seed) % 16)
			move(r, o);
		else
			renew(r, o);
		if (r->v->garbage)
			garbage(r, r->v->garbage);
		if (!(n % CHECK_EVERY))
			check_all(r, "checking everything");
	}
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	void *volatile stk[NSTACK] = { NULL };

	r->stk = (void **)stk;
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			fail(r, "sched_setaffinity(%d): %s", r->cpu, strerror(errno));
	}
	if (!r->bad && racer_setup(r))
		fail(r, "set-up: no memory");
	pthread_barrier_wait(r->barrier);		/* set up */
	if (!r->bad)
		race(r);
	if (!r->bad)
		check_all(r, "when stopped");
	pthread_barrier_wait(r->barrier);		/* stopped */
	pthread_barrier_wait(r->barrier);		/* collected */
	if (!r->bad)
		check_all(r, "after the last collection");
	return NULL;
}

/* --- the test --- */

FIXTURE_VARIANT_ADD(race, small) {
	.obj_min = 64, .obj_max = 1024,
	.hold_min = 160, .hold_max = 2048,
	.nobj = 8,
	.gogc = GCHEAP_GOGC_OFF,
	.cycles = 300,
};

FIXTURE_VARIANT_ADD(race, large) {
	.obj_min = 33 * KiB, .obj_max = 72 * KiB,
	.hold_min = 36 * KiB, .hold_max = 64 * KiB,
	.nobj = 6,
	.gogc = GCHEAP_GOGC_OFF,
	.cycles = 300,
};

FIXTURE_VARIANT_ADD(race, allocating) {
	.obj_min = 64, .obj_max = 48 * KiB,
	.hold_min = 160, .hold_max = 40 * KiB,
	.nobj = 8,
	.garbage = 16 * KiB,
	.gogc = 50,
	.cycles = 300,
};

FIXTURE_VARIANT_ADD(race, perthread) {
	.obj_min = 64, .obj_max = 4096,
	.hold_min = 160, .hold_max = 8192,
	.nobj = 8,
	.no_rseq = true,
	.gogc = GCHEAP_GOGC_OFF,
	.cycles = 300,
};

FIXTURE_VARIANT_ADD(race, slow_faults) {
	.obj_min = 64, .obj_max = 8 * KiB,
	.hold_min = 160, .hold_max = 8 * KiB,
	.nobj = 8,
	.garbage = 16 * KiB,
	.gogc = 50,
	.fault_delay_us = 3000,
	.cycles = 200,
};

FIXTURE_VARIANT_ADD(race, throttled) {
	.obj_min = 64, .obj_max = 8 * KiB,
	.hold_min = 160, .hold_max = 8 * KiB,
	.nobj = 8,
	.garbage = 16 * KiB,
	.gogc = 50,
	.pause_pages = 2,
	.cycles = 200,
};

FIXTURE_SETUP(race)
{
	struct gcheap_config cfg = {
		.heap_bytes = 512ull << 20,
		.flags = GCHEAP_CONFIG_CHECKMARK | GCHEAP_CONFIG_GOGC,
		.gogc = variant->gogc,
	};
	struct gcheap_device_info info;
	struct gcheap_stats st;
	int ret = gcheap_device_info(&info);

	if (ret == -ENOENT)
		SKIP(return, "no /dev/gcheap: the module is not loaded");
	ASSERT_EQ(0, ret);
	ASSERT_TRUE(info.ioctls & (1ull << _IOC_NR(GCHEAP_IOC_GC)));
	if (variant->no_rseq)
		cfg.flags |= GCHEAP_CONFIG_NO_RSEQ;
	unsetenv("GCHEAP_GOGC");
	unsetenv("GCHEAP_MEMLIMIT");
	if (variant->fault_delay_us) {
		char v[16];

		snprintf(v, sizeof(v), "%u", variant->fault_delay_us);
		ASSERT_EQ(0, param_set("fault_delay_us", v));
		self->delayed = true;
	}
	if (variant->pause_pages) {
		char v[16];

		self->pause_pages = read_number("/sys/module/gcheap/parameters",
						"pause_pages");
		ASSERT_LT(0, self->pause_pages);
		snprintf(v, sizeof(v), "%u", variant->pause_pages);
		ASSERT_EQ(0, param_set("pause_pages", v));
	}
	ASSERT_EQ(0, gcheap_init(&cfg));
	ASSERT_EQ(0, gcheap_stats(&st));
	ASSERT_EQ(1, st.threads);
	if (variant->no_rseq)
		ASSERT_EQ(0, st.flags & GCHEAP_STATS_PERCPU);
}

FIXTURE_TEARDOWN(race)
{
	if (self->delayed)
		EXPECT_EQ(0, param_set("fault_delay_us", "0"));
	if (self->pause_pages > 0) {
		char v[24];

		snprintf(v, sizeof(v), "%ld", self->pause_pages);
		EXPECT_EQ(0, param_set("pause_pages", v));
	}
}

#define STATS(s)	ASSERT_EQ(0, gcheap_stats(&(s)))

static void racers_report(struct __test_metadata *_metadata, struct racer *r, int n,
			  uint64_t cycles, uint64_t ns)
{
	long to[NLOC] = { 0 }, via[NHOLDS] = { 0 }, moves = 0, renews = 0, yields = 0;
	long dirty = 0, fresh = 0, checks = 0;
	size_t garbage = 0;
	unsigned int k;
	int i;

	for (i = 0; i < n; i++) {
		moves += r[i].moves;
		renews += r[i].renews;
		yields += r[i].yields;
		dirty += r[i].dirty;
		fresh += r[i].fresh_holders;
		checks += r[i].checks;
		garbage += r[i].garbage;
		for (k = 0; k < NLOC; k++)
			to[k] += r[i].to[k];
		for (k = 0; k < NHOLDS; k++)
			via[k] += r[i].via[k];
	}
	TH_LOG("%llu cycles in %llu ms; %d racers: %ld moves (%ld into dirtied pages), "
	       "%ld renewals, %ld fresh holders, %ld yields, %zu KiB garbage",
	       (unsigned long long)cycles, (unsigned long long)(ns / 1000000), n, moves,
	       dirty, renews, fresh, yields, garbage / KiB);
	TH_LOG("moves to old %ld, fresh %ld, stack %ld, nest %ld; %ld object checks",
	       to[LOC_OLD], to[LOC_FRESH], to[LOC_STACK], to[LOC_NEST], checks);
	/* (The harness's checks need braces in a loop: their message is a
	 * statement of its own.)
	 */
	for (k = 0; k < NLOC; k++) {
		EXPECT_LT(0, to[k]) TH_LOG("no move to %s", loc_name[k]);
	}
	for (k = 0; k < NHOLDS; k++) {
		EXPECT_LT(0, via[k]) TH_LOG("no move via %s", hold_name[k]);
	}
	EXPECT_LT(0, renews);
	EXPECT_LT(0, dirty);
	EXPECT_LT(dirty, moves);
	/* The racers ran between and during the cycles, not just once. */
	EXPECT_LE((long)cycles, moves);
}

TEST_F_TIMEOUT(race, lost_object, RACE_TIMEOUT)
{
	int n = (int)sysconf(_SC_NPROCESSORS_ONLN) + 1, i, k, stop = 0, ncpu = 0;
	struct gcheap_stats s0, st;
	pthread_barrier_t barrier;
	uint64_t t0, target, least;
	pthread_t t[MAX_RACERS];
	struct racer *r;
	cpu_set_t set;
	int cpus[CPU_SETSIZE];

	if (n > MAX_RACERS)
		n = MAX_RACERS;
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(set), &set));
	for (i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpu++] = i;
	ASSERT_LT(0, ncpu);
	r = calloc(n, sizeof(*r));
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, pthread_barrier_init(&barrier, NULL, n + 1));
	for (i = 0; i < n; i++) {
		r[i] = (struct racer){
			.id = i,
			/* One per CPU, the last one free to migrate. */
			.cpu = i < n - 1 ? cpus[i % ncpu] : -1,
			.v = variant,
			.stop = &stop,
			.barrier = &barrier,
			.seed = 0x1234567u * (i + 1),
			.nobj = variant->nobj,
		};
		ASSERT_EQ(0, pthread_create(&t[i], NULL, racer_main, &r[i]));
	}
	pthread_barrier_wait(&barrier);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, r[i].bad) TH_LOG("%s", r[i].why);
	}
	STATS(s0);
	EXPECT_EQ(n + 1, s0.threads);

	/* Collections back to back until the count is reached. */
	t0 = now_ns();
	target = s0.gc_cycles + variant->cycles;
	least = s0.gc_cycles + RACE_MIN_CYCLES;
	do {
		ASSERT_EQ(0, gcheap_collect());
		STATS(st);
		ASSERT_EQ(0, st.checkmark_errors) TH_LOG("after %llu cycles",
							 (unsigned long long)st.gc_cycles);
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, __atomic_load_n(&r[i].bad, __ATOMIC_ACQUIRE))
				TH_LOG("%s", r[i].why);
		}
	} while (st.gc_cycles < target &&
		 (st.gc_cycles < least || now_ns() - t0 < RACE_BUDGET_S * 1000000000ull));
	if (st.gc_cycles < target)
		TH_LOG("time budget spent after %llu of %u cycles",
		       (unsigned long long)(st.gc_cycles - s0.gc_cycles), variant->cycles);

	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&barrier);		/* stopped and checked */
	ASSERT_EQ(0, gcheap_collect());
	pthread_barrier_wait(&barrier);		/* collected */
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	}
	/*
	 * The racers' renewals left garbage, but a short run may leave all
	 * of it in per-thread slots, which only their thread settles: the
	 * racers released them when they exited, so this collection frees
	 * it whatever the run's length.
	 */
	ASSERT_EQ(0, gcheap_collect());
	STATS(st);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, r[i].bad) TH_LOG("%s", r[i].why);
	}
	EXPECT_EQ(0, st.checkmark_errors);
	EXPECT_EQ(0, st.stop_aborts);
	EXPECT_LE(least + 1, st.gc_cycles);
	EXPECT_LT(0, st.freed_bytes);
	racers_report(_metadata, r, n, st.gc_cycles - s0.gc_cycles, now_ns() - t0);
	for (i = 0; i < n; i++)
		for (k = 0; k < NLOC; k++)
			if (!r[i].to[k])
				TH_LOG("racer %d made no move to %s", i, loc_name[k]);
	pthread_barrier_destroy(&barrier);
	free(r);
}

TEST_HARNESS_MAIN
