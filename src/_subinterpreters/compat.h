/* compat.h -- every CPython version guard of the project lives here.
 *
 * Each shim names the CPython change it covers and when it can go.
 * No pycore_* header is included and no Py_BUILD_CORE is defined.
 */
#ifndef SBI_COMPAT_H
#define SBI_COMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
#  error "subinterpreters needs CPython 3.12 or newer"
#endif

/* Opcode numbers: public <opcode.h> on 3.12 (defines them directly) and
 * 3.13+ (through opcode_ids.h).  Used to inspect bytecode in xidata.c. */
#include <opcode.h>

/* RETURN_CONST exists in 3.12 and 3.13 only (removed in 3.14). */
#ifdef RETURN_CONST
#  define SBI_HAVE_RETURN_CONST 1
#else
#  define SBI_HAVE_RETURN_CONST 0
#endif

/* LOAD_COMMON_CONSTANT (3.15) loads None and a few builtins from a table
 * of the interpreter, so "return None" compiles without LOAD_CONST.  The
 * table index of None is internal: xidata.c learns it by compiling "None".
 * (-1 where the opcode does not exist: no instruction matches it.) */
#ifndef LOAD_COMMON_CONSTANT
#  define LOAD_COMMON_CONSTANT (-1)
#endif

/* LOAD_FROM_DICT_OR_GLOBALS was added in 3.12 (class bodies). */
#ifndef LOAD_FROM_DICT_OR_GLOBALS
#  define LOAD_FROM_DICT_OR_GLOBALS (-1)
#endif

/* Per-interpreter at-exit callbacks.  3.13 made it public-unstable
 * (PyUnstable_AtExit); 3.12 exports the same function as _Py_AtExit from
 * cpython/pylifecycle.h.  Remove the 3.12 branch when 3.12 is dropped. */
#if PY_VERSION_HEX >= 0x030D0000
#  define sbi_compat_atexit PyUnstable_AtExit
#else
#  define sbi_compat_atexit _Py_AtExit
#endif

/* __main__ module of an interpreter: public-unstable in 3.13,
 * underscore-named in 3.12 (cpython/pystate.h).  Borrowed reference. */
#if PY_VERSION_HEX >= 0x030D0000
#  define sbi_compat_main_module PyUnstable_InterpreterState_GetMainModule
#else
#  define sbi_compat_main_module _PyInterpreterState_GetMainModule
#endif

/* PyWeakref_GetRef: added in 3.13 (gh-105927). */
#if PY_VERSION_HEX < 0x030D0000
static inline int
PyWeakref_GetRef(PyObject *ref, PyObject **pobj)
{
    if (ref == NULL || !PyWeakref_Check(ref)) {
        *pobj = NULL;
        PyErr_SetString(PyExc_TypeError, "expected a weakref");
        return -1;
    }
    PyObject *obj = PyWeakref_GetObject(ref);  // borrowed
    if (obj == Py_None) {
        *pobj = NULL;
        return 0;
    }
    *pobj = Py_NewRef(obj);
    return 1;
}
#endif

/* PyDict_GetItemRef: added in 3.13 (gh-106307). */
#if PY_VERSION_HEX < 0x030D0000
static inline int
PyDict_GetItemRef(PyObject *mp, PyObject *key, PyObject **result)
{
    PyObject *item = PyDict_GetItemWithError(mp, key);  // borrowed
    if (item != NULL) {
        *result = Py_NewRef(item);
        return 1;
    }
    *result = NULL;
    return PyErr_Occurred() ? -1 : 0;
}
static inline int
PyDict_GetItemStringRef(PyObject *mp, const char *key, PyObject **result)
{
    PyObject *k = PyUnicode_FromString(key);
    if (k == NULL) {
        *result = NULL;
        return -1;
    }
    int rc = PyDict_GetItemRef(mp, k, result);
    Py_DECREF(k);
    return rc;
}
#endif

/* PyImport_AddModuleRef: added in 3.13 (gh-105922). */
#if PY_VERSION_HEX < 0x030D0000
static inline PyObject *
PyImport_AddModuleRef(const char *name)
{
    PyObject *m = PyImport_AddModule(name);  // borrowed
    return Py_XNewRef(m);
}
#endif

/* PyLong_AsInt: public since 3.13 (gh-108014). */
#if PY_VERSION_HEX < 0x030D0000
#  define PyLong_AsInt _PyLong_AsInt
#endif

/* PyThreadState_GetUnchecked: public since 3.13; 3.12 has
 * _PyThreadState_UncheckedGet (cpython/pystate.h). */
#if PY_VERSION_HEX < 0x030D0000
#  define PyThreadState_GetUnchecked _PyThreadState_UncheckedGet
#endif

/* PyErr_FormatUnraisable: public since 3.13. */
#if PY_VERSION_HEX < 0x030D0000
#  define sbi_compat_write_unraisable(msg) PyErr_WriteUnraisable(NULL)
#else
#  define sbi_compat_write_unraisable(msg) PyErr_FormatUnraisable(msg)
#endif

/* Py_mod_gil (free-threading) exists from 3.13 (PEP 703). */
#ifdef Py_mod_gil
#  define SBI_HAVE_MOD_GIL 1
#else
#  define SBI_HAVE_MOD_GIL 0
#endif

/* gh-119213 (fixed in 3.12.4): Argument Clinic parsers of extension
 * modules create their keyword tuple in whichever interpreter calls them
 * first; when that interpreter is destroyed, the process later crashes at
 * exit ("double free or corruption").  Reproduced on 3.12.1 with ssl and
 * asyncio (internals §8.2 M3).  We import the usual offenders in the main
 * interpreter before the first subinterpreter exists.  Remove with 3.12. */
#if PY_VERSION_HEX < 0x030C04F0
#  define SBI_PREWARM_MODULES {"ssl", "asyncio", NULL}
/* Keyword calls that common code makes first in a subinterpreter
 * (concurrent.futures and queue call SimpleQueue.get(block=...)). */
#  define SBI_PREWARM_CODE                                                  \
    "import _queue\n"                                                       \
    "q = _queue.SimpleQueue()\n"                                            \
    "q.put(None, block=False, timeout=None)\n"                              \
    "q.get(block=False, timeout=None)\n"
#endif

/* 3.12's threading._shutdown() asserts that the interpreter's _MainThread
 * still holds its tstate lock; in a subinterpreter that object belongs to
 * whichever session thread first imported threading, whose thread state
 * is long gone or is the keeper (deleted right before the end), so
 * Py_EndInterpreter prints an AssertionError.  We hand it a fresh held
 * lock before ending the interpreter.  3.13 tracks threads
 * with handles instead (gh-114271).  Remove with 3.12. */
#if PY_VERSION_HEX < 0x030D0000
#  define SBI_FIX_MAIN_THREAD_TSTATE_LOCK 1
#else
#  define SBI_FIX_MAIN_THREAD_TSTATE_LOCK 0
#endif

#endif /* SBI_COMPAT_H */
