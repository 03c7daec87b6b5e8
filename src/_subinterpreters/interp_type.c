/* interp_type.c -- the Interpreter type: one object per interpreter id
 * in each interpreter (a weak cache in the module state), whose methods
 * call the layers below, and the module functions create(), list_all(),
 * get_current() and get_main().
 *
 * An Interpreter object made by create() (whence "_interpreters module")
 * holds an owning reference: the interpreter ends when the last such
 * object in any interpreter goes away (lifecycle.c).
 *
 * Calls run.c, lifecycle.c, session.c, interrupt.c, registry.c and
 * state.c (layers: docs/design.md).
 */
#include "interp_type.h"
#include "run.h"
#include "lifecycle.h"
#include "session.h"
#include "interrupt.h"
#include "registry.h"

#include <stddef.h>

typedef struct {
    PyObject_HEAD
    int64_t id;
    int whence;
    int ownsref;
    PyObject *weakreflist;
} InterpreterObject;

#define InterpreterObject_CAST(op) ((InterpreterObject *)(op))

/* Drop the entries of dead objects from a {id: weakref} cache when its
 * size reaches a power of two (amortised O(1) per insertion), so that
 * create/close cycles do not grow it.  0 or -1. */
static int
cache_prune(PyObject *cache)
{
    Py_ssize_t n = PyDict_GET_SIZE(cache);
    if (n < 16 || (n & (n - 1)) != 0) {
        return 0;
    }
    PyObject *items = PyDict_Items(cache);
    if (items == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);  // borrowed
        PyObject *obj = NULL;
        rc = PyWeakref_GetRef(PyTuple_GET_ITEM(kv, 1), &obj);
        if (rc == 0) {
            rc = PyDict_DelItem(cache, PyTuple_GET_ITEM(kv, 0));
        }
        else if (rc > 0) {
            Py_DECREF(obj);
            rc = 0;
        }
    }
    Py_DECREF(items);
    return rc;
}

/* The Interpreter object for id in this interpreter: the cached
 * singleton, or a new one.  whence must be known (sbi_registry_lookup_whence()).
 * adopt: the caller took an owning reference for the new object (create);
 * it is consumed in every case.  New reference or NULL with an
 * exception. */
static PyObject *
interp_object_get(sbi_state *st, int64_t id, int whence, int adopt)
{
    PyObject *key = PyLong_FromLongLong(id);
    if (key == NULL) {
        return NULL;
    }
    PyObject *ref = NULL, *obj = NULL;
    if (PyDict_GetItemRef(st->interp_cache, key, &ref) < 0) {
        if (adopt) {
            sbi_lifecycle_decref(id);
        }
        goto done;
    }
    if (ref != NULL) {
        if (PyWeakref_GetRef(ref, &obj) < 0) {
            if (adopt) {
                sbi_lifecycle_decref(id);
            }
            goto done;
        }
        if (obj != NULL) {
            if (adopt) {
                sbi_lifecycle_decref(
                    id);  // the cached object owns one already
            }
            goto done;
        }
    }
    int ownsref = whence == WHENCE_STDLIB;
    if (ownsref && !adopt) {
        int err = sbi_lifecycle_incref(id);
        if (err != 0) {
            sbi_state_raise(st, err, id, NULL);
            goto done;
        }
    }
    InterpreterObject *self =
        PyObject_GC_New(InterpreterObject, st->InterpreterType);
    if (self == NULL) {
        if (ownsref) {
            sbi_lifecycle_decref(id);
        }
        goto done;
    }
    self->id = id;
    self->whence = whence;
    self->ownsref = ownsref;
    self->weakreflist = NULL;
    PyObject_GC_Track(self);
    obj = (PyObject *)self;
    Py_XSETREF(ref, PyWeakref_NewRef(obj, NULL));
    if (ref == NULL || cache_prune(st->interp_cache) < 0 ||
        PyDict_SetItem(st->interp_cache, key, ref) < 0)
    {
        Py_CLEAR(obj);
    }
done:
    Py_XDECREF(ref);
    Py_DECREF(key);
    return obj;
}

static PyObject *
Interpreter_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "_whence", "_ownsref", NULL};
    PyObject *idobj, *whence_arg = Py_None, *ownsref_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:Interpreter", kwlist,
                                     &idobj, &whence_arg, &ownsref_arg))
    {
        return NULL;
    }
    sbi_state *st = sbi_state_from_type(tp);
    if (!PyLong_Check(idobj)) {
        PyErr_Format(PyExc_TypeError, "id must be an int, got %R", idobj);
        return NULL;
    }
    int overflow = 0;
    long long id = PyLong_AsLongLongAndOverflow(idobj, &overflow);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow > 0) {
        PyErr_SetString(PyExc_OverflowError, "interpreter ID too large");
        return NULL;
    }
    if (id < 0 || overflow < 0) {
        PyErr_Format(PyExc_ValueError,
                     "interpreter ID must be a non-negative int, got %R",
                     idobj);
        return NULL;
    }
    int whence = sbi_registry_lookup_whence(id);
    if (whence < 0) {
        return sbi_state_raise(st, SBI_ERR_NOT_FOUND, id, NULL);
    }
    return interp_object_get(st, id, whence, 0);
}

static int
Interpreter_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static void
Interpreter_dealloc(PyObject *op)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    int64_t id = self->id;
    int ownsref = self->ownsref;
    tp->tp_free(op);
    if (ownsref) {
        sbi_lifecycle_decref(id);
    }
    Py_DECREF(tp);
}

static PyObject *
Interpreter_repr(PyObject *op)
{
    return PyUnicode_FromFormat("Interpreter(%lld)",
                                (long long)InterpreterObject_CAST(op)->id);
}

static Py_hash_t
Interpreter_hash(PyObject *op)
{
    return sbi_state_hash_id(InterpreterObject_CAST(op)->id);
}

static PyObject *
Interpreter_get_id(PyObject *op, void *closure)
{
    return PyLong_FromLongLong(InterpreterObject_CAST(op)->id);
}

static PyObject *
Interpreter_get_whence(PyObject *op, void *closure)
{
    return PyUnicode_FromString(
        sbi_registry_whence_name(InterpreterObject_CAST(op)->whence));
}

static sbi_state *
state_of(PyObject *op)
{
    return sbi_state_from_type(Py_TYPE(op));
}

PyDoc_STRVAR(
    Interpreter_is_running_doc,
    "is_running($self, /)\n--\n\n"
    "Return whether or not the interpreter's __main__ is currently running.");

static PyObject *
Interpreter_is_running(PyObject *op, PyObject *unused)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    if (self->id == 0) {
        Py_RETURN_TRUE;
    }
    int err = 0, running = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(self->id);
    if (e == NULL || e->closing) {
        err = SBI_ERR_NOT_FOUND;
    }
    else {
        running = e->running_tid != 0;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (err != 0) {
        if (self->id == sbi_registry_current_pid()) {
            Py_RETURN_FALSE;  // a foreign interpreter asking about itself
        }
        return sbi_state_raise(state_of(op), err, self->id, NULL);
    }
    return PyBool_FromLong(running);
}

PyDoc_STRVAR(
    Interpreter_close_doc,
    "close($self, /)\n--\n\n"
    "Finalize and destroy the interpreter.\n\n"
    "Waits for the interpreter's non-daemon threads.  Raises "
    "InterpreterError\n"
    "if it is running, is the current interpreter, or still has threads that\n"
    "cannot be joined.");

static PyObject *
Interpreter_close(PyObject *op, PyObject *unused)
{
    if (sbi_lifecycle_close(state_of(op), InterpreterObject_CAST(op)->id) < 0)
    {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    Interpreter_interrupt_doc,
    "interrupt($self, /, *, unwind=False)\n--\n\n"
    "Raise KeyboardInterrupt in the code running in the interpreter's "
    "__main__.\n\n"
    "Returns True if something was running and was interrupted, False if the\n"
    "interpreter was idle.  time.sleep() and our queues and sync primitives\n"
    "wake at once; other C calls see the interrupt when they return to\n"
    "Python.  With unwind=True the interruption cannot be caught: code that\n"
    "catches it is interrupted again at its next line until the interrupted\n"
    "exec() or call() has returned; finally blocks and __exit__ methods\n"
    "run, and are interrupted in turn if they take longer.");

static PyObject *
Interpreter_interrupt(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    static const char *const names[] = {"unwind"};
    PyObject *a[1];
    if (sbi_state_parse_args("interrupt", args, nargs, kwnames, names, 0, 0, 1,
                             a) < 0)
    {
        return NULL;
    }
    if (a[0] != NULL && !PyBool_Check(a[0])) {
        PyErr_Format(PyExc_TypeError,
                     "interrupt(): unwind must be True or False, not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    InterpreterObject *self = InterpreterObject_CAST(op);
    int r = a[0] == Py_True ? sbi_interrupt_unwind(self->id)
                            : sbi_interrupt_interp(self->id, 0, 0);
    if (r < 0) {
        int err = r == SBI_ERR_NOMEM ? r
                  : (self->id == 0 || self->id == sbi_registry_current_pid())
                      ? SBI_ERR_NOT_OURS
                      : r;
        return sbi_state_raise(state_of(op), err, self->id, "interrupt"), NULL;
    }
    return PyBool_FromLong(r);
}

PyDoc_STRVAR(
    Interpreter_exec_doc,
    "exec($self, code, /, *, timeout=None)\n--\n\n"
    "Run the given source code (or no-argument function) in the "
    "interpreter.\n\n"
    "Runs in the current OS thread, in the interpreter's __main__ module.\n"
    "An uncaught exception is raised as ExecutionFailed.  With a timeout (in\n"
    "seconds), code still running when it elapses is interrupted and\n"
    "TimeoutError is raised; the interpreter stays usable.");

PyDoc_STRVAR(
    Interpreter_prepare_main_doc,
    "prepare_main($self, ns=None, /, **kwargs)\n--\n\n"
    "Bind the given values into the interpreter's __main__.\n\n"
    "The values must be natively shareable; nothing is bound if one is not.");

PyDoc_STRVAR(
    Interpreter_call_doc,
    "call($self, callable, /, *args, **kwargs)\n--\n\n"
    "Call the object in the interpreter with the given arguments.\n\n"
    "Returns the result.  Stateless functions travel as code; other\n"
    "callables, arguments and results natively or by pickle.  An uncaught\n"
    "exception is raised as ExecutionFailed.");

static PyObject *
Interpreter_exec(PyObject *op, PyObject *args, PyObject *kwargs)
{
    return sbi_run_exec(state_of(op), InterpreterObject_CAST(op)->id, args,
                        kwargs);
}

static PyObject *
Interpreter_prepare_main(PyObject *op, PyObject *args, PyObject *kwargs)
{
    return sbi_run_prepare_main(state_of(op), InterpreterObject_CAST(op)->id,
                                args, kwargs);
}

static PyObject *
Interpreter_call(PyObject *op, PyObject *const *args, size_t nargsf,
                 PyObject *kwnames)
{
    return sbi_run_call(state_of(op), InterpreterObject_CAST(op)->id, args,
                        nargsf, kwnames);
}

PyDoc_STRVAR(
    Interpreter_call_in_thread_doc,
    "call_in_thread($self, callable, /, *args, **kwargs)\n--\n\n"
    "Start a new thread that calls the object in the interpreter.\n\n"
    "Returns the started threading.Thread; the result is discarded and an\n"
    "exception goes to threading.excepthook.");

static PyObject *
Interpreter_call_in_thread(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "call_in_thread() missing required argument "
                        "'callable'");
        return NULL;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return NULL;
    }
    PyObject *thread = NULL;
    PyObject *target = PyObject_GetAttrString(op, "call");
    PyObject *cls = PyObject_GetAttrString(threading, "Thread");
    PyObject *kw = Py_BuildValue("{sOsOsO}", "target", target, "args", args,
                                 "kwargs", kwargs ? kwargs : Py_None);
    PyObject *empty = PyTuple_New(0);
    if (target == NULL || cls == NULL || kw == NULL || empty == NULL) {
        goto done;
    }
    thread = PyObject_Call(cls, empty, kw);
    if (thread == NULL) {
        goto done;
    }
    PyObject *r = PyObject_CallMethod(thread, "start", NULL);
    if (r == NULL) {
        Py_CLEAR(thread);
    }
    Py_XDECREF(r);
done:
    Py_XDECREF(empty);
    Py_XDECREF(kw);
    Py_XDECREF(cls);
    Py_XDECREF(target);
    Py_DECREF(threading);
    return thread;
}

PyDoc_STRVAR(
    Interpreter_acall_doc,
    "acall($self, callable, /, *args, **kwargs)\n--\n\n"
    "Call the object in the interpreter without blocking the event loop.\n\n"
    "A coroutine: await it for what call() returns or raises.  The call\n"
    "runs in a helper thread.  Cancelling the awaiting task interrupts\n"
    "the call as interrupt(unwind=True) does and raises CancelledError\n"
    "once it has stopped.");

static PyObject *
Interpreter_acall(PyObject *op, PyObject *const *args, size_t nargsf,
                  PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "acall() missing required argument 'callable'");
        return NULL;
    }
    return sbi_state_forward("subinterpreters._aio", "interp_call", op, args,
                             nargs, kwnames);
}

static PyObject *
Interpreter_reduce(PyObject *op, PyObject *unused)
{
    return Py_BuildValue("O(L)", (PyObject *)Py_TYPE(op),
                         (long long)InterpreterObject_CAST(op)->id);
}

static PyMethodDef Interpreter_methods[] = {
    {"is_running", Interpreter_is_running, METH_NOARGS,
     Interpreter_is_running_doc},
    {"close", Interpreter_close, METH_NOARGS, Interpreter_close_doc},
    {"prepare_main", _PyCFunction_CAST(Interpreter_prepare_main),
     METH_VARARGS | METH_KEYWORDS, Interpreter_prepare_main_doc},
    {"exec", _PyCFunction_CAST(Interpreter_exec), METH_VARARGS | METH_KEYWORDS,
     Interpreter_exec_doc},
    {"interrupt", _PyCFunction_CAST(Interpreter_interrupt),
     METH_FASTCALL | METH_KEYWORDS, Interpreter_interrupt_doc},
    {"call", _PyCFunction_CAST(Interpreter_call),
     METH_FASTCALL | METH_KEYWORDS, Interpreter_call_doc},
    {"call_in_thread", _PyCFunction_CAST(Interpreter_call_in_thread),
     METH_VARARGS | METH_KEYWORDS, Interpreter_call_in_thread_doc},
    {"acall", _PyCFunction_CAST(Interpreter_acall),
     METH_FASTCALL | METH_KEYWORDS, Interpreter_acall_doc},
    {"__reduce__", Interpreter_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef Interpreter_getset[] = {
    {"id", Interpreter_get_id, NULL, "the interpreter's ID", NULL},
    {"whence", Interpreter_get_whence, NULL,
     "where the interpreter was created", NULL},
    {NULL},
};

static PyMemberDef Interpreter_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET,
     offsetof(InterpreterObject, weakreflist), Py_READONLY},
    {NULL},
};

PyDoc_STRVAR(
    Interpreter_doc,
    "Interpreter(id, /)\n--\n\n"
    "A single Python interpreter (one object per id in each interpreter).");

static PyType_Slot Interpreter_slots[] = {
    {Py_tp_new, Interpreter_new},
    {Py_tp_dealloc, Interpreter_dealloc},
    {Py_tp_traverse, Interpreter_traverse},
    {Py_tp_repr, Interpreter_repr},
    {Py_tp_hash, Interpreter_hash},
    {Py_tp_methods, Interpreter_methods},
    {Py_tp_getset, Interpreter_getset},
    {Py_tp_members, Interpreter_members},
    {Py_tp_doc, (void *)Interpreter_doc},
    {0, NULL},
};

static PyType_Spec Interpreter_spec = {
    .name = "subinterpreters.Interpreter",
    .basicsize = sizeof(InterpreterObject),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Interpreter_slots,
};

PyObject *
sbi_interp_type_create(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    static const char *const names[] = {"isolated"};
    PyObject *a[1];
    if (sbi_state_parse_args("create", args, nargs, kwnames, names, 0, 0, 1,
                             a) < 0)
    {
        return NULL;
    }
    if (a[0] != NULL && !PyBool_Check(a[0])) {
        PyErr_Format(PyExc_TypeError,
                     "create(): isolated must be True or False, not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    int isolated = a[0] == NULL || a[0] == Py_True;
    static int warned = 0;  // atomic
    const char *warning = SBI_LEGACY_GIL_WARNING;
    if (!isolated && warning != NULL &&
        !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED) &&
        PyErr_WarnEx(PyExc_RuntimeWarning, warning, 1) < 0)
    {
        __atomic_store_n(&warned, 0, __ATOMIC_RELAXED);  // raise it again
        return NULL;
    }
    sbi_state *st = sbi_state_of(m);
    int64_t id = sbi_lifecycle_create(st, isolated);
    return id < 0 ? NULL : interp_object_get(st, id, WHENCE_STDLIB, 1);
}

static int
cmp_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

PyObject *
sbi_interp_type_list_all(PyObject *m, PyObject *unused)
{
    sbi_state *st = sbi_state_of(m);
    int64_t cur = sbi_registry_current_pid();
    Py_ssize_t n = 0, cap = 8;
    int64_t *ids = NULL;
    PyObject *list = NULL;
    for (;;) {
        int64_t *p = PyMem_RawRealloc(ids, (size_t)cap * sizeof(int64_t));
        if (p == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        ids = p;
        n = 0;
        ids[n++] = 0;
        int has_cur = cur == 0;
        int full = 0;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
            if (e->closing) {
                continue;
            }
            if (n == cap - 1) {
                full = 1;
                break;
            }
            ids[n++] = e->id;
            has_cur |= e->id == cur;
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (full) {
            cap *= 2;
            continue;
        }
        if (!has_cur) {
            ids[n++] = cur;
        }
        break;
    }
    qsort(ids, (size_t)n, sizeof(int64_t), cmp_ids);
    list = PyList_New(0);
    if (list == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int whence = sbi_registry_lookup_whence(ids[i]);
        if (whence < 0) {
            continue;  // closed meanwhile
        }
        PyObject *obj = interp_object_get(st, ids[i], whence, 0);
        if (obj == NULL) {
            if (PyErr_ExceptionMatches(st->InterpreterNotFoundError)) {
                PyErr_Clear();
                continue;
            }
            Py_CLEAR(list);
            goto done;
        }
        int rc = PyList_Append(list, obj);
        Py_DECREF(obj);
        if (rc < 0) {
            Py_CLEAR(list);
            goto done;
        }
    }
done:
    PyMem_RawFree(ids);
    return list;
}

PyObject *
sbi_interp_type_get_current(PyObject *m, PyObject *unused)
{
    sbi_state *st = sbi_state_of(m);
    int64_t id = sbi_registry_current_pid();
    int whence = sbi_registry_lookup_whence(id);
    if (whence < 0) {
        whence = WHENCE_UNKNOWN;
    }
    return interp_object_get(st, id, whence, 0);
}

PyObject *
sbi_interp_type_get_main(PyObject *m, PyObject *unused)
{
    return interp_object_get(sbi_state_of(m), 0, WHENCE_RUNTIME, 0);
}

/* Size of this interpreter's Interpreter singleton cache (tests). */
PyObject *
sbi_interp_type_cache_size(PyObject *m, PyObject *unused)
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(sbi_state_of(m)->interp_cache));
}

int
sbi_interp_type_init(PyObject *m, sbi_state *st)
{
    st->InterpreterType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Interpreter_spec, NULL);
    if (st->InterpreterType == NULL) {
        return -1;
    }
    if (PyModule_AddType(m, st->InterpreterType) < 0) {
        return -1;
    }
    st->interp_cache = PyDict_New();
    return st->interp_cache == NULL ? -1 : 0;
}
