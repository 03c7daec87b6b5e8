/* code.h -- bytecode inspection for call() and exec() (see code.c).
 */
#ifndef SBI_CODE_H
#define SBI_CODE_H

#include "common.h"

/* Can code run as a script (no args, no closure, returns only None)?
 * 0, or -1 with ValueError set. */
int sbi_code_check_script(PyObject *code);

/* Is a function with this code and globals stateless (no free
 * variables; globals it loads are builtins, or modules it imports)?
 * 1 yes; 0 no, with *why a new str saying why; -1 error. */
int sbi_code_is_stateless(PyObject *code, PyObject *globals, PyObject **why);

#endif /* SBI_CODE_H */
