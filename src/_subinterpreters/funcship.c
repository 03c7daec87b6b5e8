/* funcship.c -- which functions travel as code, and how objects are
 * found again by name.
 *
 * A function crosses as its code (xidata.c TAG_FUNC/TAG_FUNCDEF) when it
 * is stateless (code.c) and its defaults are data; anything else is
 * pickled.  This file decides, says why not, describes objects of the
 * sender's __main__ for the receiver's error, and walks qualified names
 * (module globals travel as a reference).  Current interpreter, thread
 * state attached, everywhere.
 */
#include "funcship.h"
#include "code.h"
#include "handles.h"
#include "tuning.h"

/* Walk qualname (a str) from module object mod.  New reference, or NULL
 * with an exception. */
PyObject *
sbi_funcship_resolve_qualname(PyObject *mod, PyObject *qualname)
{
    PyObject *dot = PyUnicode_FromString(".");
    PyObject *parts = dot ? PyUnicode_Split(qualname, dot, -1) : NULL;
    Py_XDECREF(dot);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *obj = Py_NewRef(mod);
    for (Py_ssize_t i = 0; obj != NULL && i < PyList_GET_SIZE(parts); i++) {
        Py_SETREF(obj, PyObject_GetAttr(obj, PyList_GET_ITEM(parts, i)));
    }
    Py_DECREF(parts);
    return obj;
}

/* The walk of a function's defaults (default_is_native()). */
typedef struct {
    PyObject *seen;  // set of the addresses of containers met, or NULL
    Py_ssize_t nodes;
    PyObject *bad;  // the culprit's type (new reference), once refused
    int repeated;   // bad is a container met twice
} defaults_walk;

/* Can obj, a function's default value, be encoded without pickle (data
 * and shareable objects only) at depth depth of encode()?  1 yes, 0 no
 * (dw->bad set), -1 error.  A mutable container met twice is refused
 * (the function is pickled instead, which keeps the sharing); at most
 * SBI_DEFAULTS_MAX_NODES objects are walked. */
static int
default_is_native(defaults_walk *dw, PyObject *obj, int depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    int64_t hid;
    if (++dw->nodes > SBI_DEFAULTS_MAX_NODES) {
        dw->bad = Py_NewRef(tp);
        return 0;
    }
    if (obj == Py_None || tp == &PyBool_Type || tp == &PyLong_Type ||
        tp == &PyFloat_Type || tp == &PyComplex_Type ||
        tp == &PyUnicode_Type || tp == &PyBytes_Type ||
        tp == &PyByteArray_Type || sbi_handles_kind_of(obj, &hid) >= 0)
    {
        return 1;
    }
    if (depth >= SBI_MAX_DEPTH ||
        !(tp == &PyTuple_Type || tp == &PyList_Type || tp == &PyDict_Type ||
          tp == &PySet_Type || tp == &PyFrozenSet_Type))
    {
        dw->bad = Py_NewRef(tp);
        return 0;
    }
    // A mutable container met twice (shared, or a cycle) would arrive as
    // two copies: refused.  An immutable one may repeat (equal constants
    // of a function are one object), the node budget bounds the walk.
    int mutable =
        tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type;
    if (mutable && dw->seen == NULL && (dw->seen = PySet_New(NULL)) == NULL) {
        return -1;
    }
    PyObject *addr = mutable ? PyLong_FromVoidPtr(obj) : NULL;
    int met = !mutable ? 0 : addr ? PySet_Contains(dw->seen, addr) : -1;
    if (mutable && met == 0) {
        met = PySet_Add(dw->seen, addr) < 0 ? -1 : 0;
    }
    Py_XDECREF(addr);
    if (met != 0) {
        if (met > 0) {
            dw->bad = Py_NewRef(tp);
            dw->repeated = 1;
        }
        return met > 0 ? 0 : -1;
    }
    // A snapshot of the items (a default may change while it is walked);
    // a dict's are (key, value) tuples, walked as their key and value.
    PyObject *items =
        tp == &PyDict_Type ? PyDict_Items(obj) : PySequence_List(obj);
    if (items == NULL) {
        return -1;
    }
    int r = 1;
    for (Py_ssize_t i = 0; r == 1 && i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);  // items holds it
        if (tp == &PyDict_Type) {
            r = default_is_native(dw, PyTuple_GET_ITEM(item, 0), depth + 1);
            if (r == 1) {
                r = default_is_native(dw, PyTuple_GET_ITEM(item, 1),
                                      depth + 1);
            }
        }
        else {
            r = default_is_native(dw, item, depth + 1);
        }
    }
    Py_DECREF(items);
    return r;
}

/* Does pickle find func by reference: a function of an imported module
 * other than __main__, at its qualified name?  No error. */
static int
found_by_reference(PyObject *func)
{
    PyObject *modname = PyObject_GetAttrString(func, "__module__");
    PyObject *qualname =
        modname ? PyObject_GetAttrString(func, "__qualname__") : NULL;
    PyObject *mod = NULL, *found = NULL;
    if (qualname != NULL && PyUnicode_Check(modname) &&
        PyUnicode_Check(qualname) &&
        PyUnicode_CompareWithASCIIString(modname, "__main__") != 0)
    {
        mod = PyImport_GetModule(modname);
        found = mod ? sbi_funcship_resolve_qualname(mod, qualname) : NULL;
    }
    int r = found == func;
    Py_XDECREF(found);
    Py_XDECREF(mod);
    Py_XDECREF(qualname);
    Py_XDECREF(modname);
    PyErr_Clear();
    return r;
}

/* Does func travel as code: stateless (code.c), and defaults that are
 * data, unless pickle finds it by reference (a module's function keeps
 * its own defaults there, a cache in a default dict included)?  1 yes;
 * 0 no, with *why a new str saying why; -1 error. */
int
sbi_funcship_ships_as_code(PyObject *func, PyObject **why)
{
    int r = sbi_code_func_is_stateless(func, why);
    if (r <= 0) {
        return r;
    }
    PyObject *parts[2] = {PyFunction_GetDefaults(func),
                          PyFunction_GetKwDefaults(func)};
    if ((parts[0] != NULL || parts[1] != NULL) && found_by_reference(func)) {
        *why = PyUnicode_FromString("it has defaults and is found by "
                                    "reference in its module");
        return *why ? 0 : -1;
    }
    // encode_func() encodes them one level below the function.
    defaults_walk dw = {NULL, 0, NULL, 0};
    r = 1;
    for (int i = 0; r == 1 && i < 2; i++) {
        r = parts[i] == NULL ? 1 : default_is_native(&dw, parts[i], 2);
    }
    if (r == 0) {
        // Named by type: a repr() could be costly, or fail.
        const char *tname = ((PyTypeObject *)dw.bad)->tp_name;
        *why = dw.nodes > SBI_DEFAULTS_MAX_NODES
                   ? PyUnicode_FromString("its defaults are too big to "
                                          "travel with its code")
               : dw.repeated
                   ? PyUnicode_FromFormat("its defaults hold the same %.200s "
                                          "twice (or in itself)",
                                          tname)
                   : PyUnicode_FromFormat("it has a default value of type "
                                          "%.200s, which is neither data nor "
                                          "shareable",
                                          tname);
        r = *why ? 0 : -1;
    }
    Py_XDECREF(dw.bad);
    Py_XDECREF(dw.seen);
    if (r <= 0) {
        return r;
    }
    return 1;
}

/* "function g (it uses the global 'FACTOR')", "class Point", "a Point
 * object": what obj, pickled with a reference to the script's __main__,
 * is.  New str, or NULL with an exception. */
PyObject *
sbi_funcship_describe(PyObject *obj)
{
    if (PyFunction_Check(obj)) {
        PyObject *name = PyObject_GetAttrString(obj, "__qualname__");
        PyObject *why = NULL;
        if (name == NULL || sbi_funcship_ships_as_code(obj, &why) < 0) {
            Py_XDECREF(name);
            return NULL;
        }
        PyObject *res =
            why ? PyUnicode_FromFormat("function %S (%S)", name, why)
                : PyUnicode_FromFormat("function %S", name);
        Py_XDECREF(why);
        Py_DECREF(name);
        return res;
    }
    if (PyType_Check(obj)) {
        PyObject *name = PyType_GetQualName((PyTypeObject *)obj);
        PyObject *res = name ? PyUnicode_FromFormat("class %S", name) : NULL;
        Py_XDECREF(name);
        return res;
    }
    PyObject *name = PyType_GetQualName(Py_TYPE(obj));
    PyObject *res = name ? PyUnicode_FromFormat("a %S object", name) : NULL;
    Py_XDECREF(name);
    return res;
}
