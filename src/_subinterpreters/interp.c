/* interp.c -- interpreter lifecycle, sessions, and the Interpreter type.
 *
 * Owns (on the records of registry.c):
 *  - parking: reusing closed pristine interpreters;
 *  - sessions: switching the calling OS thread into a target interpreter
 *    with a fresh thread state and back;
 *  - destruction: joining the target's threads, refusing when a thread
 *    cannot be joined, running the "closed" hooks (queue items are
 *    unbound there), ending the interpreter;
 *  - the Interpreter heap type and the module functions create(),
 *    list_all(), get_current(), get_main(); the exit hook and the fork
 *    guard.
 *
 * Lock: sbi_registry.mutex is a leaf lock held only for list operations and
 * flag updates; no Python API is called while it is held.
 */
#include "interp.h"
#include "registry.h"
#include "interrupt.h"
#include "sigint.h"
#include "xidata.h"
#include "excinfo.h"
#include "hooks.h"
#include "shield.h"
#include "arena.h"
#include "lock.h"
#include <marshal.h>
#include <string.h>
#include <unistd.h>
#include <stddef.h>

/* Raise for error code err about interpreter id; op names the operation
 * for "unrecognized" errors.  Returns -1. */
static int
raise_interp_error(sbi_state *st, int err, int64_t id, const char *op)
{
    switch (err) {
    case SBI_ERR_NOT_FOUND:
    case SBI_ERR_CLOSING:
        PyErr_Format(st->InterpreterNotFoundError,
                     "unrecognized interpreter ID %lld", (long long)id);
        break;
    case SBI_ERR_NOT_OURS:
        PyErr_Format(st->InterpreterError,
                     "cannot %s unrecognized interpreter %lld", op,
                     (long long)id);
        break;
    case SBI_ERR_ALREADY_RUNNING:
        PyErr_SetString(st->InterpreterError,
                        "interpreter already running");
        break;
    case SBI_ERR_IS_CURRENT:
        PyErr_SetString(st->InterpreterError,
                        "cannot destroy the current interpreter");
        break;
    case SBI_ERR_THREADS_LEFT:
        PyErr_Format(st->InterpreterError,
                     "cannot close interpreter %lld: it still has threads "
                     "that cannot be joined (started with _thread?)",
                     (long long)id);
        break;
    case SBI_ERR_BUFFERS_SHARED:
        PyErr_Format(st->InterpreterError,
                     "cannot close interpreter %lld: memoryviews of its "
                     "buffers are still alive in other interpreters",
                     (long long)id);
        break;
    default:
        sbi_state_raise(st, err, id);
        break;
    }
    return -1;
}

static int destroy_entry(sbi_entry *e, int wait_ms, int force);

/* =====================================================================
 * Parking: reusing closed interpreters
 *
 * Creating and ending an interpreter costs milliseconds, and CPython
 * 3.12/3.13 keep ~1.7 MiB of every ended interpreter.  So close() keeps
 * up to sbi_registry.park_max interpreters that are still *pristine* -- no
 * import, no change to any module that existed at creation, nothing but
 * __main__ touched -- on the parked list, and create() hands one out
 * again.  Reuse must not be visible:
 *  - close() still joins threads, unbinds queue items and releases
 *    buffers; __main__ is reset to its state at creation and a garbage
 *    collection runs (finalizers run at close, as when destroying);
 *  - the cached thread states are deleted (no thread-local leftovers);
 *  - a reused interpreter gets a fresh public id, above every id given
 *    out, while queue items and buffers stay keyed by CPython's id (cid),
 *    whose owner is unbound at each close;
 *  - parked interpreters are in no list (list_all(), lookups by id);
 *  - one created under another process environment (os.environ is read
 *    at creation) is not reused but destroyed.
 * Anything not pristine is destroyed as before.
 */

/* What a new interpreter looked like (per-interpreter local state).
 * Module namespaces are summarised by a digest of their (key, value)
 * addresses rather than copied: copies would cost ~65 KB per interpreter.
 * The digest misses only an attribute deleted and later set again to a
 * new object that happens to get the old one's address. */
typedef struct {
    PyObject *mainmod;     // sys.modules['__main__']
    PyObject *main;        // copy of __main__.__dict__
    PyObject *lists;       // tuple copies of the lists in park_lists
    uint64_t digest;       // modules_digest() of sys.modules at creation
    PyObject *settings;    // park_settings() at creation
    int reclimit;
    int tainted;           // park_audit() saw a change the rest misses
} park_base;

/* Mutable lists of the sys module that are part of the snapshot. */
static const char *const park_lists[] = {"path", "meta_path", "path_hooks",
                                         "argv", "warnoptions", NULL};

static void
park_base_clear(void *p)
{
    park_base *b = p;
    Py_CLEAR(b->mainmod);
    Py_CLEAR(b->main);
    Py_CLEAR(b->lists);
    Py_CLEAR(b->settings);
}

/* A hash of the process environment (os.environ is copied from it when
 * an interpreter is created).  Any thread. */
static uint64_t
environ_hash(void)
{
    extern char **environ;
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (char **ep = environ; ep != NULL && *ep != NULL; ep++) {
        for (const unsigned char *c = (const unsigned char *)*ep; *c; c++) {
            h = (h ^ *c) * 1099511628211ULL;
        }
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static uint64_t
mix64(uint64_t x)  // splitmix64's finaliser
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Order-independent digest of sys.modules (`modules`) and of the
 * namespaces of its modules, __main__'s excepted: the item count, and the
 * sum of a mix of every key's and value's address. */
static uint64_t
modules_digest(PyObject *modules)
{
    uint64_t sum = 0, count = 0;
    Py_ssize_t pos = 0;
    PyObject *name, *mod;  // borrowed
    while (PyDict_Next(modules, &pos, &name, &mod)) {
        sum += mix64((uint64_t)(uintptr_t)name * 0xc2b2ae3d27d4eb4fULL ^
                     (uint64_t)(uintptr_t)mod);
        count++;
        if (!PyModule_Check(mod) ||
            (PyUnicode_Check(name) &&
             PyUnicode_CompareWithASCIIString(name, "__main__") == 0))
        {
            continue;
        }
        PyObject *d = PyModule_GetDict(mod);  // borrowed
        Py_ssize_t i = 0;
        PyObject *k, *v;  // borrowed
        while (PyDict_Next(d, &i, &k, &v)) {
            sum += mix64((uint64_t)(uintptr_t)k * 0x9e3779b97f4a7c15ULL ^
                         (uint64_t)(uintptr_t)v);
            count++;
        }
        sum += mix64((uint64_t)(uintptr_t)d + count);
    }
    return sum ^ mix64(count);
}

/* Tuple of tuple copies of the park_lists (None for a missing or
 * non-list attribute).  New reference or NULL with an exception. */
static PyObject *
park_lists_copy(void)
{
    Py_ssize_t n = 0;
    while (park_lists[n] != NULL) {
        n++;
    }
    PyObject *out = PyTuple_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *lst = PySys_GetObject(park_lists[i]);  // borrowed
        PyObject *item = lst != NULL && PyList_Check(lst)
                             ? PyList_AsTuple(lst)
                             : Py_NewRef(Py_None);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

/* Per-interpreter settings outside any namespace: int_max_str_digits,
 * the switch interval, the sys.monitoring tools in use, the type of
 * __main__, the warning filters.  New reference or NULL with an
 * exception. */
static PyObject *
park_settings(void)
{
    PyObject *sys = PyImport_GetModuleDict();  // borrowed
    sys = sys != NULL ? PyDict_GetItemString(sys, "sys") : NULL;
    PyObject *modules = PyImport_GetModuleDict();  // borrowed
    PyObject *mainmod = PyDict_GetItemString(modules, "__main__");
    if (sys == NULL || mainmod == NULL) {  // both borrowed
        PyErr_SetString(PyExc_RuntimeError, "no sys or __main__");
        return NULL;
    }
    PyObject *digits = PyObject_CallMethod(sys, "get_int_max_str_digits",
                                           NULL);
    PyObject *interval = PyObject_CallMethod(sys, "getswitchinterval", NULL);
    PyObject *mon = PyObject_GetAttrString(sys, "monitoring");
    PyObject *tools = mon ? PyTuple_New(6) : NULL;
    for (int i = 0; tools != NULL && i < 6; i++) {
        PyObject *t = PyObject_CallMethod(mon, "get_tool", "i", i);
        if (t == NULL) {
            Py_CLEAR(tools);
            break;
        }
        PyTuple_SET_ITEM(tools, i, t);
    }
    // _warnings.filters is changed in place by warnings.simplefilter().
    PyObject *warnmod = PyDict_GetItemString(modules, "_warnings");
    PyObject *filters = warnmod ? PyObject_GetAttrString(warnmod, "filters")
                                : Py_NewRef(Py_None);
    PyObject *ftuple = filters && PyList_Check(filters)
                           ? PyList_AsTuple(filters)
                           : Py_XNewRef(filters);
    Py_XDECREF(filters);
    PyObject *r = NULL;
    if (digits != NULL && interval != NULL && tools != NULL &&
        ftuple != NULL)
    {
        r = PyTuple_Pack(5, digits, interval, tools,
                         (PyObject *)Py_TYPE(mainmod), ftuple);
    }
    Py_XDECREF(ftuple);
    Py_XDECREF(digits);
    Py_XDECREF(interval);
    Py_XDECREF(mon);
    Py_XDECREF(tools);
    return r;
}

/* Audit hook installed in every parkable interpreter: new audit hooks
 * and the attribute changes CPython audits (a function's __code__, an
 * object's __class__; classes of __main__ excepted) are invisible to the
 * namespace digest, so they make the interpreter unparkable.  (Plain
 * class attribute changes are not audited: see docs/design.md.)  Never
 * fails. */
static PyObject *
park_audit(PyObject *unused, PyObject *args)
{
    PyObject *event, *eargs;  // borrowed
    if (!PyArg_ParseTuple(args, "UO", &event, &eargs)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int taint = 0;
    if (PyUnicode_CompareWithASCIIString(event, "sys.addaudithook") == 0) {
        taint = 1;
    }
    else if (PyUnicode_CompareWithASCIIString(event,
                                              "object.__setattr__") == 0 ||
             PyUnicode_CompareWithASCIIString(event,
                                              "object.__delattr__") == 0)
    {
        PyObject *obj = PyTuple_Check(eargs) && PyTuple_GET_SIZE(eargs) > 0
                            ? PyTuple_GET_ITEM(eargs, 0)
                            : NULL;  // borrowed
        taint = 1;
        if (obj != NULL && PyType_Check(obj) &&
            PyType_HasFeature((PyTypeObject *)obj, Py_TPFLAGS_HEAPTYPE))
        {
            PyObject *d = PyType_GetDict((PyTypeObject *)obj);
            PyObject *mod = d ? PyDict_GetItemString(d, "__module__")
                              : NULL;  // borrowed
            taint = !(mod != NULL && PyUnicode_Check(mod) &&
                      PyUnicode_CompareWithASCIIString(mod, "__main__") == 0);
            Py_XDECREF(d);
        }
    }
    if (taint) {
        park_base *b = sbi_state_local("sbi.park", sizeof(park_base), NULL,
                                       park_base_clear);
        if (b != NULL) {
            b->tainted = 1;
        }
    }
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyMethodDef park_audit_def = {"_subinterpreters_park_audit",
                                     park_audit, METH_VARARGS, NULL};

/* In a new interpreter: take the snapshot that park_reset() compares
 * with.  Returns 1, or 0 (with no exception) if it could not be taken:
 * the interpreter is then never parked. */
static int
park_snapshot(void)
{
    park_base *b =
        sbi_state_local("sbi.park", sizeof(park_base), NULL, park_base_clear);
    PyObject *modules = PyImport_GetModuleDict();  // borrowed
    if (b == NULL || modules == NULL || !PyDict_Check(modules)) {
        goto error;
    }
    park_base_clear(b);
    b->lists = park_lists_copy();
    b->reclimit = Py_GetRecursionLimit();
    if (b->lists == NULL) {
        goto error;
    }
    PyObject *mainmod = PyDict_GetItemString(modules, "__main__");
    if (mainmod != NULL && PyModule_Check(mainmod)) {  // borrowed
        b->mainmod = Py_NewRef(mainmod);
        b->main = PyDict_Copy(PyModule_GetDict(mainmod));
    }
    b->settings = park_settings();
    if (b->settings == NULL) {
        goto error;
    }
    PyObject *hook = PyCFunction_New(&park_audit_def, NULL);
    PyObject *sys = PyDict_GetItemString(modules, "sys");  // borrowed
    PyObject *r = hook && sys ? PyObject_CallMethod(sys, "addaudithook",
                                                    "O", hook)
                              : NULL;
    Py_XDECREF(hook);
    if (r == NULL) {
        goto error;
    }
    Py_DECREF(r);
    if (b->main == NULL) {
        goto error;
    }
    // Last: the hook and the copies above changed nothing it covers.
    b->digest = modules_digest(modules);
    return 1;
error:
    PyErr_Clear();
    if (b != NULL) {
        park_base_clear(b);
    }
    return 0;
}

/* Does dict live hold exactly the items of copy (values compared by
 * identity)?  Never fails: an error counts as "no". */
static int
same_items(PyObject *live, PyObject *copy)
{
    if (live == NULL || !PyDict_Check(live) ||
        PyDict_GET_SIZE(live) != PyDict_GET_SIZE(copy))
    {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;  // borrowed
    while (PyDict_Next(copy, &pos, &key, &value)) {
        if (PyDict_GetItemWithError(live, key) != value) {
            PyErr_Clear();
            return 0;
        }
    }
    return 1;
}

/* In the interpreter being closed (its threads joined): reset __main__
 * to its snapshot, collect garbage, and tell whether the interpreter is
 * pristine again.  Returns 1 if it is, 0 if not (no exception either
 * way). */
static int
park_reset(void)
{
    // Ending the interpreter would flush sys.stdout and sys.stderr; a
    // parked one must too, or what it printed appears only at exit.
    static const char *const streams[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(streams[i]);  // borrowed
        PyObject *r = f != NULL && f != Py_None
                          ? PyObject_CallMethod(f, "flush", NULL)
                          : NULL;
        Py_XDECREF(r);
        PyErr_Clear();  // as Py_EndInterpreter: a failed flush is ignored
    }
    park_base *b =
        sbi_state_local("sbi.park", sizeof(park_base), NULL, park_base_clear);
    if (b == NULL || b->mainmod == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *modules = PyImport_GetModuleDict();  // borrowed
    if (modules == NULL || !PyDict_Check(modules) ||
        PyDict_GetItemString(modules, "__main__") != b->mainmod ||
        b->tainted || modules_digest(modules) != b->digest)
    {
        PyErr_Clear();
        return 0;
    }
    // b holds __main__, so its dict outlives what the clear runs.
    PyObject *d = PyModule_GetDict(b->mainmod);  // borrowed
    PyDict_Clear(d);
    if (PyDict_Update(d, b->main) < 0) {
        PyErr_Clear();
        return 0;
    }
    (void)PyGC_Collect();  // finalizers of what __main__ held run now
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    // Finalizers may have changed anything: compare everything again.
    modules = PyImport_GetModuleDict();  // borrowed
    if (modules == NULL || !PyDict_Check(modules) ||
        PyDict_GetItemString(modules, "__main__") != b->mainmod ||
        !same_items(d, b->main) || Py_GetRecursionLimit() != b->reclimit ||
        b->tainted || modules_digest(modules) != b->digest)
    {
        PyErr_Clear();
        return 0;
    }
    PyObject *lists = park_lists_copy();
    PyObject *settings = park_settings();
    int same = lists != NULL && settings != NULL &&
               PyObject_RichCompareBool(lists, b->lists, Py_EQ) == 1 &&
               PyObject_RichCompareBool(settings, b->settings, Py_EQ) == 1;
    Py_XDECREF(lists);
    Py_XDECREF(settings);
    PyErr_Clear();
    return same;
}

/* May an interpreter be parked now?  needs lock */
static int
park_allowed(void)
{
    return !sbi_registry.shutting_down && sbi_registry.forking == 0 &&
           sbi_registry.nparked < sbi_registry.park_max;
}

/* Is there room on the parked list?  A hint: park() decides. */
static int
park_wanted(void)
{
    sbi_mutex_lock_any(&sbi_registry.mutex);
    int wanted = park_allowed();
    sbi_mutex_unlock(&sbi_registry.mutex);
    return wanted;
}

/* Move e (claimed, pristine, threads and items gone, no thread state of
 * the caller in it) from the registry to the parked list; env is
 * environ_hash() now.  Returns 1 if parked, 0 if there is no room, the
 * environment changed or the process is exiting or forking (the caller
 * then destroys e).  Its public id is retired: -1 until reuse. */
static int
park(sbi_entry *e, uint64_t env)
{
    int parked = 0;
    sbi_mutex_lock_any(&sbi_registry.mutex);
    if (park_allowed() && e->env_hash == env) {
        sbi_registry_remove(e);
        e->id = -1;
        e->closing = 0;
        e->running_tid = 0;
        e->running_tstate = NULL;
        e->refs = 0;
        e->orphaned = 0;
        e->interrupt_pending = 0;
        e->next = sbi_registry.parked;
        sbi_registry.parked = e;
        sbi_registry.nparked++;
        parked = 1;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return parked;
}

/* Take the newest parked interpreter off the list, claimed for closing
 * and back in the registry (invisible while closing).  NULL if none.
 * needs lock */
static sbi_entry *
unpark_locked(void)
{
    sbi_entry *e = sbi_registry.parked;
    if (e != NULL) {
        sbi_registry.parked = e->next;
        sbi_registry.nparked--;
        e->next = sbi_registry.head;
        sbi_registry.head = e;
        e->closing = 1;
        e->running_tid = PyThread_get_thread_ident();
    }
    return e;
}

/* Destroy an unparked entry (never parks it again).  Caller attached to
 * another interpreter. */
static void
destroy_unparked(sbi_entry *e)
{
    e->parkable = 0;
    if (destroy_entry(e, 0, 0) != 0) {
        sbi_mutex_lock_py(&sbi_registry.mutex);
        e->orphaned = 2;  // retried at exit
        sbi_mutex_unlock(&sbi_registry.mutex);
    }
}

/* For create(): publish a parked interpreter under a fresh id, holding
 * the first reference.  Returns its id, or -1 if none could be reused
 * (those created under another environment are destroyed). */
static int64_t
park_take(void)
{
    for (;;) {
        uint64_t env = environ_hash();
        int64_t id = -1;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        sbi_entry *e = sbi_registry.shutting_down ? NULL : unpark_locked();
        if (e != NULL && e->env_hash == env) {
            e->id = sbi_registry_fresh_id(e->cid);
            e->refs = 1;
            e->closing = 0;
            e->running_tid = 0;
            id = e->id;
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (e == NULL || id >= 0) {
            return id;
        }
        destroy_unparked(e);
    }
}

/* =====================================================================
 * Destruction
 */

/* In the interpreter being destroyed: join the non-daemon threads started
 * with threading (as 3.14's close() does).  Errors are printed. */
static void
join_threads(void)
{
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *threading = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (threading == NULL) {
        PyErr_Clear();
        return;
    }
    // As threading._shutdown() does: run the threading atexit hooks
    // first (they may be what makes the threads finish), once.
    PyObject *hooks = PyObject_GetAttrString(threading,
                                             "_threading_atexits");
    if (hooks != NULL && PyList_Check(hooks) && PyList_GET_SIZE(hooks) > 0) {
        if (PyObject_SetAttrString(threading, "_SHUTTING_DOWN",
                                   Py_True) < 0)
        {
            PyErr_Clear();
        }
        for (Py_ssize_t i = PyList_GET_SIZE(hooks) - 1; i >= 0; i--) {
            if (i >= PyList_GET_SIZE(hooks)) {
                continue;
            }
            PyObject *cb = Py_NewRef(PyList_GET_ITEM(hooks, i));
            PyObject *r = PyObject_CallNoArgs(cb);
            if (r == NULL) {
                PyErr_WriteUnraisable(cb);
            }
            Py_XDECREF(r);
            Py_DECREF(cb);
        }
        if (PyList_SetSlice(hooks, 0, PyList_GET_SIZE(hooks), NULL) < 0) {
            PyErr_Clear();
        }
    }
    Py_XDECREF(hooks);
    PyErr_Clear();
    PyObject *threads = PyObject_CallMethod(threading, "enumerate", NULL);
    PyObject *main = threads ? PyObject_CallMethod(threading, "main_thread",
                                                   NULL)
                             : NULL;
    if (main == NULL || !PyList_Check(threads)) {
        goto done;
    }
#if SBI_FIX_MAIN_THREAD_TSTATE_LOCK
    {
        PyObject *lock = PyObject_GetAttrString(main, "_tstate_lock");
        PyObject *locked = lock && lock != Py_None
                               ? PyObject_CallMethod(lock, "locked", NULL)
                               : NULL;
        // Held or not: a held one may belong to the keeper, which is
        // deleted (releasing it) right before Py_EndInterpreter.
        if (locked == Py_False || locked == Py_True) {
            PyObject *thread = PyImport_ImportModule("_thread");
            PyObject *fresh = thread ? PyObject_CallMethod(
                                           thread, "allocate_lock", NULL)
                                     : NULL;
            PyObject *r = fresh ? PyObject_CallMethod(fresh, "acquire", NULL)
                                : NULL;
            if (r == NULL ||
                PyObject_SetAttrString(main, "_tstate_lock", fresh) < 0)
            {
                PyErr_Clear();
            }
            Py_XDECREF(r);
            Py_XDECREF(fresh);
            Py_XDECREF(thread);
        }
        Py_XDECREF(locked);
        Py_XDECREF(lock);
        PyErr_Clear();
    }
#endif
    Py_ssize_t n = PyList_GET_SIZE(threads);
    unsigned long me = PyThread_get_thread_ident();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(threads, i);  // borrowed
        if (t == main) {
            continue;
        }
        PyObject *daemon = PyObject_GetAttrString(t, "daemon");
        PyObject *ident = PyObject_GetAttrString(t, "ident");
        int skip = daemon == NULL || ident == NULL ||
                   PyObject_IsTrue(daemon) != 0 ||
                   (PyLong_Check(ident) &&
                    PyLong_AsUnsignedLong(ident) == me);
        Py_XDECREF(daemon);
        Py_XDECREF(ident);
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
        if (skip) {
            continue;
        }
        PyObject *r = PyObject_CallMethod(t, "join", NULL);
        if (r == NULL) {
            PyErr_WriteUnraisable(t);
        }
        Py_XDECREF(r);
    }
done:
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    Py_XDECREF(main);
    Py_XDECREF(threads);
    Py_DECREF(threading);
}

/* Thread states of e's interpreter other than mine and the keeper. */
static int
count_other_tstates(sbi_entry *e, PyThreadState *mine)
{
    int n = 0;
    for (PyThreadState *t = PyInterpreterState_ThreadHead(e->interp);
         t != NULL; t = PyThreadState_Next(t))
    {
        if (t != mine && t != e->keeper) {
            n++;
        }
    }
    return n;
}

/* Give up destroying e (claimed by us): it stays alive and usable. */
static void
unclaim(sbi_entry *e)
{
    sbi_mutex_lock_any(&sbi_registry.mutex);
    e->closing = 0;
    e->running_tid = 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
}

/* Destroy e, or park it for reuse if it is pristine (see Parking).  The
 * caller has claimed e (claim_for_close) and is attached to another
 * interpreter.  Returns 0 (e is gone from the registry: destroyed or
 * parked), or an SBI_ERR_* with e unclaimed.
 * wait_ms bounds how long threads that cannot be joined are waited for;
 * force (process exit) abandons shared buffers still viewed elsewhere.
 *
 * Checks that can refuse come before anything irreversible, except that
 * threads can only be counted after the threading threads were joined
 * (which runs threading's atexit hooks): an interpreter refused for a
 * _thread thread has been through threading's shutdown. */
static int
destroy_entry(sbi_entry *e, int wait_ms, int force)
{
    if (!force && sbi_shbuf_count_owned(e->cid) > 0) {
        unclaim(e);
        return SBI_ERR_BUFFERS_SHARED;
    }
    PyThreadState *ts = PyThreadState_New(e->interp);
    if (ts == NULL) {
        unclaim(e);
        return SBI_ERR_NOMEM;
    }
    PyThreadState *caller = PyThreadState_Swap(ts);
    /* in the target from here on */
    int err = 0;
    // Cached thread states first: one of them may own threading's
    // _MainThread, whose 3.12 tstate lock join_threads() looks at.
    for (int i = 0; i < e->ncache; i++) {
        if (e->cache[i].tstate != e->keeper) {  // the keeper goes last
            PyThreadState_Clear(e->cache[i].tstate);
            PyThreadState_Delete(e->cache[i].tstate);
        }
    }
    e->ncache = 0;
    join_threads();
    // Thread states are only unlinked with this interpreter's GIL held
    // (which we hold) or by threads we just joined, so walking the list
    // without CPython's head lock is safe here.
    for (int waited = 0; count_other_tstates(e, ts) > 0;
         waited += SBI_THREADS_POLL_US / 1000)
    {
        if (waited >= wait_ms) {
            err = SBI_ERR_THREADS_LEFT;
            break;
        }
        Py_BEGIN_ALLOW_THREADS
        usleep(SBI_THREADS_POLL_US);
        Py_END_ALLOW_THREADS
    }
    int abandoned = 0;  // buffers of it stay in use elsewhere
    if (err == 0) {
        sbi_hooks_run_closed(e->cid);
        sbi_shbuf_drain_current();
        if (sbi_shbuf_count_owned(e->cid) > 0) {
            if (force) {
                sbi_shbuf_abandon(e->cid);
                abandoned = 1;
            }
            else {
                err = SBI_ERR_BUFFERS_SHARED;
            }
        }
    }
    int pristine = err == 0 && !force && e->parkable && park_wanted() &&
                   park_reset() > 0;
    if (err != 0 || pristine) {
        PyThreadState_Clear(ts);
        (void)PyThreadState_Swap(caller);
        PyThreadState_Delete(ts);
        if (err != 0) {
            unclaim(e);
            return err;
        }
        // Only now, with no thread state of ours left in it, may another
        // thread take it from the parked list.
        if (park(e, environ_hash())) {
            return 0;
        }
        // No room after all, or the process is exiting: end it.
        ts = PyThreadState_New(e->interp);
        if (ts == NULL) {
            unclaim(e);
            return SBI_ERR_NOMEM;
        }
        caller = PyThreadState_Swap(ts);
    }
    PyThreadState_Clear(e->keeper);
    PyThreadState_Delete(e->keeper);
    e->keeper = NULL;
    Py_EndInterpreter(ts);
    /* detached now */
    (void)sbi_arena_release(e->cid, abandoned);
    (void)PyThreadState_Swap(caller);
    sbi_mutex_lock_any(&sbi_registry.mutex);
    sbi_registry_remove(e);
    sbi_mutex_unlock(&sbi_registry.mutex);
    PyMem_RawFree(e);
    return 0;
}

/* Mark e closing if it may be destroyed now.  needs lock.  Returns 0 or
 * an SBI_ERR_*. */
static int
claim_for_close(sbi_entry *e, PyInterpreterState *cur)
{
    if (e == NULL || e->closing) {
        return SBI_ERR_NOT_FOUND;
    }
    if (e->interp == cur) {
        return SBI_ERR_IS_CURRENT;
    }
    if (e->running_tid != 0 || e->interrupters > 0) {
        return SBI_ERR_ALREADY_RUNNING;
    }
    e->closing = 1;
    e->running_tid = PyThread_get_thread_ident();
    return 0;
}

/* Is the current interpreter one of ours being destroyed? needs lock */
static int
current_is_closing(PyInterpreterState *cur)
{
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->interp == cur) {
            return e->closing;
        }
    }
    return 0;
}

/* Destroy interpreters whose last Interpreter object went away while they
 * could not be destroyed.  Errors are reported as unraisable. */
static void
reap_orphans(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    for (;;) {
        sbi_entry *victim = NULL;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        if (!current_is_closing(cur)) {
            for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
                // orphaned == 2: it failed before; retried at exit only
                if (e->orphaned == 1 && e->refs == 0 &&
                    claim_for_close(e, cur) == 0)
                {
                    e->orphaned = 0;
                    victim = e;
                    break;
                }
            }
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (victim == NULL) {
            return;
        }
        if (destroy_entry(victim, 0, 0) != 0) {
            // Could not go (threads or views left): keep it alive; it is
            // retried at process exit.
            sbi_mutex_lock_py(&sbi_registry.mutex);
            victim->orphaned = 2;
            sbi_mutex_unlock(&sbi_registry.mutex);
        }
    }
}

/* Drop one owning reference to interpreter id (Interpreter dealloc).
 * Destroys the interpreter when it was the last and that is possible
 * now; otherwise marks it orphaned.  Never leaves an exception set. */
static void
interp_decref(int64_t id)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyInterpreterState *cur = PyInterpreterState_Get();
    sbi_entry *victim = NULL;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e != NULL && SBI_ALWAYS(e->refs > 0)) {
        e->refs--;
        if (e->refs == 0 && !e->closing) {
            if (!sbi_registry.shutting_down && !current_is_closing(cur) &&
                claim_for_close(e, cur) == 0)
            {
                victim = e;
            }
            else {
                e->orphaned = 1;
            }
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (victim != NULL) {
        int err = destroy_entry(victim, 0, 0);
        if (err != 0) {
            sbi_mutex_lock_py(&sbi_registry.mutex);
            victim->orphaned = 2;
            sbi_mutex_unlock(&sbi_registry.mutex);
        }
    }
    PyErr_SetRaisedException(exc);
}

/* =====================================================================
 * Sessions
 */
typedef struct {
    sbi_entry *entry;
    PyThreadState *caller;     // NULL when no switch happened
    PyThreadState *tstate;     // the thread state running in the target
    uint64_t serial;           // e->session_serial of this session
    int sigint;                // Ctrl-C forwarding armed (main thread)
} session;

/* Mark interpreter id as running __main__ in this thread and switch the
 * thread into it.  Caller attached.  0, or -1 with an exception set (in
 * the caller's interpreter). */
static int
session_enter(sbi_state *st, int64_t id, session *s, const char *op)
{
    int err = 0;
    int daemon = 0;
    PyInterpreterState *cur = PyInterpreterState_Get();
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e == NULL || e->closing) {
        err = (id == 0 || id == sbi_registry_pid_of(cur)) ? SBI_ERR_NOT_OURS
                                                          : SBI_ERR_NOT_FOUND;
    }
    else if (e->running_tid != 0) {
        err = SBI_ERR_ALREADY_RUNNING;
    }
    else if (sbi_registry.shutting_down) {
        // The exit hook is destroying interpreters: daemon threads must
        // not start new sessions behind it.
        err = SBI_ERR_SHUTTING_DOWN;
        daemon = cur == PyInterpreterState_Main() &&
                 PyThread_get_thread_ident() != sbi_registry.exit_ident;
    }
    else {
        e->running_tid = PyThread_get_thread_ident();
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (daemon) {
        // A thread of the main interpreter other than the one running the
        // exit hook: a daemon thread (the others were joined before
        // atexit).  InterpreterError would make it print a traceback while
        // the main thread finalizes sys.stderr, which 3.14 turns into
        // "Fatal Python error: _enter_buffered_busy"; SystemExit ends the
        // thread silently (threading ignores it), running its finally
        // blocks on the way.  Threads of subinterpreters still get the
        // error.
        PyErr_Format(PyExc_SystemExit,
                     "the process is exiting: a daemon thread cannot enter "
                     "interpreter %lld", (long long)id);
        return -1;
    }
    if (err != 0) {
        return raise_interp_error(st, err, id, op);
    }
    s->entry = e;
    s->sigint = 0;
    if (e->interp == cur) {
        s->caller = NULL;
        s->tstate = PyThreadState_Get();
    }
    else {
        // e is ours to use: we hold its running flag.
        uint64_t me = sbi_registry_thread_serial();
        s->tstate = NULL;
        for (int i = 0; i < e->ncache; i++) {
            if (e->cache[i].serial == me) {
                s->tstate = e->cache[i].tstate;
                break;
            }
        }
        PyThreadState *evict = NULL;
        PyThreadState *stale = NULL;
        if (s->tstate == NULL) {
            // A cached thread state of a finished thread whose ident was
            // reused would confuse PyThreadState_SetAsyncExc(): drop it.
            unsigned long ident = PyThread_get_thread_ident();
            for (int i = 0; i < e->ncache; i++) {
                if (e->cache[i].ident == ident) {
                    stale = e->cache[i].tstate;
                    e->cache[i] = e->cache[--e->ncache];
                    break;
                }
            }
            s->tstate = PyThreadState_New(e->interp);
            if (s->tstate == NULL) {
                sbi_mutex_lock_py(&sbi_registry.mutex);
                e->running_tid = 0;
                sbi_mutex_unlock(&sbi_registry.mutex);
                PyErr_NoMemory();
                return -1;
            }
            if (e->ncache == SBI_TSTATE_CACHE) {
                // Evict the oldest: most likely a thread that is gone.
                evict = e->cache[0].tstate;
                memmove(&e->cache[0], &e->cache[1],
                        sizeof(e->cache[0]) * (SBI_TSTATE_CACHE - 1));
                e->ncache--;
            }
            e->cache[e->ncache].serial = me;
            e->cache[e->ncache].ident = ident;
            e->cache[e->ncache].tstate = s->tstate;
            e->ncache++;
        }
        s->sigint = sbi_sigint_watch_begin(e->id);
        s->caller = PyThreadState_Swap(s->tstate);
        // Neither is in use: only the running thread enters e.  The
        // keeper merely leaves the cache.
        if (evict == e->keeper) {
            evict = NULL;
        }
        if (stale == e->keeper) {
            stale = NULL;
        }
        if (evict != NULL) {
            PyThreadState_Clear(evict);
            PyThreadState_Delete(evict);
        }
        if (stale != NULL) {
            PyThreadState_Clear(stale);
            PyThreadState_Delete(stale);
        }
    }
    sbi_mutex_lock(&sbi_registry.mutex);
    e->running_tstate = s->tstate;
    s->serial = ++e->session_serial;
    sbi_mutex_unlock(&sbi_registry.mutex);
    sbi_shbuf_drain_current();
    return 0;
}

/* Switch back to the caller and mark the target idle.  No exception may
 * be set in the target. */
static void
session_exit(session *s)
{
    assert(!PyErr_Occurred());
    sbi_entry *e = s->entry;
    int pending;
    sbi_mutex_lock(&sbi_registry.mutex);
    e->running_tstate = NULL;
    pending = e->interrupt_pending;
    e->interrupt_pending = 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (pending) {
        // An interrupt that arrived too late must not hit a later session.
        (void)PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
        PyErr_Clear();
    }
    if (s->sigint) {
        sbi_sigint_watch_end();
    }
    if (s->caller != NULL) {
        // The thread state stays cached in e for this thread's next visit.
        (void)PyThreadState_Swap(s->caller);
    }
    int reap;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    e->running_tid = 0;
    reap = e->orphaned == 1 && e->refs == 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (reap) {
        reap_orphans();
    }
}

/* __main__.__dict__ of the current interpreter.  New reference (code
 * run through it may replace sys.modules['__main__']). */
static PyObject *
main_dict(void)
{
    PyObject *mod = PyImport_AddModuleRef("__main__");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *d = Py_XNewRef(PyModule_GetDict(mod));
    Py_DECREF(mod);
    return d;
}

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
 * Running a call with a module-level frame.
 *
 * 3.12 and 3.13 lack 3.14's fall-back of eval()/exec()/dir() to the
 * running __main__ when there is no Python frame, so the call runs inside
 * a tiny eval-mode code object executed with globals = locals =
 * __main__.__dict__.  Its bytecode loads a per-interpreter list constant
 * (the "slots": callable, args, kwargs) instead of a name, so nothing is
 * added to __main__ and dir() inside the callee sees __main__'s names.
 */
typedef struct {
    PyObject *code;
    PyObject *slots;  // [callable, args, kwargs] while a call runs
} call_template;

static void
call_template_clear(void *p)
{
    call_template *t = p;
    Py_CLEAR(t->code);
    Py_CLEAR(t->slots);
}

static int
call_template_build(void *p)
{
    call_template *t = p;
    int rc = -1;
    PyObject *code = NULL, *raw = NULL, *names = NULL, *consts = NULL;
    PyObject *newconsts = NULL, *newraw = NULL, *replace = NULL;
    PyObject *kwargs = NULL;
    code = Py_CompileString("__sbi__[0](*__sbi__[1], **__sbi__[2])",
                            "<subinterpreters call>", Py_eval_input);
    if (code == NULL) {
        goto done;
    }
    raw = PyCode_GetCode((PyCodeObject *)code);
    names = PyObject_GetAttrString(code, "co_names");
    consts = PyObject_GetAttrString(code, "co_consts");
    if (raw == NULL || names == NULL || consts == NULL) {
        goto done;
    }
    Py_ssize_t nconsts = PyTuple_GET_SIZE(consts);
    if (nconsts > 255) {
        PyErr_SetString(PyExc_SystemError, "call template too large");
        goto done;
    }
    t->slots = PyList_New(3);
    if (t->slots == NULL) {
        goto done;
    }
    for (int i = 0; i < 3; i++) {
        PyList_SET_ITEM(t->slots, i, Py_NewRef(Py_None));
    }
    newconsts = PyTuple_New(nconsts + 1);
    if (newconsts == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < nconsts; i++) {
        PyTuple_SET_ITEM(newconsts, i,
                         Py_NewRef(PyTuple_GET_ITEM(consts, i)));
    }
    PyTuple_SET_ITEM(newconsts, nconsts, Py_NewRef(t->slots));
    newraw = PyBytes_FromStringAndSize(PyBytes_AS_STRING(raw),
                                       PyBytes_GET_SIZE(raw));
    if (newraw == NULL) {
        goto done;
    }
    unsigned char *b = (unsigned char *)PyBytes_AS_STRING(newraw);
    int patched = 0;
    for (Py_ssize_t i = 0; i + 1 < PyBytes_GET_SIZE(newraw); i += 2) {
        if (b[i] == LOAD_NAME && b[i + 1] < PyTuple_GET_SIZE(names) &&
            PyUnicode_CompareWithASCIIString(
                PyTuple_GET_ITEM(names, b[i + 1]), "__sbi__") == 0)
        {
            b[i] = LOAD_CONST;
            b[i + 1] = (unsigned char)nconsts;
            patched++;
        }
    }
    if (patched != 3) {
        PyErr_Format(PyExc_SystemError,
                     "unexpected call template bytecode (%d)", patched);
        goto done;
    }
    replace = PyObject_GetAttrString(code, "replace");
    kwargs = Py_BuildValue("{sOsO}", "co_code", newraw, "co_consts",
                           newconsts);
    if (replace == NULL || kwargs == NULL) {
        goto done;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        goto done;
    }
    t->code = PyObject_Call(replace, empty, kwargs);
    Py_DECREF(empty);
    rc = t->code == NULL ? -1 : 0;
done:
    Py_XDECREF(code);
    Py_XDECREF(raw);
    Py_XDECREF(names);
    Py_XDECREF(consts);
    Py_XDECREF(newconsts);
    Py_XDECREF(newraw);
    Py_XDECREF(replace);
    Py_XDECREF(kwargs);
    return rc;
}

static call_template *
call_template_get(void)
{
    return sbi_state_local("sbi.calltpl", sizeof(call_template),
                           call_template_build, call_template_clear);
}

/* Call func(*args, **kwargs) from a module-level frame on __main__.
 * args may be NULL (no args), kwargs NULL or a dict.  New ref or NULL. */
static PyObject *
call_in_main(PyObject *ns, PyObject *func, PyObject *args, PyObject *kwargs)
{
    call_template *t = call_template_get();
    if (t == NULL) {
        return NULL;
    }
    if (PyList_GET_ITEM(t->slots, 0) != Py_None) {
        // Re-entered (the callee itself called back into this
        // interpreter's __main__ from a thread we did not refuse): fall
        // back to a frameless call.
        if (args != NULL) {
            return PyObject_Call(func, args, kwargs);
        }
        PyObject *empty = PyTuple_New(0);
        PyObject *r = empty ? PyObject_Call(func, empty, kwargs) : NULL;
        Py_XDECREF(empty);
        return r;
    }
    PyObject *empty_args = NULL, *empty_kw = NULL;
    if (args == NULL) {
        args = empty_args = PyTuple_New(0);
    }
    if (kwargs == NULL) {
        kwargs = empty_kw = PyDict_New();
    }
    if (args == NULL || kwargs == NULL) {
        Py_XDECREF(empty_args);
        Py_XDECREF(empty_kw);
        return NULL;
    }
    PyList_SetItem(t->slots, 0, Py_NewRef(func));
    PyList_SetItem(t->slots, 1, Py_NewRef(args));
    PyList_SetItem(t->slots, 2, Py_NewRef(kwargs));
    PyObject *res = PyEval_EvalCode(t->code, ns, ns);
    PyObject *exc = PyErr_GetRaisedException();
    for (int i = 0; i < 3; i++) {
        PyList_SetItem(t->slots, i, Py_NewRef(Py_None));
    }
    PyErr_SetRaisedException(exc);
    Py_XDECREF(empty_args);
    Py_XDECREF(empty_kw);
    return res;
}

/* =====================================================================
 * The Interpreter type
 */
typedef struct {
    PyObject_HEAD
    int64_t id;
    int whence;
    int ownsref;
    PyObject *weakreflist;
} InterpreterObject;

#define InterpreterObject_CAST(op) ((InterpreterObject *)(op))

/* Drop the entries of dead objects from a {id: weakref} cache when its
 * size reaches a power of two (amortised O(1) per insertion), so that
 * create/close cycles do not grow it.  0 or -1. */
static int
cache_prune(PyObject *cache)
{
    Py_ssize_t n = PyDict_GET_SIZE(cache);
    if (n < 16 || (n & (n - 1)) != 0) {
        return 0;
    }
    PyObject *items = PyDict_Items(cache);
    if (items == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(items); i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);  // borrowed
        PyObject *obj = NULL;
        rc = PyWeakref_GetRef(PyTuple_GET_ITEM(kv, 1), &obj);
        if (rc == 0) {
            rc = PyDict_DelItem(cache, PyTuple_GET_ITEM(kv, 0));
        }
        else if (rc > 0) {
            Py_DECREF(obj);
            rc = 0;
        }
    }
    Py_DECREF(items);
    return rc;
}

/* The Interpreter object for id in this interpreter: the cached
 * singleton, or a new one.  whence must be known (sbi_registry_lookup_whence()).
 * adopt: the caller took an owning reference for the new object (create);
 * it is consumed in every case.  New reference or NULL with an
 * exception. */
static PyObject *
interp_object_get(sbi_state *st, int64_t id, int whence, int adopt)
{
    PyObject *key = PyLong_FromLongLong(id);
    if (key == NULL) {
        return NULL;
    }
    PyObject *ref = NULL, *obj = NULL;
    if (PyDict_GetItemRef(st->interp_cache, key, &ref) < 0) {
        if (adopt) {
            interp_decref(id);
        }
        goto done;
    }
    if (ref != NULL) {
        if (PyWeakref_GetRef(ref, &obj) < 0) {
            if (adopt) {
                interp_decref(id);
            }
            goto done;
        }
        if (obj != NULL) {
            if (adopt) {
                interp_decref(id);  // the cached object owns one already
            }
            goto done;
        }
    }
    int ownsref = whence == WHENCE_STDLIB;
    if (ownsref && !adopt) {
        int found = 0;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        sbi_entry *e = sbi_registry_find(id);
        if (e != NULL && !e->closing) {
            e->refs++;
            e->orphaned = 0;
            found = 1;
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (!found) {
            raise_interp_error(st, SBI_ERR_NOT_FOUND, id, NULL);
            goto done;
        }
    }
    InterpreterObject *self =
        PyObject_GC_New(InterpreterObject, st->InterpreterType);
    if (self == NULL) {
        if (ownsref) {
            interp_decref(id);
        }
        goto done;
    }
    self->id = id;
    self->whence = whence;
    self->ownsref = ownsref;
    self->weakreflist = NULL;
    PyObject_GC_Track(self);
    obj = (PyObject *)self;
    Py_XSETREF(ref, PyWeakref_NewRef(obj, NULL));
    if (ref == NULL || cache_prune(st->interp_cache) < 0 ||
        PyDict_SetItem(st->interp_cache, key, ref) < 0)
    {
        Py_CLEAR(obj);
    }
done:
    Py_XDECREF(ref);
    Py_DECREF(key);
    return obj;
}

static PyObject *
Interpreter_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "_whence", "_ownsref", NULL};
    PyObject *idobj, *whence_arg = Py_None, *ownsref_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:Interpreter",
                                     kwlist, &idobj, &whence_arg,
                                     &ownsref_arg))
    {
        return NULL;
    }
    sbi_state *st = sbi_state_from_type(tp);
    if (!PyLong_Check(idobj)) {
        PyErr_Format(PyExc_TypeError, "id must be an int, got %R", idobj);
        return NULL;
    }
    int overflow = 0;
    long long id = PyLong_AsLongLongAndOverflow(idobj, &overflow);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow > 0) {
        PyErr_SetString(PyExc_OverflowError, "interpreter ID too large");
        return NULL;
    }
    if (id < 0 || overflow < 0) {
        PyErr_Format(PyExc_ValueError,
                     "interpreter ID must be a non-negative int, got %R",
                     idobj);
        return NULL;
    }
    int whence = sbi_registry_lookup_whence(id);
    if (whence < 0) {
        return raise_interp_error(st, SBI_ERR_NOT_FOUND, id, NULL), NULL;
    }
    return interp_object_get(st, id, whence, 0);
}

static int
Interpreter_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static void
Interpreter_dealloc(PyObject *op)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    int64_t id = self->id;
    int ownsref = self->ownsref;
    tp->tp_free(op);
    if (ownsref) {
        interp_decref(id);
    }
    Py_DECREF(tp);
}

static PyObject *
Interpreter_repr(PyObject *op)
{
    return PyUnicode_FromFormat("Interpreter(%lld)",
                                (long long)InterpreterObject_CAST(op)->id);
}

static Py_hash_t
Interpreter_hash(PyObject *op)
{
    return sbi_state_hash_id(InterpreterObject_CAST(op)->id);
}

static PyObject *
Interpreter_get_id(PyObject *op, void *closure)
{
    return PyLong_FromLongLong(InterpreterObject_CAST(op)->id);
}

static PyObject *
Interpreter_get_whence(PyObject *op, void *closure)
{
    return PyUnicode_FromString(
        sbi_registry_whence_name(InterpreterObject_CAST(op)->whence));
}

static sbi_state *
state_of(PyObject *op)
{
    return sbi_state_from_type(Py_TYPE(op));
}

PyDoc_STRVAR(Interpreter_is_running_doc,
"is_running($self, /)\n--\n\n"
"Return whether or not the interpreter's __main__ is currently running.");

static PyObject *
Interpreter_is_running(PyObject *op, PyObject *unused)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    if (self->id == 0) {
        Py_RETURN_TRUE;
    }
    int err = 0, running = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(self->id);
    if (e == NULL || e->closing) {
        err = SBI_ERR_NOT_FOUND;
    }
    else {
        running = e->running_tid != 0;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (err != 0) {
        if (self->id == sbi_registry_current_pid()) {
            Py_RETURN_FALSE;  // a foreign interpreter asking about itself
        }
        return raise_interp_error(state_of(op), err, self->id, NULL), NULL;
    }
    return PyBool_FromLong(running);
}

PyDoc_STRVAR(Interpreter_close_doc,
"close($self, /)\n--\n\n"
"Finalize and destroy the interpreter.\n\n"
"Waits for the interpreter's non-daemon threads.  Raises InterpreterError\n"
"if it is running, is the current interpreter, or still has threads that\n"
"cannot be joined.");

static PyObject *
Interpreter_close(PyObject *op, PyObject *unused)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    sbi_state *st = state_of(op);
    PyInterpreterState *cur = PyInterpreterState_Get();
    int err;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(self->id);
    if (e == NULL || e->closing) {
        err = (self->id == 0 || self->id == sbi_registry_pid_of(cur))
                  ? SBI_ERR_NOT_OURS
                  : SBI_ERR_NOT_FOUND;
    }
    else {
        err = claim_for_close(e, cur);
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (err == SBI_ERR_ALREADY_RUNNING) {
        PyErr_SetString(st->InterpreterError, "interpreter running");
        return NULL;
    }
    if (err != 0) {
        return raise_interp_error(st, err, self->id, "destroy"), NULL;
    }
    err = destroy_entry(e, SBI_CLOSE_WAIT_MS, 0);
    if (err != 0) {
        return raise_interp_error(st, err, self->id, "destroy"), NULL;
    }
    reap_orphans();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Interpreter_interrupt_doc,
"interrupt($self, /)\n--\n\n"
"Raise KeyboardInterrupt in the code running in the interpreter's __main__.\n\n"
"Returns True if something was running and was interrupted, False if the\n"
"interpreter was idle.  Code blocked in a C call (time.sleep, a lock)\n"
"sees the interrupt when it returns to Python.");

static PyObject *
Interpreter_interrupt(PyObject *op, PyObject *unused)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    int r = sbi_interrupt_interp(self->id, 0, 0);
    if (r < 0) {
        int err = (self->id == 0 || self->id == sbi_registry_current_pid())
                      ? SBI_ERR_NOT_OURS
                      : r;
        return raise_interp_error(state_of(op), err, self->id, "interrupt"),
               NULL;
    }
    return PyBool_FromLong(r);
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
        return sbi_xidata_compile_cached(script, src);
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
    if (sbi_xidata_check_script(code) < 0) {
        Py_DECREF(code);
        return NULL;
    }
    return code;
}

PyDoc_STRVAR(Interpreter_exec_doc,
"exec($self, code, /, *, timeout=None)\n--\n\n"
"Run the given source code (or no-argument function) in the interpreter.\n\n"
"Runs in the current OS thread, in the interpreter's __main__ module.\n"
"An uncaught exception is raised as ExecutionFailed.  With a timeout (in\n"
"seconds), code still running when it elapses is interrupted and\n"
"TimeoutError is raised; the interpreter stays usable.");

static PyObject *
Interpreter_exec(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "timeout", NULL};
    InterpreterObject *self = InterpreterObject_CAST(op);
    sbi_state *st = state_of(op);
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
    int rc = sbi_xidata_code_pack(code, &token, &data);
    Py_DECREF(code);
    if (rc < 0) {
        return NULL;
    }
    session s;
    if (session_enter(st, self->id, &s, "exec code for") < 0) {
        Py_DECREF(data);
        return NULL;
    }
    /* in the target: data is the caller's bytes object, kept alive by the
     * caller and only read here */
    sbi_excinfo info = SBI_EXCINFO_INIT;
    int failed = 0, timed_out = 0, watching = 0;
    sbi_watchdog w;
    PyObject *tcode = sbi_xidata_code_unpack(token, PyBytes_AS_STRING(data),
                                             PyBytes_GET_SIZE(data));
    PyObject *ns = tcode ? main_dict() : NULL;
    if (ns != NULL && timeout >= 0) {
        watching = sbi_watchdog_start(&w, self->id, s.serial, timeout) == 0;
        if (!watching) {
            PyErr_SetString(PyExc_RuntimeError,
                            "cannot start the timeout thread");
            Py_CLEAR(ns);
        }
    }
    PyObject *res = ns ? PyEval_EvalCode(tcode, ns, ns) : NULL;
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
    session_exit(&s);
    /* back in the caller */
    Py_DECREF(data);
    if (timed_out) {
        PyErr_Format(PyExc_TimeoutError,
                     "code in interpreter %lld did not finish within %R s",
                     (long long)self->id, timeout_obj);
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
    char *name;        // PyMem_Raw
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

PyDoc_STRVAR(Interpreter_prepare_main_doc,
"prepare_main($self, ns=None, /, **kwargs)\n--\n\n"
"Bind the given values into the interpreter's __main__.\n\n"
"The values must be natively shareable; nothing is bound if one is not.");

static PyObject *
Interpreter_prepare_main(PyObject *op, PyObject *args, PyObject *kwargs)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    sbi_state *st = state_of(op);
    PyObject *nsarg = Py_None;
    PyObject *ns = NULL, *keys = NULL;
    PyObject *pins = NULL;  // big payloads the items borrow: kept until
                            // the items are freed
    nsitem *items = NULL;
    Py_ssize_t n = 0;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "|O:prepare_main", &nsarg)) {
        return NULL;
    }
    ns = nsarg == Py_None ? PyDict_New()
                          : PyObject_CallOneArg((PyObject *)&PyDict_Type,
                                                nsarg);
    if (ns == NULL) {
        goto done;
    }
    if (kwargs != NULL && PyDict_Update(ns, kwargs) < 0) {
        goto done;
    }
    n = PyDict_GET_SIZE(ns);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "arg 2 must be a non-empty dict");
        goto done;
    }
    items = PyMem_RawCalloc((size_t)n, sizeof(nsitem));
    if (items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    keys = PyDict_Keys(ns);
    if (keys == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);  // borrowed
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError,
                         "names must be str, got %R", key);
            goto done;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(key, &len);
        if (s == NULL) {
            goto done;
        }
        if ((Py_ssize_t)strlen(s) != len) {
            PyErr_SetString(PyExc_ValueError, "embedded null character");
            goto done;
        }
        items[i].name = PyMem_RawMalloc((size_t)len + 1);
        if (items[i].name == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(items[i].name, s, (size_t)len + 1);
        PyObject *value = PyDict_GetItemWithError(ns, key);  // borrowed
        if (value == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "namespace changed");
            }
            goto done;
        }
        items[i].data = sbi_xidata_new_pinned(value, SBI_XI_NATIVE, &pins);
        if (items[i].data == NULL) {
            goto done;
        }
    }
    session s;
    if (session_enter(st, self->id, &s, "prepare_main for") < 0) {
        goto done;
    }
    /* in the target */
    sbi_excinfo info = SBI_EXCINFO_INIT;
    int failed = 0;
    PyObject *main_ns = main_dict();
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
        sbi_excinfo_capture_current(&info);
        failed = 1;
    }
    session_exit(&s);
    /* back in the caller */
    if (failed) {
        sbi_excinfo_raise_with_proxy(st->InterpreterError,
                                     "failed to apply namespace to __main__",
                                     &info);
        sbi_excinfo_clear(&info);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    if (items != NULL) {
        nsitems_free(items, n);
    }
    Py_XDECREF(pins);
    Py_XDECREF(keys);
    Py_XDECREF(ns);
    return result;
}

/* ---------------------------------------------------------------------
 * call
 */
enum call_status {
    CALL_OK = 0,
    CALL_RAISED,         // the callable raised: ExecutionFailed
    CALL_BAD_FUNC,       // could not rebuild the callable
    CALL_BAD_ARGS,
    CALL_BAD_KWARGS,
    CALL_BAD_RESULT,     // could not share the result
};

/* Same-interpreter call: no switch, no copy (as 3.14). */
static PyObject *
call_here(sbi_state *st, session *s, PyObject *func, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwargs)
{
    PyObject *res = NULL;
    PyObject *argtuple = PyTuple_New(nargs);
    if (argtuple != NULL) {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyTuple_SET_ITEM(argtuple, i, Py_NewRef(args[i]));
        }
        PyObject *ns = main_dict();
        res = ns ? call_in_main(ns, func, argtuple, kwargs) : NULL;
        Py_XDECREF(ns);
        Py_DECREF(argtuple);
    }
    sbi_excinfo info = SBI_EXCINFO_INIT;
    int failed = 0;
    if (res == NULL) {
        sbi_excinfo_capture_current(&info);
        failed = 1;
    }
    session_exit(s);
    if (failed) {
        raise_failed(st, &info);
        sbi_excinfo_clear(&info);
    }
    return res;
}

/* Build a kwargs dict from vectorcall keyword names. */
static PyObject *
kwargs_from_vector(PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        return NULL;
    }
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
        if (PyDict_SetItem(d, PyTuple_GET_ITEM(kwnames, i),
                           args[nargs + i]) < 0)
        {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

PyDoc_STRVAR(Interpreter_call_doc,
"call($self, callable, /, *args, **kwargs)\n--\n\n"
"Call the object in the interpreter with the given arguments.\n\n"
"Returns the result.  Stateless functions travel as code; other\n"
"callables, arguments and results natively or by pickle.  An uncaught\n"
"exception is raised as ExecutionFailed.");

static PyObject *
Interpreter_call(PyObject *op, PyObject *const *args, size_t nargsf,
                 PyObject *kwnames)
{
    InterpreterObject *self = InterpreterObject_CAST(op);
    sbi_state *st = state_of(op);
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
    // The target decodes the callable and arguments while we wait, so big
    // payloads are borrowed (pinned here until the data is freed).  The
    // result is copied: its object dies in the target before we decode.
    PyObject *pins = NULL;
    sbi_xidata *xfunc = NULL, *xargs = NULL, *xkwargs = NULL, *xres = NULL;
    sbi_excinfo info = SBI_EXCINFO_INIT;
    enum call_status status = CALL_OK;
    session s;

    if (self->id == sbi_registry_current_pid()) {
        if (session_enter(st, self->id, &s, "call") < 0) {
            goto done;
        }
        result = call_here(st, &s, func, args + 1, nargs - 1, kwargs);
        goto done;
    }

    /* pack in the caller */
    xfunc = sbi_xidata_new_callable(func, &pins);
    if (xfunc == NULL) {
        goto done;
    }
    if (nargs > 1) {
        PyObject *t = PyTuple_New(nargs - 1);
        if (t == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 1; i < nargs; i++) {
            PyTuple_SET_ITEM(t, i - 1, Py_NewRef(args[i]));
        }
        xargs = sbi_xidata_new_pinned(t, SBI_XI_FULL, &pins);
        Py_DECREF(t);
        if (xargs == NULL) {
            goto done;
        }
    }
    if (kwargs != NULL) {
        xkwargs = sbi_xidata_new_pinned(kwargs, SBI_XI_FULL, &pins);
        if (xkwargs == NULL) {
            goto done;
        }
    }
    if (session_enter(st, self->id, &s, "call") < 0) {
        goto done;
    }
    /* in the target */
    {
        PyObject *ns = main_dict();
        PyObject *tf = NULL, *ta = NULL, *tk = NULL, *tr = NULL;
        if (ns == NULL) {
            status = CALL_BAD_FUNC;
            goto target_done;
        }
        tf = sbi_xidata_load(xfunc, ns);
        if (tf == NULL) {
            status = CALL_BAD_FUNC;
            goto target_done;
        }
        if (xargs != NULL && (ta = sbi_xidata_load(xargs, ns)) == NULL) {
            status = CALL_BAD_ARGS;
            goto target_done;
        }
        if (xkwargs != NULL &&
            (tk = sbi_xidata_load(xkwargs, ns)) == NULL)
        {
            status = CALL_BAD_KWARGS;
            goto target_done;
        }
        tr = call_in_main(ns, tf, ta, tk);
        if (tr == NULL) {
            status = CALL_RAISED;
            goto target_done;
        }
        xres = sbi_xidata_new(tr, SBI_XI_FULL);
        if (xres == NULL) {
            status = CALL_BAD_RESULT;
        }
    target_done:
        if (status != CALL_OK) {
            sbi_excinfo_capture_current(&info);
            if (info.is_keyboard_interrupt) {
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
    }
    session_exit(&s);
    /* back in the caller */
    switch (status) {
    case CALL_OK:
        result = sbi_xidata_load(xres, NULL);
        break;
    case CALL_RAISED:
        raise_failed(st, &info);
        break;
    case CALL_BAD_FUNC:
        sbi_excinfo_raise_with_proxy(st->NotShareableError,
                                     "func not shareable", &info);
        break;
    case CALL_BAD_ARGS:
        sbi_excinfo_raise_with_proxy(st->NotShareableError,
                                     "args not shareable", &info);
        break;
    case CALL_BAD_KWARGS:
        sbi_excinfo_raise_with_proxy(st->NotShareableError,
                                     "kwargs not shareable", &info);
        break;
    case CALL_BAD_RESULT:
        sbi_excinfo_raise_with_proxy(st->NotShareableError,
                                     "result not shareable", &info);
        break;
    default:
        Py_UNREACHABLE();
    }
done:
    sbi_excinfo_clear(&info);
    sbi_xidata_free(xfunc);
    sbi_xidata_free(xargs);
    sbi_xidata_free(xkwargs);
    sbi_xidata_free(xres);
    Py_XDECREF(pins);
    Py_XDECREF(kwargs);
    return result;
}

PyDoc_STRVAR(Interpreter_call_in_thread_doc,
"call_in_thread($self, callable, /, *args, **kwargs)\n--\n\n"
"Start a new thread that calls the object in the interpreter.\n\n"
"Returns the started threading.Thread; the result is discarded and an\n"
"exception goes to threading.excepthook.");

static PyObject *
Interpreter_call_in_thread(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "call_in_thread() missing required argument "
                        "'callable'");
        return NULL;
    }
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return NULL;
    }
    PyObject *thread = NULL;
    PyObject *target = PyObject_GetAttrString(op, "call");
    PyObject *cls = PyObject_GetAttrString(threading, "Thread");
    PyObject *kw = Py_BuildValue("{sOsOsO}", "target", target, "args", args,
                                 "kwargs", kwargs ? kwargs : Py_None);
    PyObject *empty = PyTuple_New(0);
    if (target == NULL || cls == NULL || kw == NULL || empty == NULL) {
        goto done;
    }
    thread = PyObject_Call(cls, empty, kw);
    if (thread == NULL) {
        goto done;
    }
    PyObject *r = PyObject_CallMethod(thread, "start", NULL);
    if (r == NULL) {
        Py_CLEAR(thread);
    }
    Py_XDECREF(r);
done:
    Py_XDECREF(empty);
    Py_XDECREF(kw);
    Py_XDECREF(cls);
    Py_XDECREF(target);
    Py_DECREF(threading);
    return thread;
}

static PyObject *
Interpreter_reduce(PyObject *op, PyObject *unused)
{
    return Py_BuildValue("O(L)", (PyObject *)Py_TYPE(op),
                         (long long)InterpreterObject_CAST(op)->id);
}

static PyMethodDef Interpreter_methods[] = {
    {"is_running", Interpreter_is_running, METH_NOARGS,
     Interpreter_is_running_doc},
    {"close", Interpreter_close, METH_NOARGS, Interpreter_close_doc},
    {"prepare_main", _PyCFunction_CAST(Interpreter_prepare_main),
     METH_VARARGS | METH_KEYWORDS, Interpreter_prepare_main_doc},
    {"exec", _PyCFunction_CAST(Interpreter_exec),
     METH_VARARGS | METH_KEYWORDS, Interpreter_exec_doc},
    {"interrupt", Interpreter_interrupt, METH_NOARGS,
     Interpreter_interrupt_doc},
    {"call", _PyCFunction_CAST(Interpreter_call),
     METH_FASTCALL | METH_KEYWORDS, Interpreter_call_doc},
    {"call_in_thread", _PyCFunction_CAST(Interpreter_call_in_thread),
     METH_VARARGS | METH_KEYWORDS, Interpreter_call_in_thread_doc},
    {"__reduce__", Interpreter_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef Interpreter_getset[] = {
    {"id", Interpreter_get_id, NULL, "the interpreter's ID", NULL},
    {"whence", Interpreter_get_whence, NULL,
     "where the interpreter was created", NULL},
    {NULL},
};

static PyMemberDef Interpreter_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET,
     offsetof(InterpreterObject, weakreflist), Py_READONLY},
    {NULL},
};

PyDoc_STRVAR(Interpreter_doc,
"Interpreter(id, /)\n--\n\n"
"A single Python interpreter (one object per id in each interpreter).");

static PyType_Slot Interpreter_slots[] = {
    {Py_tp_new, Interpreter_new},
    {Py_tp_dealloc, Interpreter_dealloc},
    {Py_tp_traverse, Interpreter_traverse},
    {Py_tp_repr, Interpreter_repr},
    {Py_tp_hash, Interpreter_hash},
    {Py_tp_methods, Interpreter_methods},
    {Py_tp_getset, Interpreter_getset},
    {Py_tp_members, Interpreter_members},
    {Py_tp_doc, (void *)Interpreter_doc},
    {0, NULL},
};

static PyType_Spec Interpreter_spec = {
    .name = "subinterpreters.Interpreter",
    .basicsize = sizeof(InterpreterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_HAVE_GC,
    .slots = Interpreter_slots,
};

/* =====================================================================
 * Module functions
 */
static const PyInterpreterConfig isolated_config = {
    .use_main_obmalloc = 0,
    .allow_fork = 0,
    .allow_exec = 0,
    .allow_threads = 1,
    .allow_daemon_threads = 0,
    .check_multi_interp_extensions = 1,
    .gil = PyInterpreterConfig_OWN_GIL,
};

#if SBI_SERIAL_CREATE
// Held, with no GIL, while an interpreter starts (see compat.h).
static sbi_mutex create_mutex = SBI_MUTEX_INIT;
#endif

/* No thread state attached: start an interpreter of ours and run our
 * shields in it.  Returns NULL, its thread state then attached in *ts, or
 * CPython's reason for the failure (detached again). */
static const char *
start_interpreter(PyThreadState **ts)
{
    const char *failed = "";
#if SBI_SERIAL_CREATE
    sbi_mutex_lock(&create_mutex);
#endif
    for (int tries = 0; failed != NULL && tries < SBI_CREATE_TRIES; tries++) {
        sbi_arena_creating(1);
        PyStatus status = Py_NewInterpreterFromConfig(ts, &isolated_config);
        if (PyStatus_Exception(status)) {
            failed = status.err_msg != NULL ? status.err_msg : "";
        }
        else {
            sbi_shield_new_interp();
            failed = NULL;
        }
        sbi_arena_creating(0);
    }
#if SBI_SERIAL_CREATE
    sbi_mutex_unlock(&create_mutex);
#endif
    return failed;
}

PyObject *
sbi_interp_create(PyObject *m, PyObject *unused)
{
    sbi_state *st = sbi_state_of(m);
    int shutting_down;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    shutting_down = sbi_registry.shutting_down;
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (shutting_down) {
        PyErr_SetString(st->InterpreterError,
                        "cannot create interpreters at process exit");
        return NULL;
    }
    reap_orphans();
    if (sbi_current_cid() == 0 && sbi_shield_main() < 0) {
        return NULL;
    }
    int64_t reused = park_take();
    if (reused >= 0) {
        return interp_object_get(st, reused, WHENCE_STDLIB, 1);
    }
    sbi_entry *e = PyMem_RawCalloc(1, sizeof(*e));
    if (e == NULL) {
        return PyErr_NoMemory();
    }
    PyThreadState *save = PyThreadState_Swap(NULL);
    PyThreadState *ts = NULL;
    const char *failed = start_interpreter(&ts);
    if (failed != NULL) {
        (void)PyThreadState_Swap(save);
        PyMem_RawFree(e);
        PyErr_Format(st->InterpreterError, "interpreter creation failed%s%s",
                     *failed ? ": " : "", failed);
        return NULL;
    }
    /* in the new interpreter */
    e->interp = PyThreadState_GetInterpreter(ts);
    e->cid = PyInterpreterState_GetID(e->interp);
    e->parkable = park_snapshot();
    // Swap the start-up thread state, whose frame stack grew while the
    // interpreter imported its modules, for a fresh one (a new one first:
    // the thread list must never be empty, see keeper).
    PyThreadState *fresh = PyThreadState_New(e->interp);
    if (fresh != NULL) {
        (void)PyThreadState_Swap(fresh);
        PyThreadState_Clear(ts);
        PyThreadState_Delete(ts);
        ts = fresh;
    }
    e->keeper = ts;
    // The keeper doubles as the creating thread's cached thread state, so
    // an idle interpreter holds no other thread state of ours.
    e->cache[0].serial = sbi_registry_thread_serial();
    e->cache[0].ident = PyThread_get_thread_ident();
    e->cache[0].tstate = ts;
    e->ncache = 1;
    e->env_hash = environ_hash();
    // create() owns the first reference until its Interpreter object
    // adopts it: a concurrent Interpreter(id) that comes and goes cannot
    // drop the count to 0 in between.
    e->refs = 1;
    (void)PyThreadState_Swap(save);
    /* back in the caller; e is not touched after it is published */
    sbi_mutex_lock_py(&sbi_registry.mutex);
    int64_t id = e->id = sbi_registry_fresh_id(e->cid);
    e->next = sbi_registry.head;
    sbi_registry.head = e;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return interp_object_get(st, id, WHENCE_STDLIB, 1);
}

static int
cmp_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

PyObject *
sbi_interp_list_all(PyObject *m, PyObject *unused)
{
    sbi_state *st = sbi_state_of(m);
    int64_t cur = sbi_registry_current_pid();
    Py_ssize_t n = 0, cap = 8;
    int64_t *ids = NULL;
    PyObject *list = NULL;
    for (;;) {
        int64_t *p = PyMem_RawRealloc(ids, (size_t)cap * sizeof(int64_t));
        if (p == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        ids = p;
        n = 0;
        ids[n++] = 0;
        int has_cur = cur == 0;
        int full = 0;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
            if (e->closing) {
                continue;
            }
            if (n == cap - 1) {
                full = 1;
                break;
            }
            ids[n++] = e->id;
            has_cur |= e->id == cur;
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (full) {
            cap *= 2;
            continue;
        }
        if (!has_cur) {
            ids[n++] = cur;
        }
        break;
    }
    qsort(ids, (size_t)n, sizeof(int64_t), cmp_ids);
    list = PyList_New(0);
    if (list == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int whence = sbi_registry_lookup_whence(ids[i]);
        if (whence < 0) {
            continue;  // closed meanwhile
        }
        PyObject *obj = interp_object_get(st, ids[i], whence, 0);
        if (obj == NULL) {
            if (PyErr_ExceptionMatches(st->InterpreterNotFoundError)) {
                PyErr_Clear();
                continue;
            }
            Py_CLEAR(list);
            goto done;
        }
        int rc = PyList_Append(list, obj);
        Py_DECREF(obj);
        if (rc < 0) {
            Py_CLEAR(list);
            goto done;
        }
    }
done:
    PyMem_RawFree(ids);
    return list;
}

PyObject *
sbi_interp_get_current(PyObject *m, PyObject *unused)
{
    sbi_state *st = sbi_state_of(m);
    int64_t id = sbi_registry_current_pid();
    int whence = sbi_registry_lookup_whence(id);
    if (whence < 0) {
        whence = WHENCE_UNKNOWN;
    }
    return interp_object_get(st, id, whence, 0);
}

PyObject *
sbi_interp_get_main(PyObject *m, PyObject *unused)
{
    return interp_object_get(sbi_state_of(m), 0, WHENCE_RUNTIME, 0);
}

/* Size of this interpreter's Interpreter singleton cache (tests). */
PyObject *
sbi_interp_cache_size(PyObject *m, PyObject *unused)
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(sbi_state_of(m)->interp_cache));
}

/* Number of live interpreters created by this module (the fork guard). */
PyObject *
sbi_interp_count(PyObject *m, PyObject *unused)
{
    Py_ssize_t n = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        n += !e->closing;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return PyLong_FromSsize_t(n);
}

/* _fork_begin(): for the os.fork() guard.  Stops parking until
 * _fork_end(), ends the parked interpreters, and returns the number of
 * live interpreters of ours (fork must be refused unless 0). */
PyObject *
sbi_interp_fork_begin(PyObject *m, PyObject *unused)
{
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_registry.forking++;
    sbi_mutex_unlock(&sbi_registry.mutex);
    for (;;) {
        sbi_mutex_lock_py(&sbi_registry.mutex);
        sbi_entry *e = unpark_locked();
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (e == NULL) {
            break;
        }
        destroy_unparked(e);
    }
    return sbi_interp_count(m, NULL);
}

PyObject *
sbi_interp_fork_end(PyObject *m, PyObject *unused)
{
    sbi_mutex_lock_py(&sbi_registry.mutex);
    if (SBI_ALWAYS(sbi_registry.forking > 0)) {
        sbi_registry.forking--;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    Py_RETURN_NONE;
}

/* _parking(limit): set how many closed interpreters are kept for reuse
 * (a negative limit leaves it), destroying parked ones above it.
 * Returns (limit, number parked). */
PyObject *
sbi_interp_parking(PyObject *m, PyObject *arg)
{
    long limit = PyLong_AsLong(arg);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (limit > 1000) {
        PyErr_SetString(PyExc_ValueError, "limit too large");
        return NULL;
    }
    for (;;) {
        sbi_mutex_lock_py(&sbi_registry.mutex);
        if (limit >= 0) {
            sbi_registry.park_max = (int)limit;
        }
        sbi_entry *e = sbi_registry.nparked > sbi_registry.park_max
                           ? unpark_locked()
                           : NULL;
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (e == NULL) {
            break;
        }
        destroy_unparked(e);
    }
    sbi_mutex_lock_py(&sbi_registry.mutex);
    int max = sbi_registry.park_max, n = sbi_registry.nparked;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return Py_BuildValue("(ii)", max, n);
}

/* From the exit hook on, errors of ours in daemon threads of the main
 * interpreter (interrupted sessions, woken queue waits, refused calls)
 * are not reported by threading.excepthook: a daemon thread printing a
 * traceback while the main thread finalizes sys.stderr makes 3.13.18+
 * abort ("Fatal Python error: _enter_buffered_busy").  Other exceptions,
 * and non-daemon threads, go to the hook that was set.  Main interpreter;
 * never fails (a failure is reported as unraisable). */
static void
quiet_daemon_errors(sbi_state *st)
{
    static const char source[] =
        "import threading\n"
        "def install(ours, previous=threading.excepthook):\n"
        "    def excepthook(args):\n"
        "        if not (args.thread is not None and args.thread.daemon\n"
        "                and isinstance(args.exc_value, ours)):\n"
        "            previous(args)\n"
        "    threading.excepthook = excepthook\n"
        "install((INTERPRETER_ERROR, QUEUE_ERROR))\n";
    PyObject *ns = Py_BuildValue(
        "{sOsOsO}", "__builtins__", PyEval_GetBuiltins(), "INTERPRETER_ERROR",
        st->InterpreterError, "QUEUE_ERROR", st->QueueError);
    PyObject *r = ns ? PyRun_String(source, Py_file_input, ns, ns) : NULL;
    if (r == NULL) {
        sbi_compat_write_unraisable("quieting daemon threads at exit");
    }
    Py_XDECREF(r);
    Py_XDECREF(ns);
}

/* Called from the main interpreter's atexit: destroy every interpreter
 * we created, so 3.12 does not abort ("remaining subinterpreters") and
 * 3.13 does not hang on their threads. */
PyObject *
sbi_interp_atexit(PyObject *m, PyObject *unused)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    quiet_daemon_errors(sbi_state_of(m));
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_registry.shutting_down = 1;
    sbi_registry.exit_ident = PyThread_get_thread_ident();
    // Parked interpreters go back to the registry, to be destroyed below.
    while (sbi_registry.parked != NULL) {
        sbi_entry *e = sbi_registry.parked;
        sbi_registry.parked = e->next;
        e->next = sbi_registry.head;
        sbi_registry.head = e;
    }
    sbi_registry.nparked = 0;
    sbi_mutex_unlock(&sbi_registry.mutex);
    sbi_hooks_run_exiting();
    // Interpreters still running code (in daemon threads) are
    // interrupted and waited for, up to a few seconds in all.
    int64_t deadline = sbi_monotonic_ns() + SBI_EXIT_DEADLINE_NS;
    for (;;) {
        sbi_entry *victim = NULL;
        int64_t busy = -1;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
            if (e->exit_failed) {
                continue;
            }
            if (claim_for_close(e, cur) == 0) {
                victim = e;
                break;
            }
            if (e->running_tid != 0 && e->interp != cur && !e->closing) {
                busy = e->id;
            }
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (victim != NULL) {
            int64_t id = victim->id;
            if (destroy_entry(victim, SBI_EXIT_THREADS_WAIT_MS, 1) != 0) {
                fprintf(stderr, "subinterpreters: interpreter %lld could "
                        "not be destroyed at exit (threads still "
                        "running)\n", (long long)id);
                sbi_mutex_lock_py(&sbi_registry.mutex);
                victim->exit_failed = 1;
                sbi_mutex_unlock(&sbi_registry.mutex);
            }
            continue;
        }
        if (busy < 0 || sbi_monotonic_ns() > deadline) {
            break;
        }
        (void)sbi_interrupt_interp(busy, 0, 1);
        Py_BEGIN_ALLOW_THREADS
        usleep(SBI_EXIT_POLL_US);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* =====================================================================
 * Module glue
 */
/* In the child of fork(): the watcher thread did not survive, and locks
 * may have been held by threads that do not exist here. */
static void
reset_after_fork(void)
{
    sbi_registry_after_fork();
    sbi_hooks_after_fork();
    sbi_xidata_after_fork();
    sbi_arena_after_fork();
    sbi_shield_after_fork();
    sbi_sigint_after_fork();
#if SBI_SERIAL_CREATE
    (void)sbi_mutex_init(&create_mutex);
#endif
}

static void
register_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, reset_after_fork);
}

int
sbi_interp_module_init(PyObject *m, sbi_state *st)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, register_fork_handler);
    st->InterpreterType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Interpreter_spec, NULL);
    if (st->InterpreterType == NULL) {
        return -1;
    }
    if (PyModule_AddType(m, st->InterpreterType) < 0) {
        return -1;
    }
    st->interp_cache = PyDict_New();
    return st->interp_cache == NULL ? -1 : 0;
}

int
sbi_interp_globals_init(void)
{
    return 0;
}

void
sbi_interp_globals_fini(void)
{
}
