/* state.h -- the per-interpreter module state of subinterpreters._core
 * (see state.c).
 *
 * Every interpreter that imports the module gets its own state: its own
 * exception classes, heap types and caches.  Nothing here is shared
 * between interpreters; process-global state lives in the registries of
 * registry.c, xidata.c and queue.c, which never hold a PyObject*.
 */
#ifndef SBI_STATE_H
#define SBI_STATE_H

#include "common.h"

typedef struct {
    /* exception classes */
    PyObject *InterpreterError;
    PyObject *InterpreterNotFoundError;
    PyObject *ExecutionFailed;
    PyObject *NotShareableError;
    PyObject *QueueError;
    PyObject *QueueNotFoundError;
    PyObject *QueueEmpty;  // set by subinterpreters._queues
    PyObject *QueueFull;   // set by subinterpreters._queues
    PyObject *ItemInterpreterDestroyed;
    PyObject *RuntimeError;  // the builtins, for the error table
    PyObject *ValueError;
    PyObject *OverflowError;
    PyObject *BrokenBarrierError;  // threading's, loaded on first need

    /* heap types */
    PyTypeObject *InterpreterType;
    PyTypeObject *SharedBufferType;
    PyTypeObject *QueueType;
    PyTypeObject *QueueWatchType;  // queue_aio.c
    PyTypeObject *QueueItemType;   // queue_aio.c
    PyTypeObject *SyncTypes[7];    // by sbi_sync_kind (sync_type.c)
    PyTypeObject *SharedDictType;

    /* per-interpreter caches */
    PyObject *interp_cache;     // {id: weakref to Interpreter}
    PyObject *queue_cache;      // {id: weakref to Queue}
    PyObject *shared_cache;     // {id: weakref to a sync object/SharedDict}
    PyObject *unbound_objects;  // (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE)
} sbi_state;

/* The state of module object m (never NULL for our module). */
static inline sbi_state *
sbi_state_of(PyObject *m)
{
    void *st = PyModule_GetState(m);
    assert(st != NULL);
    return (sbi_state *)st;
}

/* module.c: our module definition, before any module object exists.
 * Any thread. */
void sbi_state_register_def(PyModuleDef *def);

/* The state of our module in the current interpreter, importing the
 * module there if needed.  Borrowed; NULL with an exception on failure.
 * Needs an attached thread state. */
sbi_state *sbi_state_current(void);

/* The state reached from a heap type defined by this module (in methods
 * of our types).  Borrowed, never NULL. */
sbi_state *sbi_state_from_type(PyTypeObject *tp);

/* Per-interpreter C state kept in the current interpreter's state dict
 * (PyInterpreterState_GetDict) under key, so it exists in interpreters
 * that never imported the module and dies with the interpreter.  On first
 * use a zeroed block of size bytes is made and init() run on it (a
 * failure discards it); clear() releases what it holds when the
 * interpreter's dict is cleared.  key must be a static string.  Borrowed
 * pointer, or NULL with an exception.  Thread state attached. */
void *sbi_state_local(const char *key, size_t size, int (*init)(void *),
                      void (*clear)(void *));

/* hash() of an id, as hash(int(id)) (Interpreter and Queue). */
Py_hash_t sbi_state_hash_id(int64_t id);

/* Raise the exception of raw error code err (an SBI_ERR_*: the table is
 * SBI_ERR_MAP in common.h) about the interpreter or queue id; op names
 * the operation refused, for the messages that say it.  The one place
 * error codes become exceptions.  Always returns NULL. */
PyObject *sbi_state_raise(sbi_state *st, int err, int64_t id, const char *op);

/* Per-interpreter weak caches {key: weakref to object}, one object per
 * process-global id in each interpreter (queues, shared objects).
 * get: a new reference to the live cached object, or NULL (*err = 0 if
 * there is none, -1 with an exception on failure).  put: 0, or -1 with
 * an exception.  forget: drop key's entry if its object is dead (from
 * the object's dealloc; never fails, errors are unraisable). */
PyObject *sbi_state_cache_get(PyObject *cache, PyObject *key, int *err);
int sbi_state_cache_put(PyObject *cache, PyObject *key, PyObject *obj);
void sbi_state_cache_forget(PyObject *cache, int64_t id);

/* Parse the vectorcall arguments of a METH_FASTCALL | METH_KEYWORDS
 * function: ntotal parameters named names, in order; the first npos may
 * be positional, the rest are keyword-only; the first nreq are required.
 * out[i] receives a borrowed reference, or NULL when not given.  0, or
 * -1 with TypeError. */
int sbi_state_parse_args(const char *fname, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames,
                         const char *const *names, int npos, int nreq,
                         int ntotal, PyObject **out);

/* Return modname.funcname(self, *args, **kwargs) for the vectorcall
 * arguments of a METH_FASTCALL | METH_KEYWORDS method: how a method of
 * one of our C types hands over to Python glue (the asyncio coroutines of
 * subinterpreters._aio).  New reference, or NULL with an exception. */
PyObject *sbi_state_forward(const char *modname, const char *funcname,
                            PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames);

/* Register the function that loads exception classes a higher layer
 * creates on first use (queue_type.c: QueueEmpty and QueueFull come from
 * subinterpreters._queues): sbi_state_raise() calls it when err's class
 * is not loaded yet, and falls back to the table's fallback class,
 * chaining the failure, if it fails.  It returns 0, or -1 with an
 * exception.  Several may be registered (each loads its own classes).
 * Module init; the same functions in every interpreter. */
void sbi_state_register_loader(int (*load)(sbi_state *st));

#endif /* SBI_STATE_H */
