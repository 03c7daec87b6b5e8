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

/* Is func stateless as 3.14 defines it, its defaults aside (no closure,
 * no globals but builtins and modules; xidata.c decides whether its
 * defaults can travel with it)?  1 yes, 0 no with *why set to a new str
 * explaining, -1 error.  The verdict is cached per code object. */
int sbi_code_func_is_stateless(PyObject *func, PyObject **why);

/* Code objects travel marshalled, tagged with a process-unique token so
 * both sides can cache: the sender its marshalled bytes per code object,
 * the receiver its code object per token.
 *
 * pack: 0, or -1 with an exception; *data is a new reference.
 * unpack: new reference to the code object, or NULL with an exception.
 * compile_cached: compile source (utf8 is its UTF-8 text) as "<script>",
 * cached per interpreter.  New reference or NULL. */
int sbi_code_pack(PyObject *code, uint64_t *token, PyObject **data);
PyObject *sbi_code_unpack(uint64_t token, const char *data, Py_ssize_t n);
PyObject *sbi_code_compile_cached(PyObject *source, const char *utf8);

#endif /* SBI_CODE_H */
