/* park.h -- reusing closed pristine interpreters (see park.c).
 */
#ifndef SBI_PARK_H
#define SBI_PARK_H

#include "common.h"
#include "registry.h"

/* A hash of the process environment (os.environ is copied from it when
 * an interpreter is created).  Any thread. */
uint64_t sbi_park_environ_hash(void);

/* In a new interpreter: take the snapshot that sbi_park_reset() compares
 * with.  Returns 1, or 0 (with no exception) if it could not be taken:
 * the interpreter is then never parked. */
int sbi_park_snapshot(void);

/* In the interpreter being closed (its threads joined): reset __main__
 * to its snapshot, collect garbage, and tell whether the interpreter is
 * pristine again.  Returns 1 if it is, 0 if not (no exception either
 * way). */
int sbi_park_reset(void);

/* Is there room on the parked list?  A hint: sbi_park() decides. */
int sbi_park_wanted(void);

/* Move e (claimed, pristine, threads and items gone, no thread state of
 * the caller in it) from the registry to the parked list.  Returns 1 if
 * parked, 0 if there is no room, the environment changed or the process
 * is exiting or forking (the caller then destroys e).  Its public id is
 * retired: -1 until reuse. */
int sbi_park(sbi_entry *e);

/* For create(): publish a parked interpreter under a fresh id, holding
 * the first reference, and return its id.  Returns -1 if none is parked,
 * or -1 with *stale set to one made under another environment, claimed
 * for closing: the caller destroys it and asks again. */
int64_t sbi_park_take(sbi_entry **stale);

/* Take a parked interpreter off the list, claimed for closing, for the
 * caller to destroy: any one if all is set (fork), else only while more
 * than the limit are parked (the limit is set first unless negative).
 * NULL if there is none to take. */
sbi_entry *sbi_park_evict(int all, int limit);

#endif /* SBI_PARK_H */
