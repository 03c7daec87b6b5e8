/* park.c -- parking: reusing closed interpreters.
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
 *
 * Calls registry.c and state.c (layers: docs/design.md).  Ending an
 * interpreter is the caller's (lifecycle.c): what cannot be parked, or
 * was parked under another environment, is handed back to it.
 *
 * Lock: sbi_registry.mutex (leaf).
 */
#include "park.h"
#include "state.h"

/* What a new interpreter looked like (per-interpreter local state).
 * Module namespaces are summarised by a digest of their (key, value)
 * addresses rather than copied: copies would cost ~65 KB per interpreter.
 * The digest misses only an attribute deleted and later set again to a
 * new object that happens to get the old one's address. */
typedef struct {
    PyObject *mainmod;   // sys.modules['__main__']
    PyObject *main;      // copy of __main__.__dict__
    PyObject *lists;     // tuple copies of the lists in park_lists
    uint64_t digest;     // modules_digest() of sys.modules at creation
    PyObject *settings;  // park_settings() at creation
    int reclimit;
    int tainted;  // park_audit() saw a change the rest misses
} park_base;

/* Mutable lists of the sys module that are part of the snapshot. */
static const char *const park_lists[] = {"path", "meta_path",   "path_hooks",
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

uint64_t
sbi_park_environ_hash(void)
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
        PyObject *item = lst != NULL && PyList_Check(lst) ? PyList_AsTuple(lst)
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
    PyObject *digits =
        PyObject_CallMethod(sys, "get_int_max_str_digits", NULL);
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
    if (digits != NULL && interval != NULL && tools != NULL && ftuple != NULL)
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
    else if (PyUnicode_CompareWithASCIIString(event, "object.__setattr__") ==
                 0 ||
             PyUnicode_CompareWithASCIIString(event, "object.__delattr__") ==
                 0)
    {
        PyObject *obj = PyTuple_Check(eargs) && PyTuple_GET_SIZE(eargs) > 0
                            ? PyTuple_GET_ITEM(eargs, 0)
                            : NULL;  // borrowed
        taint = 1;
        if (obj != NULL && PyType_Check(obj) &&
            PyType_HasFeature((PyTypeObject *)obj, Py_TPFLAGS_HEAPTYPE))
        {
            PyObject *d = PyType_GetDict((PyTypeObject *)obj);
            PyObject *mod =
                d ? PyDict_GetItemString(d, "__module__") : NULL;  // borrowed
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

static PyMethodDef park_audit_def = {"_subinterpreters_park_audit", park_audit,
                                     METH_VARARGS, NULL};

int
sbi_park_snapshot(void)
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
    PyObject *r = hook && sys
                      ? PyObject_CallMethod(sys, "addaudithook", "O", hook)
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

int
sbi_park_reset(void)
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

int
sbi_park_wanted(void)
{
    sbi_mutex_lock_any(&sbi_registry.mutex);
    int wanted = park_allowed();
    sbi_mutex_unlock(&sbi_registry.mutex);
    return wanted;
}

int
sbi_park(sbi_entry *e)
{
    uint64_t env = sbi_park_environ_hash();
    int parked = 0;
    sbi_mutex_lock_any(&sbi_registry.mutex);
    if (park_allowed() && e->env_hash == env) {
        sbi_registry_remove(e);
        e->id = -1;
        e->closing = 0;
        e->running_tid = 0;
        e->running_tstate = NULL;
        e->refs = 0;
        e->orphaned = SBI_ORPHAN_NO;
        e->interrupt_pending = 0;
        e->interrupt_unwind = 0;
        e->user_code = 0;
        e->unwinding = 0;
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

int64_t
sbi_park_take(sbi_entry **stale)
{
    uint64_t env = sbi_park_environ_hash();
    int64_t id = -1;
    *stale = NULL;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry.shutting_down ? NULL : unpark_locked();
    if (e != NULL && e->env_hash == env) {
        e->id = sbi_registry_fresh_id(e->cid);
        e->refs = 1;
        e->closing = 0;
        e->running_tid = 0;
        id = e->id;
    }
    else {
        *stale = e;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return id;
}

sbi_entry *
sbi_park_evict(int all, int limit)
{
    sbi_mutex_lock_py(&sbi_registry.mutex);
    if (limit >= 0) {
        sbi_registry.park_max = limit;
    }
    sbi_entry *e = all || sbi_registry.nparked > sbi_registry.park_max
                       ? unpark_locked()
                       : NULL;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return e;
}
