/* process.c -- the process around our interpreters.
 *
 *  - The exit hook (registered by the package's atexit): every
 *    interpreter of ours is ended before CPython finalizes, so 3.12 does
 *    not abort on "remaining subinterpreters" and 3.13 does not hang on
 *    their threads (gh-113433); code still running in daemon threads is
 *    interrupted and waited for, a few seconds in all.
 *  - The os.fork() guard: parking stops and the parked interpreters end
 *    while a fork is pending; the package refuses fork while any
 *    interpreter of ours lives.
 *  - In a forked child, every lower layer resets its locks and
 *    process-wide state.
 *
 * Calls lifecycle.c and everything below it that keeps process-wide
 * state (layers: docs/design.md).
 */
#include "process.h"
#include "lifecycle.h"
#include "registry.h"
#include "interrupt.h"
#include "sigint.h"
#include "hooks.h"
#include "xidata.h"
#include "shbuf.h"
#include "queue.h"
#include "shield.h"
#include "arena.h"
#include "shared.h"
#include "shobj.h"
#include "wake.h"

#include <pthread.h>
#include <unistd.h>

/* Number of live interpreters created by this module (the fork guard). */
PyObject *
sbi_process_count(PyObject *m, PyObject *unused)
{
    Py_ssize_t n = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        n += !e->closing;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return PyLong_FromSsize_t(n);
}

PyObject *
sbi_process_fork_end(PyObject *m, PyObject *unused)
{
    if (sbi_registry_forking_here() == 0) {
        Py_RETURN_NONE;  // no _fork_begin() of this thread is under way
    }
    sbi_registry_forking_here_add(-1);
    sbi_mutex_lock_py(&sbi_registry.mutex);
    // In the child, the fork handler set the count to 0 already.
    if ((long)getpid() == sbi_registry.fork_pid &&
        SBI_ALWAYS(sbi_registry.forking > 0))
    {
        sbi_registry.forking--;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    Py_RETURN_NONE;
}

/* _fork_begin(): for the os.fork() guard, which calls _fork_end() after
 * it in any case.  Holds new create() calls of other threads back until
 * _fork_end() (the forking thread's own are refused), ends the parked
 * interpreters, and returns how many interpreters of ours exist, being
 * created or closed included: the fork must be refused unless 0, for a
 * child must inherit none, whole or half made.  Never waits for another
 * thread. */
PyObject *
sbi_process_fork_begin(PyObject *m, PyObject *unused)
{
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_registry.forking++;
    sbi_registry.fork_pid = (long)getpid();
    sbi_mutex_unlock(&sbi_registry.mutex);
    sbi_registry_forking_here_add(1);
    sbi_lifecycle_evict_parked(1, -1);
    Py_ssize_t n = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        n++;
    }
    n += sbi_registry.creating;
    sbi_mutex_unlock(&sbi_registry.mutex);
    PyObject *count = PyLong_FromSsize_t(n);
    if (count == NULL) {
        (void)sbi_process_fork_end(m, NULL);
    }
    return count;
}

/* _parking(limit): set how many closed interpreters are kept for reuse
 * (a negative limit leaves it), destroying parked ones above it.
 * Returns (limit, number parked). */
PyObject *
sbi_process_parking(PyObject *m, PyObject *arg)
{
    long limit = PyLong_AsLong(arg);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (limit > 1000) {
        PyErr_SetString(PyExc_ValueError, "limit too large");
        return NULL;
    }
    sbi_lifecycle_evict_parked(0, limit < 0 ? -1 : (int)limit);
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
    PyObject *r = ns ? sbi_compat_run_string(source, ns) : NULL;
    if (r == NULL) {
        sbi_compat_write_unraisable("quieting daemon threads at exit");
    }
    Py_XDECREF(r);
    Py_XDECREF(ns);
}

/* Called from the main interpreter's atexit: destroy every interpreter
 * we created, so 3.12 does not abort ("remaining subinterpreters") and
 * 3.13 does not hang on their threads. */
/* Set by the threading exit hook of __init__.py when the program ends
 * with an uncaught KeyboardInterrupt (atomic). */
static int ended_by_ctrl_c = 0;

PyObject *
sbi_process_atexit(PyObject *m, PyObject *unused)
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
            if (sbi_lifecycle_claim(e, cur) == 0) {
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
            if (sbi_lifecycle_destroy(victim, SBI_EXIT_THREADS_WAIT_MS, 1,
                                      SBI_FAIL_AT_EXIT) != 0)
            {
                fprintf(stderr,
                        "subinterpreters: interpreter %lld could "
                        "not be destroyed at exit (threads still "
                        "running)\n",
                        (long long)id);
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
    if (cur == PyInterpreterState_Main() &&
        __atomic_load_n(&ended_by_ctrl_c, __ATOMIC_RELAXED))
    {
        sbi_compat_reassert_sigint_exit();
    }
    Py_RETURN_NONE;
}

PyObject *
sbi_process_note_ctrl_c_exit(PyObject *m, PyObject *unused)
{
    __atomic_store_n(&ended_by_ctrl_c, 1, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

/* In the child of fork(): the watcher thread did not survive, and locks
 * may have been held by threads that do not exist here. */
static void
reset_after_fork(void)
{
    sbi_registry_after_fork();
    sbi_hooks_after_fork();
    sbi_handles_after_fork();
    sbi_shbuf_after_fork();
    sbi_queue_after_fork();
    sbi_shared_after_fork();
    sbi_shobj_after_fork();
    sbi_wake_after_fork();
    sbi_arena_after_fork();
    sbi_shield_after_fork();
    sbi_sigint_after_fork();
    sbi_lifecycle_after_fork();
}

/* Around fork(): shared objects (sync primitives, SharedDicts) are used
 * by threads of the main interpreter even while the fork guard allows a
 * fork; their locks are held across it so that the child never sees one
 * half-updated (wake.c's first: the lock order). */
static void
fork_prepare(void)
{
    sbi_wake_fork_lock();
    sbi_shared_fork_lock();
}

static void
fork_parent(void)
{
    sbi_shared_fork_unlock();
    sbi_wake_fork_unlock();
}

static void
register_fork_handler(void)
{
    (void)pthread_atfork(fork_prepare, fork_parent, reset_after_fork);
}

void
sbi_process_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, register_fork_handler);
}
