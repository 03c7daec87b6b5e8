/* arena.c -- return the memory CPython 3.12/3.13 keep after a
 * subinterpreter ends.
 *
 * Owns the arena allocator wrapper, the list of arenas allocated by
 * subinterpreters and the list of interpreters that must keep theirs.  An
 * isolated interpreter has its own object allocator (obmalloc), which
 * takes memory from the process-wide arena allocator in 1 MiB arenas,
 * always for the interpreter of the calling thread's thread state.  When
 * the interpreter ends, 3.13 frees its arenas only if no block in them is
 * still allocated (3.12 never does); but every ended interpreter leaves
 * blocks allocated -- about 2,800 after an empty interpreter, 4,400 after
 * "import json, re", mostly immortal interned strings (gh-113993,
 * gh-113055) -- so each destroyed interpreter keeps 1.5-2.5 MiB.  3.14
 * frees them.
 *
 * We wrap the arena allocator, note which interpreter (by CPython's id)
 * allocated each arena, and after Py_EndInterpreter() free the arenas
 * that interpreter left, then trim glibc's heap: 0.14 MiB stays per cycle
 * instead of 2.4.  CPython's reason to keep them is real for some
 * extension modules, though: they keep objects of the interpreter that
 * used them in C statics or _PyRuntime (a single-phase module's init
 * function runs, readying static types, before an isolated interpreter
 * refuses it; syslog.openlog() keeps its ident; faulthandler its file;
 * tracemalloc the file names of every frame it saw).  Freeing that memory
 * would turn a leak into a use-after-free.  So an interpreter keeps its
 * arenas, as CPython leaves them, if
 *   - it tried to load an extension module (_imp.create_dynamic or
 *     create_builtin, which we wrap in every interpreter of ours) that is
 *     not part of the standard library, or is one of
 *     SBI_ARENA_UNSAFE_MODULES, or failed to load;
 *   - tracemalloc is tracing when it ends;
 *   - buffers it exported are still shared (the caller says so).
 * Pure-Python code and the standard library's isolated extension modules
 * -- what most interpreters run -- give their memory back.  Never on
 * 3.12.0-3.12.3 (gh-119213: every extension function's keyword tuple is
 * such an object).  SUBINTERPRETERS_RELEASE_ARENAS=0 turns it off.
 *
 * SUBINTERPRETERS_ARENA_CHECK=1 makes released arenas inaccessible
 * (PROT_NONE) instead of freeing them: a program run that way crashes at
 * the first touch of memory of an ended interpreter, which tells whether
 * releasing is safe for what it does (the suite runs real code so).
 *
 * Lock: arenas.mutex, a leaf lock (no Python API, no allocation through
 * CPython inside), taken from the allocator hooks with whatever GIL the
 * allocating thread holds.
 */
#include "arena.h"
#include "lock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#  include <malloc.h>
#endif

typedef struct {
    void *ptr;
    size_t size;
    int64_t owner;  // CPython's id of the allocating interpreter
} arena_rec;

typedef struct {
    int64_t cid;  // an interpreter of ours, alive
    int keep;     // it must keep its arenas when it ends
} watched_interp;

static struct {
    sbi_mutex mutex;
    int installed;                // written once, before any hook runs
    int check;                    // PROT_NONE instead of free
    PyObjectArenaAllocator orig;  // the allocator we wrap; immutable
    arena_rec *recs;              // protected by mutex (libc memory)
    size_t n, cap;                // protected by mutex
    watched_interp *interps;      // protected by mutex (libc memory)
    size_t ninterps, capinterps;  // protected by mutex
    int broken;                   // protected by mutex: a list could not grow
    size_t released, kept;        // protected by mutex: for _arenas()
} arenas = {.mutex = SBI_MUTEX_INIT};

/* Set on a thread while it creates an interpreter of ours, whose id is
 * not known yet: the arenas the new interpreter takes meanwhile are
 * recorded. */
static _Thread_local int creating_here = 0;

/* Grow *list (of *cap items of size item) to hold one more.  0, or -1
 * with arenas.broken set: from then on nothing is released, so that no
 * arena of an interpreter that must keep its arenas is freed.  Needs
 * lock. */
static int
grow(void **list, size_t *cap, size_t item)
{
    size_t ncap = *cap ? 2 * *cap : 64;
    void *r = realloc(*list, ncap * item);
    if (r == NULL) {
        arenas.broken = 1;
        return -1;
    }
    *list = r;
    *cap = ncap;
    return 0;
}

/* The watched interpreter cid, or NULL.  Needs lock. */
static watched_interp *
find_interp(int64_t cid)
{
    for (size_t i = 0; i < arenas.ninterps; i++) {
        if (arenas.interps[i].cid == cid) {
            return &arenas.interps[i];
        }
    }
    return NULL;
}

static void *
hook_alloc(void *ctx, size_t size)
{
    void *ptr = arenas.orig.alloc(arenas.orig.ctx, size);
    PyThreadState *ts = PyThreadState_GetUnchecked();
    if (ptr == NULL || ts == NULL) {
        return ptr;
    }
    int64_t owner = PyInterpreterState_GetID(PyThreadState_GetInterpreter(ts));
    if (owner <= 0) {
        return ptr;  // the main interpreter's arenas are not watched
    }
    sbi_mutex_lock(&arenas.mutex);
    // Only ours: other interpreters' records would never be taken off.
    if ((creating_here || find_interp(owner) != NULL) &&
        (arenas.n < arenas.cap ||
         grow((void **)&arenas.recs, &arenas.cap, sizeof(arena_rec)) == 0))
    {
        arenas.recs[arenas.n++] = (arena_rec){ptr, size, owner};
    }
    sbi_mutex_unlock(&arenas.mutex);
    return ptr;
}

static void
hook_free(void *ctx, void *ptr, size_t size)
{
    sbi_mutex_lock(&arenas.mutex);
    for (size_t i = 0; i < arenas.n; i++) {
        if (arenas.recs[i].ptr == ptr) {
            arenas.recs[i] = arenas.recs[--arenas.n];
            break;
        }
    }
    sbi_mutex_unlock(&arenas.mutex);
    arenas.orig.free(arenas.orig.ctx, ptr, size);
}

/* Interpreter cid must keep its arenas when it ends (it may have left
 * objects in process-wide C state).  Any thread, no Python API. */
static void
keep_arenas_of(int64_t cid)
{
    sbi_mutex_lock(&arenas.mutex);
    watched_interp *w = find_interp(cid);
    if (w != NULL) {
        w->keep = 1;
    }
    sbi_mutex_unlock(&arenas.mutex);
}

static void
keep_current(void)
{
    keep_arenas_of(PyInterpreterState_GetID(PyInterpreterState_Get()));
}

/* May an interpreter that has extension module `name` release its
 * arenas?  Only for the standard library's modules, minus
 * SBI_ARENA_UNSAFE_MODULES, and our own.  0 on any error (cleared). */
static int
name_is_safe(PyObject *name)
{
    static const char *const unsafe[] = SBI_ARENA_UNSAFE_MODULES;
    if (name == NULL || !PyUnicode_Check(name)) {
        PyErr_Clear();
        return 0;
    }
    if (PyUnicode_CompareWithASCIIString(name, SBI_CORE_MODULE_NAME) == 0) {
        return 1;
    }
    Py_ssize_t len = PyUnicode_GetLength(name);
    Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, len, 1);
    PyObject *top = dot >= -1 ? PyUnicode_Substring(name, 0,
                                                    dot >= 0 ? dot : len)
                              : NULL;  // an exact str
    PyObject *stdlib = Py_XNewRef(PySys_GetObject("stdlib_module_names"));
    int safe = top != NULL && stdlib != NULL && PyAnySet_Check(stdlib) &&
               PySet_Contains(stdlib, top) == 1;
    for (const char *const *u = unsafe; safe && *u != NULL; u++) {
        safe = PyUnicode_CompareWithASCIIString(top, *u) != 0;
    }
    Py_XDECREF(stdlib);
    Py_XDECREF(top);
    PyErr_Clear();
    return safe;
}

/* Is mod a module made by multi-phase init (which an isolated interpreter
 * loads only when it declares isolation)?  No error. */
static int
is_multi_phase(PyObject *mod)
{
    PyModuleDef *def = PyModule_Check(mod) ? PyModule_GetDef(mod) : NULL;
    PyErr_Clear();
    return def != NULL && def->m_slots != NULL;
}

/* The wrapper of _imp.create_dynamic and _imp.create_builtin (self is the
 * original): loads as before, and makes the interpreter keep its arenas
 * unless a safe module loaded by multi-phase init -- a single-phase one
 * loads only when importlib's check is overridden, and its init function
 * ran here even when it was refused. */
static PyObject *
watched_create(PyObject *orig, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *name = NULL;
    if (nargs >= 1) {
        name = PyObject_GetAttrString(args[0], "name");
    }
    int safe = name_is_safe(name);
    Py_XDECREF(name);
    PyObject *mod = PyObject_Vectorcall(orig, args, nargs, kwnames);
    if (mod == NULL || !safe || !is_multi_phase(mod)) {
        keep_current();
    }
    return mod;
}

/* The wrapper of _imp.exec_dynamic and _imp.exec_builtin: a module whose
 * exec failed may have left anything anywhere. */
static PyObject *
watched_exec(PyObject *orig, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    PyObject *res = PyObject_Vectorcall(orig, args, nargs, kwnames);
    if (res == NULL) {
        keep_current();
    }
    return res;
}

static PyMethodDef watched_defs[] = {
    {"create_dynamic", _PyCFunction_CAST(watched_create),
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"create_builtin", _PyCFunction_CAST(watched_create),
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"exec_dynamic", _PyCFunction_CAST(watched_exec),
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"exec_builtin", _PyCFunction_CAST(watched_exec),
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

/* Did the interpreter load, while it started (site, .pth files,
 * sitecustomize), an extension module that is not safe?  No error. */
static int
loaded_unsafe_at_start(void)
{
    PyObject *modules = PySys_GetObject("modules");  // borrowed
    if (modules == NULL || !PyDict_Check(modules)) {
        return 1;
    }
    Py_INCREF(modules);
    int unsafe = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *mod;  // borrowed
    while (!unsafe && PyDict_Next(modules, &pos, &key, &mod)) {
        if (PyModule_Check(mod) && PyModule_GetDef(mod) != NULL) {
            unsafe = !name_is_safe(key);
        }
    }
    PyErr_Clear();
    Py_DECREF(modules);
    return unsafe;
}

void
sbi_arena_creating(int on)
{
    creating_here = on;
}

void
sbi_arena_watch_imports(void)
{
    if (!arenas.installed) {
        return;
    }
    int64_t cid = PyInterpreterState_GetID(PyInterpreterState_Get());
    sbi_mutex_lock(&arenas.mutex);
    if (find_interp(cid) == NULL &&
        (arenas.ninterps < arenas.capinterps ||
         grow((void **)&arenas.interps, &arenas.capinterps,
              sizeof(watched_interp)) == 0))
    {
        arenas.interps[arenas.ninterps++] = (watched_interp){cid, 0};
    }
    sbi_mutex_unlock(&arenas.mutex);
    PyObject *imp = PyImport_ImportModule("_imp");
    int ok = imp != NULL;
    for (PyMethodDef *def = watched_defs; ok && def->ml_name != NULL; def++) {
        ok = sbi_wrap_imp_function(imp, def) == 0;
    }
    Py_XDECREF(imp);
    PyErr_Clear();
    if (!ok || loaded_unsafe_at_start()) {
        keep_arenas_of(cid);
    }
}

void
sbi_arena_install(void)
{
    if (arenas.installed) {
        return;
    }
    // Arenas other interpreters took before the hook cannot be told
    // apart; with the main interpreter alone, there are none.
    PyInterpreterState *main = PyInterpreterState_Main();
    if (PyInterpreterState_Next(main) != NULL ||
        PyInterpreterState_Head() != main) {
        return;
    }
    const char *env = getenv("SUBINTERPRETERS_RELEASE_ARENAS");
    if ((env != NULL && strcmp(env, "0") == 0) ||
        Py_Version < SBI_ARENA_RELEASE_FIRST)
    {
        return;
    }
    arenas.check = sbi_env_flag("SUBINTERPRETERS_ARENA_CHECK");
    PyObject_GetArenaAllocator(&arenas.orig);
    PyObjectArenaAllocator hook = {NULL, hook_alloc, hook_free};
    arenas.installed = 1;
    PyObject_SetArenaAllocator(&hook);
}

int
sbi_arena_installed(void)
{
    return arenas.installed;
}

/* Is tracemalloc tracing?  (Untracking a block of a domain nobody uses
 * is harmless; it returns -2 only when tracemalloc is off.)  No GIL
 * needed. */
static int
tracemalloc_tracing(void)
{
    return PyTraceMalloc_Untrack((unsigned int)0x5b1a7e4a, 0) != -2;
}

size_t
sbi_arena_release(int64_t cid, int keep)
{
    if (!arenas.installed || cid <= 0) {
        return 0;
    }
    // Race left open: tracemalloc.stop() in another thread clears the
    // tracing flag before it drops the file names it keeps, so an
    // interpreter ending in between frees names stop() then releases.
    keep = keep || tracemalloc_tracing();
    size_t freed = 0, forgotten = 0;
    sbi_mutex_lock(&arenas.mutex);
    watched_interp *w = find_interp(cid);
    keep = keep || w == NULL || w->keep || arenas.broken;
    if (w != NULL) {
        *w = arenas.interps[--arenas.ninterps];
    }
    for (size_t i = 0; i < arenas.n;) {
        arena_rec r = arenas.recs[i];
        if (r.owner != cid) {
            i++;
            continue;
        }
        arenas.recs[i] = arenas.recs[--arenas.n];
        if (keep) {
            forgotten++;  // not freed: leaked as CPython leaves it
        }
        else if (arenas.check) {
            (void)mprotect(r.ptr, r.size, PROT_NONE);
            freed += r.size;
        }
        else {
            // The wrapped allocator is munmap (or free): a leaf call.
            arenas.orig.free(arenas.orig.ctx, r.ptr, r.size);
            freed += r.size;
        }
    }
    arenas.released += freed;
    arenas.kept += forgotten > 0;
    sbi_mutex_unlock(&arenas.mutex);
#ifdef __GLIBC__
    // The interpreter's raw allocations (its state, thread states, ...)
    // went back to the C heap, which keeps the pages: hand the free ones
    // back (about 0.15 MiB per interpreter stays resident otherwise).
    // About 10 us, against the 2-15 ms of ending an interpreter.
    if (freed > 0) {
        (void)malloc_trim(0);
    }
#endif
    return freed;
}

PyObject *
sbi_arena_stats(void)
{
    sbi_mutex_lock(&arenas.mutex);
    size_t watched = arenas.n, released = arenas.released, kept = arenas.kept;
    sbi_mutex_unlock(&arenas.mutex);
    return Py_BuildValue("{s:O,s:n,s:n,s:n}", "installed",
                         arenas.installed ? Py_True : Py_False, "watched",
                         (Py_ssize_t)watched, "released_bytes",
                         (Py_ssize_t)released, "kept_interpreters",
                         (Py_ssize_t)kept);
}

void
sbi_arena_after_fork(void)
{
    (void)pthread_mutex_init(&arenas.mutex, NULL);
}
