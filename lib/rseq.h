/* SPDX-License-Identifier: MIT */
/*
 * The one restartable sequence of the allocation fast path (x86-64).
 *
 * gcheap_rseq_commit() stores @newv to *@word if, on CPU @cpu and without
 * being preempted, migrated or interrupted by a signal in between, it finds
 * that the thread still runs on @cpu, the slot's generation *@genp is still
 * @gen and *@word is still @expect.  The store is the last instruction of
 * the critical section, so it either happens with all three checks true or
 * not at all: the kernel moves the instruction pointer to the abort label if
 * anything interrupts the sequence.
 *
 * The descriptor (struct rseq_cs: version, flags, start, length, abort) goes
 * to the __rseq_cs section; the abort handler to __rseq_failure, right after
 * the 4-byte signature glibc registered (RSEQ_SIG, 0x53053053 on x86),
 * which the kernel checks before jumping there.
 */
#ifndef GCHEAP_RSEQ_H
#define GCHEAP_RSEQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <linux/types.h>

/*
 * The original rseq ABI is 20 bytes (cpu_id_start, cpu_id, rseq_cs, flags),
 * and that is what glibc 2.35 to 2.39 report in __rseq_size; it is all the
 * fast path uses.
 */
#define GCHEAP_RSEQ_MIN_SIZE	20

/*
 * The thread's rseq area is at %fs:@offset (__rseq_offset, which the
 * library keeps at hand): reading cpu_id and storing rseq_cs through the fs
 * segment saves loading the thread pointer.
 */
#define GCHEAP_RSEQ_CPU_ID	4
#define GCHEAP_RSEQ_CS		8
_Static_assert(offsetof(struct rseq, cpu_id) == GCHEAP_RSEQ_CPU_ID, "rseq ABI");
_Static_assert(offsetof(struct rseq, rseq_cs) == GCHEAP_RSEQ_CS, "rseq ABI");

static inline uint32_t gcheap_rseq_cpu(ptrdiff_t offset)
{
	return *(volatile const __seg_fs uint32_t *)(uintptr_t)(offset + GCHEAP_RSEQ_CPU_ID);
}

/*
 * 0: committed; 1: something changed or the sequence was aborted.  @obj,
 * the object the commit allocates, is an operand so that its address is
 * in a register when the commit happens: a thread stopped for a collection
 * right after it must hold a pointer to its new object, or the collector
 * would free it under the thread.
 */
static inline int gcheap_rseq_commit(ptrdiff_t offset, uint32_t cpu, __u64 *genp,
				     uint64_t gen, __u64 *word, uint64_t expect,
				     uint64_t newv, const void *obj)
{
	__asm__ __volatile__ goto(
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n"
		"3:\n\t"
		".long 0, 0\n\t"
		".quad 1f, 2f - 1f, 4f\n\t"
		".popsection\n\t"
		".pushsection __rseq_failure, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long 0x53053053\n"
		"4:\n\t"
		"jmp %l[abort]\n\t"
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %%fs:%c[cs](%[off])\n"
		"1:\n\t"
		"cmpl %[cpu], %%fs:%c[cpu_id](%[off])\n\t"
		"jnz %l[abort]\n\t"
		"cmpq %[gen], %[cur_gen]\n\t"
		"jnz %l[abort]\n\t"
		"cmpq %[expect], %[word]\n\t"
		"jnz %l[abort]\n\t"
		"movq %[newv], %[word]\n"
		"2:\n\t"
		:
		: [off] "r"(offset), [cpu] "r"(cpu),
		  [cs] "i"(GCHEAP_RSEQ_CS), [cpu_id] "i"(GCHEAP_RSEQ_CPU_ID),
		  [cur_gen] "m"(*genp), [gen] "r"(gen), [word] "m"(*word),
		  [expect] "r"(expect), [newv] "r"(newv), [obj] "r"(obj)
		: "memory", "cc", "rax"
		: abort);
	return 0;
abort:
	return 1;
}

#endif
