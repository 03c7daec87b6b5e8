/* module.c -- the subinterpreters._core module: multi-phase init, module
 * state, exception classes, the method table and error mapping.
 *
 * The module supports a per-interpreter GIL: every object it creates
 * lives in the state of the importing interpreter; process-global state
 * lives in the registries of interp.c, xidata.c and queue.c.
 */
#include <stddef.h>
#include "module.h"
#include "interp.h"
#include "xidata.h"
#include "excinfo.h"
#include "queue.h"
#include "shield.h"

sbi_state *
sbi_module_state_current(void)
{
    PyObject *m = PyImport_ImportModule(SBI_CORE_MODULE_NAME);
    if (m == NULL) {
        return NULL;
    }
    sbi_state *st = sbi_module_get_state(m);
    Py_DECREF(m);  // sys.modules keeps the module alive
    return st;
}

sbi_state *
sbi_module_state_from_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModuleByDef(tp, &sbi_moduledef);  // borrowed
    assert(m != NULL);
    return sbi_module_get_state(m);
}

typedef union {
    void (*clear)(void *);
    max_align_t align;         // the block after the head stays aligned
} local_head;

/* A per-thread cache of the blocks sbi_interp_local() found: every call()
 * looks its caches up several times, and the dict lookup makes and hashes
 * a str from the key each time.  Entries are per (key, interpreter id),
 * as a thread running calls alternates between two interpreters.  An
 * entry stays valid while local_generation is unchanged (interpreter ids
 * are never reused); it is bumped before any block is freed.  A block is
 * freed only while its interpreter's dict is cleared, with that
 * interpreter's GIL held, so no thread can be using an entry of it
 * meanwhile. */
typedef struct {
    const char *key;           // static string, compared by address
    int64_t interp_id;
    uint64_t generation;
    void *block;
} local_cached;

#define LOCAL_CACHE_SIZE 16  // three keys, in a few interpreters per thread
static _Thread_local local_cached local_cache[LOCAL_CACHE_SIZE];
static uint64_t local_generation = 0;  // atomic

static void
interp_local_destroy(PyObject *capsule)
{
    __atomic_add_fetch(&local_generation, 1, __ATOMIC_RELEASE);
    local_head *head = PyCapsule_GetPointer(capsule,
                                            PyCapsule_GetName(capsule));
    if (head == NULL) {
        PyErr_Clear();
        return;
    }
    if (head->clear != NULL) {
        head->clear(head + 1);
    }
    PyMem_RawFree(head);
}

/* sbi_interp_local() without the cache: the block in the interpreter's
 * dict, created if missing. */
static void *
interp_local_lookup(PyInterpreterState *interp, const char *key,
                    size_t size, int (*init)(void *), void (*clear)(void *))
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
    int rc = (init != NULL && init(head + 1) < 0) ? -1
             : PyDict_SetItemString(d, key, cap);
    Py_DECREF(cap);
    return rc < 0 ? NULL : (void *)(head + 1);
}

void *
sbi_interp_local(const char *key, size_t size, int (*init)(void *),
                 void (*clear)(void *))
{
    static _Thread_local unsigned int next_victim = 0;
    PyInterpreterState *interp = PyInterpreterState_Get();
    int64_t id = PyInterpreterState_GetID(interp);
    uint64_t gen = __atomic_load_n(&local_generation, __ATOMIC_ACQUIRE);
    local_cached *slot = NULL;
    for (int i = 0; i < LOCAL_CACHE_SIZE; i++) {
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
        slot = &local_cache[next_victim++ % LOCAL_CACHE_SIZE];
    }
    void *block = interp_local_lookup(interp, key, size, init, clear);
    if (block != NULL) {
        *slot = (local_cached){key, id, gen, block};
    }
    return block;
}

Py_hash_t
sbi_hash_id(int64_t id)
{
    PyObject *obj = PyLong_FromLongLong(id);
    if (obj == NULL) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(obj);
    Py_DECREF(obj);
    return h;
}

PyObject *
sbi_module_raise(sbi_state *st, int err, int64_t id)
{
    PyObject *exc = NULL;
    const char *msg = "unknown error";
    switch (err) {
#define SBI_X(name, value, slot, text)                                      \
    case value:                                                             \
        exc = st->slot;                                                     \
        msg = text;                                                         \
        break;
        SBI_ERR_MAP(SBI_X)
#undef SBI_X
    default:
        break;
    }
    if (err == SBI_ERR_NOMEM) {
        return PyErr_NoMemory();
    }
    if (exc == NULL) {
        exc = st->InterpreterError ? st->InterpreterError
                                   : PyExc_RuntimeError;
    }
    if (id >= 0) {
        PyErr_Format(exc, "%s (id %lld)", msg, (long long)id);
    }
    else {
        PyErr_SetString(exc, msg);
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Module functions
 */
PyDoc_STRVAR(create_doc,
"create($module, /)\n--\n\n"
"Return a new (idle) Python interpreter with its own GIL.");

PyDoc_STRVAR(list_all_doc,
"list_all($module, /)\n--\n\n"
"Return all existing interpreters known to this module.");

PyDoc_STRVAR(get_current_doc,
"get_current($module, /)\n--\n\n"
"Return the currently running interpreter.");

PyDoc_STRVAR(get_main_doc,
"get_main($module, /)\n--\n\n"
"Return the main interpreter.");

PyDoc_STRVAR(is_shareable_doc,
"is_shareable($module, obj, /)\n--\n\n"
"Return True if the object's data may be shared natively between\n"
"interpreters.");

static PyObject *
module_is_shareable(PyObject *m, PyObject *obj)
{
    return PyBool_FromLong(sbi_xidata_is_shareable(obj));
}

static PyMethodDef module_methods[] = {
    {"create", sbi_interp_create, METH_NOARGS, create_doc},
    {"list_all", sbi_interp_list_all, METH_NOARGS, list_all_doc},
    {"get_current", sbi_interp_get_current, METH_NOARGS, get_current_doc},
    {"get_main", sbi_interp_get_main, METH_NOARGS, get_main_doc},
    {"is_shareable", module_is_shareable, METH_O, is_shareable_doc},
    {"_atexit", sbi_interp_atexit, METH_NOARGS, NULL},
    {"_count_interpreters", sbi_interp_count, METH_NOARGS, NULL},
    {"_interp_cache_size", sbi_interp_cache_size, METH_NOARGS, NULL},
    {"_parking", sbi_interp_parking, METH_O, NULL},
    {"_shields", sbi_shield_list, METH_NOARGS, NULL},
    {"_arenas", sbi_shield_arenas, METH_NOARGS, NULL},
    {"_fork_begin", sbi_interp_fork_begin, METH_NOARGS, NULL},
    {"_fork_end", sbi_interp_fork_end, METH_NOARGS, NULL},
    {NULL, NULL},
};

/* ---------------------------------------------------------------------
 * Multi-phase init
 */
static int
add_exception(PyObject *m, PyObject **slot, const char *name, PyObject *base,
              const char *doc)
{
    *slot = PyErr_NewExceptionWithDoc(name, doc, base, NULL);
    if (*slot == NULL) {
        return -1;
    }
    const char *dot = strrchr(name, '.');
    return PyModule_AddObjectRef(m, dot ? dot + 1 : name, *slot);
}

static int
register_atexit(PyObject *m)
{
    if (sbi_interp_current_id() != 0) {
        return 0;
    }
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        return -1;
    }
    PyObject *fn = PyObject_GetAttrString(m, "_atexit");
    PyObject *r = fn ? PyObject_CallMethod(atexit, "register", "O", fn)
                     : NULL;
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_DECREF(atexit);
    return r == NULL ? -1 : 0;
}

static int
module_exec(PyObject *m)
{
    sbi_state *st = sbi_module_get_state(m);
    if (add_exception(m, &st->InterpreterError,
                      "subinterpreters.InterpreterError", PyExc_Exception,
                      "A cross-interpreter operation failed.") < 0 ||
        add_exception(m, &st->InterpreterNotFoundError,
                      "subinterpreters.InterpreterNotFoundError",
                      st->InterpreterError,
                      "An interpreter was not found.") < 0 ||
        add_exception(m, &st->NotShareableError,
                      "subinterpreters.NotShareableError", PyExc_TypeError,
                      "The object cannot be shared between "
                      "interpreters.") < 0 ||
        add_exception(m, &st->QueueError, "subinterpreters.QueueError",
                      PyExc_RuntimeError,
                      "Indicates that a queue-related error happened.") < 0 ||
        add_exception(m, &st->QueueNotFoundError,
                      "subinterpreters.QueueNotFoundError", st->QueueError,
                      "The queue was not found.") < 0 ||
        add_exception(m, &st->ItemInterpreterDestroyed,
                      "subinterpreters.ItemInterpreterDestroyed",
                      st->QueueError,
                      "The interpreter that put the item was "
                      "destroyed.") < 0)
    {
        return -1;
    }
    if (sbi_excinfo_module_init(m, st) < 0 ||
        sbi_interp_module_init(m, st) < 0 ||
        sbi_xidata_module_init(m, st) < 0 ||
        sbi_queue_module_init(m, st) < 0)
    {
        return -1;
    }
    if (PyModule_AddFunctions(m, module_methods) < 0) {
        return -1;
    }
    return register_atexit(m);
}

static int
module_traverse(PyObject *m, visitproc visit, void *arg)
{
    sbi_state *st = sbi_module_get_state(m);
    /* exception classes */
    Py_VISIT(st->InterpreterError);
    Py_VISIT(st->InterpreterNotFoundError);
    Py_VISIT(st->ExecutionFailed);
    Py_VISIT(st->NotShareableError);
    Py_VISIT(st->QueueError);
    Py_VISIT(st->QueueNotFoundError);
    Py_VISIT(st->QueueEmpty);
    Py_VISIT(st->QueueFull);
    Py_VISIT(st->ItemInterpreterDestroyed);
    /* heap types */
    Py_VISIT(st->InterpreterType);
    Py_VISIT(st->SharedBufferType);
    Py_VISIT(st->QueueType);
    /* per-interpreter caches */
    Py_VISIT(st->interp_cache);
    Py_VISIT(st->queue_cache);
    Py_VISIT(st->unbound_objects);
    return 0;
}

static int
module_clear(PyObject *m)
{
    sbi_state *st = sbi_module_get_state(m);
    /* exception classes */
    Py_CLEAR(st->InterpreterError);
    Py_CLEAR(st->InterpreterNotFoundError);
    Py_CLEAR(st->ExecutionFailed);
    Py_CLEAR(st->NotShareableError);
    Py_CLEAR(st->QueueError);
    Py_CLEAR(st->QueueNotFoundError);
    Py_CLEAR(st->QueueEmpty);
    Py_CLEAR(st->QueueFull);
    Py_CLEAR(st->ItemInterpreterDestroyed);
    /* heap types */
    Py_CLEAR(st->InterpreterType);
    Py_CLEAR(st->SharedBufferType);
    Py_CLEAR(st->QueueType);
    /* per-interpreter caches */
    Py_CLEAR(st->interp_cache);
    Py_CLEAR(st->queue_cache);
    Py_CLEAR(st->unbound_objects);
    return 0;
}

static void
module_free(void *m)
{
    (void)module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#if SBI_HAVE_MOD_GIL
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(module_doc,
"Low-level implementation of the subinterpreters package.");

PyModuleDef sbi_moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = SBI_CORE_MODULE_NAME,
    .m_doc = module_doc,
    .m_size = sizeof(sbi_state),
    .m_methods = NULL,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&sbi_moduledef);
}
