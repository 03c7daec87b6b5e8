/* arena.h -- optionally return the memory CPython 3.12/3.13 keep after a
 * subinterpreter ends (SUBINTERPRETERS_RELEASE_ARENAS=1; see arena.c for
 * why it is not on by default).
 */
#ifndef SBI_ARENA_H
#define SBI_ARENA_H

#include "common.h"

/* Start watching arena allocations if SUBINTERPRETERS_RELEASE_ARENAS=1.
 * Main interpreter, thread state attached, before its first
 * subinterpreter of ours; does nothing if another interpreter exists
 * already (arenas it allocated before could not be told apart), on
 * 3.12.0-3.12.3, or if already installed.  Never fails. */
void sbi_arena_install(void);

/* Is the watch installed?  Any thread. */
int sbi_arena_installed(void);

/* Free the arenas that interpreter cid (CPython's id) left behind when it
 * ended, or with keep only forget them (memory of it may still be in use,
 * e.g. by buffers shared with other interpreters).  Call right after
 * Py_EndInterpreter() returned; any thread, with or without a thread
 * state.  Returns the number of bytes freed. */
size_t sbi_arena_release(int64_t cid, int keep);

/* In the child of a fork: the lock may have been held by a thread that
 * does not exist there. */
void sbi_arena_after_fork(void);

/* Arenas currently watched (allocated by live subinterpreters, or left by
 * ended ones and not released yet), for tests.  Any thread. */
size_t sbi_arena_watched(void);

#endif /* SBI_ARENA_H */
