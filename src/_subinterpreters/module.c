/* module.c -- the subinterpreters._core module: multi-phase init, the
 * exception classes and the method table.  Wiring only: module state and
 * the error mapping are in state.c.
 *
 * The module supports a per-interpreter GIL: every object it creates
 * lives in the state of the importing interpreter; process-global state
 * lives in the registries of registry.c, xidata.c and queue.c.
 */
#include <stddef.h>
#include "state.h"
#include "interp_type.h"
#include "process.h"
#include "xidata.h"
#include "excinfo.h"
#include "queue_type.h"
#include "sync.h"
#include "shobj.h"
#include "sync_type.h"
#include "shdict_type.h"
#include "shield.h"
#include "extmod.h"

/* ---------------------------------------------------------------------
 * Module functions
 */
PyDoc_STRVAR(
    create_doc,
    "create($module, /, *, isolated=True)\n--\n\n"
    "Return a new (idle) Python interpreter.\n\n"
    "An isolated interpreter has its own GIL, so its Python code runs\n"
    "in parallel with other interpreters, and refuses extension\n"
    "modules not built for that.  isolated=False makes a legacy one:\n"
    "it shares the main interpreter's GIL (no parallelism) and loads\n"
    "single-phase extension modules.");

PyDoc_STRVAR(list_all_doc,
             "list_all($module, /)\n--\n\n"
             "Return all existing interpreters known to this module.");

PyDoc_STRVAR(get_current_doc, "get_current($module, /)\n--\n\n"
                              "Return the currently running interpreter.");

PyDoc_STRVAR(get_main_doc, "get_main($module, /)\n--\n\n"
                           "Return the main interpreter.");

PyDoc_STRVAR(
    is_shareable_doc,
    "is_shareable($module, obj, /)\n--\n\n"
    "Return True if the object's data may be shared natively between\n"
    "interpreters.");

static PyObject *
module_is_shareable(PyObject *m, PyObject *obj)
{
    return PyBool_FromLong(sbi_xidata_is_shareable(obj));
}

static PyMethodDef module_methods[] = {
    {"create", _PyCFunction_CAST(sbi_interp_type_create),
     METH_FASTCALL | METH_KEYWORDS, create_doc},
    {"list_all", sbi_interp_type_list_all, METH_NOARGS, list_all_doc},
    {"get_current", sbi_interp_type_get_current, METH_NOARGS, get_current_doc},
    {"get_main", sbi_interp_type_get_main, METH_NOARGS, get_main_doc},
    {"is_shareable", module_is_shareable, METH_O, is_shareable_doc},
    {"_atexit", sbi_process_atexit, METH_NOARGS, NULL},
    {"_note_ctrl_c_exit", sbi_process_note_ctrl_c_exit, METH_NOARGS, NULL},
    {"_excinfo", sbi_excinfo_snapshot, METH_O, NULL},
    {"_refusal_hint", sbi_excinfo_refusal_hint_meth, METH_O, NULL},
    {"_count_interpreters", sbi_process_count, METH_NOARGS, NULL},
    {"_interp_cache_size", sbi_interp_type_cache_size, METH_NOARGS, NULL},
    {"_parking", sbi_process_parking, METH_O, NULL},
    {"_shields", sbi_shield_list, METH_NOARGS, NULL},
    {"_arenas", sbi_shield_arenas, METH_NOARGS, NULL},
    {"_extension_kind", sbi_extmod_py_kind, METH_O, NULL},
    {"_fork_begin", sbi_process_fork_begin, METH_NOARGS, NULL},
    {"_fork_end", sbi_process_fork_end, METH_NOARGS, NULL},
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
    if (sbi_current_cid() != 0) {
        return 0;
    }
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit == NULL) {
        return -1;
    }
    PyObject *fn = PyObject_GetAttrString(m, "_atexit");
    PyObject *r = fn ? PyObject_CallMethod(atexit, "register", "O", fn) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_DECREF(atexit);
    return r == NULL ? -1 : 0;
}

static int
module_exec(PyObject *m)
{
    sbi_state *st = sbi_state_of(m);
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
        sbi_interp_type_init(m, st) < 0 || sbi_xidata_module_init(m, st) < 0 ||
        sbi_queue_type_init(m, st) < 0 || sbi_shobj_init(m, st) < 0 ||
        sbi_sync_type_init(m, st) < 0 || sbi_shdict_type_init(m, st) < 0)
    {
        return -1;
    }
    if (PyModule_AddFunctions(m, module_methods) < 0) {
        return -1;
    }
    sbi_process_init();
    return register_atexit(m);
}

static int
module_traverse(PyObject *m, visitproc visit, void *arg)
{
    sbi_state *st = sbi_state_of(m);
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
    Py_VISIT(st->RuntimeError);
    Py_VISIT(st->ValueError);
    Py_VISIT(st->OverflowError);
    Py_VISIT(st->BrokenBarrierError);
    /* heap types */
    Py_VISIT(st->InterpreterType);
    Py_VISIT(st->SharedBufferType);
    Py_VISIT(st->QueueType);
    Py_VISIT(st->QueueWatchType);
    Py_VISIT(st->QueueItemType);
    for (int i = 0; i < SBI_SYNC_NKINDS; i++) {
        Py_VISIT(st->SyncTypes[i]);
    }
    Py_VISIT(st->SharedDictType);
    /* per-interpreter caches */
    Py_VISIT(st->interp_cache);
    Py_VISIT(st->queue_cache);
    Py_VISIT(st->shared_cache);
    Py_VISIT(st->unbound_objects);
    return 0;
}

static int
module_clear(PyObject *m)
{
    sbi_state *st = sbi_state_of(m);
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
    Py_CLEAR(st->RuntimeError);
    Py_CLEAR(st->ValueError);
    Py_CLEAR(st->OverflowError);
    Py_CLEAR(st->BrokenBarrierError);
    /* heap types */
    Py_CLEAR(st->InterpreterType);
    Py_CLEAR(st->SharedBufferType);
    Py_CLEAR(st->QueueType);
    Py_CLEAR(st->QueueWatchType);
    Py_CLEAR(st->QueueItemType);
    for (int i = 0; i < SBI_SYNC_NKINDS; i++) {
        Py_CLEAR(st->SyncTypes[i]);
    }
    Py_CLEAR(st->SharedDictType);
    /* per-interpreter caches */
    Py_CLEAR(st->interp_cache);
    Py_CLEAR(st->queue_cache);
    Py_CLEAR(st->shared_cache);
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

static PyModuleDef sbi_moduledef = {
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
    sbi_state_register_def(&sbi_moduledef);
    return PyModuleDef_Init(&sbi_moduledef);
}
