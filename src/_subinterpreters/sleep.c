/* sleep.c -- time.sleep() for our interpreters.
 *
 * CPython's time.sleep() in a thread other than the main thread of the
 * main interpreter sleeps its full length whatever happens: a
 * KeyboardInterrupt from Interpreter.interrupt() (an asynchronous
 * exception), exec(timeout=) or Ctrl-C forwarded by sigint.c is only seen
 * once it returns.  Ours sleeps on a condition variable registered with
 * wake.c, which those kick, so the interrupt is raised at once; it keeps
 * time.sleep()'s argument checks, audit event (3.13+), rounding and clock
 * (monotonic), and sleeps again when kicked for nothing.  close() does
 * not cut it short: it waits for threads, as CPython's does.
 *
 * Calls wake.c, sigint.c, interrupt.c and state.c (layers: docs/design.md).
 */
#include "sleep.h"
#include "interrupt.h"
#include "sigint.h"
#include "state.h"
#include "wake.h"
#include <math.h>
#include <sched.h>

/* What a sleeping thread waits on: nobody signals it, wake.c kicks it.
 * On the heap (as sync.c's waits): a thread ended by CPython while it
 * sleeps (a daemon thread at exit) leaves it registered. */
typedef struct {
    sbi_mutex mutex;
    sbi_cond cond;
    sbi_wake wake;
} sleeper;

/* Sleep until deadline (monotonic ns), kicked awake by interrupts.  0 at
 * the deadline, -1 with an exception (an interrupt, a signal handler, the
 * interpreter closing).  Thread state attached; the GIL is released while
 * sleeping. */
static int
sleep_until(int64_t deadline)
{
    sleeper *s = PyMem_RawMalloc(sizeof(*s));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (sbi_mutex_init(&s->mutex) < 0) {
        PyMem_RawFree(s);
        PyErr_NoMemory();
        return -1;
    }
    if (sbi_cond_init(&s->cond) < 0) {
        sbi_mutex_fini(&s->mutex);
        PyMem_RawFree(s);
        PyErr_NoMemory();
        return -1;
    }
    int rc = 0;
    for (;;) {
        // An interpreter being closed refuses registration: close() waits
        // for its threads, and a sleep ends on its own, so it sleeps on,
        // unregistered, as CPython's does.
        int registered = sbi_wake_begin(&s->wake, &s->mutex, &s->cond) == 0;
        int armed = registered ? sbi_sigint_wait_begin() : 0;
        int timed_out = 0;
        if (PyErr_CheckSignals() < 0 || Py_MakePendingCalls() < 0 ||
            sbi_interrupt_check() < 0)
        {
            rc = -1;
        }
        else {
            Py_BEGIN_ALLOW_THREADS
            sbi_mutex_lock(&s->mutex);
            while (!(registered && s->wake.kicked) && !timed_out) {
                timed_out =
                    sbi_cond_wait_until(&s->cond, &s->mutex, deadline) != 0;
            }
            sbi_mutex_unlock(&s->mutex);
            Py_END_ALLOW_THREADS
        }
        if (armed) {
            sbi_sigint_wait_end();
        }
        if (registered) {
            sbi_wake_end(&s->wake);
        }
        if (rc < 0 || timed_out) {
            break;
        }
        // Kicked: the next round raises what kicked it, or sleeps on.
    }
    sbi_cond_fini(&s->cond);
    sbi_mutex_fini(&s->mutex);
    PyMem_RawFree(s);
    return rc;
}

PyDoc_STRVAR(sleep_doc,
             "sleep($module, seconds, /)\n--\n\n"
             "Delay execution for a given number of seconds.  The argument "
             "may be a floating-point number for subsecond precision.\n\n"
             "(subinterpreters: Interpreter.interrupt(), exec(timeout=) and "
             "Ctrl-C wake it at once.)");

static PyObject *
sleep_impl(PyObject *unused, PyObject *arg)
{
    if (SBI_AUDIT_TIME_SLEEP && PySys_Audit("time.sleep", "O", arg) < 0) {
        return NULL;
    }
    double secs;
    if (PyFloat_Check(arg)) {
        secs = PyFloat_AS_DOUBLE(arg);
        if (isnan(secs)) {
            PyErr_SetString(PyExc_ValueError,
                            "Invalid value NaN (not a number)");
            return NULL;
        }
    }
    else if (PyIndex_Check(arg)) {
        PyObject *n = PyNumber_Index(arg);  // numpy.int64 too
        secs = n ? PyLong_AsDouble(n) : -1.0;
        Py_XDECREF(n);
        if (secs == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        // As CPython: only floats and integers (not Decimal, not str).
        PyErr_Format(PyExc_TypeError,
                     "'%.200s' object cannot be interpreted as an integer",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (secs < 0) {
        PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
        return NULL;
    }
    if (secs == 0) {
        // As CPython: give the GIL and the CPU away once.
        Py_BEGIN_ALLOW_THREADS(void)
        sched_yield();
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int64_t now = sbi_monotonic_ns();
    double ns = ceil(secs * 1e9);  // as CPython: rounded up
    if (!(ns < (double)(INT64_MAX - now))) {
        PyErr_SetString(PyExc_OverflowError,
                        "timestamp too large to convert to C _PyTime_t");
        return NULL;
    }
    if (sleep_until(now + (int64_t)ns) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef sleep_def = {"sleep", sleep_impl, METH_O, sleep_doc};

void
sbi_sleep_install(void)
{
    PyObject *time = PyImport_ImportModule("time");
    PyObject *name = time ? PyUnicode_FromString("time") : NULL;
    PyObject *func = name ? PyCFunction_NewEx(&sleep_def, NULL, name) : NULL;
    if (func == NULL || PyObject_SetAttrString(time, "sleep", func) < 0) {
        sbi_compat_write_unraisable("installing time.sleep");
    }
    Py_XDECREF(func);
    Py_XDECREF(name);
    Py_XDECREF(time);
}
