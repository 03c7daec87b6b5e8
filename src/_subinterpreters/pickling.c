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

/* Is node an instance of the ast class called name?  No error. */
static int
ast_is(PyObject *node, const char *name)
{
    PyObject *tn = PyType_GetName(Py_TYPE(node));
    int r = tn != NULL && PyUnicode_CompareWithASCIIString(tn, name) == 0;
    Py_XDECREF(tn);
    PyErr_Clear();
    return r;
}

/* Is expr the ast of `__name__` (name) or of `'__main__'` (constant)? */
static int
ast_is_name_or_main(PyObject *expr, int want_name)
{
    PyObject *v = PyObject_GetAttrString(expr, want_name ? "id" : "value");
    int r = v != NULL && PyUnicode_Check(v) &&
            PyUnicode_CompareWithASCIIString(v, want_name ? "__name__"
                                                          : "__main__") == 0 &&
            ast_is(expr, want_name ? "Name" : "Constant");
    Py_XDECREF(v);
    PyErr_Clear();
    return r;
}

/* Does the module ast tree hold, at its top level, an
 * `if __name__ == "__main__":` (either way round)?  No error. */
static int
has_main_guard(PyObject *tree)
{
    PyObject *body = PyObject_GetAttrString(tree, "body");
    int found = 0;
    for (Py_ssize_t i = 0;
         !found && body && PyList_Check(body) && i < PyList_GET_SIZE(body);
         i++)
    {
        PyObject *stmt = PyList_GET_ITEM(body, i);  // borrowed
        PyObject *test =
            ast_is(stmt, "If") ? PyObject_GetAttrString(stmt, "test") : NULL;
        PyObject *left = test && ast_is(test, "Compare")
                             ? PyObject_GetAttrString(test, "left")
                             : NULL;
        PyObject *ops = left ? PyObject_GetAttrString(test, "ops") : NULL;
        PyObject *rights =
            ops ? PyObject_GetAttrString(test, "comparators") : NULL;
        if (rights != NULL && PyList_Check(ops) && PyList_Check(rights) &&
            PyList_GET_SIZE(ops) == 1 && PyList_GET_SIZE(rights) == 1 &&
            ast_is(PyList_GET_ITEM(ops, 0), "Eq"))
        {
            PyObject *right = PyList_GET_ITEM(rights, 0);
            found = (ast_is_name_or_main(left, 1) &&
                     ast_is_name_or_main(right, 0)) ||
                    (ast_is_name_or_main(left, 0) &&
                     ast_is_name_or_main(right, 1));
        }
        Py_XDECREF(rights);
        Py_XDECREF(ops);
        Py_XDECREF(left);
        Py_XDECREF(test);
    }
    Py_XDECREF(body);
    PyErr_Clear();
    return found;
}

/* The line of the last frame of the script at path in exc's traceback,
 * or 0.  No error. */
static long
script_line(PyObject *exc, PyObject *path)
{
    long line = 0;
    PyObject *tb = PyException_GetTraceback(exc);
    for (int hops = 0; tb != NULL && tb != Py_None && hops < 1000; hops++) {
        PyObject *frame = PyObject_GetAttrString(tb, "tb_frame");
        PyCodeObject *code = frame && PyFrame_Check(frame)
                                 ? PyFrame_GetCode((PyFrameObject *)frame)
                                 : NULL;
        if (code != NULL && PyUnicode_Check(code->co_filename) &&
            PyUnicode_Compare(code->co_filename, path) == 0)
        {
            PyObject *no = PyObject_GetAttrString(tb, "tb_lineno");
            if (no != NULL && PyLong_Check(no)) {
                long v = PyLong_AsLong(no);
                line = v > 0 ? v : line;
            }
            Py_XDECREF(no);
        }
        Py_XDECREF(code);
        Py_XDECREF(frame);
        PyErr_Clear();  // what could not be read is skipped
        Py_SETREF(tb, PyObject_GetAttrString(tb, "tb_next"));
    }
    Py_XDECREF(tb);
    PyErr_Clear();
    return line;
}

#define RERUN_FIX                                                             \
  "; keep the script's top level runnable in any interpreter (the "           \
  "program itself under `if __name__ == \"__main__\":`), or move it into "    \
  "a module"

/* Raise the ImportError that says the script could not stand in for
 * __main__ here (name '__main__', path its file; see pickling.h). */
static void
raise_no_main(PyObject *path, PyObject *detail)
{
    PyObject *name = detail ? PyUnicode_FromString("__main__") : NULL;
    if (name != NULL) {
        PyErr_SetImportError(detail, name, path);
        Py_DECREF(name);
    }
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
    // Only a script whose top-level code is guarded may run again: the
    // rest of an unguarded one (the program itself) would run twice.
    PyObject *tree = PyObject_CallFunction(compile, "OOsii", source, path,
                                           "exec", PyCF_ONLY_AST, 1);
    if (tree == NULL) {
        goto error;
    }
    if (!has_main_guard(tree)) {
        Py_DECREF(tree);
        PyObject *detail = PyUnicode_FromFormat(
            "the script %U has no `if __name__ == \"__main__\":` guard, "
            "and running its top-level code again would repeat what it "
            "does; guard it, or move it into a module",
            path);
        raise_no_main(path, detail);
        Py_XDECREF(detail);
        goto error;
    }
    code = PyObject_CallFunction(compile, "OOsii", tree, path, "exec", 0, 1);
    Py_DECREF(tree);
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
        if (!PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
            PyErr_SetRaisedException(exc);  // an interrupt stays one
            goto error;
        }
        PyObject *tname = PyType_GetName(Py_TYPE(exc));
        long line = script_line(exc, path);
        PyObject *detail =
            tname == NULL ? NULL
            : line > 0
                ? PyUnicode_FromFormat("running the script %U failed: %U: %S "
                                       "(line %ld)" RERUN_FIX,
                                       path, tname, exc, line)
                : PyUnicode_FromFormat(
                      "running the script %U failed: %U: %S" RERUN_FIX, path,
                      tname, exc);
        Py_XDECREF(tname);
        Py_DECREF(exc);
        raise_no_main(path, detail);
        Py_XDECREF(detail);
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
