/* arena.h -- return the memory CPython 3.12/3.13 keep after a
 * subinterpreter ends.
 *
 * Those releases free an ended interpreter's object arenas only if no
 * block in them is still allocated, and some always are (see arena.c), so
 * every destroyed interpreter kept 1.5-2.5 MiB.  We watch which
 * interpreter allocated each arena and free the ones its end left behind.
 */
#ifndef SBI_ARENA_H
#define SBI_ARENA_H

#include "common.h"

/* Start watching arena allocations.  Main interpreter, thread state
 * attached, before its first subinterpreter of ours; does nothing if
 * another interpreter exists already (arenas it allocated before could
 * not be told apart) or if already installed.  Never fails. */
void sbi_arena_install(void);

/* Free the arenas that interpreter cid (CPython's id) left behind when it
 * ended.  Call right after Py_EndInterpreter() returned; any thread, with
 * or without a thread state.  Returns the number of bytes freed. */
size_t sbi_arena_release(int64_t cid);

/* Arenas currently watched (allocated by live subinterpreters, or left by
 * ended ones and not released yet), for tests.  Any thread. */
size_t sbi_arena_watched(void);

#endif /* SBI_ARENA_H */
