/* excinfo.c -- exception snapshots (raw memory) and ExecutionFailed.
 *
 * A snapshot is taken in the interpreter where an exception escaped and
 * read in the caller's interpreter after the switch back, so it holds only
 * PyMem_Raw strings.  ExecutionFailed is a per-interpreter heap subclass
 * of InterpreterError whose instances carry the snapshot as `excinfo`, a
 * types.SimpleNamespace, like 3.14's.
 */
#include "excinfo.h"
#include <string.h>

static char *
raw_strdup_obj(PyObject *s)  // s: str or NULL; never raises
{
    if (s == NULL || !PyUnicode_Check(s)) {
        return NULL;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL) {
        PyErr_Clear();
        return NULL;
    }
    char *r = PyMem_RawMalloc((size_t)n + 1);
    if (r != NULL) {
        memcpy(r, p, (size_t)n + 1);
    }
    return r;
}

static char *
raw_strdup(const char *p)  // never raises
{
    size_t n = strlen(p) + 1;
    char *r = PyMem_RawMalloc(n);
    if (r != NULL) {
        memcpy(r, p, n);
    }
    return r;
}

static char *
attr_strdup(PyObject *obj, const char *name)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL) {
        PyErr_Clear();
        return NULL;
    }
    char *r = raw_strdup_obj(v);
    Py_DECREF(v);
    return r;
}

/* The traceback of exc formatted with the traceback module. */
static PyObject *
format_exception(PyObject *exc)
{
    PyObject *tb = PyImport_ImportModule("traceback");
    if (tb == NULL) {
        return NULL;
    }
    PyObject *lines = PyObject_CallMethod(tb, "format_exception", "O", exc);
    Py_DECREF(tb);
    if (lines == NULL) {
        return NULL;
    }
    PyObject *empty = PyUnicode_FromStringAndSize(NULL, 0);
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    if (text == NULL) {
        return NULL;
    }
    // Strip the trailing newline, as 3.14 does.
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    while (n > 0 && PyUnicode_READ_CHAR(text, n - 1) == '\n') {
        n--;
    }
    PyObject *res = PyUnicode_Substring(text, 0, n);
    Py_DECREF(text);
    return res;
}

void
sbi_excinfo_capture(sbi_excinfo *info, PyObject *exc)
{
    PyObject *saved = PyErr_GetRaisedException();
    PyObject *tp = (PyObject *)Py_TYPE(exc);
    info->type_name = attr_strdup(tp, "__name__");
    info->type_qualname = attr_strdup(tp, "__qualname__");
    info->type_module = attr_strdup(tp, "__module__");
    if (info->type_module != NULL &&
        strcmp(info->type_module, SBI_FAKE_MAIN) == 0) {
        // A class of the caller's __main__ script, re-run in the target.
        PyMem_RawFree(info->type_module);
        info->type_module = raw_strdup("__main__");
    }
    info->is_keyboard_interrupt =
        PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
    PyObject *msg = PyObject_Str(exc);
    if (msg == NULL) {
        PyErr_Clear();
    }
    info->msg = raw_strdup_obj(msg);
    Py_XDECREF(msg);
    PyObject *text = format_exception(exc);
    if (text == NULL) {
        PyErr_Clear();
    }
    info->errdisplay = raw_strdup_obj(text);
    Py_XDECREF(text);
    PyErr_SetRaisedException(saved);
}

void
sbi_excinfo_capture_current(sbi_excinfo *info)
{
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == NULL) {
        return;
    }
    sbi_excinfo_capture(info, exc);
    Py_DECREF(exc);
}

void
sbi_excinfo_clear(sbi_excinfo *info)
{
    PyMem_RawFree(info->type_name);
    PyMem_RawFree(info->type_qualname);
    PyMem_RawFree(info->type_module);
    PyMem_RawFree(info->msg);
    PyMem_RawFree(info->errdisplay);
    memset(info, 0, sizeof(*info));
}

PyObject *
sbi_excinfo_formatted(const sbi_excinfo *info)
{
    const char *qual = info->type_qualname ? info->type_qualname
                       : info->type_name   ? info->type_name
                                           : "Exception";
    const char *mod = info->type_module;
    const char *msg = info->msg ? info->msg : "";
    if (mod != NULL && strcmp(mod, "builtins") != 0 &&
        strcmp(mod, "__main__") != 0)
    {
        return PyUnicode_FromFormat("%s.%s: %s", mod, qual, msg);
    }
    return PyUnicode_FromFormat("%s: %s", qual, msg);
}

static int
ns_set(PyObject *ns, const char *name, const char *value)
{
    PyObject *v = value ? PyUnicode_FromString(value) : Py_NewRef(Py_None);
    if (v == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttrString(ns, name, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *
new_namespace(void)
{
    PyObject *types = PyImport_ImportModule("types");
    if (types == NULL) {
        return NULL;
    }
    PyObject *ns = PyObject_CallMethod(types, "SimpleNamespace", NULL);
    Py_DECREF(types);
    return ns;
}

PyObject *
sbi_excinfo_to_namespace(const sbi_excinfo *info)
{
    PyObject *ns = new_namespace();
    PyObject *tns = new_namespace();
    PyObject *formatted = NULL;
    if (ns == NULL || tns == NULL) {
        goto error;
    }
    if (ns_set(tns, "__name__", info->type_name) < 0 ||
        ns_set(tns, "__qualname__", info->type_qualname) < 0 ||
        ns_set(tns, "__module__", info->type_module) < 0 ||
        PyObject_SetAttrString(ns, "type", tns) < 0 ||
        ns_set(ns, "msg", info->msg) < 0)
    {
        goto error;
    }
    formatted = sbi_excinfo_formatted(info);
    if (formatted == NULL ||
        PyObject_SetAttrString(ns, "formatted", formatted) < 0 ||
        ns_set(ns, "errdisplay", info->errdisplay) < 0)
    {
        goto error;
    }
    Py_DECREF(formatted);
    Py_DECREF(tns);
    return ns;
error:
    Py_XDECREF(formatted);
    Py_XDECREF(ns);
    Py_XDECREF(tns);
    return NULL;
}

int
sbi_excinfo_raise_failed(sbi_state *st, const sbi_excinfo *info)
{
    PyObject *ns = sbi_excinfo_to_namespace(info);
    if (ns == NULL) {
        return -1;
    }
    PyObject *exc = PyObject_CallOneArg(st->ExecutionFailed, ns);
    Py_DECREF(ns);
    if (exc == NULL) {
        return -1;
    }
    PyErr_SetObject(st->ExecutionFailed, exc);
    Py_DECREF(exc);
    return -1;
}

int
sbi_excinfo_raise_with_proxy(PyObject *exc_type, const char *msg,
                             const sbi_excinfo *info)
{
    PyObject *proxy = NULL;
    if (info != NULL && (info->errdisplay || info->msg)) {
        const char *text = info->errdisplay ? info->errdisplay : info->msg;
        proxy = PyObject_CallFunction(PyExc_Exception, "s", text);
        if (proxy == NULL) {
            PyErr_Clear();
        }
    }
    PyErr_SetString(exc_type, msg);
    if (proxy != NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        PyException_SetCause(exc, proxy);  // steals
        PyErr_SetRaisedException(exc);
    }
    return -1;
}

PyObject *
sbi_excinfo_snapshot(PyObject *m, PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_Format(PyExc_TypeError, "expected an exception, got %R", exc);
        return NULL;
    }
    sbi_excinfo info = SBI_EXCINFO_INIT;
    sbi_excinfo_capture(&info, exc);
    PyObject *ns = sbi_excinfo_to_namespace(&info);
    sbi_excinfo_clear(&info);
    return ns;
}

/* ---------------------------------------------------------------------
 * The hint for extension modules that refuse isolated interpreters
 */
#define REFUSED_SUFFIX " does not support loading in subinterpreters"

PyObject *
sbi_excinfo_refusal_hint(PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        Py_RETURN_NONE;
    }
    PyObject *suffix = PyUnicode_FromString(REFUSED_SUFFIX);
    PyObject *prefix = suffix ? PyUnicode_FromString("module ") : NULL;
    PyObject *name = NULL, *top = NULL, *res = NULL;
    if (prefix == NULL) {
        goto done;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    Py_ssize_t end = PyUnicode_Find(text, suffix, 0, len, 1);
    Py_ssize_t start =
        end > 0 ? PyUnicode_Find(text, prefix, 0, end, -1) : end;
    if (start < -1 || end < -1) {
        goto done;  // error
    }
    if (start < 0) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    start += PyUnicode_GET_LENGTH(prefix);
    name = PyUnicode_Substring(text, start, end);
    if (name == NULL) {
        goto done;
    }
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(name);
    if (nlen == 0 || PyUnicode_FindChar(name, ' ', 0, nlen, 1) != -1) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    // CPython names the module by its definition's name, which for a
    // module of a package is often its last part alone ("_regex" for
    // regex._regex): only a dotted name tells the package to check.
    Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, nlen, 1);
    top = dot > 0 ? PyUnicode_Substring(name, 0, dot)
                  : PyUnicode_FromString("PACKAGE");
    if (top == NULL) {
        goto done;
    }
    res = PyUnicode_FromFormat(
        "hint: extension module %U is not built for isolated "
        "interpreters; use a legacy one (create(isolated=False) or "
        "InterpreterPoolExecutor(isolated=False)) or a process pool, or run "
        "\"python -m subinterpreters check %U\"%s to see where it loads",
        name, top, dot > 0 ? "" : " (the package you imported)");
done:
    Py_XDECREF(top);
    Py_XDECREF(name);
    Py_XDECREF(prefix);
    Py_XDECREF(suffix);
    return res;
}

PyObject *
sbi_excinfo_refusal_hint_meth(PyObject *m, PyObject *text)
{
    return sbi_excinfo_refusal_hint(text);
}

/* ---------------------------------------------------------------------
 * ExecutionFailed(excinfo)
 */
static int
ExecutionFailed_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *excinfo;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "ExecutionFailed() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O:ExecutionFailed", &excinfo)) {
        return -1;
    }
    PyObject *msg = PyObject_GetAttrString(excinfo, "formatted");
    if (msg == NULL || !PyUnicode_Check(msg) || PyUnicode_GET_LENGTH(msg) == 0)
    {
        // Fall back to "Type: msg", or the type name alone.
        Py_XDECREF(msg);
        PyErr_Clear();
        PyObject *tp = PyObject_GetAttrString(excinfo, "type");
        PyObject *name = tp ? PyObject_GetAttrString(tp, "__name__") : NULL;
        PyObject *m = PyObject_GetAttrString(excinfo, "msg");
        PyErr_Clear();
        if (name != NULL && m != NULL && m != Py_None) {
            msg = PyUnicode_FromFormat("%S: %S", name, m);
        }
        else if (name != NULL) {
            msg = PyObject_Str(name);
        }
        else {
            msg = PyObject_Str(excinfo);
        }
        Py_XDECREF(tp);
        Py_XDECREF(name);
        Py_XDECREF(m);
        if (msg == NULL) {
            return -1;
        }
    }
    PyObject *newargs = PyTuple_Pack(1, msg);
    Py_DECREF(msg);
    if (newargs == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttrString(self, "args", newargs);
    Py_DECREF(newargs);
    if (rc < 0) {
        return -1;
    }
    return PyObject_SetAttrString(self, "excinfo", excinfo);
}

static PyObject *
ExecutionFailed_str(PyObject *self)
{
    PyObject *excinfo = PyObject_GetAttrString(self, "excinfo");
    if (excinfo == NULL) {
        PyErr_Clear();
        return ((PyTypeObject *)PyExc_Exception)->tp_str(self);
    }
    PyObject *formatted = PyObject_GetAttrString(excinfo, "formatted");
    PyObject *errdisplay =
        formatted ? PyObject_GetAttrString(excinfo, "errdisplay") : NULL;
    Py_DECREF(excinfo);
    if (errdisplay == NULL) {
        Py_XDECREF(formatted);
        return NULL;
    }
    PyObject *res;
    if (errdisplay == Py_None) {
        res = PyObject_Str(formatted);
    }
    else {
        res = PyUnicode_FromFormat("%S\n\nUncaught in the interpreter:\n\n%S",
                                   formatted, errdisplay);
    }
    PyObject *hint = res ? sbi_excinfo_refusal_hint(formatted) : NULL;
    if (hint == NULL) {
        Py_CLEAR(res);
    }
    else if (hint != Py_None) {
        Py_SETREF(res, PyUnicode_FromFormat("%U\n\n%U", res, hint));
    }
    Py_XDECREF(hint);
    Py_DECREF(formatted);
    Py_DECREF(errdisplay);
    return res;
}

static PyType_Slot ExecutionFailed_slots[] = {
    {Py_tp_init, ExecutionFailed_init},
    {Py_tp_str, ExecutionFailed_str},
    {Py_tp_doc, "An unhandled exception happened during execution.\n\n"
                "The excinfo attribute describes the original exception."},
    {0, NULL},
};

static PyType_Spec ExecutionFailed_spec = {
    .name = "subinterpreters.ExecutionFailed",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = ExecutionFailed_slots,
};

int
sbi_excinfo_module_init(PyObject *m, sbi_state *st)
{
    st->ExecutionFailed = PyType_FromModuleAndSpec(m, &ExecutionFailed_spec,
                                                   st->InterpreterError);
    if (st->ExecutionFailed == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(m, "ExecutionFailed", st->ExecutionFailed);
}
