/* shield.h -- shields users from CPython bugs that crash real programs.
 *
 * Which shields exist, and on which CPython releases, is decided in
 * compat.h (SBI_SHIELD_*); this file applies them.
 */
#ifndef SBI_SHIELD_H
#define SBI_SHIELD_H

#include "common.h"

/* Prepare the main interpreter, once per process, before its first
 * subinterpreter exists: imports and calls that make the main interpreter
 * own state that the bugs of this release would otherwise leave to a
 * subinterpreter which frees it when it ends.  Then warn once about
 * crashes of this release that cannot be prevented.  Main interpreter,
 * thread state attached; concurrent callers wait (GIL released) until the
 * first is done.  Returns 0, or -1 with an exception set when the warning
 * was turned into an error by the warnings filters. */
int sbi_shield_main(void);

/* Fix-ups applied in every new interpreter of ours, right after it was
 * created and before its pristine state is recorded (their source sees
 * `isolated`: False in a legacy interpreter, which shares the main
 * interpreter's GIL and loads single-phase modules).  Thread state of the
 * new interpreter attached; never fails (a fix-up that fails is skipped). */
void sbi_shield_new_interp(int isolated);

/* In the child of a fork: the lock may have been held by a thread that
 * does not exist there. */
void sbi_shield_after_fork(void);

/* _shields(): list of the CPython issues shielded in this process
 * ("gh-NNNNNN"), for tests and diagnostics.  New reference or NULL. */
PyObject *sbi_shield_list(PyObject *m, PyObject *unused);

/* _arenas(): what arena.c watched and released (sbi_arena_stats), for
 * tests.  New reference or NULL. */
PyObject *sbi_shield_arenas(PyObject *m, PyObject *unused);

#endif /* SBI_SHIELD_H */
