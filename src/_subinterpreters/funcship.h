/* funcship.h -- which functions travel as code; naming objects of the
 * sender's __main__; finding globals by qualified name (funcship.c).
 */
#ifndef SBI_FUNCSHIP_H
#define SBI_FUNCSHIP_H

#include "common.h"

/* Does func (a function) travel as code: stateless (code.c), and
 * defaults that are data, unless pickle finds it by reference (a
 * module's function keeps its own defaults there)?  1 yes; 0 no, with
 * *why a new str saying why; -1 with an exception. */
int sbi_funcship_ships_as_code(PyObject *func, PyObject **why);

/* "function g (it uses the global 'FACTOR')", "class Point", "a Point
 * object": what obj, pickled with a reference to the script's __main__,
 * is.  New str, or NULL with an exception. */
PyObject *sbi_funcship_describe(PyObject *obj);

/* Walk qualname (a str) from module object mod.  New reference, or NULL
 * with an exception. */
PyObject *sbi_funcship_resolve_qualname(PyObject *mod, PyObject *qualname);

#endif /* SBI_FUNCSHIP_H */
