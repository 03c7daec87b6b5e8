/* shobj.c -- the Python side every shared object type has in common:
 * one object per shared object per interpreter (a weak cache in module
 * state), the slots they share, and the one handle kind through which
 * they cross interpreters as their id.
 *
 * Each type (sync_type.c, shdict_type.c) registers which Python type its
 * raw objects get; the handle kind finds it by the raw type.
 *
 * Calls shared.c, xidata.c and state.c (layers: docs/design.md).
 */
#include "shobj.h"
#include "xidata.h"

#include <stddef.h>
#include <unistd.h>

/* =====================================================================
 * Python types by raw type (written at module init, before any other
 * interpreter can load a handle; the same in every interpreter)
 */
#define SHOBJ_TYPES_MAX 4

static struct {
    const sbi_shared_type *raw;
    sbi_shobj_type_fn fn;
} shobj_types[SHOBJ_TYPES_MAX];

int
sbi_shobj_register(const sbi_shared_type *t, sbi_shobj_type_fn fn)
{
    for (int i = 0; i < SHOBJ_TYPES_MAX; i++) {
        if (shobj_types[i].raw == t || shobj_types[i].raw == NULL) {
            shobj_types[i].fn = fn;
            __atomic_store_n(&shobj_types[i].raw, t, __ATOMIC_RELEASE);
            return 0;
        }
    }
    PyErr_SetString(PyExc_SystemError, "too many shared object types");
    return -1;
}

static sbi_shobj_type_fn
type_fn_of(const sbi_shared_type *t)
{
    for (int i = 0; i < SHOBJ_TYPES_MAX; i++) {
        if (__atomic_load_n(&shobj_types[i].raw, __ATOMIC_ACQUIRE) == t) {
            return shobj_types[i].fn;
        }
    }
    return NULL;
}

/* =====================================================================
 * Objects
 */
PyObject *
sbi_shobj_wrap(sbi_state *st, PyTypeObject *tp, sbi_shared *o)
{
    SharedObject *self = PyObject_New(SharedObject, tp);
    if (self == NULL) {
        sbi_shared_decref(o);
        return NULL;
    }
    self->o = o;
    self->weakreflist = NULL;
    PyObject *key = PyLong_FromLongLong(o->id);
    if (key == NULL ||
        sbi_state_cache_put(st->shared_cache, key, (PyObject *)self) < 0)
    {
        Py_XDECREF(key);
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(key);
    return (PyObject *)self;
}

/* The object for shared object id in st's interpreter: the cached one,
 * or a new one.  New reference, or NULL with an exception. */
static PyObject *
shobj_get(sbi_state *st, int64_t id)
{
    PyObject *key = PyLong_FromLongLong(id);
    if (key == NULL) {
        return NULL;
    }
    int err;
    PyObject *obj = sbi_state_cache_get(st->shared_cache, key, &err);
    if (obj != NULL || err < 0) {
        goto done;
    }
    sbi_shared *o = sbi_shared_bind(id, NULL);
    sbi_shobj_type_fn fn = o != NULL ? type_fn_of(o->type) : NULL;
    if (fn == NULL) {
        if (o != NULL) {
            sbi_shared_decref(o);
        }
        sbi_state_raise(st, SBI_ERR_SHARED_NOT_FOUND, id, NULL);
        goto done;
    }
    // Binding may have let go of the GIL: another thread of this
    // interpreter may have made the object meanwhile.
    obj = sbi_state_cache_get(st->shared_cache, key, &err);
    if (obj != NULL || err < 0) {
        sbi_shared_decref(o);
        goto done;
    }
    obj = sbi_shobj_wrap(st, fn(st, o), o);
done:
    Py_DECREF(key);
    return obj;
}

void
sbi_shobj_dealloc(PyObject *op)
{
    SharedObject *self = (SharedObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject *exc = PyErr_GetRaisedException();
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    sbi_shared *o = self->o;
    sbi_state *st = PyType_GetModuleState(tp);
    if (st != NULL && st->shared_cache != NULL && o != NULL) {
        sbi_state_cache_forget(st->shared_cache, o->id);
    }
    tp->tp_free(op);
    if (o != NULL) {
        sbi_shared_decref(o);
    }
    Py_DECREF(tp);
    PyErr_SetRaisedException(exc);
}

Py_hash_t
sbi_shobj_hash(PyObject *op)
{
    return sbi_state_hash_id(SBI_SHOBJ(op)->id);
}

PyObject *
sbi_shobj_get_id(PyObject *op, void *closure)
{
    return PyLong_FromLongLong(SBI_SHOBJ(op)->id);
}

/* =====================================================================
 * Pickling by id, within the process
 *
 * A pickle holds no reference: the object must still exist when it is
 * loaded (the sender keeps it for call() arguments and pool tasks).  The
 * process token makes a pickle loaded in another process fail cleanly
 * instead of finding an unrelated object with the same id; a forked
 * child has the parent's objects and token.
 */
static struct {
    uint64_t token;      // atomic; 0: not drawn yet
    uint64_t parent;     // in a forked child: the parent's token
    int64_t fork_bound;  // ... valid for ids below this one
} pickles;

static uint64_t
draw_token(void)
{
    uint64_t seed = (uint64_t)sbi_monotonic_ns() ^ ((uint64_t)getpid() << 32) ^
                    (uint64_t)(uintptr_t)&seed;
    // splitmix64's finaliser; never 0
    seed += UINT64_C(0x9E3779B97F4A7C15);
    seed = (seed ^ (seed >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    seed = (seed ^ (seed >> 27)) * UINT64_C(0x94D049BB133111EB);
    seed ^= seed >> 31;
    return seed != 0 ? seed : 1;
}

static uint64_t
process_token(void)
{
    uint64_t t = __atomic_load_n(&pickles.token, __ATOMIC_RELAXED);
    if (t == 0) {
        uint64_t expected = 0;
        t = draw_token();
        if (!__atomic_compare_exchange_n(&pickles.token, &expected, t, 0,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        {
            t = expected;
        }
    }
    return t;
}

void
sbi_shobj_after_fork(void)
{
    // The child has the parent's objects (ids below the bound) under the
    // parent's token; the objects either makes from now on are unrelated
    // though their ids coincide, so the child pickles under a new token.
    if (pickles.token != 0) {
        pickles.parent = pickles.token;
        pickles.fork_bound = sbi_shared_next_id();
        pickles.token = draw_token();
    }
}

PyObject *
sbi_shobj_reduce(PyObject *op, PyObject *unused)
{
    PyObject *m = PyType_GetModule(Py_TYPE(op));  // borrowed
    PyObject *load = m ? PyObject_GetAttrString(m, "_shared_object") : NULL;
    if (load == NULL) {
        return NULL;
    }
    PyObject *r = Py_BuildValue("N(LK)", load, (long long)SBI_SHOBJ(op)->id,
                                (unsigned long long)process_token());
    return r;
}

PyMemberDef sbi_shobj_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(SharedObject, weakreflist),
     Py_READONLY},
    {NULL},
};

/* =====================================================================
 * The handle kind (registered with xidata.c)
 */
static int
shobj_handle_check(PyObject *obj, int64_t *id)
{
    // Only our shared object types (in any interpreter) have this
    // dealloc; they cannot be subclassed.
    if (Py_TYPE(obj)->tp_dealloc != sbi_shobj_dealloc) {
        return 0;
    }
    *id = SBI_SHOBJ(obj)->id;
    return 1;
}

static PyObject *
shobj_handle_object(int64_t id)
{
    sbi_state *st = sbi_state_current();
    return st != NULL ? shobj_get(st, id) : NULL;
}

static PyObject *
shobj_count(PyObject *m, PyObject *unused)
{
    return PyLong_FromSsize_t(sbi_shared_count(NULL));
}

/* _shared_object(id, token, /): what a pickled shared object loads as. */
static PyObject *
shobj_from_pickle(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    long long id;
    unsigned long long token;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "_shared_object expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    id = PyLong_AsLongLong(args[0]);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    token = PyLong_AsUnsignedLongLong(args[1]);
    if (token == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    sbi_state *st = sbi_state_of(m);
    if (token != process_token() &&
        !(token == pickles.parent && id < pickles.fork_bound))
    {
        PyErr_SetString(st->InterpreterError,
                        "a sync primitive or SharedDict was pickled in "
                        "another process: they can only be unpickled in the "
                        "process that made them");
        return NULL;
    }
    return shobj_get(st, id);
}

static PyMethodDef shobj_functions[] = {
    {"_shared_object", _PyCFunction_CAST(shobj_from_pickle), METH_FASTCALL,
     PyDoc_STR("_shared_object($module, id, token, /)\n--\n\n"
               "The object for a pickled shared object.")},
    {"_shared_count", shobj_count, METH_NOARGS,
     PyDoc_STR("How many shared objects (sync primitives, SharedDicts)\n"
               "exist in the process (for leak tests).")},
    {NULL, NULL},
};

int
sbi_shobj_init(PyObject *m, sbi_state *st)
{
    st->shared_cache = PyDict_New();
    if (st->shared_cache == NULL) {
        return -1;
    }
    static const sbi_handle_kind shobj_handle = {
        shobj_handle_check, sbi_shared_handle_bind, sbi_shared_handle_release,
        shobj_handle_object};
    if (sbi_handles_register(&shobj_handle) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(m, shobj_functions);
}
