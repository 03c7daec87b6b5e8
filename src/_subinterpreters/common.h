/* common.h -- small things every translation unit of subinterpreters._core
 * shares: the raw-layer error codes, defensive macros, the module state.
 *
 * Raw-layer functions (no PyObject*, no exception set) return 0 on success
 * or a negative SBI_ERR_* code.  Python-facing code turns them into
 * exceptions with the one function sbi_state_raise() (state.c).
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
 * Error codes: the one table of every error the raw layers return and
 * the exception it becomes (sbi_state_raise() in state.c).
 * X(name, value, exception slot in sbi_state, fallback slot while the
 *   first is not loaded yet, message)
 * In the message, {id} is the id of the interpreter or queue concerned
 * and {op} the operation refused; an empty message raises the class with
 * no arguments (as threading raises BrokenBarrierError).
 */
#define SBI_ERR_MAP(X)                                                        \
  X(NOMEM, -1, InterpreterError, InterpreterError, "out of memory")           \
  X(NOT_FOUND, -2, InterpreterNotFoundError, InterpreterNotFoundError,        \
    "unrecognized interpreter ID {id}")                                       \
  X(ALREADY_RUNNING, -3, InterpreterError, InterpreterError,                  \
    "interpreter already running")                                            \
  X(NOT_OURS, -4, InterpreterError, InterpreterError,                         \
    "cannot {op} unrecognized interpreter {id}")                              \
  X(IS_CURRENT, -5, InterpreterError, InterpreterError,                       \
    "cannot destroy the current interpreter")                                 \
  X(THREADS_LEFT, -7, InterpreterError, InterpreterError,                     \
    "cannot close interpreter {id}: it still has threads that cannot be "     \
    "joined (started with _thread?)")                                         \
  X(SHUTTING_DOWN, -8, InterpreterError, InterpreterError,                    \
    "the process is shutting down (id {id})")                                 \
  X(QUEUE_NOT_FOUND, -9, QueueNotFoundError, QueueNotFoundError,              \
    "queue {id} not found")                                                   \
  X(QUEUE_EMPTY, -10, QueueEmpty, QueueError, "queue {id} is empty")          \
  X(QUEUE_FULL, -11, QueueFull, QueueError, "queue {id} is full")             \
  X(QUEUE_DESTROYED, -12, QueueNotFoundError, QueueNotFoundError,             \
    "queue {id} was destroyed")                                               \
  X(QUEUE_IDS, -13, QueueError, QueueError, "ran out of queue IDs")           \
  X(BUFFERS_SHARED, -14, InterpreterError, InterpreterError,                  \
    "cannot close interpreter {id}: memoryviews of its buffers are still "    \
    "alive in other interpreters")                                            \
  X(QUEUE_SHUTTING_DOWN, -15, QueueError, QueueError,                         \
    "queue {id}: the process is shutting down")                               \
  X(RUNNING, -16, InterpreterError, InterpreterError, "interpreter running")  \
  X(PYEXC, -17, InterpreterError, InterpreterError,                           \
    "an exception is set already")                                            \
  X(INTERP_CLOSING, -18, InterpreterError, InterpreterError,                  \
    "the wait was abandoned: this interpreter is being closed")               \
  X(SYNC_UNLOCKED, -19, RuntimeError, RuntimeError, "release unlocked lock")  \
  X(SYNC_NOT_OWNED, -20, RuntimeError, RuntimeError,                          \
    "cannot release un-acquired lock")                                        \
  X(SYNC_WAIT_NOT_OWNED, -21, RuntimeError, RuntimeError,                     \
    "cannot wait on un-acquired lock")                                        \
  X(SYNC_NOTIFY_NOT_OWNED, -22, RuntimeError, RuntimeError,                   \
    "cannot notify on un-acquired lock")                                      \
  X(SYNC_OVER_RELEASE, -23, ValueError, ValueError,                           \
    "Semaphore released too many times")                                      \
  X(BARRIER_BROKEN, -24, BrokenBarrierError, RuntimeError, "")                \
  X(SHARED_NOT_FOUND, -25, InterpreterError, InterpreterError,                \
    "shared object {id} no longer exists (the objects for it were all "       \
    "dropped before this data was loaded)")                                   \
  X(SYNC_OVERFLOW, -26, OverflowError, OverflowError,                         \
    "semaphore value would overflow")                                         \
  X(IS_MAIN, -27, InterpreterError, InterpreterError,                         \
    "cannot close the main interpreter")

typedef enum {
    SBI_OK = 0,
#define SBI_X(name, value, slot, fallback, msg) SBI_ERR_##name = value,
    SBI_ERR_MAP(SBI_X)
#undef SBI_X
} sbi_err;

/* The module name under which a target re-runs the caller's __main__
 * script, so that pickles of the caller's __main__ objects load there
 * (pickling.c); its classes are the caller's __main__ classes. */
#define SBI_FAKE_MAIN "<fake __main__>"
/* The words of the NotShareableError a receiver raises when it cannot
 * load the sender's __main__ (xidecode.c); call() passes that one on as it
 * is (run.c). */
#define SBI_NO_MAIN                                                           \
  " belongs to the sender's __main__, which the receiving interpreter "       \
  "cannot load"

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

/* Replace the function imp.<def->ml_name> (imp: the _imp module) by a
 * wrapper made of def, whose self is the original function: how the
 * shields and the arena watch see extension modules load.  0, or -1 with
 * an exception.  Current interpreter, thread state attached. */
static inline int
sbi_wrap_imp_function(PyObject *imp, PyMethodDef *def)
{
    PyObject *orig = PyObject_GetAttrString(imp, def->ml_name);
    PyObject *wrapper = orig ? PyCFunction_New(def, orig) : NULL;
    Py_XDECREF(orig);  // the wrapper holds it
    int rc = wrapper ? PyObject_SetAttrString(imp, def->ml_name, wrapper) : -1;
    Py_XDECREF(wrapper);
    return rc;
}

#endif /* SBI_COMMON_H */
