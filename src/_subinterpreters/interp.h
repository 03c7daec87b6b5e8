/* interp.h -- interpreter lifecycle, the registry of our interpreters,
 * and sessions (switching a thread into another interpreter).
 */
#ifndef SBI_INTERP_H
#define SBI_INTERP_H

#include "common.h"
#include "module.h"

/* CPython's id of the current interpreter (thread state attached): the
 * owner key of queue items and shared buffers.  The public id of one of
 * our interpreters differs once it has been reused (interp.c, Parking). */
static inline int64_t
sbi_interp_current_id(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* For blocking waits (queues): if the current thread runs __main__ of the
 * current interpreter and Interpreter.interrupt() targeted it, consume the
 * interrupt and raise KeyboardInterrupt (-1); else 0.  Thread state
 * attached. */
int sbi_interp_check_interrupt(void);

int sbi_interp_module_init(PyObject *m, sbi_state *st);
int sbi_interp_globals_init(void);
void sbi_interp_globals_fini(void);

/* Module-level functions (defined in interp.c, listed in module.c). */
PyObject *sbi_interp_create(PyObject *m, PyObject *unused);
PyObject *sbi_interp_list_all(PyObject *m, PyObject *unused);
PyObject *sbi_interp_get_current(PyObject *m, PyObject *unused);
PyObject *sbi_interp_get_main(PyObject *m, PyObject *unused);
PyObject *sbi_interp_atexit(PyObject *m, PyObject *unused);
PyObject *sbi_interp_count(PyObject *m, PyObject *unused);
PyObject *sbi_interp_cache_size(PyObject *m, PyObject *unused);
PyObject *sbi_interp_parking(PyObject *m, PyObject *arg);
PyObject *sbi_interp_fork_begin(PyObject *m, PyObject *unused);
PyObject *sbi_interp_fork_end(PyObject *m, PyObject *unused);

#endif /* SBI_INTERP_H */
