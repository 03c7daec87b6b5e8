/* run.c -- running code in an interpreter of ours, in the calling OS
 * thread: exec() of a script or function, prepare_main() and call().
 *
 * Each packs what it sends in the caller (xidata.c), enters a session
 * (session.c), unpacks and runs in the target, packs the result or
 * captures the exception there (excinfo.c), leaves (lifecycle.c, which
 * reaps an interpreter orphaned meanwhile) and unpacks or raises in the
 * caller.  An exception that escapes the code is raised as
 * ExecutionFailed, except a Ctrl-C of the main thread, which stays the
 * KeyboardInterrupt it is.
 *
 * Calls lifecycle.c, session.c, interrupt.c (exec's timeout), xidata.c,
 * excinfo.c and state.c (layers: docs/design.md).
 */
#include "run.h"
#include "lifecycle.h"
#include "session.h"
#include "interrupt.h"
#include "xidata.h"
#include "code.h"
#include "excinfo.h"

#include <string.h>

/* Raise ExecutionFailed for info; but when the main thread was
 * interrupted by Ctrl-C, raise the KeyboardInterrupt of the pending
 * signal instead, as Ctrl-C always does.  Returns -1. */
static int
raise_failed(sbi_state *st, const sbi_excinfo *info)
{
    if (info->is_keyboard_interrupt && PyErr_CheckSignals() < 0) {
        return -1;
    }
    return sbi_excinfo_raise_failed(st, info);
}

/* ---------------------------------------------------------------------
 * exec
 */

/* Turn the exec() argument into a code object (new reference). */
static PyObject *
script_to_code(PyObject *script)
{
    PyObject *code = NULL;
    if (PyUnicode_Check(script)) {
        Py_ssize_t n;
        const char *src = PyUnicode_AsUTF8AndSize(script, &n);
        if (src == NULL) {
            return NULL;
        }
        if ((Py_ssize_t)strlen(src) != n) {
            PyErr_SetString(PyExc_SyntaxError,
                            "source code string cannot contain null bytes");
            return NULL;
        }
        return sbi_code_compile_cached(script, src);
    }
    if (PyBytes_Check(script)) {
        const char *src = PyBytes_AS_STRING(script);
        if ((Py_ssize_t)strlen(src) != PyBytes_GET_SIZE(script)) {
            PyErr_SetString(PyExc_SyntaxError,
                            "source code string cannot contain null bytes");
            return NULL;
        }
        return Py_CompileString(src, "<script>", Py_file_input);
    }
    if (PyFunction_Check(script)) {
        code = Py_NewRef(PyFunction_GetCode(script));
    }
    else if (PyCode_Check(script)) {
        code = Py_NewRef(script);
    }
    else {
        PyErr_Format(PyExc_TypeError, "unsupported script %R", script);
        return NULL;
    }
    if (sbi_code_check_script(code) < 0) {
        Py_DECREF(code);
        return NULL;
    }
    return code;
}

PyObject *
sbi_run_exec(sbi_state *st, int64_t id, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "timeout", NULL};
    PyObject *script, *timeout_obj = Py_None;
    double timeout = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:exec", kwlist,
                                     &script, &timeout_obj))
    {
        return NULL;
    }
    if (timeout_obj != Py_None) {
        timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (!(timeout >= 0) || timeout > 1e9) {
            PyErr_SetString(PyExc_ValueError,
                            "timeout must be a non-negative number");
            return NULL;
        }
    }
    PyObject *code = script_to_code(script);
    if (code == NULL) {
        return NULL;
    }
    uint64_t token;
    PyObject *data = NULL;
    int rc = sbi_code_pack(code, &token, &data);
    Py_DECREF(code);
    if (rc < 0) {
        return NULL;
    }
    sbi_session s;
    if (sbi_session_enter(st, id, &s, "exec code for") < 0) {
        Py_DECREF(data);
        return NULL;
    }
    /* in the target: data is the caller's bytes object, kept alive by the
     * caller and only read here */
    sbi_excinfo info = SBI_EXCINFO_INIT;
    int failed = 0, timed_out = 0, watching = 0;
    sbi_watchdog w;
    PyObject *tcode = sbi_code_unpack(token, PyBytes_AS_STRING(data),
                                      PyBytes_GET_SIZE(data));
    PyObject *ns = tcode ? sbi_session_main_dict() : NULL;
    if (ns != NULL && timeout >= 0) {
        watching = sbi_watchdog_start(&w, id, s.serial, timeout, 1) == 0;
        if (!watching) {
            PyErr_SetString(PyExc_RuntimeError,
                            "cannot start the timeout thread");
            Py_CLEAR(ns);
        }
    }
    PyObject *res = NULL;
    if (ns != NULL) {
        sbi_interrupt_user_code(s.entry, 1);
        res = PyEval_EvalCode(tcode, ns, ns);
        sbi_interrupt_user_code(s.entry, 0);
    }
    if (res == NULL) {
        sbi_excinfo_capture_current(&info);
        failed = 1;
    }
    if (watching) {
        timed_out =
            sbi_watchdog_stop(&w) && failed && info.is_keyboard_interrupt;
    }
    Py_XDECREF(res);
    Py_XDECREF(ns);
    Py_XDECREF(tcode);
    sbi_lifecycle_leave(&s);
    /* back in the caller */
    Py_DECREF(data);
    if (timed_out) {
        PyErr_Format(PyExc_TimeoutError,
                     "code in interpreter %lld did not finish within %R s",
                     (long long)id, timeout_obj);
        sbi_excinfo_clear(&info);
        return NULL;
    }
    if (failed) {
        raise_failed(st, &info);
        sbi_excinfo_clear(&info);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------
 * prepare_main
 */
typedef struct {
    char *name;  // PyMem_Raw
    sbi_xidata *data;
} nsitem;

static void
nsitems_free(nsitem *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyMem_RawFree(items[i].name);
        sbi_xidata_free(items[i].data);
    }
    PyMem_RawFree(items);
}

/* prepare_main() refused value: one NotShareableError that says why and
 * what to do instead (an interrupt or a MemoryError stays as it is). */
static void
explain_prepare_main(sbi_state *st, PyObject *name)
{
    if (!PyErr_ExceptionMatches(st->NotShareableError)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *why = PyObject_Str(exc);
    if (why != NULL) {
        PyErr_Format(st->NotShareableError,
                     "prepare_main(%U=...): %U: as in Python 3.14, "
                     "prepare_main() binds only objects that every "
                     "interpreter shares natively (None, bool, int, float, "
                     "str, bytes, tuples of them, memoryviews, queues, sync "
                     "primitives, SharedDicts); pass other values as "
                     "arguments of call(), which copies or pickles them, or "
                     "store them in a SharedDict",
                     name, why);
        Py_DECREF(why);
        Py_DECREF(exc);
    }
    else {
        Py_DECREF(exc);  // the error of str() is raised instead
    }
}

/* Pack the (name, value) pairs of ns into a new items array (*n
 * entries); the values natively shareable only (3.14's rule), big
 * payloads pinned in *pins.  NULL with an exception on failure. */
static nsitem *
nsitems_pack(sbi_state *st, PyObject *ns, Py_ssize_t *n, PyObject **pins)
{
    PyObject *keys = PyDict_Keys(ns);
    if (keys == NULL) {
        return NULL;
    }
    *n = PyList_GET_SIZE(keys);
    nsitem *items = PyMem_RawCalloc((size_t)*n, sizeof(nsitem));
    if (items == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);  // borrowed
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "names must be str, got %R", key);
            goto error;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(key, &len);
        if (s == NULL) {
            goto error;
        }
        if ((Py_ssize_t)strlen(s) != len) {
            PyErr_SetString(PyExc_ValueError, "embedded null character");
            goto error;
        }
        items[i].name = PyMem_RawMalloc((size_t)len + 1);
        if (items[i].name == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        memcpy(items[i].name, s, (size_t)len + 1);
        PyObject *value = PyDict_GetItemWithError(ns, key);  // borrowed
        if (value == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "namespace changed");
            }
            goto error;
        }
        items[i].data = sbi_xidata_new_pinned(value, SBI_XI_NATIVE, pins);
        if (items[i].data == NULL) {
            explain_prepare_main(st, key);
        }
        if (items[i].data == NULL) {
            goto error;
        }
    }
    Py_DECREF(keys);
    return items;
error:
    if (items != NULL) {
        nsitems_free(items, *n);
    }
    Py_DECREF(keys);
    return NULL;
}

/* In the target: bind the items into __main__.  0, or -1 with the
 * exception captured in *info. */
static int
nsitems_apply(const nsitem *items, Py_ssize_t n, sbi_excinfo *info)
{
    PyObject *main_ns = sbi_session_main_dict();
    for (Py_ssize_t i = 0; main_ns != NULL && i < n; i++) {
        PyObject *v = sbi_xidata_load(items[i].data, main_ns);
        int rc = v ? PyDict_SetItemString(main_ns, items[i].name, v) : -1;
        Py_XDECREF(v);
        if (rc < 0) {
            break;
        }
    }
    Py_XDECREF(main_ns);
    if (PyErr_Occurred()) {
        sbi_excinfo_capture_current(info);
        return -1;
    }
    return 0;
}

PyObject *
sbi_run_prepare_main(sbi_state *st, int64_t id, PyObject *args,
                     PyObject *kwargs)
{
    PyObject *nsarg = Py_None;
    if (!PyArg_ParseTuple(args, "|O:prepare_main", &nsarg)) {
        return NULL;
    }
    PyObject *ns = nsarg == Py_None
                       ? PyDict_New()
                       : PyObject_CallOneArg((PyObject *)&PyDict_Type, nsarg);
    if (ns == NULL) {
        return NULL;
    }
    if (kwargs != NULL && PyDict_Update(ns, kwargs) < 0) {
        Py_DECREF(ns);
        return NULL;
    }
    if (PyDict_GET_SIZE(ns) == 0) {
        Py_DECREF(ns);
        PyErr_SetString(PyExc_ValueError, "arg 2 must be a non-empty dict");
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *pins = NULL;  // big payloads the items borrow: kept until
                            // the items are freed
    Py_ssize_t n = 0;
    nsitem *items = nsitems_pack(st, ns, &n, &pins);
    sbi_session s;
    if (items != NULL &&
        sbi_session_enter(st, id, &s, "prepare_main for") == 0) {
        sbi_excinfo info = SBI_EXCINFO_INIT;
        int rc = nsitems_apply(items, n, &info);  // in the target
        sbi_lifecycle_leave(&s);
        if (rc < 0) {
            sbi_excinfo_raise_with_proxy(
                st->InterpreterError, "failed to apply namespace to __main__",
                &info);
        }
        else {
            result = Py_NewRef(Py_None);
        }
        sbi_excinfo_clear(&info);
    }
    if (items != NULL) {
        nsitems_free(items, n);
    }
    Py_XDECREF(pins);
    Py_DECREF(ns);
    return result;
}

/* ---------------------------------------------------------------------
 * call
 */
enum call_status {
    CALL_OK = 0,
    CALL_RAISED,    // the callable raised: ExecutionFailed
    CALL_BAD_FUNC,  // could not rebuild the callable
    CALL_BAD_ARGS,
    CALL_BAD_KWARGS,
    CALL_BAD_RESULT,  // could not share the result
};

/* Same-interpreter call: no switch, no copy (as 3.14). */
static PyObject *
call_here(sbi_state *st, sbi_session *s, PyObject *func, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwargs)
{
    PyObject *res = NULL;
    PyObject *argtuple = PyTuple_New(nargs);
    if (argtuple != NULL) {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyTuple_SET_ITEM(argtuple, i, Py_NewRef(args[i]));
        }
        PyObject *ns = sbi_session_main_dict();
        if (ns != NULL) {
            sbi_interrupt_user_code(s->entry, 1);
            res = sbi_session_call_in_main(ns, func, argtuple, kwargs);
            sbi_interrupt_user_code(s->entry, 0);
        }
        Py_XDECREF(ns);
        Py_DECREF(argtuple);
    }
    sbi_excinfo info = SBI_EXCINFO_INIT;
    int failed = 0;
    if (res == NULL) {
        sbi_excinfo_capture_current(&info);
        failed = 1;
    }
    sbi_lifecycle_leave(s);
    if (failed) {
        raise_failed(st, &info);
        sbi_excinfo_clear(&info);
    }
    return res;
}

/* Build a kwargs dict from vectorcall keyword names. */
static PyObject *
kwargs_from_vector(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        return NULL;
    }
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
        if (PyDict_SetItem(d, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) <
            0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

/* What call() sends and gets back, owned by the caller: the packed
 * callable, arguments and result, the payloads they borrow, and the
 * snapshot of an exception raised in the target. */
typedef struct {
    PyObject *pins;  // big payloads the packed values borrow
    sbi_xidata *func, *args, *kwargs, *result;
    sbi_excinfo info;
} call_data;

static void
call_data_clear(call_data *d)
{
    sbi_excinfo_clear(&d->info);
    sbi_xidata_free(d->func);
    sbi_xidata_free(d->args);
    sbi_xidata_free(d->kwargs);
    sbi_xidata_free(d->result);
    Py_XDECREF(d->pins);
}

/* In the caller: pack func, args[0:nargs] and kwargs (or NULL).  The
 * target decodes them while we wait, so big payloads are borrowed
 * (pinned in d->pins until d is cleared).  0, or -1 with an exception. */
static int
call_pack(call_data *d, PyObject *func, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwargs)
{
    d->func = sbi_xidata_new_callable(func, &d->pins);
    if (d->func == NULL) {
        return -1;
    }
    if (nargs > 0) {
        PyObject *t = PyTuple_New(nargs);
        if (t == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyTuple_SET_ITEM(t, i, Py_NewRef(args[i]));
        }
        d->args = sbi_xidata_new_pinned(t, SBI_XI_FULL, &d->pins);
        Py_DECREF(t);
        if (d->args == NULL) {
            return -1;
        }
    }
    if (kwargs != NULL) {
        d->kwargs = sbi_xidata_new_pinned(kwargs, SBI_XI_FULL, &d->pins);
        if (d->kwargs == NULL) {
            return -1;
        }
    }
    return 0;
}

/* In the target: unpack, call from __main__, pack the result (copied:
 * its object dies here before the caller decodes it).  Returns what
 * happened; on failure d->info holds the exception. */
static enum call_status
call_in_target(call_data *d, sbi_entry *e)
{
    enum call_status status = CALL_OK;
    // Unpacking and packing may run the caller's code too (unpickling,
    // imports): interruptible, as the call itself.
    sbi_interrupt_user_code(e, 1);
    PyObject *ns = sbi_session_main_dict();
    PyObject *tf = NULL, *ta = NULL, *tk = NULL, *tr = NULL;
    if (ns == NULL || (tf = sbi_xidata_load(d->func, ns)) == NULL) {
        status = CALL_BAD_FUNC;
    }
    else if (d->args != NULL && (ta = sbi_xidata_load(d->args, ns)) == NULL) {
        status = CALL_BAD_ARGS;
    }
    else if (d->kwargs != NULL &&
             (tk = sbi_xidata_load(d->kwargs, ns)) == NULL) {
        status = CALL_BAD_KWARGS;
    }
    else if ((tr = sbi_session_call_in_main(ns, tf, ta, tk)) == NULL) {
        status = CALL_RAISED;
    }
    else if ((d->result = sbi_xidata_new(tr, SBI_XI_FULL)) == NULL) {
        status = CALL_BAD_RESULT;
    }
    sbi_interrupt_user_code(e, 0);
    if (status != CALL_OK) {
        sbi_excinfo_capture_current(&d->info);
        if (d->info.is_keyboard_interrupt) {
            // interrupted while unpacking or packing: report it as the
            // interrupt it is, not as a sharing failure
            status = CALL_RAISED;
        }
    }
    Py_XDECREF(tf);
    Py_XDECREF(ta);
    Py_XDECREF(tk);
    Py_XDECREF(tr);
    Py_XDECREF(ns);
    return status;
}

/* Back in the caller: the result, or NULL with the exception status
 * calls for. */
/* Did the target refuse because it cannot load the caller's __main__
 * (xidata.c)?  That message says it all: no remote traceback with it. */
static int
info_is_not_shareable(const sbi_excinfo *info)
{
    return info->type_name && info->type_module && info->msg &&
           strcmp(info->type_name, "NotShareableError") == 0 &&
           strcmp(info->type_module, "subinterpreters") == 0 &&
           strstr(info->msg, SBI_NO_MAIN) != NULL;
}

static PyObject *
call_report(sbi_state *st, enum call_status status, call_data *d)
{
    static const char *const not_shareable[] = {
        [CALL_BAD_FUNC] = "func not shareable",
        [CALL_BAD_ARGS] = "args not shareable",
        [CALL_BAD_KWARGS] = "kwargs not shareable",
        [CALL_BAD_RESULT] = "result not shareable",
    };
    switch (status) {
    case CALL_OK:
        return sbi_xidata_load(d->result, NULL);
    case CALL_RAISED:
        raise_failed(st, &d->info);
        return NULL;
    default:
        if (!info_is_not_shareable(&d->info)) {
            sbi_excinfo_raise_with_proxy(st->NotShareableError,
                                         not_shareable[status], &d->info);
        }
        else {
            PyErr_Format(st->NotShareableError, "%s: %s",
                         not_shareable[status], d->info.msg);
        }
        return NULL;
    }
}

PyObject *
sbi_run_call(sbi_state *st, int64_t id, PyObject *const *args, size_t nargsf,
             PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "call() missing required argument 'callable'");
        return NULL;
    }
    PyObject *func = args[0];
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "expected a callable, got %R", func);
        return NULL;
    }
    PyObject *kwargs = kwargs_from_vector(args, nargs, kwnames);
    if (kwargs == NULL && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *result = NULL;
    sbi_session s;
    if (id == sbi_registry_current_pid()) {
        if (sbi_session_enter(st, id, &s, "call") == 0) {
            result = call_here(st, &s, func, args + 1, nargs - 1, kwargs);
        }
        Py_XDECREF(kwargs);
        return result;
    }
    call_data d = {.info = SBI_EXCINFO_INIT};
    if (call_pack(&d, func, args + 1, nargs - 1, kwargs) == 0 &&
        sbi_session_enter(st, id, &s, "call") == 0)
    {
        enum call_status status = call_in_target(&d, s.entry);
        sbi_lifecycle_leave(&s);
        result = call_report(st, status, &d);
    }
    call_data_clear(&d);
    Py_XDECREF(kwargs);
    return result;
}
