/* excinfo.h -- raw-memory snapshots of an exception.
 *
 * A snapshot is taken in the interpreter where the exception was raised
 * and read in another one: it holds only PyMem_Raw strings, so it can be
 * freed from any thread, with or without a thread state.
 */
#ifndef SBI_EXCINFO_H
#define SBI_EXCINFO_H

#include "common.h"
#include "state.h"

typedef struct {
    char *type_name;      // __name__ of the exception's class
    char *type_qualname;  // __qualname__
    char *type_module;    // __module__
    char *msg;            // str(exc)
    char *errdisplay;     // formatted traceback, no trailing newline
    int is_keyboard_interrupt;
} sbi_excinfo;

#define SBI_EXCINFO_INIT                                                      \
  {                                                                           \
    NULL, NULL, NULL, NULL, NULL, 0                                           \
  }

/* Fill info from exc (in exc's interpreter, thread state attached).
 * Best effort: fields that cannot be computed stay NULL; never raises
 * (any error while formatting is swallowed).  Does not consume exc. */
void sbi_excinfo_capture(sbi_excinfo *info, PyObject *exc);

/* Capture the currently raised exception, clearing it. */
void sbi_excinfo_capture_current(sbi_excinfo *info);

/* "<module.>qualname: msg" as a new str; NULL with exception on failure. */
PyObject *sbi_excinfo_formatted(const sbi_excinfo *info);

/* _refusal_hint(text): when text says an extension module "does not
 * support loading in subinterpreters", one line naming it and the ways
 * out; else None.  New reference, or NULL with an exception. */
PyObject *sbi_excinfo_refusal_hint(PyObject *text);
PyObject *sbi_excinfo_refusal_hint_meth(PyObject *m, PyObject *text);

/* The excinfo namespace object of ExecutionFailed (new reference). */
PyObject *sbi_excinfo_to_namespace(const sbi_excinfo *info);

/* _excinfo(exc): the namespace ExecutionFailed.excinfo would hold for
 * exc (the pool's workers send it with a failed task).  Module
 * function. */
PyObject *sbi_excinfo_snapshot(PyObject *m, PyObject *exc);

/* Raise ExecutionFailed(excinfo) in the current interpreter. Returns -1. */
int sbi_excinfo_raise_failed(sbi_state *st, const sbi_excinfo *info);

/* Raise exc_type(msg) with __cause__ a proxy Exception carrying the
 * remote traceback text.  Returns -1. */
int sbi_excinfo_raise_with_proxy(PyObject *exc_type, const char *msg,
                                 const sbi_excinfo *info);

/* Free the strings; leaves info empty.  Any thread, no thread state
 * needed. */
void sbi_excinfo_clear(sbi_excinfo *info);

/* Create ExecutionFailed in the module (called from module exec). */
int sbi_excinfo_module_init(PyObject *m, sbi_state *st);

#endif /* SBI_EXCINFO_H */
