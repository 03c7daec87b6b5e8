/* arena.h -- return the memory CPython 3.12/3.13 keep after a
 * subinterpreter ends, when nothing it did can still use it (see arena.c;
 * SUBINTERPRETERS_RELEASE_ARENAS=0 turns it off).
 */
#ifndef SBI_ARENA_H
#define SBI_ARENA_H

#include "common.h"

/* Start watching arena allocations (unless
 * SUBINTERPRETERS_RELEASE_ARENAS=0).  Main interpreter, thread state
 * attached, before its first subinterpreter of ours; does nothing if
 * another interpreter exists already (arenas it allocated before could
 * not be told apart), on 3.12.0-3.12.3, or if already installed.  Never
 * fails. */
void sbi_arena_install(void);

/* Around Py_NewInterpreterFromConfig() of an interpreter of ours (1
 * before, 0 after, in the creating thread): the arenas it takes before
 * sbi_arena_watch_imports() knows its id are recorded too. */
void sbi_arena_creating(int on);

/* In a new interpreter of ours, its thread state attached: wrap its
 * _imp.create_dynamic and _imp.create_builtin so that loading an
 * extension module that may keep its objects in process-wide C state
 * makes it keep its arenas.  Never fails (on failure the interpreter
 * keeps its arenas). */
void sbi_arena_watch_imports(void);

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

/* For tests: a new dict {"installed": bool, "watched": arenas of live
 * subinterpreters, "released_bytes": freed so far, "kept_interpreters":
 * ended interpreters that kept theirs}.  Thread state attached. */
PyObject *sbi_arena_stats(void);

#endif /* SBI_ARENA_H */
