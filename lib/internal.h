/* SPDX-License-Identifier: MIT */
/*
 * libgcheap internals shared between its files.  Everything is compiled
 * with -fvisibility=hidden; only functions marked GCHEAP_EXPORT and listed
 * in libgcheap.map are visible to programs.
 */
#ifndef GCHEAP_INTERNAL_H
#define GCHEAP_INTERNAL_H

#define GCHEAP_EXPORT	__attribute__((visibility("default")))

#endif
