/* interrupt.c -- interrupting the code an interpreter of ours runs:
 * Interpreter.interrupt(), exec(timeout=) through a watchdog thread, and
 * the check blocking waits make.
 *
 * KeyboardInterrupt is raised in the thread running an interpreter's
 * __main__ with PyThreadState_SetAsyncExc(), which needs the target's
 * GIL: the interrupter attaches a temporary thread state there (the
 * running thread yields the GIL at its next eval-breaker check, within the
 * switch interval).  Code blocked in a C call sees the exception only
 * when it returns to Python.
 *
 * Calls registry.c and wake.c (layers: docs/design.md).  Lock: sbi_registry.mutex (leaf); a
 * watchdog's own mutex, never held with the registry's.
 */
#include "interrupt.h"
#include "wake.h"
#include "state.h"
#include <opcode.h>

#include <string.h>
#include <unistd.h>

/* Note that an interrupt is delivered to e's session (target GIL held);
 * returns the thread to interrupt, or 0 if e is idle or the session is
 * not the expected one (serial 0: any). */
static unsigned long
interrupt_claim(sbi_entry *e, uint64_t serial, uint64_t *claimed, int unwind)
{
    unsigned long tid = 0;
    sbi_mutex_lock(&sbi_registry.mutex);
    if (e->running_tstate != NULL && e->user_code &&
        (serial == 0 || serial == e->session_serial))
    {
        tid = e->running_tid;
        e->interrupt_pending = 1;
        e->interrupt_unwind |= unwind;
        *claimed = e->session_serial;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return tid;
}

static PyObject *unwind_type(void);

/* Claim e's session and raise the interrupt in its thread: plain
 * KeyboardInterrupt, or with unwind the _Unwind class (see "Unwinding").
 * Attached to e's interpreter.  Returns the thread interrupted, 0 if none
 * (the session is not the one expected, or not in the caller's code). */
static unsigned long
interrupt_deliver(sbi_entry *e, uint64_t serial, uint64_t *claimed, int unwind)
{
    PyObject *exc = unwind ? unwind_type() : PyExc_KeyboardInterrupt;
    if (exc == NULL) {
        PyErr_Clear();
        exc = PyExc_KeyboardInterrupt;
    }
    unsigned long tid = interrupt_claim(e, serial, claimed, unwind);
    if (tid != 0 && PyThreadState_SetAsyncExc(tid, exc) <= 0) {
        tid = 0;
    }
    return tid;
}

/* sbi_interrupt_interp(), setting *claimed to the serial of the session
 * interrupted; with unwind, as the first step of unwinding. */
static int
interrupt_interp(int64_t id, uint64_t serial, int at_exit, uint64_t *claimed,
                 int unwind)
{
    PyThreadState *cur = PyThreadState_GetUnchecked();
    sbi_mutex_lock_any(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e == NULL || e->closing || (sbi_registry.shutting_down && !at_exit)) {
        sbi_mutex_unlock(&sbi_registry.mutex);
        return e == NULL || e->closing ? SBI_ERR_NOT_FOUND : 0;
    }
    // A session that is starting (flag taken, not yet in the caller's
    // code) is waited for briefly, so interrupt() right after
    // is_running() works.
    for (int tries = 0; e->running_tstate == NULL || !e->user_code; tries++) {
        int starting = e->running_tid != 0 && !e->closing;
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (!starting || tries >= SBI_INTERRUPT_START_TRIES) {
            return 0;
        }
        if (cur != NULL) {
            Py_BEGIN_ALLOW_THREADS
            usleep(SBI_INTERRUPT_START_POLL_US);
            Py_END_ALLOW_THREADS
        }
        else {
            usleep(SBI_INTERRUPT_START_POLL_US);
        }
        sbi_mutex_lock_any(&sbi_registry.mutex);
        e = sbi_registry_find(id);
        if (e == NULL || e->closing) {
            sbi_mutex_unlock(&sbi_registry.mutex);
            return SBI_ERR_NOT_FOUND;
        }
    }
    e->interrupters++;  // pins e: close() refuses while we work
    sbi_mutex_unlock(&sbi_registry.mutex);
    int delivered = 0;
    unsigned long tid = 0;
    if (cur != NULL && PyThreadState_GetInterpreter(cur) == e->interp) {
        tid = interrupt_deliver(e, serial, claimed, unwind);
    }
    else {
        PyThreadState *ts = PyThreadState_New(e->interp);
        if (ts != NULL) {
            PyThreadState *prev = PyThreadState_Swap(ts);
            /* attached to the target */
            tid = interrupt_deliver(e, serial, claimed, unwind);
            // Deleted while current, holding the target's GIL: a thread of
            // the target walking its thread states (the gh-158364 shield)
            // cannot meet it freed.
            PyThreadState_Clear(ts);
            PyThreadState_DeleteCurrent();
            (void)PyThreadState_Swap(prev);
        }
    }
    delivered = tid != 0;
    if (delivered) {
        // A wait of ours (sync primitives) sees the interrupt at once.
        sbi_wake_kick_thread(tid);
    }
    sbi_mutex_lock_any(&sbi_registry.mutex);
    e->interrupters--;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return delivered;
}

int
sbi_interrupt_interp(int64_t id, uint64_t serial, int at_exit)
{
    uint64_t claimed;
    return interrupt_interp(id, serial, at_exit, &claimed, 0);
}

/* -------------------------------------------------------------------
 * Unwinding: an interrupt that cannot be caught.
 *
 * The first interrupt is raised as the class _Unwind, a subclass of
 * KeyboardInterrupt whose __new__ runs in the interrupted thread (the eval
 * loop instantiates an asynchronous exception's class there): it sets the
 * trace function unwind_trace() on that thread and returns a plain
 * KeyboardInterrupt, which is what the code and the caller see.  (A wait
 * of ours that consumes the interrupt, sbi_interrupt_check(), sets it
 * instead.)  The trace
 * raises KeyboardInterrupt again at every line the thread starts while it
 * is not handling a KeyboardInterrupt (or another exception that is not an
 * Exception: GeneratorExit, SystemExit): an except clause that swallows it
 * is interrupted at the first line after it, while finally blocks, except
 * bodies and __exit__ methods, which run with the KeyboardInterrupt
 * handled, run.  A thread of its own sends _Unwind again every
 * SBI_UNWIND_GRACE_NS, which stops such a block if it loops.  When the
 * caller's code has ended (sbi_interrupt_user_code()), the thread's
 * previous trace function is put back.
 */

/* The tracer: the trace object of unwind_trace(), keeping what it
 * replaced.  Set again from Python (sys.settrace(sys.gettrace()), the
 * save-and-restore idiom of debuggers), its first call puts unwind_trace()
 * back; outside the interrupted call, or in another thread, it does
 * nothing. */
typedef struct {
    PyObject_HEAD
    Py_tracefunc prev_func;
    PyObject *prev_obj;
    PyThreadState *owner;  // the interrupted thread's (compared only)
    int live;              // until the interrupted call has returned
} TracerObject;

/* The classes of the current interpreter, kept in its state dict (made on
 * first use, by whichever thread interrupts first: no import). */
typedef struct {
    PyObject *unwind;  // _Unwind
    PyObject *tracer;  // _UnwindTracer
} unwind_types;

static unwind_types *unwind_types_get(void);

/* Is the current thread handling a KeyboardInterrupt (or another
 * exception that is not an Exception: GeneratorExit, SystemExit), also
 * as the context of what it handles now?  Then the code is a finally
 * block, an except body or an __exit__ on the way out: it runs. */
static int
unwind_handling(void)
{
    PyObject *exc = PyErr_GetHandledException();
    int handling = 0;
    for (int hops = 0; exc != NULL && !handling && hops < 16; hops++) {
        handling = !PyErr_GivenExceptionMatches(exc, PyExc_Exception);
        PyObject *next = PyException_GetContext(exc);
        Py_DECREF(exc);
        exc = next;
    }
    Py_XDECREF(exc);
    return handling;
}

/* Does frame stand on the first instruction of an exception handler
 * (PUSH_EXC_INFO)?  A LINE event fires there before the exception counts
 * as handled: interrupting there would skip a with block's __exit__. */
static int
at_handler_start(PyFrameObject *frame)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *bytes = code ? PyCode_GetCode(code) : NULL;
    int lasti = PyFrame_GetLasti(frame);
    int at = bytes != NULL && lasti >= 0 && lasti < PyBytes_GET_SIZE(bytes) &&
             (unsigned char)PyBytes_AS_STRING(bytes)[lasti] == PUSH_EXC_INFO;
    Py_XDECREF(bytes);
    Py_XDECREF(code);
    PyErr_Clear();
    return at;
}

static int
tracer_active(PyObject *obj)
{
    TracerObject *t = (TracerObject *)obj;
    return t->live && t->owner == PyThreadState_Get();
}

static int
unwind_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    // Lines only: a generator closed on the way out is resumed with a
    // CALL event before it handles its GeneratorExit.
    if (what != PyTrace_LINE || !tracer_active(obj) || unwind_handling() ||
        at_handler_start(frame))
    {
        return 0;
    }
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return -1;
}

static PyObject *
Tracer_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    // Set from Python: raising here would make CPython drop the tracer
    // (and what it keeps); put the C function back instead, which traces
    // the lines from the next one on.
    if (tracer_active(self)) {
        PyEval_SetTrace(unwind_trace, self);
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

static void
Tracer_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    Py_XDECREF(((TracerObject *)op)->prev_obj);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyType_Slot Tracer_slots[] = {
    {Py_tp_call, Tracer_call},
    {Py_tp_dealloc, Tracer_dealloc},
    {Py_tp_doc, "The trace of Interpreter.interrupt(unwind=True)."},
    {0, NULL},
};

static PyType_Spec Tracer_spec = {
    .name = "subinterpreters._core._UnwindTracer",
    .basicsize = sizeof(TracerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Tracer_slots,
};

/* Is the current thread running the caller's code of a session of ours in
 * this interpreter?  Only there does _Unwind set the trace (the class is
 * reachable from KeyboardInterrupt.__subclasses__()).  No error. */
static int
unwind_in_session(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    unsigned long me = PyThread_get_thread_ident();
    int in = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->interp == cur) {
            in = e->running_tid == me && e->user_code;
            break;
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return in;
}

/* Is obj the tracer of the current interpreter?  No error. */
static int
is_tracer(PyObject *obj)
{
    // The name first: no lookup for every other trace object.
    if (obj == NULL ||
        strcmp(Py_TYPE(obj)->tp_name, "subinterpreters._core._UnwindTracer"))
    {
        return 0;
    }
    unwind_types *t = unwind_types_get();
    if (t == NULL) {
        PyErr_Clear();
        return 0;
    }
    return Py_IS_TYPE(obj, (PyTypeObject *)t->tracer);
}

/* Set unwind_trace() on the current thread, keeping the trace function it
 * replaces.  No error (the interrupt is raised anyway, catchable). */
static void
unwind_trace_install(void)
{
    PyThreadState *ts = PyThreadState_Get();
    if (ts->c_tracefunc == unwind_trace || !unwind_in_session()) {
        return;
    }
    if (is_tracer(ts->c_traceobj) && tracer_active(ts->c_traceobj)) {
        // Set again from Python (sys.settrace(sys.gettrace())), which
        // traces new frames only: ours again, keeping what it replaced.
        PyEval_SetTrace(unwind_trace, ts->c_traceobj);
        PyErr_Clear();
        return;
    }
    unwind_types *t = unwind_types_get();
    TracerObject *tracer =
        t ? PyObject_New(TracerObject, (PyTypeObject *)t->tracer) : NULL;
    if (tracer == NULL) {
        PyErr_Clear();
        return;
    }
    tracer->prev_func = ts->c_tracefunc;
    tracer->prev_obj = Py_XNewRef(ts->c_traceobj);
    tracer->owner = ts;
    tracer->live = 1;
    PyEval_SetTrace(unwind_trace, (PyObject *)tracer);
    Py_DECREF(tracer);
    PyErr_Clear();  // an audit hook refusing sys.settrace
}

/* Put back what unwind_trace_install() replaced on the current thread --
 * also when the code set our tracer again through sys.settrace() --
 * keeping the exception set, if any. */
static void
unwind_trace_remove(void)
{
    PyThreadState *ts = PyThreadState_Get();
    int ours = is_tracer(ts->c_traceobj);
    if (!ours && ts->c_tracefunc != unwind_trace) {
        return;  // every call that was not unwound: nothing to save
    }
    PyObject *exc = PyErr_GetRaisedException();
    if (ours) {
        TracerObject *tracer = (TracerObject *)Py_NewRef(ts->c_traceobj);
        tracer->live = 0;  // a copy kept by the code does nothing
        PyEval_SetTrace(tracer->prev_func, tracer->prev_obj);
        Py_DECREF(tracer);
        PyErr_Clear();
    }
    if (ts->c_tracefunc == unwind_trace) {
        PyEval_SetTrace(NULL, NULL);  // could not put the old one back
        PyErr_Clear();
    }
    PyErr_SetRaisedException(exc);
}

static PyObject *
unwind_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    unwind_trace_install();
    return PyObject_CallNoArgs(PyExc_KeyboardInterrupt);
}

static PyType_Slot Unwind_slots[] = {
    {Py_tp_new, unwind_new},
    {Py_tp_doc, "Raised by Interpreter.interrupt(unwind=True); becomes a "
                "KeyboardInterrupt."},
    {0, NULL},
};

static PyType_Spec Unwind_spec = {
    .name = "subinterpreters._core._Unwind",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Unwind_slots,
};

static int
unwind_types_init(void *p)
{
    unwind_types *t = p;
    // Made by whichever thread interrupts first, on a temporary thread
    // state: no collection may run the interpreter's finalizers there.
    int gc_was_on = PyGC_Disable();
    t->unwind =
        PyType_FromSpecWithBases(&Unwind_spec, PyExc_KeyboardInterrupt);
    t->tracer = t->unwind ? PyType_FromSpec(&Tracer_spec) : NULL;
    if (gc_was_on) {
        (void)PyGC_Enable();
    }
    if (t->tracer == NULL) {
        Py_CLEAR(t->unwind);
        return -1;
    }
    return 0;
}

static void
unwind_types_clear(void *p)
{
    unwind_types *t = p;
    Py_CLEAR(t->tracer);
    Py_CLEAR(t->unwind);
}

/* The classes of the current interpreter (borrowed block), or NULL with an
 * exception. */
static unwind_types *
unwind_types_get(void)
{
    return sbi_state_local("sbi.unwind", sizeof(unwind_types),
                           unwind_types_init, unwind_types_clear);
}

/* The _Unwind class of the current interpreter (borrowed), or NULL with
 * an exception. */
static PyObject *
unwind_type(void)
{
    unwind_types *t = unwind_types_get();
    return t != NULL ? t->unwind : NULL;
}

typedef struct {
    int64_t id;
    uint64_t serial;
} unwinder;

/* Mark (on) or unmark the unwinder of session serial of interpreter id:
 * on returns 1 if there was none (the caller starts one), else 0. */
static int
unwinder_mark(int64_t id, uint64_t serial, int on)
{
    int mine = 0;
    sbi_mutex_lock_any(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e != NULL) {
        if (on && e->unwinding != serial) {
            e->unwinding = serial;
            mine = 1;
        }
        else if (!on && e->unwinding == serial) {
            e->unwinding = 0;
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return mine;
}

static void *
unwinder_main(void *arg)
{
    unwinder u = *(unwinder *)arg;
    PyMem_RawFree(arg);
    uint64_t claimed;
    do {
        usleep((useconds_t)(SBI_UNWIND_GRACE_NS / 1000));
    } while (interrupt_interp(u.id, u.serial, 0, &claimed, 1) > 0);
    (void)unwinder_mark(u.id, u.serial, 0);
    return NULL;
}

int
sbi_interrupt_unwind(int64_t id)
{
    uint64_t claimed = 0;
    int r = interrupt_interp(id, 0, 0, &claimed, 1);
    if (r <= 0 || !unwinder_mark(id, claimed, 1)) {
        return r;  // nothing ran, or this session has its unwinder
    }
    unwinder *u = PyMem_RawMalloc(sizeof(*u));
    pthread_t th;
    if (u != NULL) {
        u->id = id;
        u->serial = claimed;
        if (pthread_create(&th, NULL, unwinder_main, u) == 0) {
            (void)pthread_detach(th);
            return r;
        }
        PyMem_RawFree(u);
    }
    (void)unwinder_mark(id, claimed, 0);
    return SBI_ERR_NOMEM;
}

void
sbi_interrupt_user_code(sbi_entry *e, int on)
{
    sbi_mutex_lock_py(&sbi_registry.mutex);
    e->user_code = on;
    int pending = !on && e->interrupt_pending;
    e->interrupt_pending = on ? e->interrupt_pending : 0;
    e->interrupt_unwind = on ? e->interrupt_unwind : 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (pending) {
        // Sent as the caller's code ended: it must not hit what follows.
        (void)PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
    }
    if (!on) {
        unwind_trace_remove();
    }
}

int
sbi_interrupt_check(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    unsigned long me = PyThread_get_thread_ident();
    int pending = 0;
    int unwind = 0;
    // The eval loop raised it already if nothing is left to raise: then
    // the flag is stale (one interrupt must not be raised twice).
    int unraised = PyThreadState_Get()->async_exc != NULL;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->interp == cur) {
            if (e->running_tid == me && e->interrupt_pending) {
                e->interrupt_pending = 0;
                pending = unraised;
                unwind = e->interrupt_unwind;
            }
            break;
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (!pending) {
        return 0;
    }
    (void)PyThreadState_SetAsyncExc(me, NULL);  // consumed here instead
    if (unwind) {
        unwind_trace_install();  // as _Unwind would have
    }
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return -1;
}

/* -------------------------------------------------------------------
 * exec(timeout=...): a watchdog thread interrupts the session when the
 * deadline passes (retrying until the interrupt lands or the session
 * ends).  It has no thread state except while sbi_interrupt_interp()
 * works.
 */
static void *
watchdog_main(void *arg)
{
    sbi_watchdog *w = arg;
    sbi_mutex_lock(&w->mutex);
    while (!w->done) {
        (void)sbi_cond_wait_until(&w->cond, &w->mutex, w->deadline_ns);
        if (w->done || sbi_monotonic_ns() < w->deadline_ns) {
            continue;
        }
        sbi_mutex_unlock(&w->mutex);
        uint64_t claimed;
        int r = interrupt_interp(w->id, w->serial, 0, &claimed, w->unwind);
        sbi_mutex_lock(&w->mutex);
        if (r > 0) {
            w->fired = 1;
        }
        if (r < 0 || (r > 0 && !w->unwind)) {
            break;
        }
        // Not landed yet (between two states), or unwinding: again.
        w->deadline_ns =
            sbi_monotonic_ns() +
            (w->fired ? SBI_UNWIND_GRACE_NS : SBI_WATCHDOG_RETRY_NS);
    }
    sbi_mutex_unlock(&w->mutex);
    return NULL;
}

int
sbi_watchdog_start(sbi_watchdog *w, int64_t id, uint64_t serial,
                   double timeout, int unwind)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->unwind = unwind;
    w->serial = serial;
    w->deadline_ns = sbi_monotonic_ns() + (int64_t)(timeout * 1e9);
    if (sbi_mutex_init(&w->mutex) < 0) {
        return -1;
    }
    if (sbi_cond_init(&w->cond) < 0) {
        sbi_mutex_fini(&w->mutex);
        return -1;
    }
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        sbi_cond_fini(&w->cond);
        sbi_mutex_fini(&w->mutex);
        return -1;
    }
    return 0;
}

int
sbi_watchdog_stop(sbi_watchdog *w)
{
    sbi_mutex_lock_py(&w->mutex);
    w->done = 1;
    sbi_cond_signal(&w->cond);
    sbi_mutex_unlock(&w->mutex);
    Py_BEGIN_ALLOW_THREADS(void)
    pthread_join(w->thread, NULL);
    Py_END_ALLOW_THREADS
    int fired = w->fired;
    sbi_cond_fini(&w->cond);
    sbi_mutex_fini(&w->mutex);
    return fired;
}
