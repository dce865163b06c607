// SPDX-License-Identifier: GPL-2.0
/*
 * gcheap size classes.
 *
 * Objects up to GCHEAP_SMALL_MAX (32 KiB) are rounded up to a size class and
 * allocated from spans holding objects of that class only; larger objects
 * get a span of their own.  The table is computed once at module load and
 * published to userspace in each heap's header page, so the module and the
 * library can never disagree about it.
 *
 * Classes: every multiple of 16 up to 256, then eight classes per power of
 * two (steps of a sixteenth of the lower power, never less than 16): 16, 32,
 * ..., 256, 288, 320, ..., 512, 576, ..., 32768.  A request of n bytes,
 * rounded up to 16 (the alignment), lands in the smallest class >= n; the
 * class above a power of two P is at most P/8 larger than the one below it,
 * so the internal waste is below 1/9 (11.1%), under the 12.5% Go accepts.
 *
 * Span length: as many objects as a slot's bitmap covers (GCHEAP_MAX_OBJS)
 * but at most GCHEAP_SPAN_BYTES (128 KiB) and at least two pages -- each
 * refill is a system call, so larger spans than Go's 8 KiB pay -- then the
 * fewest pages from there whose tail (the bytes after the last whole
 * object) is at most an eighth of the span.  selftests check both bounds
 * for every class.
 */
#include <linux/bug.h>
#include <linux/log2.h>
#include <linux/mm.h>

#include "gcheap.h"

struct gcheap_class gcheap_classes[GCHEAP_CLASSES_MAX];
unsigned int gcheap_nr_classes;

static unsigned int gcheap_span_pages(unsigned int size)
{
	unsigned int want, pages, best = 0, best_tail = UINT_MAX;

	/*
	 * Every span a slot uses costs the process a system call, so spans
	 * are as large as the slot's bitmap and GCHEAP_SPAN_BYTES allow, at
	 * least two pages.
	 */
	want = min_t(unsigned int, GCHEAP_MAX_OBJS * size, GCHEAP_SPAN_BYTES);
	want = max_t(unsigned int, DIV_ROUND_UP(want, PAGE_SIZE), 2);
	for (pages = want; pages <= want + 16; pages++) {
		unsigned int bytes = pages * PAGE_SIZE;
		unsigned int tail = bytes % size;

		if (bytes / size > GCHEAP_MAX_OBJS)
			break;
		if (tail <= bytes / 8)
			return pages;
		if (tail < best_tail) {
			best = pages;
			best_tail = tail;
		}
	}
	return best;
}

void gcheap_sizeclass_init(void)
{
	unsigned int size = 16, n = 0;

	while (size <= GCHEAP_SMALL_MAX) {
		struct gcheap_class *c = &gcheap_classes[n++];

		c->size = size;
		c->span_pages = gcheap_span_pages(size);
		c->objects = c->span_pages * PAGE_SIZE / size;
		size += size < 256 ? 16 : rounddown_pow_of_two(size) / 8;
	}
	gcheap_nr_classes = n;
	BUILD_BUG_ON(sizeof(struct gcheap_slot) != GCHEAP_SLOT_SIZE);
	WARN_ON_ONCE(n > GCHEAP_CLASSES_MAX);
}

/**
 * gcheap_sc_div_mul() - the multiplier that divides by a class's size
 * @size: the object size
 *
 * The marker turns an offset in a span into an object index for every
 * pointer it follows; (off * mul) >> 32 does it without a division.  It is
 * exact when off * (mul * size - 2^32) < 2^32 * (size - off % size) for
 * every offset, which holds for spans of at most 128 KiB and sizes below
 * 32 KiB (32 KiB itself is a power of two, exact); gcheap_sizeclass_check()
 * proves it for the classes there are.
 */
u32 gcheap_sc_div_mul(unsigned int size)
{
	return U32_MAX / size + 1;
}

/* Every class's multiplier is exact at both sides of every boundary. */
int gcheap_sizeclass_check(void)
{
	unsigned int n, k;

	for (n = 0; n < gcheap_nr_classes; n++) {
		const struct gcheap_class *c = &gcheap_classes[n];
		u64 mul = gcheap_sc_div_mul(c->size);

		for (k = 1; k <= c->objects; k++) {
			u64 off = (u64)k * c->size;

			if ((off * mul) >> 32 != k || ((off - 1) * mul) >> 32 != k - 1) {
				pr_err("gcheap: size class %u: inexact index at %llu\n",
				       c->size, off);
				return -EINVAL;
			}
		}
	}
	return 0;
}
