/* sync_type.c -- the Python layer of the sync primitives: Lock, RLock,
 * Semaphore, BoundedSemaphore, Event, Condition and Barrier, with the
 * API of threading's classes of the same names, over sync.c.
 *
 * One heap type per kind, all shared objects (shobj.c: the layout, the
 * cache of one object per primitive per interpreter, crossing
 * interpreters as a handle).  Objects for the same primitive are the
 * same object in one interpreter, and equal (same id) everywhere.
 *
 * Registers with the layers below at module init: its types with
 * shobj.c and the loader of threading.BrokenBarrierError with state.c.
 *
 * Calls sync.c, shobj.c, xidata.c and state.c (layers: docs/design.md).
 */
#include "sync_type.h"
#include "sync.h"
#include "shobj.h"

#include <math.h>
#include <stddef.h>

_Static_assert(SBI_SYNC_NKINDS ==
                   sizeof(((sbi_state *)0)->SyncTypes) / sizeof(PyObject *),
               "sbi_state.SyncTypes has one slot per kind");

static const char *const kind_names[] = {
#define SBI_X(name, text) text,
    SBI_SYNC_KINDS(SBI_X)
#undef SBI_X
};

/* =====================================================================
 * Errors and arguments
 */

/* Load threading.BrokenBarrierError into st (registered loader). */
static int
load_broken_barrier(sbi_state *st)
{
    if (st->BrokenBarrierError != NULL) {
        return 0;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    st->BrokenBarrierError =
        PyObject_GetAttrString(threading, "BrokenBarrierError");
    Py_DECREF(threading);
    return st->BrokenBarrierError == NULL ? -1 : 0;
}

/* Raise err (negative) for primitive id; returns NULL. */
static PyObject *
sync_raise(sbi_state *st, int err, int64_t id)
{
    return sbi_state_raise(st, err, id, NULL);
}

/* Lock.acquire()'s timeout, as threading's C locks read it: a float, or
 * an integer (anything with __index__).  0, or -1 with TypeError /
 * ValueError (NaN). */
static int
lock_timeout_seconds(PyObject *obj, double *t)
{
    if (PyFloat_Check(obj)) {
        *t = PyFloat_AS_DOUBLE(obj);
    }
    else {
        PyObject *i = PyNumber_Index(obj);
        if (i == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Format(PyExc_TypeError,
                             "'%.200s' object cannot be interpreted as an "
                             "integer",
                             Py_TYPE(obj)->tp_name);
            }
            return -1;
        }
        *t = PyLong_AsDouble(i);
        Py_DECREF(i);
        if (*t == -1.0 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (isnan(*t)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -1;
    }
    return 0;
}

/* Timeouts of 31 years or more wait without a limit. */
#define SYNC_FOREVER 1e9

/* t seconds from now as a deadline (-1: none); t <= 0 (or NaN, which
 * threading's Python-level waits treat as not waiting): now. */
static int64_t
deadline_after(double t)
{
    if (t >= SYNC_FOREVER) {
        return -1;
    }
    return sbi_monotonic_ns() + (t > 0 ? (int64_t)(t * 1e9) : 0);
}

/* Lock.acquire()'s arguments (blocking=True, timeout=-1) to a deadline:
 * -1 for none.  0, or -1 with the exception threading raises. */
static int
lock_deadline(int blocking, PyObject *timeout, int64_t *deadline)
{
    double t = -1;
    if (timeout != NULL && lock_timeout_seconds(timeout, &t) < 0) {
        return -1;
    }
    if (!blocking && t != -1) {
        PyErr_SetString(PyExc_ValueError,
                        "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (t < 0 && t != -1) {
        PyErr_SetString(PyExc_ValueError,
                        "timeout value must be a non-negative number");
        return -1;
    }
    if (t > (double)PY_TIMEOUT_MAX / 1e6) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    *deadline = t == -1 ? -1 : deadline_after(t);
    return 0;
}

/* A timeout=None argument of the threading classes written in Python
 * (Event.wait(), Condition.wait(), Semaphore.acquire(), Barrier.wait()):
 * None (*t = -1) waits without a limit; any real number is accepted, and
 * a negative one (or NaN) does not wait (*t = 0). */
static int
wait_seconds(PyObject *timeout, double *t)
{
    *t = -1;
    if (timeout == NULL || timeout == Py_None) {
        return 0;
    }
    // Numbers only (threading's arithmetic on it takes no str).
    PyNumberMethods *nb = Py_TYPE(timeout)->tp_as_number;
    if (nb == NULL || (nb->nb_float == NULL && nb->nb_index == NULL)) {
        PyErr_Format(PyExc_TypeError,
                     "timeout must be a number or None, not '%.200s'",
                     Py_TYPE(timeout)->tp_name);
        return -1;
    }
    PyObject *f = PyNumber_Float(timeout);
    if (f == NULL) {
        return -1;
    }
    double v = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    *t = v > 0 ? v : 0;  // NaN compares false: 0
    return 0;
}

static int
wait_deadline(PyObject *timeout, int64_t *deadline)
{
    double t;
    if (wait_seconds(timeout, &t) < 0) {
        return -1;
    }
    *deadline = t < 0 ? -1 : deadline_after(t);
    return 0;
}

/* tp() takes no arguments: 0, or -1 with TypeError. */
static int
no_arguments(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) > 0 ||
        (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0))
    {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", tp->tp_name);
        return -1;
    }
    return 0;
}

/* =====================================================================
 * The object
 */
#define SYNC(op) ((sbi_sync *)SBI_SHOBJ(op))
#define SYNC_ID(op) (SBI_SHOBJ(op)->id)

/* The type of primitive o in st's interpreter (registered with shobj.c). */
static PyTypeObject *
sync_type_of(sbi_state *st, sbi_shared *o)
{
    return st->SyncTypes[((sbi_sync *)o)->kind];
}

/* A new primitive of tp's kind and its object.  args->action passes to
 * the primitive (also on failure). */
static PyObject *
sync_create(PyTypeObject *tp, sbi_sync_kind kind, const sbi_sync_args *args)
{
    sbi_sync *s = sbi_sync_new(kind, args);
    if (s == NULL) {
        return PyErr_NoMemory();
    }
    return sbi_shobj_wrap(sbi_state_from_type(tp), tp, &s->base);
}

static PyObject *
Sync_richcompare(PyObject *a, PyObject *b, int op)
{
    if (Py_TYPE(a) != Py_TYPE(b) || (op != Py_EQ && op != Py_NE)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int eq = SYNC_ID(a) == SYNC_ID(b);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *
Sync_repr(PyObject *op)
{
    sbi_sync *s = SYNC(op);
    const char *name = Py_TYPE(op)->tp_name;
    long long id = (long long)s->base.id;
    switch (s->kind) {
    case SBI_SYNC_LOCK:
        return PyUnicode_FromFormat("<%s id=%lld %s>", name, id,
                                    sbi_sync_locked(s) ? "locked"
                                                       : "unlocked");
    case SBI_SYNC_RLOCK: {
        sbi_mutex_lock_py(&s->mutex);
        unsigned long owner = s->u.lock.owner;
        unsigned long long count = s->u.lock.count;
        sbi_mutex_unlock(&s->mutex);
        return PyUnicode_FromFormat("<%s id=%lld %s owner=%lu count=%llu>",
                                    name, id, count ? "locked" : "unlocked",
                                    owner, count);
    }
    case SBI_SYNC_SEMAPHORE:
    case SBI_SYNC_BOUNDED_SEMAPHORE:
        return PyUnicode_FromFormat("<%s id=%lld value=%zd>", name, id,
                                    sbi_sync_value(s));
    case SBI_SYNC_EVENT:
        return PyUnicode_FromFormat("<%s id=%lld %s>", name, id,
                                    sbi_sync_event_is_set(s) ? "set"
                                                             : "unset");
    case SBI_SYNC_CONDITION:
        return PyUnicode_FromFormat("<%s id=%lld lock=%lld>", name, id,
                                    (long long)s->u.cond.lock->base.id);
    case SBI_SYNC_BARRIER: {
        Py_ssize_t waiting;
        int broken;
        sbi_sync_barrier_status(s, &waiting, &broken);
        if (broken) {
            return PyUnicode_FromFormat("<%s id=%lld broken>", name, id);
        }
        return PyUnicode_FromFormat("<%s id=%lld waiters=%zd/%zd>", name, id,
                                    waiting, s->u.barrier.parties);
    }
    default:
        Py_UNREACHABLE();
    }
}

/* What a call on op's primitive returns: r as a bool, or (r < 0) its
 * error raised. */
static PyObject *
sync_bool(PyObject *op, int r)
{
    if (r < 0) {
        return sync_raise(sbi_state_from_type(Py_TYPE(op)), r, SYNC_ID(op));
    }
    return PyBool_FromLong(r);
}

/* None, or (err < 0) its error raised. */
static PyObject *
sync_none(PyObject *op, int err)
{
    if (err < 0) {
        return sync_raise(sbi_state_from_type(Py_TYPE(op)), err, SYNC_ID(op));
    }
    Py_RETURN_NONE;
}

/* A lone argument n=1 of fname, as an index.  0, or -1 with an
 * exception. */
static int
parse_count(const char *fname, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames, Py_ssize_t *n)
{
    static const char *const names[] = {"n"};
    PyObject *vals[1] = {NULL};
    *n = 1;
    if (sbi_state_parse_args(fname, args, nargs, kwnames, names, 1, 0, 1,
                             vals) < 0)
    {
        return -1;
    }
    if (vals[0] != NULL) {
        *n = PyNumber_AsSsize_t(vals[0], PyExc_OverflowError);
        if (*n == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

/* =====================================================================
 * Lock and RLock (and Condition's acquire/release, on its lock)
 */

/* The lock a lock-like object acquires: its own, or a Condition's. */
static sbi_sync *
lock_of(PyObject *op)
{
    sbi_sync *s = SYNC(op);
    return s->kind == SBI_SYNC_CONDITION ? s->u.cond.lock : s;
}

/* acquire()'s arguments (blocking=True, timeout): *blocking as a truth
 * value, *timeout borrowed or NULL when not given.  0, or -1 with an
 * exception. */
static int
parse_acquire(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              int *blocking, PyObject **timeout)
{
    static const char *const names[] = {"blocking", "timeout"};
    PyObject *vals[2] = {NULL, NULL};
    if (sbi_state_parse_args("acquire", args, nargs, kwnames, names, 2, 0, 2,
                             vals) < 0)
    {
        return -1;
    }
    *blocking = vals[0] == NULL ? 1 : PyObject_IsTrue(vals[0]);
    *timeout = vals[1];
    return *blocking < 0 ? -1 : 0;
}

/* Acquire op's lock (a Condition's: its lock). */
static PyObject *
lock_acquire(PyObject *op, int blocking, int64_t deadline)
{
    sbi_sync *s = SYNC(op);
    int r = sbi_sync_acquire(lock_of(op), blocking, deadline);
    if (r > 0 && s->kind == SBI_SYNC_CONDITION) {
        sbi_sync_cond_acquired(s);
    }
    return sync_bool(op, r);
}

/* acquire(blocking=True, timeout=-1) -> bool */
static PyObject *
Lock_acquire(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    int blocking;
    PyObject *timeout;
    int64_t deadline;
    if (parse_acquire(args, nargs, kwnames, &blocking, &timeout) < 0 ||
        lock_deadline(blocking, timeout, &deadline) < 0)
    {
        return NULL;
    }
    return lock_acquire(op, blocking, deadline);
}

static PyObject *
Lock_enter(PyObject *op, PyObject *unused)
{
    return lock_acquire(op, 1, -1);
}

static PyObject *
Lock_release(PyObject *op, PyObject *unused)
{
    sbi_sync *s = SYNC(op);
    return sync_none(op, s->kind == SBI_SYNC_CONDITION
                             ? sbi_sync_cond_release(s)
                             : sbi_sync_release(s, 1));
}

static PyObject *
Lock_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return Lock_release(op, NULL);
}

static PyObject *
Lock_locked(PyObject *op, PyObject *unused)
{
    return PyBool_FromLong(sbi_sync_locked(lock_of(op)));
}

static PyObject *
Lock_is_owned(PyObject *op, PyObject *unused)
{
    return PyBool_FromLong(sbi_sync_is_owned(lock_of(op)));
}

#define LOCK_METHODS                                                          \
  {"acquire", _PyCFunction_CAST(Lock_acquire), METH_FASTCALL | METH_KEYWORDS, \
   PyDoc_STR("acquire($self, /, blocking=True, timeout=-1)\n--\n\n"           \
             "Acquire the lock, as threading's does; True if acquired.")},    \
      {"release", Lock_release, METH_NOARGS,                                  \
       PyDoc_STR("release($self, /)\n--\n\nRelease the lock.")},              \
      {"__enter__", Lock_enter, METH_NOARGS, NULL},                           \
      {"__exit__", _PyCFunction_CAST(Lock_exit), METH_FASTCALL, NULL},        \
  {                                                                           \
    "__reduce__", sbi_shobj_reduce, METH_NOARGS, NULL                         \
  }

static PyMethodDef Lock_methods[] = {
    LOCK_METHODS,
    {"locked", Lock_locked, METH_NOARGS,
     PyDoc_STR("locked($self, /)\n--\n\nWhether the lock is held.")},
    {NULL, NULL},
};

static PyMethodDef RLock_methods[] = {
    LOCK_METHODS,
    {"locked", Lock_locked, METH_NOARGS,
     PyDoc_STR("locked($self, /)\n--\n\nWhether the lock is held.")},
    {"_is_owned", Lock_is_owned, METH_NOARGS,
     PyDoc_STR("Whether the calling thread holds the lock.")},
    {NULL, NULL},
};

static PyObject *
Lock_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (no_arguments(tp, args, kwargs) < 0) {
        return NULL;
    }
    sbi_sync_args a = {0};
    sbi_state *st = sbi_state_from_type(tp);
    return sync_create(tp,
                       tp == st->SyncTypes[SBI_SYNC_RLOCK] ? SBI_SYNC_RLOCK
                                                           : SBI_SYNC_LOCK,
                       &a);
}

/* =====================================================================
 * Semaphore and BoundedSemaphore
 */
static PyObject *
Semaphore_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"value", NULL};
    Py_ssize_t value = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n", names, &value)) {
        return NULL;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "semaphore initial value must be >= 0");
        return NULL;
    }
    sbi_state *st = sbi_state_from_type(tp);
    sbi_sync_args a = {.value = value};
    return sync_create(tp,
                       tp == st->SyncTypes[SBI_SYNC_BOUNDED_SEMAPHORE]
                           ? SBI_SYNC_BOUNDED_SEMAPHORE
                           : SBI_SYNC_SEMAPHORE,
                       &a);
}

/* acquire(blocking=True, timeout=None) -> bool */
static PyObject *
Semaphore_acquire(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    int blocking;
    PyObject *timeout;
    if (parse_acquire(args, nargs, kwnames, &blocking, &timeout) < 0) {
        return NULL;
    }
    timeout = timeout == Py_None ? NULL : timeout;
    if (!blocking && timeout != NULL) {
        PyErr_SetString(PyExc_ValueError,
                        "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    int64_t deadline;
    if (wait_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    return sync_bool(op, sbi_sync_acquire(s, blocking, deadline));
}

/* release(n=1) */
static PyObject *
Semaphore_release(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    Py_ssize_t n;
    if (parse_count("release", args, nargs, kwnames, &n) < 0) {
        return NULL;
    }
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    return sync_none(op, sbi_sync_release(s, n));
}

static PyObject *
Semaphore_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return Semaphore_release(op, NULL, 0, NULL);
}

static PyMethodDef Semaphore_methods[] = {
    {"acquire", _PyCFunction_CAST(Semaphore_acquire),
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("acquire($self, /, blocking=True, timeout=None)\n--\n\n"
               "Take one unit, as threading's does; True if taken.")},
    {"release", _PyCFunction_CAST(Semaphore_release),
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("release($self, /, n=1)\n--\n\nGive back n units.")},
    {"__enter__", Lock_enter, METH_NOARGS, NULL},
    {"__exit__", _PyCFunction_CAST(Semaphore_exit), METH_FASTCALL, NULL},
    {"__reduce__", sbi_shobj_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

/* =====================================================================
 * Event
 */
static PyObject *
Event_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (no_arguments(tp, args, kwargs) < 0) {
        return NULL;
    }
    sbi_sync_args a = {0};
    return sync_create(tp, SBI_SYNC_EVENT, &a);
}

static PyObject *
Event_set(PyObject *op, PyObject *unused)
{
    sbi_sync_event_set(SYNC(op), 1);
    Py_RETURN_NONE;
}

static PyObject *
Event_clear(PyObject *op, PyObject *unused)
{
    sbi_sync_event_set(SYNC(op), 0);
    Py_RETURN_NONE;
}

static PyObject *
Event_is_set(PyObject *op, PyObject *unused)
{
    return PyBool_FromLong(sbi_sync_event_is_set(SYNC(op)));
}

/* Parse a lone timeout=None argument into a deadline. */
static int
parse_timeout(const char *fname, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames, int64_t *deadline)
{
    static const char *const names[] = {"timeout"};
    PyObject *vals[1] = {NULL};
    if (sbi_state_parse_args(fname, args, nargs, kwnames, names, 1, 0, 1,
                             vals) < 0)
    {
        return -1;
    }
    return wait_deadline(vals[0], deadline);
}

static PyObject *
Event_wait(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    int64_t deadline;
    if (parse_timeout("wait", args, nargs, kwnames, &deadline) < 0) {
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    return sync_bool(op, sbi_sync_event_wait(s, deadline));
}

static PyMethodDef Event_methods[] = {
    {"set", Event_set, METH_NOARGS,
     PyDoc_STR("set($self, /)\n--\n\nSet the flag; wake every waiter.")},
    {"clear", Event_clear, METH_NOARGS,
     PyDoc_STR("clear($self, /)\n--\n\nReset the flag.")},
    {"is_set", Event_is_set, METH_NOARGS,
     PyDoc_STR("is_set($self, /)\n--\n\nWhether the flag is set.")},
    {"wait", _PyCFunction_CAST(Event_wait), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait($self, /, timeout=None)\n--\n\n"
               "Wait until the flag is set; returns the flag.")},
    {"__reduce__", sbi_shobj_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

/* =====================================================================
 * Condition
 */
static PyObject *
Condition_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"lock", NULL};
    PyObject *lock = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O", names, &lock)) {
        return NULL;
    }
    sbi_state *st = sbi_state_from_type(tp);
    sbi_sync_args a = {0};
    if (lock == Py_None) {
        a.lock = sbi_sync_new(SBI_SYNC_RLOCK, &a);
        if (a.lock == NULL) {
            return PyErr_NoMemory();
        }
    }
    else if (Py_TYPE(lock) == st->SyncTypes[SBI_SYNC_LOCK] ||
             Py_TYPE(lock) == st->SyncTypes[SBI_SYNC_RLOCK])
    {
        a.lock = SYNC(lock);
        sbi_shared_incref(&a.lock->base);
    }
    else {
        return PyErr_Format(PyExc_TypeError,
                            "lock must be a subinterpreters.sync Lock or "
                            "RLock (threading's cannot be shared), not '%s'",
                            Py_TYPE(lock)->tp_name);
    }
    PyObject *obj = sync_create(tp, SBI_SYNC_CONDITION, &a);
    sbi_sync_decref(a.lock);  // the condition holds its own reference
    return obj;
}

/* wait(timeout=None) -> bool */
static PyObject *
Condition_wait(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    int64_t deadline;
    if (parse_timeout("wait", args, nargs, kwnames, &deadline) < 0) {
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    return sync_bool(op, sbi_sync_cond_wait(s, deadline));
}

/* wait_for(predicate, timeout=None): threading's loop. */
static PyObject *
Condition_wait_for(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames)
{
    static const char *const names[] = {"predicate", "timeout"};
    PyObject *vals[2] = {NULL, NULL};
    if (sbi_state_parse_args("wait_for", args, nargs, kwnames, names, 2, 1, 2,
                             vals) < 0)
    {
        return NULL;
    }
    int64_t deadline;
    if (wait_deadline(vals[1], &deadline) < 0) {
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    PyObject *result = PyObject_CallNoArgs(vals[0]);
    int waited = 0;
    for (;;) {
        if (result == NULL) {
            return NULL;
        }
        int ok = PyObject_IsTrue(result);
        if (ok != 0) {
            if (ok < 0) {
                Py_CLEAR(result);
            }
            return result;
        }
        if (waited && deadline >= 0 && sbi_monotonic_ns() >= deadline) {
            return result;
        }
        int r = sbi_sync_cond_wait(s, deadline);
        if (r < 0) {
            Py_DECREF(result);
            return sync_none(op, r);
        }
        waited = 1;
        Py_SETREF(result, PyObject_CallNoArgs(vals[0]));
    }
}

static PyObject *
Condition_notify(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    Py_ssize_t n;
    if (parse_count("notify", args, nargs, kwnames, &n) < 0) {
        return NULL;
    }
    // A negative n notifies nobody (threading: "while waiters and n > 0").
    sbi_sync *s = SYNC(op);
    return sync_none(op, sbi_sync_cond_notify(s, n < 0 ? 0 : n));
}

static PyObject *
Condition_notify_all(PyObject *op, PyObject *unused)
{
    sbi_sync *s = SYNC(op);
    return sync_none(op, sbi_sync_cond_notify(s, -1));
}

static PyMethodDef Condition_methods[] = {
    LOCK_METHODS,
    {"_is_owned", Lock_is_owned, METH_NOARGS,
     PyDoc_STR("Whether the calling thread holds the lock.")},
    {"wait", _PyCFunction_CAST(Condition_wait), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait($self, /, timeout=None)\n--\n\n"
               "Release the lock, wait for a notification, take the lock\n"
               "back; False if the timeout passed first.")},
    {"wait_for", _PyCFunction_CAST(Condition_wait_for),
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait_for($self, /, predicate, timeout=None)\n--\n\n"
               "Wait until predicate() is true; returns its last value.")},
    {"notify", _PyCFunction_CAST(Condition_notify),
     METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("notify($self, /, n=1)\n--\n\nWake up to n waiters.")},
    {"notify_all", Condition_notify_all, METH_NOARGS,
     PyDoc_STR("notify_all($self, /)\n--\n\nWake every waiter.")},
    {NULL, NULL},
};

/* =====================================================================
 * Barrier
 */
static PyObject *
Barrier_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"parties", "action", "timeout", NULL};
    Py_ssize_t parties;
    PyObject *action = Py_None, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n|OO", names, &parties,
                                     &action, &timeout))
    {
        return NULL;
    }
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be > 0");
        return NULL;
    }
    sbi_sync_args a = {.parties = parties, .timeout = -1};
    if (wait_seconds(timeout, &a.timeout) < 0) {
        return NULL;
    }
    if (action != Py_None) {
        if (!PyCallable_Check(action)) {
            return PyErr_Format(PyExc_TypeError,
                                "action must be callable or None, not '%s'",
                                Py_TYPE(action)->tp_name);
        }
        a.action = sbi_xidata_new_callable(action, NULL);
        if (a.action == NULL) {
            return NULL;
        }
    }
    return sync_create(tp, SBI_SYNC_BARRIER, &a);
}

/* Run the action in the current interpreter (sync.c calls this in the
 * thread completing the barrier). */
static int
barrier_run_action(const sbi_xidata *action)
{
    PyObject *func = sbi_xidata_load(action, NULL);
    if (func == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallNoArgs(func);
    Py_DECREF(func);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static PyObject *
Barrier_wait(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const names[] = {"timeout"};
    PyObject *vals[1] = {NULL};
    double t;
    if (sbi_state_parse_args("wait", args, nargs, kwnames, names, 1, 0, 1,
                             vals) < 0 ||
        wait_seconds(vals[0], &t) < 0)
    {
        return NULL;
    }
    sbi_sync *s = SYNC(op);
    if (t < 0) {
        t = s->u.barrier.timeout;  // None: the barrier's default
    }
    int64_t timeout_ns = t < 0 || t >= SYNC_FOREVER ? -1 : (int64_t)(t * 1e9);
    Py_ssize_t index = 0;
    int r = sbi_sync_barrier_wait(s, timeout_ns, barrier_run_action, &index);
    if (r < 0) {
        return sync_none(op, r);
    }
    return PyLong_FromSsize_t(index);
}

static PyObject *
Barrier_reset(PyObject *op, PyObject *unused)
{
    sbi_sync_barrier_reset(SYNC(op));
    Py_RETURN_NONE;
}

static PyObject *
Barrier_abort(PyObject *op, PyObject *unused)
{
    sbi_sync_barrier_abort(SYNC(op));
    Py_RETURN_NONE;
}

static PyObject *
Barrier_get_parties(PyObject *op, void *closure)
{
    return PyLong_FromSsize_t(SYNC(op)->u.barrier.parties);
}

static PyObject *
Barrier_get_n_waiting(PyObject *op, void *closure)
{
    Py_ssize_t n;
    int broken;
    sbi_sync_barrier_status(SYNC(op), &n, &broken);
    return PyLong_FromSsize_t(n);
}

static PyObject *
Barrier_get_broken(PyObject *op, void *closure)
{
    Py_ssize_t n;
    int broken;
    sbi_sync_barrier_status(SYNC(op), &n, &broken);
    return PyBool_FromLong(broken);
}

static PyMethodDef Barrier_methods[] = {
    {"wait", _PyCFunction_CAST(Barrier_wait), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("wait($self, /, timeout=None)\n--\n\n"
               "Wait until every party has called wait(); returns this\n"
               "thread's arrival index (0 to parties-1).")},
    {"reset", Barrier_reset, METH_NOARGS,
     PyDoc_STR("reset($self, /)\n--\n\n"
               "Return the barrier to its empty state; waiting threads get\n"
               "BrokenBarrierError.")},
    {"abort", Barrier_abort, METH_NOARGS,
     PyDoc_STR("abort($self, /)\n--\n\nPut the barrier in the broken "
               "state.")},
    {"__reduce__", sbi_shobj_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef Barrier_getset[] = {
    {"id", sbi_shobj_get_id, NULL, PyDoc_STR("The primitive's id."), NULL},
    {"parties", Barrier_get_parties, NULL,
     PyDoc_STR("The number of threads required to trip the barrier."), NULL},
    {"n_waiting", Barrier_get_n_waiting, NULL,
     PyDoc_STR("The number of threads waiting in the barrier."), NULL},
    {"broken", Barrier_get_broken, NULL,
     PyDoc_STR("Whether the barrier is broken."), NULL},
    {NULL},
};

/* =====================================================================
 * The types
 */
static PyGetSetDef Sync_getset[] = {
    {"id", sbi_shobj_get_id, NULL, PyDoc_STR("The primitive's id."), NULL},
    {NULL},
};

#define SYNC_DOC_TAIL                                                         \
  "\n\nShared by every interpreter: pass it to call(), prepare_main() or\n"   \
  "a queue, and the other interpreter gets an object for the same\n"          \
  "primitive."

PyDoc_STRVAR(Lock_doc, "Lock()\n--\n\n"
                       "A lock like threading.Lock." SYNC_DOC_TAIL);
PyDoc_STRVAR(RLock_doc,
             "RLock()\n--\n\n"
             "A reentrant lock like threading.RLock, owned by an OS thread\n"
             "in whichever interpreter it runs." SYNC_DOC_TAIL);
PyDoc_STRVAR(Semaphore_doc,
             "Semaphore(value=1)\n--\n\n"
             "A semaphore like threading.Semaphore." SYNC_DOC_TAIL);
PyDoc_STRVAR(BoundedSemaphore_doc,
             "BoundedSemaphore(value=1)\n--\n\n"
             "A semaphore like threading.BoundedSemaphore." SYNC_DOC_TAIL);
PyDoc_STRVAR(Event_doc, "Event()\n--\n\n"
                        "An event like threading.Event." SYNC_DOC_TAIL);
PyDoc_STRVAR(
    Condition_doc,
    "Condition(lock=None)\n--\n\n"
    "A condition variable like threading.Condition; lock is a\n"
    "subinterpreters.sync Lock or RLock (a new RLock if None)." SYNC_DOC_TAIL);
PyDoc_STRVAR(Barrier_doc,
             "Barrier(parties, action=None, timeout=None)\n--\n\n"
             "A barrier like threading.Barrier.  action must be shareable\n"
             "like call()'s functions; it runs in the interpreter of the\n"
             "thread that trips the barrier." SYNC_DOC_TAIL);

#define SYNC_SLOTS(new, methods, getset, doc)                                 \
  {Py_tp_new, new}, {Py_tp_dealloc, sbi_shobj_dealloc},                       \
      {Py_tp_repr, Sync_repr}, {Py_tp_hash, sbi_shobj_hash},                  \
      {Py_tp_richcompare, Sync_richcompare}, {Py_tp_methods, methods},        \
      {Py_tp_getset, getset}, {Py_tp_members, sbi_shobj_members},             \
      {Py_tp_doc, (void *)doc},                                               \
  {                                                                           \
    0, NULL                                                                   \
  }

static PyType_Slot Lock_slots[] = {
    SYNC_SLOTS(Lock_new, Lock_methods, Sync_getset, Lock_doc)};
static PyType_Slot RLock_slots[] = {
    SYNC_SLOTS(Lock_new, RLock_methods, Sync_getset, RLock_doc)};
static PyType_Slot Semaphore_slots[] = {
    SYNC_SLOTS(Semaphore_new, Semaphore_methods, Sync_getset, Semaphore_doc)};
static PyType_Slot BoundedSemaphore_slots[] = {SYNC_SLOTS(
    Semaphore_new, Semaphore_methods, Sync_getset, BoundedSemaphore_doc)};
static PyType_Slot Event_slots[] = {
    SYNC_SLOTS(Event_new, Event_methods, Sync_getset, Event_doc)};
static PyType_Slot Condition_slots[] = {
    SYNC_SLOTS(Condition_new, Condition_methods, Sync_getset, Condition_doc)};
static PyType_Slot Barrier_slots[] = {
    SYNC_SLOTS(Barrier_new, Barrier_methods, Barrier_getset, Barrier_doc)};

#define SYNC_SPEC(kind)                                                       \
  {                                                                           \
    .name = "subinterpreters.sync." #kind, .basicsize = sizeof(SharedObject), \
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,                   \
    .slots = kind##_slots,                                                    \
  }

static PyType_Spec sync_specs[SBI_SYNC_NKINDS] = {
    [SBI_SYNC_LOCK] = SYNC_SPEC(Lock),
    [SBI_SYNC_RLOCK] = SYNC_SPEC(RLock),
    [SBI_SYNC_SEMAPHORE] = SYNC_SPEC(Semaphore),
    [SBI_SYNC_BOUNDED_SEMAPHORE] = SYNC_SPEC(BoundedSemaphore),
    [SBI_SYNC_EVENT] = SYNC_SPEC(Event),
    [SBI_SYNC_CONDITION] = SYNC_SPEC(Condition),
    [SBI_SYNC_BARRIER] = SYNC_SPEC(Barrier),
};

int
sbi_sync_type_init(PyObject *m, sbi_state *st)
{
    (void)kind_names;
    for (int k = 0; k < SBI_SYNC_NKINDS; k++) {
        st->SyncTypes[k] =
            (PyTypeObject *)PyType_FromModuleAndSpec(m, &sync_specs[k], NULL);
        if (st->SyncTypes[k] == NULL) {
            return -1;
        }
        // Exported as subinterpreters.sync.<name>; the C module keeps
        // them under a private prefix.
        char attr[64];
        snprintf(attr, sizeof(attr), "_sync_%s", kind_names[k]);
        if (PyModule_AddObjectRef(m, attr, (PyObject *)st->SyncTypes[k]) < 0) {
            return -1;
        }
    }
    st->RuntimeError = Py_NewRef(PyExc_RuntimeError);
    st->ValueError = Py_NewRef(PyExc_ValueError);
    st->OverflowError = Py_NewRef(PyExc_OverflowError);
    sbi_state_register_loader(load_broken_barrier);
    return sbi_shobj_register(&sbi_sync_shared, sync_type_of);
}
