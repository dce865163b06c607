// SPDX-License-Identifier: MIT
/*
 * The demo `make run` starts in the guest: find the gcheap module through
 * libgcheap and say what it offers.
 */
#include <stdio.h>
#include <string.h>

#include <gcheap.h>

int main(void)
{
	struct gcheap_device_info info;
	int ret = gcheap_device_info(&info);
	unsigned int nr;

	if (ret < 0) {
		fprintf(stderr, "gcheap: cannot use /dev/gcheap: %s\n", strerror(-ret));
		return 1;
	}
	printf("gcheap module version %u.%u.%u\n", GCHEAP_VERSION_MAJOR(info.version),
	       GCHEAP_VERSION_MINOR(info.version), GCHEAP_VERSION_PATCH(info.version));
	printf("  features:  %#llx%s\n", (unsigned long long)info.features,
	       info.features ? "" : " (none optional yet)");
	printf("  commands: ");
	for (nr = 0; nr < 64; nr++)
		if (info.ioctls & (1ull << nr))
			printf(" %u", nr);
	printf("\n  page size: %llu bytes, %u CPUs\n",
	       (unsigned long long)info.page_size, info.nr_cpus);
	return 0;
}
