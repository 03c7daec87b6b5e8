/* state.c -- the per-interpreter state of subinterpreters._core: the
 * module state and how to reach it, per-interpreter C blocks
 * (sbi_state_local), and the one function that turns an SBI_ERR_* code
 * into an exception.
 *
 * Calls only compat.h, common.h and tuning.h (layers: docs/design.md).
 * module.c registers the module definition here when the module is
 * initialised; queue_type.c the loader of the queue exception classes.
 */
#include <stddef.h>
#include <string.h>
#include "state.h"
#include "tuning.h"

/* Our module definition, registered by module.c before any module
 * object exists; the same pointer every time. */
static PyModuleDef *moduledef = NULL;  // atomic

void
sbi_state_register_def(PyModuleDef *def)
{
    __atomic_store_n(&moduledef, def, __ATOMIC_RELEASE);
}

sbi_state *
sbi_state_current(void)
{
    PyObject *m = PyImport_ImportModule(SBI_CORE_MODULE_NAME);
    if (m == NULL) {
        return NULL;
    }
    sbi_state *st = sbi_state_of(m);
    Py_DECREF(m);  // sys.modules keeps the module alive
    return st;
}

sbi_state *
sbi_state_from_type(PyTypeObject *tp)
{
    PyModuleDef *def = __atomic_load_n(&moduledef, __ATOMIC_ACQUIRE);
    assert(def != NULL);  // registered before any of our types exists
    PyObject *m = PyType_GetModuleByDef(tp, def);  // borrowed
    assert(m != NULL);
    return sbi_state_of(m);
}

typedef union {
    void (*clear)(void *);
    max_align_t align;  // the block after the head stays aligned
} local_head;

/* A per-thread cache of the blocks sbi_state_local() found: every call()
 * looks its caches up several times, and the dict lookup makes and hashes
 * a str from the key each time.  Entries are per (key, interpreter id),
 * as a thread running calls alternates between two interpreters.  An
 * entry stays valid while local_generation is unchanged (interpreter ids
 * are never reused); it is bumped before any block is freed.  A block is
 * freed only while its interpreter's dict is cleared, with that
 * interpreter's GIL held, so no thread can be using an entry of it
 * meanwhile. */
typedef struct {
    const char *key;  // static string, compared by address
    int64_t interp_id;
    uint64_t generation;
    void *block;
} local_cached;

static _Thread_local local_cached local_cache[SBI_LOCAL_CACHE_SIZE];
static uint64_t local_generation = 0;  // atomic

static void
interp_local_destroy(PyObject *capsule)
{
    __atomic_add_fetch(&local_generation, 1, __ATOMIC_RELEASE);
    local_head *head =
        PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule));
    if (head == NULL) {
        PyErr_Clear();
        return;
    }
    if (head->clear != NULL) {
        head->clear(head + 1);
    }
    PyMem_RawFree(head);
}

/* sbi_state_local() without the cache: the block in the interpreter's
 * dict, created if missing. */
static void *
interp_local_lookup(PyInterpreterState *interp, const char *key, size_t size,
                    int (*init)(void *), void (*clear)(void *))
{
    PyObject *d = PyInterpreterState_GetDict(interp);
    if (d == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no interpreter dict");
        return NULL;
    }
    PyObject *cap = PyDict_GetItemString(d, key);  // borrowed
    if (cap != NULL) {
        local_head *head = PyCapsule_GetPointer(cap, key);
        return head != NULL ? (void *)(head + 1) : NULL;
    }
    local_head *head = PyMem_RawCalloc(1, sizeof(local_head) + size);
    if (head == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    head->clear = clear;
    cap = PyCapsule_New(head, key, interp_local_destroy);
    if (cap == NULL) {
        PyMem_RawFree(head);
        return NULL;
    }
    // On failure the capsule's destructor clears and frees the block.
    int rc = (init != NULL && init(head + 1) < 0)
                 ? -1
                 : PyDict_SetItemString(d, key, cap);
    Py_DECREF(cap);
    return rc < 0 ? NULL : (void *)(head + 1);
}

void *
sbi_state_local(const char *key, size_t size, int (*init)(void *),
                void (*clear)(void *))
{
    static _Thread_local unsigned int next_victim = 0;
    PyInterpreterState *interp = PyInterpreterState_Get();
    int64_t id = PyInterpreterState_GetID(interp);
    uint64_t gen = __atomic_load_n(&local_generation, __ATOMIC_ACQUIRE);
    local_cached *slot = NULL;
    for (int i = 0; i < SBI_LOCAL_CACHE_SIZE; i++) {
        local_cached *e = &local_cache[i];
        if (e->key == key && e->interp_id == id) {
            if (e->generation == gen) {
                return e->block;
            }
            slot = e;  // stale: refresh it
            break;
        }
        if (slot == NULL && e->key == NULL) {
            slot = e;
        }
    }
    if (slot == NULL) {
        slot = &local_cache[next_victim++ % SBI_LOCAL_CACHE_SIZE];
    }
    void *block = interp_local_lookup(interp, key, size, init, clear);
    if (block != NULL) {
        *slot = (local_cached){key, id, gen, block};
    }
    return block;
}

Py_hash_t
sbi_state_hash_id(int64_t id)
{
    PyObject *obj = PyLong_FromLongLong(id);
    if (obj == NULL) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(obj);
    Py_DECREF(obj);
    return h;
}

/* Set lazily by a higher layer at its module init (see state.h); the
 * same function in every interpreter. */
/* Registered at module init in the main interpreter first, the same
 * functions in every interpreter: written before any other interpreter
 * can raise. */
#define SLOT_LOADERS_MAX 4
static int (*volatile slot_loaders[SLOT_LOADERS_MAX])(sbi_state *);

void
sbi_state_register_loader(int (*load)(sbi_state *st))
{
    for (int i = 0; i < SLOT_LOADERS_MAX; i++) {
        if (slot_loaders[i] == load) {
            return;
        }
        if (slot_loaders[i] == NULL) {
            slot_loaders[i] = load;
            return;
        }
    }
    Py_UNREACHABLE();  // SLOT_LOADERS_MAX too small
}

/* msg with {id} and {op} replaced, into buf. */
static void
format_message(char *buf, size_t size, const char *msg, int64_t id,
               const char *op)
{
    size_t n = 0;
    while (*msg != '\0' && n + 1 < size) {
        int w = 0;
        if (strncmp(msg, "{id}", 4) == 0) {
            w = snprintf(buf + n, size - n, "%lld", (long long)id);
            msg += 4;
        }
        else if (strncmp(msg, "{op}", 4) == 0) {
            w = snprintf(buf + n, size - n, "%s", op != NULL ? op : "use");
            msg += 4;
        }
        else {
            buf[n++] = *msg++;
        }
        n = w < 0 ? n : (size_t)w < size - n ? n + (size_t)w : size - 1;
    }
    buf[n] = '\0';
}

/* The exception class for err (the fallback one if fallback), or NULL
 * if not loaded; *msg is set to its message. */
static PyObject *
class_of(sbi_state *st, int err, int fallback, const char **msg)
{
    switch (err) {
#define SBI_X(name, value, slot, fallback_slot, text)                         \
  case value:                                                                 \
    *msg = text;                                                              \
    return fallback ? st->fallback_slot : st->slot;
        SBI_ERR_MAP(SBI_X)
#undef SBI_X
    default:
        *msg = "unknown error {id}";
        return st->InterpreterError;
    }
}

PyObject *
sbi_state_raise(sbi_state *st, int err, int64_t id, const char *op)
{
    if (err == SBI_ERR_NOMEM) {
        return PyErr_NoMemory();
    }
    if (err == SBI_ERR_PYEXC) {
        if (SBI_NEVER(!PyErr_Occurred())) {
            PyErr_SetString(PyExc_SystemError, "error reported, none set");
        }
        return NULL;
    }
    const char *msg;
    PyObject *cause = NULL;
    PyObject *exc = class_of(st, err, 0, &msg);
    PyObject *fallback = class_of(st, err, 1, &msg);
    if (exc == NULL && fallback != NULL) {
        // A class a higher layer loads on first use: load it, or raise
        // the fallback with the reason it could not be loaded as cause.
        for (int i = 0; i < SLOT_LOADERS_MAX && exc == NULL; i++) {
            int (*load)(sbi_state *) = slot_loaders[i];
            if (load != NULL && load(st) < 0) {
                Py_XSETREF(cause, PyErr_GetRaisedException());
            }
            exc = class_of(st, err, 0, &msg);
        }
        if (exc != NULL) {
            Py_CLEAR(cause);
        }
    }
    if (exc == NULL) {
        exc = fallback != NULL ? fallback : PyExc_RuntimeError;
    }
    if (msg[0] == '\0') {
        PyErr_SetNone(exc);
    }
    else {
        char buf[512];
        format_message(buf, sizeof(buf), msg, id, op);
        PyErr_SetString(exc, buf);
    }
    if (cause != NULL) {
        PyObject *raised = PyErr_GetRaisedException();
        PyException_SetCause(raised, cause);  // steals
        PyErr_SetRaisedException(raised);
    }
    return NULL;
}

/* =====================================================================
 * Weak caches
 */
PyObject *
sbi_state_cache_get(PyObject *cache, PyObject *key, int *err)
{
    PyObject *ref = NULL, *obj = NULL;
    *err = 0;
    if (PyDict_GetItemRef(cache, key, &ref) < 0) {
        *err = -1;
        return NULL;
    }
    if (ref != NULL && PyWeakref_GetRef(ref, &obj) < 0) {
        *err = -1;
    }
    Py_XDECREF(ref);
    return obj;
}

int
sbi_state_cache_put(PyObject *cache, PyObject *key, PyObject *obj)
{
    PyObject *ref = PyWeakref_NewRef(obj, NULL);
    if (ref == NULL) {
        return -1;
    }
    int r = PyDict_SetItem(cache, key, ref);
    Py_DECREF(ref);
    return r;
}

void
sbi_state_cache_forget(PyObject *cache, int64_t id)
{
    PyObject *key = PyLong_FromLongLong(id);
    PyObject *ref = NULL, *obj = NULL;
    if (key == NULL || PyDict_GetItemRef(cache, key, &ref) < 0) {
        goto done;
    }
    if (ref == NULL || PyWeakref_GetRef(ref, &obj) < 0) {
        goto done;
    }
    if (obj == NULL) {
        (void)PyDict_DelItem(cache, key);
    }
done:
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    Py_XDECREF(obj);
    Py_XDECREF(ref);
    Py_XDECREF(key);
}

/* =====================================================================
 * Argument parsing
 */
/* Parse a METH_FASTCALL | METH_KEYWORDS call.  names lists the parameters
 * in order: the first npos may be positional, the rest are keyword-only;
 * the first nreq are required.  out[i] receives a borrowed reference or
 * NULL when not given.  0, or -1 with TypeError. */
int
sbi_state_parse_args(const char *fname, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames,
                     const char *const *names, int npos, int nreq, int ntotal,
                     PyObject **out)
{
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %d positional arguments "
                     "(%zd given)",
                     fname, npos, nargs);
        return -1;
    }
    for (int i = 0; i < ntotal; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);  // borrowed
        int i = 0;
        while (i < ntotal &&
               PyUnicode_CompareWithASCIIString(key, names[i]) != 0) {
            i++;
        }
        if (i == ntotal) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R", fname,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got multiple values for argument '%s'", fname,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() missing required argument '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

PyObject *
sbi_state_forward(const char *modname, const char *funcname, PyObject *self,
                  PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *mod = PyImport_ImportModule(modname);
    PyObject *func = mod ? PyObject_GetAttrString(mod, funcname) : NULL;
    Py_XDECREF(mod);
    if (func == NULL) {
        return NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t n = 1 + nargs + nkw;
    PyObject *small[8];
    PyObject **argv = n <= 8 ? small : PyMem_Malloc(n * sizeof(PyObject *));
    if (argv == NULL) {
        Py_DECREF(func);
        return PyErr_NoMemory();
    }
    argv[0] = self;  // borrowed, as are the others
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        argv[1 + i] = args[i];
    }
    PyObject *res = PyObject_Vectorcall(func, argv, 1 + nargs, kwnames);
    if (argv != small) {
        PyMem_Free(argv);
    }
    Py_DECREF(func);
    return res;
}
