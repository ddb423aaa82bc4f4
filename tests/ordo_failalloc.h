/* Allocation failures on demand, for the fault tests. A test program
 * linked with ORDO_FAILALLOC_FLAGS (see tests/CMakeLists.txt) sends every
 * malloc, calloc and realloc of its own code here first (libzmq's and
 * LMDB's, in shared libraries, keep theirs). While armed, every
 * `every`-th allocation made on one of the engine's threads (those named
 * "ordo-...") fails with ENOMEM; the test's own thread is never failed. */
#ifndef ORDO_FAILALLOC_H
#define ORDO_FAILALLOC_H

#include <stdint.h>

/* Fails every `every`-th engine allocation from now on; 0 stops. */
void ordo_failalloc_arm(unsigned every);

/* Allocations failed since the program started. */
uint64_t ordo_failalloc_failed(void);

#endif
