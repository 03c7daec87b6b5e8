/* lifecycle.c -- creating and ending our interpreters, and who owns
 * them.
 *
 * An interpreter of ours lives while an owning reference to it exists (an
 * Interpreter object made by create(), or one made with _ownsref) or until
 * close().  Ending one joins its threads (as 3.14's close() does),
 * refuses while a thread cannot be joined or its buffers are viewed
 * elsewhere, runs the "closed" hooks (queue items are unbound there),
 * then parks it when pristine (park.c) or ends it.  An interpreter whose
 * last owner went away while it could not end is "orphaned" and reaped
 * later (at the next create(), close() or session exit), or at exit.
 *
 * Calls session.c, park.c, registry.c, hooks.c, shbuf.c (shared
 * buffers), shield.c, arena.c, wake.c and state.c (layers:
 * docs/design.md).
 *
 * Lock: sbi_registry.mutex (leaf); create_mutex (3.12/3.13, compat.h),
 * taken with no thread state attached.
 */
#include "lifecycle.h"
#include "park.h"
#include "hooks.h"
#include "shbuf.h"
#include "shield.h"
#include "sleep.h"
#include "arena.h"
#include "interrupt.h"
#include "wake.h"

#include <unistd.h>

static void reap(void);

static const PyInterpreterConfig isolated_config = {
    .use_main_obmalloc = 0,
    .allow_fork = 0,
    .allow_exec = 0,
    .allow_threads = 1,
    .allow_daemon_threads = 0,
    .check_multi_interp_extensions = 1,
    .gil = PyInterpreterConfig_OWN_GIL,
};

/* create(isolated=False): CPython's "legacy" interpreter -- the main
 * interpreter's GIL and object allocator, single-phase extension modules
 * allowed -- but, like ours, no os.fork() (3.12/3.13 crash the child of a
 * fork from a subinterpreter), no exec and no daemon threads (they could
 * outlive it).  Never parked (park.c snapshots isolated ones only) and
 * never watched by arena.c (its memory is the main interpreter's). */
static const PyInterpreterConfig legacy_config = {
    .use_main_obmalloc = 1,
    .allow_fork = 0,
    .allow_exec = 0,
    .allow_threads = 1,
    .allow_daemon_threads = 0,
    .check_multi_interp_extensions = 0,
    .gil = PyInterpreterConfig_SHARED_GIL,
};

#if SBI_SERIAL_CREATE
// Taken with no thread state attached; held while an interpreter starts
// (see compat.h).  Its holder, for start-up code that creates again.
static sbi_mutex create_mutex = SBI_MUTEX_INIT;
static unsigned long create_owner;  // atomic
#endif

/* No thread state attached: start an interpreter of ours and run our
 * shields in it.  Returns NULL, its thread state then attached in *ts, or
 * the reason for the failure (detached again). */
static const char *
start_interpreter(PyThreadState **ts, int isolated)
{
    const char *failed = "";
#if SBI_SERIAL_CREATE
    unsigned long me = PyThread_get_thread_ident();
    if (__atomic_load_n(&create_owner, __ATOMIC_RELAXED) == me) {
        // Code run by the start-up itself (a sitecustomize, a .pth file)
        // creating an interpreter: the lock is ours already.
        return "the thread is starting another interpreter already";
    }
    sbi_mutex_lock(&create_mutex);
    __atomic_store_n(&create_owner, me, __ATOMIC_RELAXED);
#endif
    for (int tries = 0; failed != NULL && tries < SBI_CREATE_TRIES; tries++) {
        sbi_arena_creating(isolated);
        *ts = NULL;
        PyStatus status = Py_NewInterpreterFromConfig(
            ts, isolated ? &isolated_config : &legacy_config);
        if (PyStatus_Exception(status)) {
            failed = status.err_msg != NULL ? status.err_msg : "";
        }
        else if (*ts == NULL) {
            failed = "out of memory";  // 3.12: no thread state, no error
        }
        else {
            sbi_shield_new_interp(isolated);
            sbi_sleep_install();
            failed = NULL;
        }
        sbi_arena_creating(0);
    }
#if SBI_SERIAL_CREATE
    __atomic_store_n(&create_owner, 0UL, __ATOMIC_RELAXED);
    sbi_mutex_unlock(&create_mutex);
#endif
    return failed;
}

/* As threading._shutdown() does: run threading's atexit hooks (they may
 * be what makes the threads finish), once.  Errors are printed. */
static void
run_threading_atexits(PyObject *threading)
{
    PyObject *hooks = PyObject_GetAttrString(threading, "_threading_atexits");
    if (hooks != NULL && PyList_Check(hooks) && PyList_GET_SIZE(hooks) > 0) {
        if (PyObject_SetAttrString(threading, "_SHUTTING_DOWN", Py_True) < 0) {
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
}

#if SBI_FIX_MAIN_THREAD_TSTATE_LOCK
/* Give threading's _MainThread a fresh held tstate lock (see compat.h),
 * held or not before: a held one may belong to the keeper, which is
 * deleted (releasing it) right before Py_EndInterpreter. */
static void
fresh_main_tstate_lock(PyObject *main)
{
    PyObject *lock = PyObject_GetAttrString(main, "_tstate_lock");
    PyObject *locked = lock && lock != Py_None
                           ? PyObject_CallMethod(lock, "locked", NULL)
                           : NULL;
    if (locked == Py_False || locked == Py_True) {
        PyObject *thread = PyImport_ImportModule("_thread");
        PyObject *fresh =
            thread ? PyObject_CallMethod(thread, "allocate_lock", NULL) : NULL;
        PyObject *r =
            fresh ? PyObject_CallMethod(fresh, "acquire", NULL) : NULL;
        if (r == NULL ||
            PyObject_SetAttrString(main, "_tstate_lock", fresh) < 0) {
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

/* Join thread t unless it is a daemon, the calling thread, or a thread
 * threading did not start (dummy: an OS thread of another interpreter that
 * ran code here, which cannot be joined -- on 3.12 it is not a daemon in
 * an interpreter without daemon threads).  Errors are printed. */
static void
join_one(PyObject *t, PyObject *dummy_type, unsigned long me)
{
    if (dummy_type != NULL && PyType_Check(dummy_type)) {
        int dummy = PyObject_IsInstance(t, dummy_type);
        if (dummy != 0) {
            PyErr_Clear();
            return;
        }
    }
    PyObject *daemon = PyObject_GetAttrString(t, "daemon");
    PyObject *ident = PyObject_GetAttrString(t, "ident");
    int skip = daemon == NULL || ident == NULL ||
               PyObject_IsTrue(daemon) != 0 ||
               (PyLong_Check(ident) && PyLong_AsUnsignedLong(ident) == me);
    Py_XDECREF(daemon);
    Py_XDECREF(ident);
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    if (skip) {
        return;
    }
    PyObject *r = PyObject_CallMethod(t, "join", NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(t);
    }
    Py_XDECREF(r);
}

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
    run_threading_atexits(threading);
    PyObject *threads = PyObject_CallMethod(threading, "enumerate", NULL);
    PyObject *main =
        threads ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *dummy_type =
        main ? PyObject_GetAttrString(threading, "_DummyThread") : NULL;
    if (main != NULL && dummy_type == NULL) {
        PyErr_Clear();
    }
    if (main != NULL && PyList_Check(threads)) {
#if SBI_FIX_MAIN_THREAD_TSTATE_LOCK
        fresh_main_tstate_lock(main);
#endif
        unsigned long me = PyThread_get_thread_ident();
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(threads); i++) {
            PyObject *t = PyList_GET_ITEM(threads, i);  // borrowed
            if (t != main) {
                join_one(t, dummy_type, me);
            }
        }
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    Py_XDECREF(dummy_type);
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

/* Give up destroying e (claimed by us): it stays alive and usable,
 * marked as mark says in the same lock hold (once unlocked, another
 * thread may take e and free it). */
static void
unclaim(sbi_entry *e, sbi_fail_mark mark)
{
    sbi_mutex_lock_any(&sbi_registry.mutex);
    e->closing = 0;
    e->running_tid = 0;
    if (mark == SBI_FAIL_ORPHAN) {
        e->orphaned = SBI_ORPHAN_AT_EXIT;
    }
    else if (mark == SBI_FAIL_AT_EXIT) {
        e->exit_failed = 1;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
}

/* Destroy e, or park it for reuse if it is pristine (park.c).  The
 * caller has claimed e (sbi_lifecycle_claim()) and is attached to another
 * interpreter.  Returns 0 (e is gone from the registry: destroyed or
 * parked), or an SBI_ERR_* with e unclaimed.
 * wait_ms bounds how long threads that cannot be joined are waited for;
 * force (process exit) abandons shared buffers still viewed elsewhere.
 *
 * Checks that can refuse come before anything irreversible, except that
 * threads can only be counted after the threading threads were joined
 * (which runs threading's atexit hooks): an interpreter refused for a
 * _thread thread has been through threading's shutdown. */
int
sbi_lifecycle_destroy(sbi_entry *e, int wait_ms, int force, sbi_fail_mark mark)
{
    if (!force && sbi_shbuf_count_owned(e->cid) > 0) {
        unclaim(e, mark);
        return SBI_ERR_BUFFERS_SHARED;
    }
    PyThreadState *ts = PyThreadState_New(e->interp);
    if (ts == NULL) {
        unclaim(e, mark);
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
    // Threads blocked in our waits (sync primitives) are woken with an
    // error, so that they can end and be joined.
    sbi_wake_set_closing(e->cid, 1);
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
    sbi_wake_set_closing(e->cid, 0);
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
    int pristine = err == 0 && !force && e->parkable && sbi_park_wanted() &&
                   sbi_park_reset() > 0;
    if (err != 0 || pristine) {
        // Deleted while current, holding e's GIL: e's own threads (still
        // there when err says so) may walk its thread states (the
        // gh-158364 shield) and must not meet it freed.
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
        (void)PyThreadState_Swap(caller);
        if (err != 0) {
            unclaim(e, mark);
            return err;
        }
        // Only now, with no thread state of ours left in it, may another
        // thread take it from the parked list.
        if (sbi_park(e)) {
            return 0;
        }
        // No room after all, or the process is exiting: end it.
        ts = PyThreadState_New(e->interp);
        if (ts == NULL) {
            unclaim(e, mark);
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
int
sbi_lifecycle_claim(sbi_entry *e, PyInterpreterState *cur)
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
reap(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    for (;;) {
        sbi_entry *victim = NULL;
        sbi_mutex_lock_py(&sbi_registry.mutex);
        if (!current_is_closing(cur)) {
            for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
                if (e->orphaned == SBI_ORPHAN_REAP && e->refs == 0 &&
                    sbi_lifecycle_claim(e, cur) == 0)
                {
                    e->orphaned = SBI_ORPHAN_NO;
                    victim = e;
                    break;
                }
            }
        }
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (victim == NULL) {
            return;
        }
        // Could not go (threads or views left): kept alive, retried at
        // process exit.
        (void)sbi_lifecycle_destroy(victim, 0, 0, SBI_FAIL_ORPHAN);
    }
}

/* Drop one owning reference to interpreter id (Interpreter dealloc).
 * Destroys the interpreter when it was the last and that is possible
 * now; otherwise marks it orphaned.  Never leaves an exception set. */
void
sbi_lifecycle_decref(int64_t id)
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
                sbi_lifecycle_claim(e, cur) == 0)
            {
                victim = e;
            }
            else {
                e->orphaned = SBI_ORPHAN_REAP;
            }
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (victim != NULL) {
        (void)sbi_lifecycle_destroy(victim, 0, 0, SBI_FAIL_ORPHAN);
    }
    PyErr_SetRaisedException(exc);
}

/* Destroy an unparked entry (never parks it again).  Caller attached to
 * another interpreter. */
static void
destroy_unparked(sbi_entry *e)
{
    e->parkable = 0;
    (void)sbi_lifecycle_destroy(e, 0, 0, SBI_FAIL_ORPHAN);
}

/* Count a create() in (sbi_registry.creating) for its whole length,
 * first waiting out an os.fork() under way in another thread (at most
 * SBI_FORK_WAIT_MS; a fork never waits for us: a create() under way
 * makes it refuse): the child must inherit no interpreter half made, nor
 * a lock or an import of the main interpreter's preparation held.  0, or
 * -1 with an exception (the process is exiting, this thread is forking
 * the process -- an os.register_at_fork() hook --, the fork took too
 * long, or a signal handler or interrupt() raised).  Thread state
 * attached. */
static int
creating_begin(sbi_state *st)
{
    const char *refused = NULL;
    int64_t deadline =
        sbi_monotonic_ns() + (int64_t)SBI_FORK_WAIT_MS * 1000000;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    while (refused == NULL) {
        if (sbi_registry.shutting_down) {
            refused = "cannot create interpreters at process exit";
        }
        else if (sbi_registry.forking == 0) {
            sbi_registry.creating++;
            sbi_registry_creating_here_add(1);
            break;
        }
        else if (sbi_registry_forking_here() > 0) {
            refused = "cannot create an interpreter while this thread "
                      "forks the process";
        }
        else if (sbi_monotonic_ns() > deadline) {
            refused = "os.fork() in another thread did not finish in time";
        }
        else {
            sbi_mutex_unlock(&sbi_registry.mutex);
            Py_BEGIN_ALLOW_THREADS
            usleep(SBI_THREADS_POLL_US);
            Py_END_ALLOW_THREADS
            if (PyErr_CheckSignals() < 0 || sbi_interrupt_check() < 0) {
                return -1;
            }
            sbi_mutex_lock_py(&sbi_registry.mutex);
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (refused != NULL) {
        PyErr_SetString(st->InterpreterError, refused);
        return -1;
    }
    return 0;
}

/* create() once counted in. */
static int64_t
create_counted(sbi_state *st, int isolated)
{
    reap();
    if (sbi_current_cid() == 0 && sbi_shield_main() < 0) {
        return -1;
    }
    while (isolated) {
        sbi_entry *stale;
        int64_t reused = sbi_park_take(&stale);
        if (reused >= 0) {
            return reused;
        }
        if (stale == NULL) {
            break;
        }
        destroy_unparked(stale);
    }
    sbi_entry *e = PyMem_RawCalloc(1, sizeof(*e));
    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyThreadState *save = PyThreadState_Swap(NULL);
    PyThreadState *ts = NULL;
    const char *failed = start_interpreter(&ts, isolated);
    if (failed != NULL) {
        (void)PyThreadState_Swap(save);
        PyMem_RawFree(e);
        PyErr_Format(st->InterpreterError, "interpreter creation failed%s%s",
                     *failed ? ": " : "", failed);
        return -1;
    }
    /* in the new interpreter */
    e->interp = PyThreadState_GetInterpreter(ts);
    e->cid = PyInterpreterState_GetID(e->interp);
    e->parkable = isolated && sbi_park_snapshot();  // legacy: never parked
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
    e->env_hash = sbi_park_environ_hash();
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
    int exiting = sbi_registry.shutting_down;
    if (exiting) {
        // The exit hook started meanwhile and will not see it: end it.
        e->refs = 0;
        e->closing = 1;
        e->running_tid = PyThread_get_thread_ident();
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (exiting) {
        (void)sbi_lifecycle_destroy(e, SBI_EXIT_THREADS_WAIT_MS, 1,
                                    SBI_FAIL_AT_EXIT);
        PyErr_SetString(st->InterpreterError,
                        "cannot create interpreters at process exit");
        return -1;
    }
    return id;
}

int64_t
sbi_lifecycle_create(sbi_state *st, int isolated)
{
    if (creating_begin(st) < 0) {
        return -1;
    }
    int64_t id = create_counted(st, isolated);
    // After publishing: a fork sees the new interpreter or this count.
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_registry.creating--;
    sbi_registry_creating_here_add(-1);
    sbi_mutex_unlock(&sbi_registry.mutex);
    return id;
}

int
sbi_lifecycle_incref(int64_t id)
{
    int err = SBI_ERR_NOT_FOUND;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e != NULL && !e->closing) {
        e->refs++;
        e->orphaned = SBI_ORPHAN_NO;
        err = 0;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return err;
}

void
sbi_lifecycle_leave(sbi_session *s)
{
    if (sbi_session_exit(s)) {
        reap();
    }
}

int
sbi_lifecycle_close(sbi_state *st, int64_t id)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    int err;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e == NULL || e->closing) {
        err = id == 0                          ? SBI_ERR_IS_MAIN
              : id == sbi_registry_pid_of(cur) ? SBI_ERR_NOT_OURS
                                               : SBI_ERR_NOT_FOUND;
    }
    else {
        err = sbi_lifecycle_claim(e, cur);
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (err == SBI_ERR_ALREADY_RUNNING) {
        err = SBI_ERR_RUNNING;  // 3.14's words for close()
    }
    else if (err == 0) {
        err = sbi_lifecycle_destroy(e, SBI_CLOSE_WAIT_MS, 0, SBI_FAIL_KEEP);
    }
    if (err != 0) {
        (void)sbi_state_raise(st, err, id, "destroy");
        return -1;
    }
    reap();
    return 0;
}

void
sbi_lifecycle_evict_parked(int all, int limit)
{
    sbi_entry *e;
    while ((e = sbi_park_evict(all, limit)) != NULL) {
        destroy_unparked(e);
    }
}

void
sbi_lifecycle_after_fork(void)
{
#if SBI_SERIAL_CREATE
    (void)sbi_mutex_init(&create_mutex);
    create_owner = 0;
#endif
}
