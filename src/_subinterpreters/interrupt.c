/* interrupt.c -- interrupting the code an interpreter of ours runs:
 * Interpreter.interrupt(), exec(timeout=) through a watchdog thread, and
 * the check blocking waits make.
 *
 * KeyboardInterrupt is raised in the thread running an interpreter's
 * __main__ with PyThreadState_SetAsyncExc(), which needs the target's
 * GIL: the interrupter attaches a temporary thread state there (the
 * running thread yields the GIL at its next eval-breaker check, within the
 * switch interval).  Code blocked in a C call sees the exception only
 * when it returns to Python.
 *
 * Calls registry.c and wake.c (layers: docs/design.md).  Lock: sbi_registry.mutex (leaf); a
 * watchdog's own mutex, never held with the registry's.
 */
#include "interrupt.h"
#include "wake.h"

#include <string.h>
#include <unistd.h>

/* Note that an interrupt is delivered to e's session (target GIL held);
 * returns the thread to interrupt, or 0 if e is idle or the session is
 * not the expected one (serial 0: any). */
static unsigned long
interrupt_claim(sbi_entry *e, uint64_t serial)
{
    unsigned long tid = 0;
    sbi_mutex_lock(&sbi_registry.mutex);
    if (e->running_tstate != NULL &&
        (serial == 0 || serial == e->session_serial)) {
        tid = e->running_tid;
        e->interrupt_pending = 1;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    return tid;
}

int
sbi_interrupt_interp(int64_t id, uint64_t serial, int at_exit)
{
    PyThreadState *cur = PyThreadState_GetUnchecked();
    sbi_mutex_lock_any(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e == NULL || e->closing || (sbi_registry.shutting_down && !at_exit)) {
        sbi_mutex_unlock(&sbi_registry.mutex);
        return e == NULL || e->closing ? SBI_ERR_NOT_FOUND : 0;
    }
    // A session that is starting (flag taken, not yet switched in) is
    // waited for briefly, so interrupt() right after is_running() works.
    for (int tries = 0; e->running_tstate == NULL; tries++) {
        int starting = e->running_tid != 0 && !e->closing;
        sbi_mutex_unlock(&sbi_registry.mutex);
        if (!starting || tries >= SBI_INTERRUPT_START_TRIES) {
            return 0;
        }
        if (cur != NULL) {
            Py_BEGIN_ALLOW_THREADS
            usleep(SBI_INTERRUPT_START_POLL_US);
            Py_END_ALLOW_THREADS
        }
        else {
            usleep(SBI_INTERRUPT_START_POLL_US);
        }
        sbi_mutex_lock_any(&sbi_registry.mutex);
        e = sbi_registry_find(id);
        if (e == NULL || e->closing) {
            sbi_mutex_unlock(&sbi_registry.mutex);
            return SBI_ERR_NOT_FOUND;
        }
    }
    e->interrupters++;  // pins e: close() refuses while we work
    sbi_mutex_unlock(&sbi_registry.mutex);
    int delivered = 0;
    unsigned long tid = 0;
    if (cur != NULL && PyThreadState_GetInterpreter(cur) == e->interp) {
        tid = interrupt_claim(e, serial);
        if (tid != 0) {
            delivered =
                PyThreadState_SetAsyncExc(tid, PyExc_KeyboardInterrupt) > 0;
        }
    }
    else {
        PyThreadState *ts = PyThreadState_New(e->interp);
        if (ts != NULL) {
            PyThreadState *prev = PyThreadState_Swap(ts);
            /* attached to the target */
            tid = interrupt_claim(e, serial);
            if (tid != 0) {
                delivered = PyThreadState_SetAsyncExc(
                                tid, PyExc_KeyboardInterrupt) > 0;
            }
            // Deleted while current, holding the target's GIL: a thread of
            // the target walking its thread states (the gh-158364 shield)
            // cannot meet it freed.
            PyThreadState_Clear(ts);
            PyThreadState_DeleteCurrent();
            (void)PyThreadState_Swap(prev);
        }
    }
    if (delivered) {
        // A wait of ours (sync primitives) sees the interrupt at once.
        sbi_wake_kick_thread(tid);
    }
    sbi_mutex_lock_any(&sbi_registry.mutex);
    e->interrupters--;
    sbi_mutex_unlock(&sbi_registry.mutex);
    return delivered;
}

int
sbi_interrupt_check(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    unsigned long me = PyThread_get_thread_ident();
    int pending = 0;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->interp == cur) {
            if (e->running_tid == me && e->interrupt_pending) {
                e->interrupt_pending = 0;
                pending = 1;
            }
            break;
        }
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (!pending) {
        return 0;
    }
    (void)PyThreadState_SetAsyncExc(me, NULL);  // consumed here instead
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return -1;
}

/* -------------------------------------------------------------------
 * exec(timeout=...): a watchdog thread interrupts the session when the
 * deadline passes (retrying until the interrupt lands or the session
 * ends).  It has no thread state except while sbi_interrupt_interp()
 * works.
 */
static void *
watchdog_main(void *arg)
{
    sbi_watchdog *w = arg;
    sbi_mutex_lock(&w->mutex);
    while (!w->done) {
        (void)sbi_cond_wait_until(&w->cond, &w->mutex, w->deadline_ns);
        if (w->done || sbi_monotonic_ns() < w->deadline_ns) {
            continue;
        }
        sbi_mutex_unlock(&w->mutex);
        int r = sbi_interrupt_interp(w->id, w->serial, 0);
        sbi_mutex_lock(&w->mutex);
        if (r != 0) {
            w->fired = r > 0;
            break;
        }
        w->deadline_ns = sbi_monotonic_ns() + SBI_WATCHDOG_RETRY_NS;
    }
    sbi_mutex_unlock(&w->mutex);
    return NULL;
}

int
sbi_watchdog_start(sbi_watchdog *w, int64_t id, uint64_t serial,
                   double timeout)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->serial = serial;
    w->deadline_ns = sbi_monotonic_ns() + (int64_t)(timeout * 1e9);
    if (sbi_mutex_init(&w->mutex) < 0) {
        return -1;
    }
    if (sbi_cond_init(&w->cond) < 0) {
        sbi_mutex_fini(&w->mutex);
        return -1;
    }
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        sbi_cond_fini(&w->cond);
        sbi_mutex_fini(&w->mutex);
        return -1;
    }
    return 0;
}

int
sbi_watchdog_stop(sbi_watchdog *w)
{
    sbi_mutex_lock_py(&w->mutex);
    w->done = 1;
    sbi_cond_signal(&w->cond);
    sbi_mutex_unlock(&w->mutex);
    Py_BEGIN_ALLOW_THREADS(void)
    pthread_join(w->thread, NULL);
    Py_END_ALLOW_THREADS
    int fired = w->fired;
    sbi_cond_fini(&w->cond);
    sbi_mutex_fini(&w->mutex);
    return fired;
}
