/* session.c -- a session: the calling OS thread switched into one of
 * our interpreters (a cached thread state per thread), marked as running
 * its __main__, and switched back.  Also the call template that runs a
 * callable from a module-level frame on __main__.
 *
 * Calls registry.c, sigint.c, shbuf.c (shared buffers drained at entry)
 * and state.c (layers: docs/design.md).  Reaping an interpreter whose
 * last owner went away while it ran is left to the caller
 * (sbi_lifecycle_leave()), which sits above.
 *
 * Lock: sbi_registry.mutex (leaf).
 */
#include "session.h"
#include "sigint.h"
#include "shbuf.h"

#include <string.h>

/* Take the running flag of interpreter id for this thread.  Its entry,
 * or NULL with an exception set. */
static sbi_entry *
claim_running(sbi_state *st, int64_t id, const char *op)
{
    int err = 0;
    int daemon = 0;
    PyInterpreterState *cur = PyInterpreterState_Get();
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e == NULL || e->closing) {
        err = (id == 0 || id == sbi_registry_pid_of(cur)) ? SBI_ERR_NOT_OURS
                                                          : SBI_ERR_NOT_FOUND;
    }
    else if (e->running_tid != 0) {
        err = SBI_ERR_ALREADY_RUNNING;
    }
    else if (sbi_registry.shutting_down) {
        // The exit hook is destroying interpreters: daemon threads must
        // not start new sessions behind it.
        err = SBI_ERR_SHUTTING_DOWN;
        daemon = cur == PyInterpreterState_Main() &&
                 PyThread_get_thread_ident() != sbi_registry.exit_ident;
    }
    else {
        e->running_tid = PyThread_get_thread_ident();
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (daemon) {
        // A thread of the main interpreter other than the one running the
        // exit hook: a daemon thread (the others were joined before
        // atexit).  InterpreterError would make it print a traceback while
        // the main thread finalizes sys.stderr, which 3.14 turns into
        // "Fatal Python error: _enter_buffered_busy"; SystemExit ends the
        // thread silently (threading ignores it), running its finally
        // blocks on the way.  Threads of subinterpreters still get the
        // error.
        PyErr_Format(PyExc_SystemExit,
                     "the process is exiting: a daemon thread cannot enter "
                     "interpreter %lld",
                     (long long)id);
        return NULL;
    }
    if (err != 0) {
        return sbi_state_raise(st, err, id, op), NULL;
    }
    return e;
}

/* This thread's cached thread state for e (running flag held), or a new
 * one, cached.  A thread state the cache let go is put in *drop (NULL
 * if none), for deleting once attached to e.  NULL with MemoryError. */
static PyThreadState *
cached_tstate(sbi_entry *e, PyThreadState *drop[2])
{
    uint64_t me = sbi_registry_thread_serial();
    drop[0] = drop[1] = NULL;
    for (int i = 0; i < e->ncache; i++) {
        if (e->cache[i].serial == me) {
            return e->cache[i].tstate;
        }
    }
    PyThreadState *ts = PyThreadState_New(e->interp);
    if (ts == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    // A cached thread state of a finished thread whose ident was reused
    // would confuse PyThreadState_SetAsyncExc(): drop it.
    unsigned long ident = PyThread_get_thread_ident();
    for (int i = 0; i < e->ncache; i++) {
        if (e->cache[i].ident == ident) {
            drop[0] = e->cache[i].tstate;
            e->cache[i] = e->cache[--e->ncache];
            break;
        }
    }
    if (e->ncache == SBI_TSTATE_CACHE) {
        // Evict the oldest: most likely a thread that is gone.
        drop[1] = e->cache[0].tstate;
        memmove(&e->cache[0], &e->cache[1],
                sizeof(e->cache[0]) * (SBI_TSTATE_CACHE - 1));
        e->ncache--;
    }
    e->cache[e->ncache].serial = me;
    e->cache[e->ncache].ident = ident;
    e->cache[e->ncache].tstate = ts;
    e->ncache++;
    return ts;
}

int
sbi_session_enter(sbi_state *st, int64_t id, sbi_session *s, const char *op)
{
    sbi_entry *e = claim_running(st, id, op);
    if (e == NULL) {
        return -1;
    }
    s->entry = e;
    s->sigint = 0;
    if (e->interp == PyInterpreterState_Get()) {
        s->caller = NULL;
        s->tstate = PyThreadState_Get();
    }
    else {
        PyThreadState *drop[2];
        s->tstate = cached_tstate(e, drop);
        if (s->tstate == NULL) {
            sbi_mutex_lock_py(&sbi_registry.mutex);
            e->running_tid = 0;
            sbi_mutex_unlock(&sbi_registry.mutex);
            return -1;
        }
        s->sigint = sbi_sigint_watch_begin(e->id);
        s->caller = PyThreadState_Swap(s->tstate);
        // Not in use: only the thread with the running flag enters e.  The
        // keeper merely leaves the cache.
        for (int i = 0; i < 2; i++) {
            if (drop[i] != NULL && drop[i] != e->keeper) {
                PyThreadState_Clear(drop[i]);
                PyThreadState_Delete(drop[i]);
            }
        }
    }
    sbi_mutex_lock(&sbi_registry.mutex);
    e->running_tstate = s->tstate;
    s->serial = ++e->session_serial;
    sbi_mutex_unlock(&sbi_registry.mutex);
    sbi_shbuf_drain_current();
    return 0;
}

/* Switch back; 1 if the caller must reap (see session.h). */
int
sbi_session_exit(sbi_session *s)
{
    assert(!PyErr_Occurred());
    sbi_entry *e = s->entry;
    int pending;
    sbi_mutex_lock(&sbi_registry.mutex);
    e->running_tstate = NULL;
    pending = e->interrupt_pending;
    e->interrupt_pending = 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (pending) {
        // An interrupt that arrived too late must not hit a later session.
        (void)PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
        PyErr_Clear();
    }
    if (s->sigint) {
        sbi_sigint_watch_end();
    }
    if (s->caller != NULL) {
        // The thread state stays cached in e for this thread's next visit.
        (void)PyThreadState_Swap(s->caller);
    }
    int reap;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    e->running_tid = 0;
    reap = e->orphaned == SBI_ORPHAN_REAP && e->refs == 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return reap;
}

/* __main__.__dict__ of the current interpreter.  New reference (code
 * run through it may replace sys.modules['__main__']). */
PyObject *
sbi_session_main_dict(void)
{
    PyObject *mod = PyImport_AddModuleRef("__main__");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *d = Py_XNewRef(PyModule_GetDict(mod));
    Py_DECREF(mod);
    return d;
}

/* ---------------------------------------------------------------------
 * Running a call with a module-level frame.
 *
 * 3.12 and 3.13 lack 3.14's fall-back of eval()/exec()/dir() to the
 * running __main__ when there is no Python frame, so the call runs inside
 * a tiny eval-mode code object executed with globals = locals =
 * __main__.__dict__.  Its bytecode loads a per-interpreter list constant
 * (the "slots": callable, args, kwargs) instead of a name, so nothing is
 * added to __main__ and dir() inside the callee sees __main__'s names.
 */
typedef struct {
    PyObject *code;
    PyObject *slots;  // [callable, args, kwargs] while a call runs
} call_template;

static void
call_template_clear(void *p)
{
    call_template *t = p;
    Py_CLEAR(t->code);
    Py_CLEAR(t->slots);
}

static int
call_template_build(void *p)
{
    call_template *t = p;
    int rc = -1;
    PyObject *code = NULL, *raw = NULL, *names = NULL, *consts = NULL;
    PyObject *newconsts = NULL, *newraw = NULL, *replace = NULL;
    PyObject *kwargs = NULL;
    code = Py_CompileString("__sbi__[0](*__sbi__[1], **__sbi__[2])",
                            "<subinterpreters call>", Py_eval_input);
    if (code == NULL) {
        goto done;
    }
    raw = PyCode_GetCode((PyCodeObject *)code);
    names = PyObject_GetAttrString(code, "co_names");
    consts = PyObject_GetAttrString(code, "co_consts");
    if (raw == NULL || names == NULL || consts == NULL) {
        goto done;
    }
    Py_ssize_t nconsts = PyTuple_GET_SIZE(consts);
    if (nconsts > 255) {
        PyErr_SetString(PyExc_SystemError, "call template too large");
        goto done;
    }
    t->slots = PyList_New(3);
    if (t->slots == NULL) {
        goto done;
    }
    for (int i = 0; i < 3; i++) {
        PyList_SET_ITEM(t->slots, i, Py_NewRef(Py_None));
    }
    newconsts = PyTuple_New(nconsts + 1);
    if (newconsts == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < nconsts; i++) {
        PyTuple_SET_ITEM(newconsts, i, Py_NewRef(PyTuple_GET_ITEM(consts, i)));
    }
    PyTuple_SET_ITEM(newconsts, nconsts, Py_NewRef(t->slots));
    newraw = PyBytes_FromStringAndSize(PyBytes_AS_STRING(raw),
                                       PyBytes_GET_SIZE(raw));
    if (newraw == NULL) {
        goto done;
    }
    unsigned char *b = (unsigned char *)PyBytes_AS_STRING(newraw);
    int patched = 0;
    for (Py_ssize_t i = 0; i + 1 < PyBytes_GET_SIZE(newraw); i += 2) {
        if (b[i] == LOAD_NAME && b[i + 1] < PyTuple_GET_SIZE(names) &&
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(names, b[i + 1]),
                                             "__sbi__") == 0)
        {
            b[i] = LOAD_CONST;
            b[i + 1] = (unsigned char)nconsts;
            patched++;
        }
    }
    if (patched != 3) {
        PyErr_Format(PyExc_SystemError,
                     "unexpected call template bytecode (%d)", patched);
        goto done;
    }
    replace = PyObject_GetAttrString(code, "replace");
    kwargs =
        Py_BuildValue("{sOsO}", "co_code", newraw, "co_consts", newconsts);
    if (replace == NULL || kwargs == NULL) {
        goto done;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        goto done;
    }
    t->code = PyObject_Call(replace, empty, kwargs);
    Py_DECREF(empty);
    rc = t->code == NULL ? -1 : 0;
done:
    Py_XDECREF(code);
    Py_XDECREF(raw);
    Py_XDECREF(names);
    Py_XDECREF(consts);
    Py_XDECREF(newconsts);
    Py_XDECREF(newraw);
    Py_XDECREF(replace);
    Py_XDECREF(kwargs);
    return rc;
}

static call_template *
call_template_get(void)
{
    return sbi_state_local("sbi.calltpl", sizeof(call_template),
                           call_template_build, call_template_clear);
}

/* Call func(*args, **kwargs) from a module-level frame on __main__.
 * args may be NULL (no args), kwargs NULL or a dict.  New ref or NULL. */
PyObject *
sbi_session_call_in_main(PyObject *ns, PyObject *func, PyObject *args,
                         PyObject *kwargs)
{
    call_template *t = call_template_get();
    if (t == NULL) {
        return NULL;
    }
    if (PyList_GET_ITEM(t->slots, 0) != Py_None) {
        // Re-entered (the callee itself called back into this
        // interpreter's __main__ from a thread we did not refuse): fall
        // back to a frameless call.
        if (args != NULL) {
            return PyObject_Call(func, args, kwargs);
        }
        PyObject *empty = PyTuple_New(0);
        PyObject *r = empty ? PyObject_Call(func, empty, kwargs) : NULL;
        Py_XDECREF(empty);
        return r;
    }
    PyObject *empty_args = NULL, *empty_kw = NULL;
    if (args == NULL) {
        args = empty_args = PyTuple_New(0);
    }
    if (kwargs == NULL) {
        kwargs = empty_kw = PyDict_New();
    }
    if (args == NULL || kwargs == NULL) {
        Py_XDECREF(empty_args);
        Py_XDECREF(empty_kw);
        return NULL;
    }
    PyList_SetItem(t->slots, 0, Py_NewRef(func));
    PyList_SetItem(t->slots, 1, Py_NewRef(args));
    PyList_SetItem(t->slots, 2, Py_NewRef(kwargs));
    PyObject *res = PyEval_EvalCode(t->code, ns, ns);
    PyObject *exc = PyErr_GetRaisedException();
    for (int i = 0; i < 3; i++) {
        PyList_SetItem(t->slots, i, Py_NewRef(Py_None));
    }
    PyErr_SetRaisedException(exc);
    Py_XDECREF(empty_args);
    Py_XDECREF(empty_kw);
    return res;
}
