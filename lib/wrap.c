// SPDX-License-Identifier: MIT
/*
 * For static links (libgcheap.a): link with -Wl,--wrap=pthread_create and
 * every thread from pthread_create() is registered with the heap.
 */
#include <pthread.h>

#include "internal.h"

/* Weak: a program linked without --wrap never calls __wrap_pthread_create. */
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg) __attribute__((weak));

GCHEAP_EXPORT int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
					void *(*fn)(void *), void *arg)
{
	return gcheap_create_thread(__real_pthread_create, thread, attr, fn, arg);
}
