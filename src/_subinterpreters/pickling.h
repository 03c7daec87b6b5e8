/* pickling.h -- the pickle fallback and the '<fake __main__>' re-run
 * (see pickling.c).
 */
#ifndef SBI_PICKLING_H
#define SBI_PICKLING_H

#include "common.h"

/* pickle.dumps(obj) in the current interpreter.  New bytes, or NULL with
 * the exception pickling raised. */
PyObject *sbi_pickling_dumps(PyObject *obj);

/* The file of the current interpreter's script if the pickle data refers
 * to its __main__ (or to a '<fake __main__>' running it), else NULL (no
 * exception).  New reference. */
PyObject *sbi_pickling_main_file(const char *data, Py_ssize_t n);

/* pickle.loads(data) in the current interpreter; with main_file, the
 * script at that path stands in for '__main__' and '<fake __main__>':
 * this interpreter's own __main__ if it runs that script, else the
 * script run once as '<fake __main__>' -- only if its top-level code is
 * guarded by `if __name__ == "__main__":`.  New reference or NULL.  When
 * the script cannot stand in (no guard, or running it raised), the error
 * is an ImportError whose name is '__main__', path the script and
 * message the reason. */
PyObject *sbi_pickling_loads(PyObject *data, PyObject *main_file);

#endif /* SBI_PICKLING_H */
