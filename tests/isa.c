/* isa: see isa.h. */
#include "isa.h"

#include <stdio.h>

void
isa_report(const char *suite)
{
	printf("isa paths (%s):", suite);
	for (int i = 0; i < CPU_NISA; i++)
		if (!cpu_isa_lacks((CpuIsa)i))
			printf(" %s", cpu_isa_name((CpuIsa)i));
	printf(" run");
	for (int i = 0; i < CPU_NISA; i++)
		if (cpu_isa_lacks((CpuIsa)i))
			printf("; %s: not run (%s)", cpu_isa_name((CpuIsa)i), cpu_isa_lacks((CpuIsa)i));
	printf("\n");
	fflush(stdout);
}

int
isa_use(int level)
{
	return cpu_isa_set((CpuIsa)level) == 0;
}
