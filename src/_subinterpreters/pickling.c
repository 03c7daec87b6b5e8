/* pickling.c -- the pickle fallback of cross-interpreter data, and the
 * '<fake __main__>' re-run.
 *
 * What has no native form travels as a pickle.  A pickle that refers to
 * the sender's __main__ (its script's functions and classes) records the
 * script's file; a receiver whose own __main__ is not that script runs
 * it once as module '<fake __main__>' and loads the pickle with it
 * standing in for __main__.  Objects of those classes pickled in the
 * receiver name '<fake __main__>', which the next hop maps back.
 *
 * Calls state.c (layers: docs/design.md).
 */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE  // memmem()
#endif
#include "pickling.h"
#include "state.h"
#include <string.h>

/* Per-interpreter objects: pickle's functions and the '<fake __main__>'
 * modules, in the interpreter's state dict (sbi_state_local()), so they
 * work in interpreters that never imported our module, and die with the
 * interpreter. */
typedef struct {
    PyObject *dumps;
    PyObject *loads;
    PyObject *fake_mains;  // {path: module}
} icache;

static void
icache_clear(void *p)
{
    icache *c = p;
    Py_CLEAR(c->dumps);
    Py_CLEAR(c->loads);
    Py_CLEAR(c->fake_mains);
}

/* Borrowed pointer valid while the interpreter lives; NULL with an
 * exception on failure. */
static icache *
icache_get(void)
{
    return sbi_state_local("sbi.pickling", sizeof(icache), NULL, icache_clear);
}

static int
icache_pickle(icache *c)
{
    if (c->dumps != NULL) {
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("pickle");
    if (mod == NULL) {
        return -1;
    }
    c->dumps = PyObject_GetAttrString(mod, "dumps");
    c->loads = PyObject_GetAttrString(mod, "loads");
    Py_DECREF(mod);
    if (c->dumps == NULL || c->loads == NULL) {
        Py_CLEAR(c->dumps);
        Py_CLEAR(c->loads);
        return -1;
    }
    return 0;
}

PyObject *
sbi_pickling_main_file(const char *data, Py_ssize_t n)
{
    // A pickle naming '<fake __main__>' refers to the re-run script of
    // another interpreter (registered under that name here): record its
    // file, so the receiver can map it back to that script's __main__.
    const char *name = SBI_FAKE_MAIN;
    if (memmem(data, n, name, strlen(name)) == NULL) {
        if (memmem(data, n, "__main__", 8) == NULL) {
            return NULL;
        }
        name = "__main__";
    }
    PyObject *mods = PyImport_GetModuleDict();          // borrowed
    PyObject *main = PyDict_GetItemString(mods, name);  // borrowed
    if (main == NULL) {
        return NULL;
    }
    PyObject *file = PyObject_GetAttrString(main, "__file__");
    if (file == NULL || !PyUnicode_Check(file)) {
        PyErr_Clear();
        Py_XDECREF(file);
        return NULL;
    }
    return file;
}

/* Run the script at path as module '<fake __main__>' in the current
 * interpreter, cached per path.  New reference or NULL. */
static PyObject *
fake_main_get(icache *c, PyObject *path)
{
    PyObject *mod = NULL;
    PyObject *source = NULL;
    PyObject *code = NULL;
    PyObject *io = NULL;
    if (c->fake_mains == NULL) {
        c->fake_mains = PyDict_New();
        if (c->fake_mains == NULL) {
            return NULL;
        }
    }
    if (PyDict_GetItemRef(c->fake_mains, path, &mod) != 0) {
        return mod;  // found, or error
    }
    io = PyImport_ImportModule("io");
    if (io == NULL) {
        goto error;
    }
    PyObject *f = PyObject_CallMethod(io, "open_code", "O", path);
    if (f == NULL) {
        goto error;
    }
    source = PyObject_CallMethod(f, "read", NULL);
    PyObject *res = PyObject_CallMethod(f, "close", NULL);
    Py_XDECREF(res);
    Py_DECREF(f);
    if (source == NULL) {
        goto error;
    }
    PyObject *builtins = PyEval_GetBuiltins();  // borrowed
    PyObject *compile = PyDict_GetItemString(builtins, "compile");
    if (compile == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no compile()");
        goto error;
    }
    code = PyObject_CallFunction(compile, "OOs", source, path, "exec");
    if (code == NULL) {
        goto error;
    }
    mod = PyModule_New(SBI_FAKE_MAIN);
    if (mod == NULL) {
        goto error;
    }
    PyObject *ns = PyModule_GetDict(mod);  // borrowed
    if (PyDict_SetItemString(ns, "__file__", path) < 0 ||
        PyDict_SetItemString(ns, "__builtins__", builtins) < 0)
    {
        goto error;
    }
    // Cached while it runs, so that unpickling during the run does not
    // re-run it recursively; forgotten again if the run fails.  It is
    // also registered as sys.modules['<fake __main__>'], so objects of its
    // classes can be pickled here (sbi_pickling_main_file() maps them back).
    if (PyDict_SetItem(c->fake_mains, path, mod) < 0) {
        goto error;
    }
    PyObject *r = PyEval_EvalCode(code, ns, ns);
    if (r == NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        if (PyDict_DelItem(c->fake_mains, path) < 0) {
            PyErr_Clear();
        }
        PyErr_SetRaisedException(exc);
        goto error;
    }
    Py_DECREF(r);
    if (PyDict_SetItemString(PyImport_GetModuleDict(), SBI_FAKE_MAIN, mod) < 0)
    {
        goto error;
    }
    goto done;
error:
    Py_CLEAR(mod);
done:
    Py_XDECREF(io);
    Py_XDECREF(source);
    Py_XDECREF(code);
    return mod;
}

/* Swap sys.modules[name] for value (NULL: remove); *old receives the
 * previous value (new reference or NULL).  0 or -1. */
static int
swap_module(PyObject *mods, const char *name, PyObject *value, PyObject **old)
{
    if (PyDict_GetItemStringRef(mods, name, old) < 0) {
        return -1;
    }
    if (value != NULL) {
        return PyDict_SetItemString(mods, name, value);
    }
    if (*old != NULL && PyDict_DelItemString(mods, name) < 0) {
        return -1;
    }
    return 0;
}

/* pickle.loads with the script at path standing in for both '__main__'
 * and '<fake __main__>': this interpreter's own __main__ if it runs that
 * script, else the script re-run as '<fake __main__>'.  New reference or
 * NULL. */
static PyObject *
loads_with_fake_main(icache *c, PyObject *data, PyObject *path)
{
    PyObject *mods = PyImport_GetModuleDict();  // borrowed
    PyObject *main = NULL, *file = NULL;
    if (PyDict_GetItemStringRef(mods, "__main__", &main) < 0) {
        return NULL;
    }
    if (main != NULL) {
        file = PyObject_GetAttrString(main, "__file__");
        if (file == NULL) {
            PyErr_Clear();
        }
    }
    int is_ours = file != NULL && PyUnicode_Check(file) &&
                  PyUnicode_Compare(file, path) == 0;
    Py_XDECREF(file);
    PyObject *stand_in = is_ours ? Py_NewRef(main) : fake_main_get(c, path);
    Py_XDECREF(main);
    if (stand_in == NULL) {
        return NULL;
    }
    PyObject *old_main = NULL, *old_fake = NULL, *res = NULL;
    if (swap_module(mods, "__main__", stand_in, &old_main) == 0 &&
        swap_module(mods, SBI_FAKE_MAIN, stand_in, &old_fake) == 0)
    {
        res = PyObject_CallOneArg(c->loads, data);
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *ignored1 = NULL, *ignored2 = NULL;
    if (swap_module(mods, SBI_FAKE_MAIN, old_fake, &ignored1) < 0 ||
        swap_module(mods, "__main__", old_main, &ignored2) < 0)
    {
        PyErr_Clear();
    }
    Py_XDECREF(ignored1);
    Py_XDECREF(ignored2);
    PyErr_SetRaisedException(exc);
    Py_XDECREF(old_main);
    Py_XDECREF(old_fake);
    Py_DECREF(stand_in);
    return res;
}

PyObject *
sbi_pickling_dumps(PyObject *obj)
{
    icache *c = icache_get();
    if (c == NULL || icache_pickle(c) < 0) {
        return NULL;
    }
    return PyObject_CallOneArg(c->dumps, obj);
}

PyObject *
sbi_pickling_loads(PyObject *data, PyObject *main_file)
{
    icache *c = icache_get();
    if (c == NULL || icache_pickle(c) < 0) {
        return NULL;
    }
    if (main_file == NULL) {
        return PyObject_CallOneArg(c->loads, data);
    }
    return loads_with_fake_main(c, data, main_file);
}
