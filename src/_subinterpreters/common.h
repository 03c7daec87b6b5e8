/* common.h -- small things every translation unit of subinterpreters._core
 * shares: the raw-layer error codes, defensive macros, the module state.
 *
 * Raw-layer functions (no PyObject*, no exception set) return 0 on success
 * or a negative SBI_ERR_* code.  Each Python-facing file maps those codes to
 * exceptions in exactly one function (sbi_state_raise()).
 */
#ifndef SBI_COMMON_H
#define SBI_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <assert.h>

#include "compat.h"

/* ---------------------------------------------------------------------
 * Error codes.  One X-macro list gives the enum and the default message.
 * X(name, value, exception slot in module_state, message)
 */
#define SBI_ERR_MAP(X)                                                      \
    X(NOMEM, -1, InterpreterError, "out of memory")                                    \
    X(NOT_FOUND, -2, InterpreterNotFoundError, "unrecognized interpreter") \
    X(ALREADY_RUNNING, -3, InterpreterError, "interpreter already running") \
    X(NOT_OURS, -4, InterpreterError, "unrecognized interpreter")         \
    X(IS_CURRENT, -5, InterpreterError,                                    \
      "cannot destroy the current interpreter")                            \
    X(CLOSING, -6, InterpreterError, "interpreter is being closed")       \
    X(THREADS_LEFT, -7, InterpreterError,                                  \
      "interpreter still has threads that cannot be joined")               \
    X(SHUTTING_DOWN, -8, InterpreterError,                                 \
      "the process is shutting down")                                      \
    X(QUEUE_NOT_FOUND, -9, QueueNotFoundError, "queue not found")          \
    X(QUEUE_EMPTY, -10, QueueEmpty, "queue is empty")                      \
    X(QUEUE_FULL, -11, QueueFull, "queue is full")                         \
    X(QUEUE_DESTROYED, -12, QueueError, "queue was destroyed")             \
    X(QUEUE_IDS, -13, QueueError, "ran out of queue IDs")                  \
    X(BUFFERS_SHARED, -14, InterpreterError,                               \
      "buffers exported by this interpreter are still shared")

typedef enum {
    SBI_OK = 0,
#define SBI_X(name, value, exc, msg) SBI_ERR_##name = value,
    SBI_ERR_MAP(SBI_X)
#undef SBI_X
} sbi_err;

/* The module name under which a target re-runs the caller's __main__
 * script, so that pickles of the caller's __main__ objects load there
 * (xidata.c); its classes are the caller's __main__ classes. */
#define SBI_FAKE_MAIN "<fake __main__>"

/* ---------------------------------------------------------------------
 * Defensive macros (SQLite's ALWAYS/NEVER): a condition that cannot be
 * false (true) in a correct program.  Debug builds assert; release builds
 * recover by taking the safe branch.
 */
#ifdef NDEBUG
#  define SBI_ALWAYS(x) (x)
#  define SBI_NEVER(x) (x)
#else
#  define SBI_ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#  define SBI_NEVER(x) ((x) ? (assert(0), 1) : 0)
#endif

/* CPython's id of the current interpreter (thread state attached): the
 * owner key of queue items and shared buffers.  The public id of one of
 * our interpreters differs once it has been reused (see park.c).
 */
static inline int64_t
sbi_current_cid(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* The name of our extension module (its spec's name). */
#define SBI_CORE_MODULE_NAME "subinterpreters._core"

/* Is environment variable name set to something other than "" or "0"?
 * (The SUBINTERPRETERS_* switches.)  Any thread; no Python API. */
static inline int
sbi_env_flag(const char *name)
{
    const char *env = getenv(name);
    return env != NULL && env[0] != '\0' && !(env[0] == '0' && env[1] == '\0');
}

/* Assert the CPython error convention at a layer boundary. */
#define SBI_CHECK_RC(rc) assert(((rc) < 0) == (PyErr_Occurred() != NULL))

#endif /* SBI_COMMON_H */
