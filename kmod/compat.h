/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels gcheap supports (Debian 6.1 and
 * 6.12) lives here, nowhere else.
 */
#ifndef _GCHEAP_COMPAT_H
#define _GCHEAP_COMPAT_H

#include <linux/mm.h>

/*
 * Features are detected from the kernel headers by kmod/Kbuild (GCHEAP_HAVE_*),
 * not by version numbers: distribution kernels backport.
 */

/* 6.3 made vm_flags read-only behind vm_flags_set()/vm_flags_mod(). */
static inline void gcheap_vm_flags_mod(struct vm_area_struct *vma,
				       vm_flags_t set, vm_flags_t clear)
{
#ifdef GCHEAP_HAVE_VM_FLAGS_MOD
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

#endif /* _GCHEAP_COMPAT_H */
