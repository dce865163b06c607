// SPDX-License-Identifier: MIT
/*
 * The shared library's pthread_create(), dlopen() and dlclose(): every new
 * thread is registered with the heap, and the module's root set follows
 * the objects loaded and unloaded, so programs need no source change.
 * Programs that link libgcheap.so before libc (as -lgcheap on the command
 * line does) get these; each calls the next definition, libc's.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "internal.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

GCHEAP_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
				 void *(*fn)(void *), void *arg)
{
	static create_fn real;

	if (!__atomic_load_n(&real, __ATOMIC_ACQUIRE))
		__atomic_store_n(&real, (create_fn)dlsym(RTLD_NEXT, "pthread_create"),
				 __ATOMIC_RELEASE);
	return gcheap_create_thread(real, thread, attr, fn, arg);
}

typedef void *(*dlopen_fn)(const char *, int);
typedef int (*dlclose_fn)(void *);

GCHEAP_EXPORT void *dlopen(const char *file, int mode)
{
	static dlopen_fn real;
	void *h;

	if (!__atomic_load_n(&real, __ATOMIC_ACQUIRE))
		__atomic_store_n(&real, (dlopen_fn)dlsym(RTLD_NEXT, "dlopen"), __ATOMIC_RELEASE);
	h = real(file, mode);
	/* Its data and bss are roots from now on. */
	if (h)
		gcheap_roots_sync();
	return h;
}

GCHEAP_EXPORT int dlclose(void *handle)
{
	static dlclose_fn real;
	int ret;

	if (!__atomic_load_n(&real, __ATOMIC_ACQUIRE))
		__atomic_store_n(&real, (dlclose_fn)dlsym(RTLD_NEXT, "dlclose"), __ATOMIC_RELEASE);
	ret = real(handle);
	if (!ret)
		gcheap_roots_sync();
	return ret;
}
