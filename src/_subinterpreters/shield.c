/* shield.c -- shields users from CPython bugs that crash real programs.
 *
 * Owns the one-time preparation of the main interpreter before its first
 * subinterpreter, the fix-ups run in each new interpreter and the warning
 * about crashes that cannot be prevented.  compat.h lists the shields
 * (SBI_SHIELDS), each citing its bug and on for exactly the CPython
 * releases that need it; this file applies those whose range holds the
 * running CPython.  SUBINTERPRETERS_NO_SHIELDS=1 in the environment turns
 * them all off, so that a test can show each one is needed.
 */
#include "shield.h"
#include "lock.h"
#include "arena.h"
#include "extmod.h"

#include <string.h>

static const sbi_shield shields[] = SBI_SHIELDS;

/* Are the shields turned off by the environment?  Any thread. */
static int
shields_disabled(void)
{
    static int disabled = -1;  // benign race: every thread computes the same
    if (disabled < 0) {
        disabled = sbi_env_flag("SUBINTERPRETERS_NO_SHIELDS");
    }
    return disabled;
}

/* Is shield s on in this process?  Any thread; no Python API. */
static int
shield_on(const sbi_shield *s)
{
    return !shields_disabled() && s->first <= Py_Version &&
           Py_Version < s->end;
}

/* Run Python source in a scratch namespace of the current interpreter.
 * The source catches the failures it expects, so an exception here is a
 * bug of ours: it is reported as unraisable, never raised. */
static void
run_source(const char *source, const char *what, int isolated)
{
    PyObject *ns = PyDict_New();
    PyObject *r = NULL;
    if (ns != NULL &&
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(ns, "isolated", isolated ? Py_True : Py_False) ==
            0)
    {
        r = sbi_compat_run_string(source, ns);
    }
    if (r == NULL) {
        sbi_compat_write_unraisable(what);
    }
    Py_XDECREF(r);
    Py_XDECREF(ns);
}

/* Held while the main interpreter is being prepared: a second thread of
 * the main interpreter that creates an interpreter meanwhile waits (GIL
 * released) until it is done.  It is held while Python code runs, so it
 * must never be taken anywhere else. */
static sbi_mutex main_mutex = SBI_MUTEX_INIT;
/* Set once the main interpreter is prepared; main_owner is the thread
 * preparing it (a finalizer or signal handler of that thread that creates
 * an interpreter meanwhile must not wait for itself).  Both are read and
 * written only with the main interpreter's GIL held, which orders them. */
static int main_done = 0;
static unsigned long main_owner = 0;

/* =====================================================================
 * gh-158364: sys._current_frames() of the current interpreter only
 */

/* Is the shield of bug on in this process?  Any thread. */
static int
bug_shielded(const char *bug)
{
    for (const sbi_shield *s = shields; s->bug != NULL; s++) {
        if (strcmp(s->bug, bug) == 0 && shield_on(s)) {
            return 1;
        }
    }
    return 0;
}

/* sys._current_frames() as the fixed releases have it: {thread id: top
 * frame} for the threads of the current interpreter.  The walk holds the
 * interpreter's GIL and runs no Python code (the collector is off while
 * it allocates), so no thread state of this interpreter can end under it:
 * threads end theirs holding that GIL, and so do ours (interrupt.c's
 * temporary one, lifecycle.c's, session.c's: deleted while current or
 * while attached there). */
static PyObject *
current_frames_here(PyObject *self, PyObject *unused)
{
    if (PySys_Audit("sys._current_frames", NULL) < 0) {
        return NULL;
    }
    PyObject *result = PyDict_New();
    if (result == NULL) {
        return NULL;
    }
    int gc_was_on = PyGC_Disable();
    PyInterpreterState *interp = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interp);
         t != NULL && result != NULL; t = PyThreadState_Next(t))
    {
        PyFrameObject *frame = PyThreadState_GetFrame(t);  // new reference
        if (frame == NULL) {
            if (PyErr_Occurred()) {
                Py_CLEAR(result);
            }
            continue;
        }
        PyObject *id = PyLong_FromUnsignedLong(t->thread_id);
        if (id == NULL || PyDict_SetItem(result, id, (PyObject *)frame) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(id);
        Py_DECREF(frame);
    }
    if (gc_was_on) {
        (void)PyGC_Enable();
    }
    return result;
}

static PyMethodDef current_frames_def = {
    "_current_frames", current_frames_here, METH_NOARGS,
    PyDoc_STR("_current_frames($module, /)\n--\n\n"
              "Return a dict mapping each thread's identifier to the topmost "
              "stack frame currently active in that thread, for the threads "
              "of this interpreter (subinterpreters shields CPython "
              "gh-158364 here).")};

/* Replace sys._current_frames in the current interpreter.  No error. */
static void
install_current_frames(void)
{
    PyObject *func = PyCFunction_New(&current_frames_def, NULL);
    if (func == NULL || PySys_SetObject("_current_frames", func) < 0) {
        sbi_compat_write_unraisable("shielding sys._current_frames");
    }
    Py_XDECREF(func);
}

int
sbi_shield_main(void)
{
    if (main_done || main_owner == PyThread_get_thread_ident()) {
        return 0;
    }
    sbi_mutex_lock_py(&main_mutex);
    int first = !main_done;
    if (first) {
        main_owner = PyThread_get_thread_ident();
        for (const sbi_shield *s = shields; s->bug != NULL; s++) {
            if (s->main_code != NULL && shield_on(s)) {
                run_source(s->main_code,
                           "preparing the main interpreter for "
                           "subinterpreters",
                           0);
            }
        }
        if (SBI_ARENA_RELEASE && !shields_disabled()) {
            sbi_arena_install();
        }
        if (bug_shielded("gh-158364")) {
            install_current_frames();
        }
        main_done = 1;
        main_owner = 0;
    }
    sbi_mutex_unlock(&main_mutex);
    if (!first) {
        return 0;
    }
    for (const sbi_shield *s = shields; s->bug != NULL; s++) {
        if (s->warning != NULL && shield_on(s) &&
            PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "CPython %d.%d.%d: %s",
                             (int)(Py_Version >> 24) & 0xff,
                             (int)(Py_Version >> 16) & 0xff,
                             (int)(Py_Version >> 8) & 0xff, s->warning) < 0)
        {
            return -1;
        }
    }
    return 0;
}

#if SBI_REFUSE_SINGLE_PHASE
/* Has importlib's check of single-phase modules been overridden in this
 * interpreter to let them load (test.support does)?  No error. */
static int
check_overridden(PyObject *imp)
{
    PyObject *old = PyObject_CallMethod(
        imp, "_override_multi_interp_extensions_check", "i", 0);
    int overridden =
        old != NULL && PyLong_Check(old) && PyLong_AsLong(old) < 0;
    if (old != NULL) {
        PyObject *r = PyObject_CallMethod(
            imp, "_override_multi_interp_extensions_check", "O", old);
        Py_XDECREF(r);
    }
    Py_XDECREF(old);
    PyErr_Clear();
    return overridden;
}

/* The wrapper of _imp.create_dynamic in our isolated interpreters (self is
 * the function it wraps): refuse a single-phase module before its library
 * is loaded, with CPython's own error (compat.h SBI_REFUSE_SINGLE_PHASE). */
static PyObject *
refuse_single_phase(PyObject *orig, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    PyObject *name = NULL, *origin = NULL, *path = NULL;
    if (nargs >= 1) {
        name = PyObject_GetAttrString(args[0], "name");
        origin = name ? PyObject_GetAttrString(args[0], "origin") : NULL;
    }
    if (origin != NULL && PyUnicode_Check(origin) && PyUnicode_Check(name)) {
        path = PyUnicode_EncodeFSDefault(origin);  // as the loader does
    }
    PyErr_Clear();  // whatever is missing, CPython will say
    sbi_extmod_kind kind = SBI_EXTMOD_UNKNOWN;
    if (path != NULL &&
        strlen(PyBytes_AS_STRING(path)) == (size_t)PyBytes_GET_SIZE(path))
    {
        Py_BEGIN_ALLOW_THREADS
        kind = sbi_extmod_kind_of(PyBytes_AS_STRING(path));
        Py_END_ALLOW_THREADS
    }
    Py_XDECREF(path);
    PyObject *res = NULL;
    PyObject *imp =
        kind == SBI_EXTMOD_SINGLE_PHASE ? PyImport_ImportModule("_imp") : NULL;
    PyErr_Clear();
    if (imp != NULL && !check_overridden(imp)) {
        PyObject *msg = PyUnicode_FromFormat(
            "module %U does not support loading in subinterpreters", name);
        if (msg != NULL) {
            PyErr_SetImportError(msg, name, origin);
            Py_DECREF(msg);
        }
    }
    else {
        res = PyObject_Vectorcall(orig, args, nargs, kwnames);
    }
    Py_XDECREF(imp);
    Py_XDECREF(origin);
    Py_XDECREF(name);
    return res;
}

static PyMethodDef refuse_def = {"create_dynamic",
                                 _PyCFunction_CAST(refuse_single_phase),
                                 METH_FASTCALL | METH_KEYWORDS, NULL};

/* Put refuse_single_phase() in front of _imp.create_dynamic.  No error. */
static void
install_refusal(void)
{
    PyObject *imp = PyImport_ImportModule("_imp");
    if (imp == NULL || sbi_wrap_imp_function(imp, &refuse_def) < 0) {
        sbi_compat_write_unraisable("preparing a new subinterpreter");
    }
    Py_XDECREF(imp);
}
#endif

void
sbi_shield_new_interp(int isolated)
{
    if (isolated) {
        sbi_arena_watch_imports();  // first: the fix-ups may import
#if SBI_REFUSE_SINGLE_PHASE
        if (!shields_disabled()) {
            install_refusal();  // in front: what it refuses never ran
        }
#endif
    }
    for (const sbi_shield *s = shields; s->bug != NULL; s++) {
        if (s->new_code != NULL && shield_on(s)) {
            run_source(s->new_code, "preparing a new subinterpreter",
                       isolated);
        }
    }
    if (bug_shielded("gh-158364")) {
        install_current_frames();
    }
}

PyObject *
sbi_shield_arenas(PyObject *m, PyObject *unused)
{
    return sbi_arena_stats();
}

/* Append a new str made of name to list; 0, or -1 with an exception. */
static int
append_name(PyObject *list, const char *name)
{
    PyObject *s = PyUnicode_FromString(name);
    int rc = s != NULL ? PyList_Append(list, s) : -1;
    Py_XDECREF(s);
    return rc;
}

PyObject *
sbi_shield_list(PyObject *m, PyObject *unused)
{
    PyObject *list = PyList_New(0);
    for (const sbi_shield *s = shields; list != NULL && s->bug != NULL; s++) {
        if (shield_on(s) && append_name(list, s->bug) < 0) {
            Py_CLEAR(list);
        }
    }
    if (list != NULL && sbi_arena_installed() &&
        append_name(list, "gh-113055") < 0)
    {
        Py_CLEAR(list);
    }
    return list;
}

void
sbi_shield_after_fork(void)
{
    (void)pthread_mutex_init(&main_mutex, NULL);
    main_owner = 0;
}
