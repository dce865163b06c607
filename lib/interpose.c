// SPDX-License-Identifier: MIT
/*
 * The shared library's pthread_create(): registers every new thread with
 * the heap, so programs need no source change.  Programs that link
 * libgcheap.so before libc (as -lgcheap on the command line does) get this
 * one; it calls the next definition, libc's.
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
