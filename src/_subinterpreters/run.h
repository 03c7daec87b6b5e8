/* run.h -- running code in an interpreter: exec(), prepare_main() and
 * call() (see run.c).  The Interpreter type's methods of those names call
 * these with the target's public id.
 */
#ifndef SBI_RUN_H
#define SBI_RUN_H

#include "common.h"
#include "state.h"

/* exec(code, /, *, timeout=None).  New reference (None) or NULL. */
PyObject *sbi_run_exec(sbi_state *st, int64_t id, PyObject *args,
                       PyObject *kwargs);

/* prepare_main(ns=None, /, **kwargs).  New reference (None) or NULL. */
PyObject *sbi_run_prepare_main(sbi_state *st, int64_t id, PyObject *args,
                               PyObject *kwargs);

/* call(callable, /, *args, **kwargs), vectorcall convention.  New
 * reference or NULL. */
PyObject *sbi_run_call(sbi_state *st, int64_t id, PyObject *const *args,
                       size_t nargsf, PyObject *kwnames);

#endif /* SBI_RUN_H */
