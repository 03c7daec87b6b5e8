/* interp.h -- interpreter lifecycle, sessions (switching a thread into
 * another interpreter) and the Interpreter type.
 */
#ifndef SBI_INTERP_H
#define SBI_INTERP_H

#include "common.h"
#include "state.h"

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
