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
run_source(const char *source, const char *what)
{
    PyObject *ns = PyDict_New();
    PyObject *r = NULL;
    if (ns != NULL &&
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) == 0)
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
                run_source(s->main_code, "preparing the main interpreter for "
                                         "subinterpreters");
            }
        }
        if (SBI_ARENA_RELEASE && !shields_disabled()) {
            sbi_arena_install();
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

void
sbi_shield_new_interp(void)
{
    sbi_arena_watch_imports();  // first: the fix-ups may import
    for (const sbi_shield *s = shields; s->bug != NULL; s++) {
        if (s->new_code != NULL && shield_on(s)) {
            run_source(s->new_code, "preparing a new subinterpreter");
        }
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
