// SPDX-License-Identifier: MIT
/*
 * libgcheap threads: registration, per-thread state, and what a thread
 * gives back when it goes.
 *
 * The collector will need every thread's stack (and, in a stop-the-world
 * pause, its registers), so threads are registered with their stack bounds:
 * automatically for threads from pthread_create() (interpose.c wraps it in
 * the shared library, wrap.c offers -Wl,--wrap=pthread_create for static
 * links), by the main thread at set-up, explicitly otherwise.
 *
 * A thread also owns state the allocator needs: per-thread slots where rseq
 * is not available, and a batch of explicit frees.  That state is created
 * on first use by any thread, registered or not, and a pthread key's
 * destructor gives it back when the thread exits: the spans in its slots
 * return to the module and its pending frees are carried out.
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

static __thread struct gcheap_thread *self;

static void thread_exit(void *arg)
{
	struct gcheap_thread *t = arg;

	gcheap_thread_release(t);
	self = NULL;
}

void gcheap_threads_init(void)
{
	/* Once per process: a fork() child sets up again with the same key. */
	if (!gcheap_g.key_done) {
		pthread_key_create(&gcheap_g.thread_key, thread_exit);
		gcheap_g.key_done = true;
	}
}

static void stack_bounds(struct gcheap_thread *t)
{
	pthread_attr_t attr;
	size_t size;
	void *lo;

	if (pthread_getattr_np(pthread_self(), &attr))
		return;
	if (!pthread_attr_getstack(&attr, &lo, &size)) {
		t->stack_lo = (uintptr_t)lo;
		t->stack_hi = (uintptr_t)lo + size;
	}
	pthread_attr_destroy(&attr);
}

/* The calling thread's state, created if @create and the heap is set up. */
struct gcheap_thread *gcheap_thread_self(bool create)
{
	struct gcheap_thread *t = self;
	size_t bytes;

	if (t || !create || gcheap_ensure())
		return t;
	bytes = sizeof(*t) + gcheap_g.nr_sc * sizeof(struct gcheap_slot);
	/* mmap, not malloc: malloc may itself be built on this heap. */
	t = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	t->tid = (pid_t)syscall(SYS_gettid);
	t->slots = (struct gcheap_slot *)(t + 1);
	self = t;
	pthread_setspecific(gcheap_g.thread_key, t);
	return t;
}

void gcheap_flush_frees(struct gcheap_thread *t)
{
	struct gcheap_cache_op ops[GCHEAP_FREE_BATCH];
	unsigned int i;

	if (!t->nfree)
		return;
	memset(ops, 0, sizeof(ops));
	for (i = 0; i < t->nfree; i++) {
		ops[i].op = GCHEAP_OP_FREE;
		ops[i].arg = t->frees[i];
	}
	/* A free the module refuses (not an object) is ignored, as documented. */
	gcheap_prim_cache(gcheap_g.fd, ops, t->nfree);
	t->nfree = 0;
}

static void release_slots(struct gcheap_thread *t)
{
	struct gcheap_cache_op ops[GCHEAP_CACHE_OPS_MAX];
	unsigned int sc, n = 0;

	for (sc = 0; sc < gcheap_g.nr_sc; sc++) {
		if (!t->slots[sc].base)
			continue;
		memset(&ops[n], 0, sizeof(ops[n]));
		ops[n].op = GCHEAP_OP_RELEASE_THREAD;
		ops[n].cls = sc;
		ops[n].arg = (uintptr_t)&t->slots[sc];
		if (++n == GCHEAP_CACHE_OPS_MAX) {
			gcheap_prim_cache(gcheap_g.fd, ops, n);
			n = 0;
		}
	}
	if (n)
		gcheap_prim_cache(gcheap_g.fd, ops, n);
}

static void unlink_thread(struct gcheap_thread *t)
{
	struct gcheap_thread **pp;

	for (pp = &gcheap_g.threads; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->registered = false;
}

/* Give back everything the thread holds and forget it. */
void gcheap_thread_release(struct gcheap_thread *t)
{
	gcheap_flush_frees(t);
	release_slots(t);
	pthread_mutex_lock(&gcheap_g.lock);
	if (t->registered) {
		unlink_thread(t);
		gcheap_prim_thread(gcheap_g.fd, GCHEAP_THREAD_UNREGISTER, 0, 0, 0, NULL, 0);
	}
	pthread_mutex_unlock(&gcheap_g.lock);
	munmap(t, sizeof(*t) + gcheap_g.nr_sc * sizeof(struct gcheap_slot));
}

/* Drop the thread's state without telling the module (a fork child's). */
void gcheap_thread_forget(struct gcheap_thread *t)
{
	size_t bytes = sizeof(*t) + gcheap_g.nr_sc * sizeof(struct gcheap_slot);

	pthread_setspecific(gcheap_g.thread_key, NULL);
	self = NULL;
	munmap(t, bytes);
}

GCHEAP_EXPORT int gcheap_register_thread(void)
{
	struct gcheap_thread *t = gcheap_thread_self(true);
	int ret;

	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&gcheap_g.lock);
	if (t->registered) {
		pthread_mutex_unlock(&gcheap_g.lock);
		return -EALREADY;
	}
	stack_bounds(t);
	/*
	 * From here on the module stops the thread for collections.  (The
	 * main thread may have been registered by another at set-up: this
	 * completes its record with its frees.)
	 */
	ret = gcheap_prim_thread(gcheap_g.fd, GCHEAP_THREAD_REGISTER, 0, t->stack_lo,
				 t->stack_hi, t->frees, sizeof(t->frees));
	if (ret) {
		pthread_mutex_unlock(&gcheap_g.lock);
		return ret;
	}
	t->registered = true;
	t->next = gcheap_g.threads;
	gcheap_g.threads = t;
	pthread_mutex_unlock(&gcheap_g.lock);
	return 0;
}

/*
 * The main thread's stack, recorded when the library is loaded (on the main
 * thread, before main() runs), so that it can be registered even when the
 * heap is set up on another thread first.
 */
static uintptr_t main_stack_lo, main_stack_hi;

__attribute__((constructor)) static void record_main_stack(void)
{
	struct gcheap_thread t;

	if (getpid() != (pid_t)syscall(SYS_gettid))
		return;
	memset(&t, 0, sizeof(t));
	stack_bounds(&t);
	main_stack_lo = t.stack_lo;
	main_stack_hi = t.stack_hi;
}

/*
 * At set-up: the main thread is registered, by itself, or by the thread
 * setting up the heap (its stack is a root from now on; it registers its
 * own state when it first uses the heap, and the module then says it is
 * registered already).
 */
void gcheap_register_main(void)
{
	if (getpid() == (pid_t)syscall(SYS_gettid)) {
		gcheap_register_thread();
		return;
	}
	if (main_stack_hi)
		gcheap_prim_thread(gcheap_g.fd, GCHEAP_THREAD_REGISTER, getpid(),
				   main_stack_lo, main_stack_hi, NULL, 0);
}

GCHEAP_EXPORT int gcheap_unregister_thread(void)
{
	struct gcheap_thread *t = self;

	if (!t || !t->registered)
		return -ENOENT;
	/* Release now: the thread may go without running key destructors. */
	pthread_setspecific(gcheap_g.thread_key, NULL);
	self = NULL;
	gcheap_thread_release(t);
	return 0;
}

static void unlink_start(struct gcheap_start *s)
{
	struct gcheap_start **pp;

	pthread_mutex_lock(&gcheap_g.lock);
	for (pp = &gcheap_g.starting; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&gcheap_g.lock);
}

static void *thread_start(void *p)
{
	struct gcheap_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;

	gcheap_register_thread();
	/*
	 * The argument is on this thread's stack now, which is a root: the
	 * record may go.  (A record from the heap is left to the collector.)
	 */
	if (s->gc)
		unlink_start(s);
	else
		free(s);
	/* Released by the key's destructor when the thread exits. */
	return fn(arg);
}

int gcheap_create_thread(int (*real)(pthread_t *, const pthread_attr_t *,
				     void *(*)(void *), void *),
			 pthread_t *thread, const pthread_attr_t *attr,
			 void *(*fn)(void *), void *arg)
{
	struct gcheap_start *s;
	bool gc;
	int ret;

	if (!real)
		return EAGAIN;
	/* Before the heap exists there is nothing the argument could keep. */
	gc = __atomic_load_n(&gcheap_g.ready, __ATOMIC_ACQUIRE);
	s = gc ? gcheap_alloc_internal(sizeof(*s)) : malloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	s->fn = fn;
	s->arg = arg;
	s->gc = gc;
	if (gc) {
		pthread_mutex_lock(&gcheap_g.lock);
		s->next = gcheap_g.starting;
		gcheap_g.starting = s;
		pthread_mutex_unlock(&gcheap_g.lock);
	}
	ret = real(thread, attr, thread_start, s);
	if (ret) {
		if (gc)
			unlink_start(s);
		else
			free(s);
	}
	return ret;
}
