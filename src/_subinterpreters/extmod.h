/* extmod.h -- which init an extension module's shared library uses,
 * told from its dynamic symbols without loading it (see extmod.c).
 */
#ifndef SBI_EXTMOD_H
#define SBI_EXTMOD_H

#include "common.h"

typedef enum {
    SBI_EXTMOD_UNKNOWN = 0,   // not an ELF shared library we can read, or
                              // it uses both kinds of init (or neither)
    SBI_EXTMOD_SINGLE_PHASE,  // calls PyModule_Create2, not PyModuleDef_Init
    SBI_EXTMOD_MULTI_PHASE,   // calls PyModuleDef_Init, not PyModule_Create2
} sbi_extmod_kind;

/* The kind of init of the extension module in the shared library at
 * path.  Reads the file only (never loads it).  Any thread; no Python
 * API; never fails (UNKNOWN). */
sbi_extmod_kind sbi_extmod_kind_of(const char *path);

/* Its name: "single-phase", "multi-phase" or "unknown". */
const char *sbi_extmod_kind_name(sbi_extmod_kind kind);

/* _extension_kind(path): the kind's name, for `python -m subinterpreters
 * check`.  New reference, or NULL with an exception (a bad path). */
PyObject *sbi_extmod_py_kind(PyObject *m, PyObject *path);

#endif /* SBI_EXTMOD_H */
