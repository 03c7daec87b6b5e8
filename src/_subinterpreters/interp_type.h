/* interp_type.h -- the Interpreter type and the module functions that
 * return its objects (see interp_type.c).
 */
#ifndef SBI_INTERP_TYPE_H
#define SBI_INTERP_TYPE_H

#include "common.h"
#include "state.h"

/* Module init: create the type and this interpreter's object cache. */
int sbi_interp_type_init(PyObject *m, sbi_state *st);

/* Module-level functions (listed in module.c). */
PyObject *sbi_interp_type_create(PyObject *m, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames);
PyObject *sbi_interp_type_list_all(PyObject *m, PyObject *unused);
PyObject *sbi_interp_type_get_current(PyObject *m, PyObject *unused);
PyObject *sbi_interp_type_get_main(PyObject *m, PyObject *unused);
PyObject *sbi_interp_type_cache_size(PyObject *m, PyObject *unused);

#endif /* SBI_INTERP_TYPE_H */
