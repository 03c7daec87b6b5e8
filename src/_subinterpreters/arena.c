/* arena.c -- optionally return the memory CPython 3.12/3.13 keep after a
 * subinterpreter ends.
 *
 * Owns the arena allocator wrapper and the list of arenas allocated by
 * subinterpreters.  An isolated interpreter has its own object allocator
 * (obmalloc), which takes memory from the process-wide arena allocator in
 * 1 MiB arenas, always for the interpreter of the calling thread's thread
 * state.  When the interpreter ends, 3.13 frees its arenas only if no
 * block in them is still allocated (3.12 never does); but every ended
 * interpreter leaves blocks allocated -- about 2,800 after an empty
 * interpreter, 4,400 after "import json, re", mostly immortal interned
 * strings (gh-113993, gh-113055) -- so each destroyed interpreter keeps
 * 1.5-2.5 MiB.  3.14 frees them.
 *
 * With SUBINTERPRETERS_RELEASE_ARENAS=1 we wrap the arena allocator, note
 * which interpreter (by CPython's id) allocated each arena, and after
 * Py_EndInterpreter() free the arenas that interpreter left, then trim
 * glibc's heap: 0.14 MiB stays per cycle instead of 2.4.  It is not on by
 * default because CPython's reason to keep them is real: some extension
 * modules keep objects of the first interpreter that used them in C
 * statics -- 3.12's single-phase _ctypes readies its static types in the
 * subinterpreter that tried to import it, 3.13's xxsubtype likewise,
 * syslog.openlog() keeps its ident -- and freeing that memory turns a leak
 * into a use-after-free.  Never on 3.12.0-3.12.3 (gh-119213: every
 * extension function's keyword tuple is such an object).
 *
 * SUBINTERPRETERS_ARENA_CHECK=1 makes released arenas inaccessible
 * (PROT_NONE) instead of freeing them: a program run that way crashes at
 * the first touch of memory of an ended interpreter, which tells whether
 * releasing is safe for what it does.
 *
 * Lock: arenas.mutex, a leaf lock (no Python API, no allocation through
 * CPython inside), taken from the allocator hooks with whatever GIL the
 * allocating thread holds.
 */
#include "arena.h"
#include "lock.h"

#include <stdlib.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#  include <malloc.h>
#endif

typedef struct {
    void *ptr;
    size_t size;
    int64_t owner;  // CPython's id of the allocating interpreter
} arena_rec;

static struct {
    sbi_mutex mutex;
    int installed;                // written once, before any hook runs
    int check;                    // PROT_NONE instead of free
    PyObjectArenaAllocator orig;  // the allocator we wrap; immutable
    arena_rec *recs;              // protected by mutex (libc memory)
    size_t n, cap;                // protected by mutex
} arenas = {.mutex = SBI_MUTEX_INIT};

/* Remember ptr (needs lock).  On failure to grow the list the arena is
 * simply not watched (it is then never released: the old behaviour). */
static void
recs_add(void *ptr, size_t size, int64_t owner)
{
    if (arenas.n == arenas.cap) {
        size_t cap = arenas.cap ? 2 * arenas.cap : 64;
        arena_rec *r = realloc(arenas.recs, cap * sizeof(*r));
        if (r == NULL) {
            return;
        }
        arenas.recs = r;
        arenas.cap = cap;
    }
    arenas.recs[arenas.n++] = (arena_rec){ptr, size, owner};
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
    if (owner > 0) {  // the main interpreter's arenas are not watched
        sbi_mutex_lock(&arenas.mutex);
        recs_add(ptr, size, owner);
        sbi_mutex_unlock(&arenas.mutex);
    }
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
    if (!sbi_env_flag("SUBINTERPRETERS_RELEASE_ARENAS") ||
        Py_Version < 0x030C04F0) {
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

size_t
sbi_arena_release(int64_t cid, int keep)
{
    if (!arenas.installed || cid <= 0) {
        return 0;
    }
    size_t freed = 0;
    for (;;) {
        arena_rec found = {NULL, 0, 0};
        sbi_mutex_lock(&arenas.mutex);
        for (size_t i = 0; i < arenas.n; i++) {
            if (arenas.recs[i].owner == cid) {
                found = arenas.recs[i];
                arenas.recs[i] = arenas.recs[--arenas.n];
                break;
            }
        }
        sbi_mutex_unlock(&arenas.mutex);
        if (found.ptr == NULL) {
            break;
        }
        if (keep) {
            continue;  // forgotten, not freed: leaked as CPython leaves it
        }
        if (arenas.check) {
            (void)mprotect(found.ptr, found.size, PROT_NONE);
        }
        else {
            arenas.orig.free(arenas.orig.ctx, found.ptr, found.size);
        }
        freed += found.size;
    }
#ifdef __GLIBC__
    // The interpreter's raw allocations (its state, thread states, ...)
    // went back to the C heap, which keeps the pages: hand the free ones
    // back (about 0.15 MiB per interpreter stays resident otherwise).
    if (freed > 0) {
        (void)malloc_trim(0);
    }
#endif
    return freed;
}

size_t
sbi_arena_watched(void)
{
    sbi_mutex_lock(&arenas.mutex);
    size_t n = arenas.n;
    sbi_mutex_unlock(&arenas.mutex);
    return n;
}

void
sbi_arena_after_fork(void)
{
    (void)pthread_mutex_init(&arenas.mutex, NULL);
}
