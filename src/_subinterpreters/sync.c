/* sync.c -- cross-interpreter synchronisation primitives, raw layer (see
 * sync.h).
 *
 * Every primitive is one struct in PyMem_Raw memory with its own mutex
 * and condition variable; its state is only read and written under that
 * mutex.  Blocked threads wait on the condition with the GIL released and
 * are woken by the operation they wait for (no polling), or kicked by an
 * interrupt, Ctrl-C or the closing of their interpreter (wake.c).
 *
 * Calls shared.c, wake.c, xidata.c, interrupt.c and sigint.c (layers:
 * docs/design.md).  Locks: a primitive's mutex is held only for a few
 * stores, never while calling out, waiting for a GIL or taking another
 * lock, except that wake.c may take it while holding wake.mutex (to kick a
 * waiter).  A Condition never holds its own mutex and its lock's at once.
 */
#include "sync.h"
#include "interrupt.h"
#include "sigint.h"
#include "wake.h"

#include <string.h>

/* Barrier states (threading.Barrier's, plus RELEASING while the last
 * thread in runs the action with no lock held). */
enum {
    BARRIER_BROKEN = -2,
    BARRIER_RESETTING = -1,
    BARRIER_FILLING = 0,
    BARRIER_DRAINING = 1,
    BARRIER_RELEASING = 2,
};

/* The Condition whose wait() ended, in this thread, without taking its
 * lock back (its interpreter is closing). */
static _Thread_local const sbi_sync *cond_lost_lock;

/* A thread waiting in Condition.wait() (on the heap). */
struct sbi_cwaiter {
    sbi_cwaiter *next;  // the condition's mutex
    int notified;       // the condition's mutex
};

/* =====================================================================
 * Creation and destruction
 */
static void sync_destroy(sbi_shared *o);
static sbi_mutex *sync_mutex_of(sbi_shared *o);
static void sync_after_fork(sbi_shared *o);

const sbi_shared_type sbi_sync_shared = {"sync primitive", sync_destroy,
                                         sync_mutex_of, sync_after_fork};

sbi_sync *
sbi_sync_new(sbi_sync_kind kind, const sbi_sync_args *args)
{
    sbi_sync *s = PyMem_RawCalloc(1, sizeof(*s));
    if (s == NULL) {
        sbi_xidata_free(args->action);
        return NULL;
    }
    s->kind = kind;
    if (sbi_mutex_init(&s->mutex) < 0) {
        PyMem_RawFree(s);
        sbi_xidata_free(args->action);
        return NULL;
    }
    if (sbi_cond_init(&s->cond) < 0) {
        sbi_mutex_fini(&s->mutex);
        PyMem_RawFree(s);
        sbi_xidata_free(args->action);
        return NULL;
    }
    switch (kind) {
    case SBI_SYNC_LOCK:
    case SBI_SYNC_RLOCK:
    case SBI_SYNC_EVENT:
        break;
    case SBI_SYNC_SEMAPHORE:
    case SBI_SYNC_BOUNDED_SEMAPHORE:
        s->u.sem.value = args->value;
        s->u.sem.bound = kind == SBI_SYNC_BOUNDED_SEMAPHORE ? args->value : -1;
        break;
    case SBI_SYNC_CONDITION:
        s->u.cond.lock = args->lock;
        sbi_shared_incref(&args->lock->base);
        break;
    case SBI_SYNC_BARRIER:
        s->u.barrier.parties = args->parties;
        s->u.barrier.timeout = args->timeout;
        s->u.barrier.action = args->action;
        break;
    default:
        Py_UNREACHABLE();
    }
    if (sbi_shared_add(&s->base, &sbi_sync_shared) < 0) {
        s->base.type = &sbi_sync_shared;
        sync_destroy(&s->base);
        return NULL;
    }
    return s;
}

/* The last reference is gone: nobody waits (a waiter holds a reference
 * through its Python object). */
static void
sync_destroy(sbi_shared *o)
{
    sbi_sync *s = (sbi_sync *)o;
    assert(s->waiters == 0);
    if (s->kind == SBI_SYNC_CONDITION) {
        sbi_shared_decref(&s->u.cond.lock->base);
    }
    else if (s->kind == SBI_SYNC_BARRIER) {
        sbi_xidata_free(s->u.barrier.action);
    }
    sbi_cond_fini(&s->cond);
    sbi_mutex_fini(&s->mutex);
    PyMem_RawFree(s);
}

static sbi_mutex *
sync_mutex_of(sbi_shared *o)
{
    return &((sbi_sync *)o)->mutex;
}

/* In a forked child only the forking thread exists: whoever waited is
 * gone (a Condition's queued waiters are leaked with their threads). */
static void
sync_after_fork(sbi_shared *o)
{
    sbi_sync *s = (sbi_sync *)o;
    (void)sbi_mutex_init(&s->mutex);
    (void)sbi_cond_init(&s->cond);
    s->waiters = 0;
    if (s->kind == SBI_SYNC_CONDITION) {
        s->u.cond.head = s->u.cond.tail = NULL;
    }
}

/* =====================================================================
 * The one blocking wait
 */

/* Under s->mutex: 1 if what the waiter waits for happened (and it took
 * it), 0 to keep waiting, or a negative SBI_ERR_*. */
typedef int (*sync_ready_fn)(sbi_sync *s, void *arg);

#define SYNC_KICKED 2
#define SYNC_TIMED_OUT 3

/* Wait on s until ready(s, arg) says so, the deadline passes, or a
 * signal handler or an interrupt raises.  Returns 1 (ready), 0 (timed
 * out) or a negative SBI_ERR_* (from ready(), SBI_ERR_PYEXC,
 * SBI_ERR_INTERP_CLOSING).  Thread state attached, no lock held; the GIL
 * is released while waiting.
 *
 * The wait is registered (wake.c) before pending signals and interrupts
 * are looked at, so one that arrives after the look kicks it awake. */
static int
sync_wait(sbi_sync *s, sync_ready_fn ready, void *arg, int64_t deadline)
{
    // On the heap: a thread that CPython ends inside
    // Py_END_ALLOW_THREADS (daemon threads at finalisation, 3.12/3.13)
    // leaves it registered, and kicks must not write to a dead stack.
    sbi_wake *w = PyMem_RawMalloc(sizeof(*w));
    if (w == NULL) {
        return SBI_ERR_NOMEM;
    }
    int r;
    for (;;) {
        r = sbi_wake_begin(w, &s->mutex, &s->cond);
        if (r < 0) {
            break;
        }
        int armed = sbi_sigint_wait_begin();
        if (PyErr_CheckSignals() < 0 || Py_MakePendingCalls() < 0 ||
            sbi_interrupt_check() < 0)
        {
            r = SBI_ERR_PYEXC;
        }
        else {
            Py_BEGIN_ALLOW_THREADS
            sbi_mutex_lock(&s->mutex);
            s->waiters++;
            for (;;) {
                r = ready(s, arg);
                if (r != 0) {
                    break;
                }
                if (w->kicked) {
                    r = SYNC_KICKED;
                    break;
                }
                if (sbi_cond_wait_until(&s->cond, &s->mutex, deadline)) {
                    // A wake-up may have raced with the timeout.
                    r = ready(s, arg);
                    r = r == 0 ? SYNC_TIMED_OUT : r;
                    break;
                }
            }
            s->waiters--;
            sbi_mutex_unlock(&s->mutex);
            Py_END_ALLOW_THREADS
        }
        if (armed) {
            sbi_sigint_wait_end();
        }
        sbi_wake_end(w);
        if (r != SYNC_KICKED) {
            r = r == SYNC_TIMED_OUT ? 0 : r;
            break;
        }
        // Kicked: the next round finds out why (closing, a signal, an
        // interrupt), or waits again if it was for nothing.
    }
    PyMem_RawFree(w);
    return r;
}

/* Wake the waiters of s after a change (needs s->mutex). */
static inline void
sync_wake(sbi_sync *s)
{
    if (s->waiters > 0) {
        sbi_cond_broadcast(&s->cond);
    }
}

/* =====================================================================
 * Lock, RLock, Semaphore, BoundedSemaphore
 */

/* Take s if it is free (needs s->mutex): 1 if taken, else 0. */
static int
acquire_ready(sbi_sync *s, void *arg)
{
    unsigned long me = *(unsigned long *)arg;
    switch (s->kind) {
    case SBI_SYNC_LOCK:
    case SBI_SYNC_RLOCK:
        if (s->u.lock.count == 0) {
            s->u.lock.owner = me;
            s->u.lock.count = 1;
            return 1;
        }
        if (s->kind == SBI_SYNC_RLOCK && s->u.lock.owner == me) {
            s->u.lock.count++;
            return 1;
        }
        return 0;
    case SBI_SYNC_SEMAPHORE:
    case SBI_SYNC_BOUNDED_SEMAPHORE:
        if (s->u.sem.value > 0) {
            s->u.sem.value--;
            return 1;
        }
        return 0;
    default:
        Py_UNREACHABLE();
    }
}

int
sbi_sync_acquire(sbi_sync *s, int blocking, int64_t deadline)
{
    unsigned long me = PyThread_get_thread_ident();
    sbi_mutex_lock_py(&s->mutex);
    int r = acquire_ready(s, &me);
    sbi_mutex_unlock(&s->mutex);
    if (r != 0 || !blocking ||
        (deadline >= 0 && deadline <= sbi_monotonic_ns())) {
        return r;
    }
    return sync_wait(s, acquire_ready, &me, deadline);
}

int
sbi_sync_release(sbi_sync *s, Py_ssize_t n)
{
    int err = 0;
    sbi_mutex_lock_py(&s->mutex);
    switch (s->kind) {
    case SBI_SYNC_LOCK:
        if (s->u.lock.count == 0) {
            err = SBI_ERR_SYNC_UNLOCKED;
            break;
        }
        s->u.lock.count = 0;
        s->u.lock.owner = 0;
        break;
    case SBI_SYNC_RLOCK:
        if (s->u.lock.count == 0 ||
            s->u.lock.owner != PyThread_get_thread_ident()) {
            err = SBI_ERR_SYNC_NOT_OWNED;
            break;
        }
        if (--s->u.lock.count == 0) {
            s->u.lock.owner = 0;
        }
        break;
    case SBI_SYNC_SEMAPHORE:
    case SBI_SYNC_BOUNDED_SEMAPHORE:
        if (s->u.sem.bound >= 0 ? n > s->u.sem.bound - s->u.sem.value
                                : n > PY_SSIZE_T_MAX - s->u.sem.value)
        {
            err = s->u.sem.bound >= 0 ? SBI_ERR_SYNC_OVER_RELEASE
                                      : SBI_ERR_SYNC_OVERFLOW;
            break;
        }
        s->u.sem.value += n;
        break;
    default:
        Py_UNREACHABLE();
    }
    if (err == 0) {
        sync_wake(s);
    }
    sbi_mutex_unlock(&s->mutex);
    return err;
}

int
sbi_sync_locked(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    int r = s->u.lock.count > 0;
    sbi_mutex_unlock(&s->mutex);
    return r;
}

int
sbi_sync_is_owned(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    int r = s->u.lock.count > 0 &&
            (s->kind == SBI_SYNC_LOCK ||
             s->u.lock.owner == PyThread_get_thread_ident());
    sbi_mutex_unlock(&s->mutex);
    return r;
}

Py_ssize_t
sbi_sync_value(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    Py_ssize_t v = s->u.sem.value;
    sbi_mutex_unlock(&s->mutex);
    return v;
}

/* Condition.wait() lets go of its lock whatever its depth, if the
 * calling thread may (owns the RLock; the Lock is held), in one step
 * under the lock's mutex.  Returns the depth, or 0 if not owned.  Thread
 * state attached. */
static uint64_t
lock_release_all(sbi_sync *lock)
{
    sbi_mutex_lock_py(&lock->mutex);
    uint64_t depth = lock->u.lock.count;
    if (lock->kind == SBI_SYNC_RLOCK &&
        lock->u.lock.owner != PyThread_get_thread_ident())
    {
        depth = 0;
    }
    if (depth > 0) {
        lock->u.lock.count = 0;
        lock->u.lock.owner = 0;
        sync_wake(lock);
    }
    sbi_mutex_unlock(&lock->mutex);
    return depth;
}

/* Take lock back at depth, as threading's _acquire_restore() does: not
 * interrupted by signals or interrupt().  Only the closing of the
 * caller's interpreter ends the wait (SBI_ERR_INTERP_CLOSING, the lock
 * not taken): close() must be able to join the thread.  0, or that
 * error, or SBI_ERR_NOMEM.  Thread state attached. */
static int
lock_ready(sbi_sync *lock, void *arg)
{
    if (lock->u.lock.count != 0) {
        return 0;
    }
    lock->u.lock.owner = PyThread_get_thread_ident();
    lock->u.lock.count = *(uint64_t *)arg;
    return 1;
}

static int
lock_restore(sbi_sync *lock, uint64_t depth)
{
    sbi_mutex_lock_py(&lock->mutex);
    int r = lock_ready(lock, &depth);
    sbi_mutex_unlock(&lock->mutex);
    if (r) {
        return 0;
    }
    sbi_wake *w = PyMem_RawMalloc(sizeof(*w));  // see sync_wait()
    if (w == NULL) {
        return SBI_ERR_NOMEM;
    }
    for (r = 0; r == 0;) {
        if (sbi_wake_begin(w, &lock->mutex, &lock->cond) < 0) {
            r = SBI_ERR_INTERP_CLOSING;
            break;
        }
        // Never wait for the GIL with the mutex held: let go of it first.
        Py_BEGIN_ALLOW_THREADS
        sbi_mutex_lock(&lock->mutex);
        lock->waiters++;
        while ((r = lock_ready(lock, &depth)) == 0 && !w->kicked) {
            (void)sbi_cond_wait_until(&lock->cond, &lock->mutex, -1);
        }
        lock->waiters--;
        sbi_mutex_unlock(&lock->mutex);
        Py_END_ALLOW_THREADS
        sbi_wake_end(w);
        // Kicked: by a close (refused at the next begin), else again.
    }
    PyMem_RawFree(w);
    return r < 0 ? r : 0;
}

/* =====================================================================
 * Event
 */
void
sbi_sync_event_set(sbi_sync *s, int flag)
{
    sbi_mutex_lock_py(&s->mutex);
    if (flag && !s->u.event.flag) {
        s->u.event.sets++;
        sync_wake(s);
    }
    s->u.event.flag = flag;
    sbi_mutex_unlock(&s->mutex);
}

int
sbi_sync_event_is_set(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    int r = s->u.event.flag;
    sbi_mutex_unlock(&s->mutex);
    return r;
}

/* Set, or set since the wait began (a set() and clear() in between still
 * wake it, as threading's notified waiters do). */
static int
event_ready(sbi_sync *s, void *arg)
{
    return s->u.event.flag || s->u.event.sets != *(uint64_t *)arg;
}

int
sbi_sync_event_wait(sbi_sync *s, int64_t deadline)
{
    sbi_mutex_lock_py(&s->mutex);
    int flag = s->u.event.flag;
    uint64_t sets = s->u.event.sets;
    sbi_mutex_unlock(&s->mutex);
    if (flag || (deadline >= 0 && deadline <= sbi_monotonic_ns())) {
        return flag;
    }
    return sync_wait(s, event_ready, &sets, deadline);
}

/* =====================================================================
 * Condition
 */
static int
cwaiter_ready(sbi_sync *s, void *arg)
{
    (void)s;
    return ((sbi_cwaiter *)arg)->notified;
}

/* Unlink w if it is still queued (needs s->mutex). */
static void
cwaiter_unlink(sbi_sync *s, sbi_cwaiter *w)
{
    sbi_cwaiter *prev = NULL;
    for (sbi_cwaiter *c = s->u.cond.head; c != NULL; prev = c, c = c->next) {
        if (c == w) {
            if (prev == NULL) {
                s->u.cond.head = c->next;
            }
            else {
                prev->next = c->next;
            }
            if (s->u.cond.tail == c) {
                s->u.cond.tail = prev;
            }
            return;
        }
    }
}

/* Notify up to n queued waiters, all if n < 0 (needs s->mutex). */
static void
cond_notify_locked(sbi_sync *s, Py_ssize_t n)
{
    while (n != 0 && s->u.cond.head != NULL) {
        sbi_cwaiter *w = s->u.cond.head;
        s->u.cond.head = w->next;
        if (s->u.cond.head == NULL) {
            s->u.cond.tail = NULL;
        }
        w->notified = 1;
        n = n > 0 ? n - 1 : n;
    }
    sync_wake(s);
}

int
sbi_sync_cond_wait(sbi_sync *s, int64_t deadline)
{
    sbi_sync *lock = s->u.cond.lock;
    // Queued before the lock is let go: a notify() made by whoever takes
    // the lock next reaches this waiter.  On the heap, as sync_wait()'s
    // record is.
    sbi_cwaiter *w = PyMem_RawCalloc(1, sizeof(*w));
    if (w == NULL) {
        return SBI_ERR_NOMEM;
    }
    sbi_mutex_lock_py(&s->mutex);
    if (s->u.cond.tail != NULL) {
        s->u.cond.tail->next = w;
    }
    else {
        s->u.cond.head = w;
    }
    s->u.cond.tail = w;
    sbi_mutex_unlock(&s->mutex);

    uint64_t depth = lock_release_all(lock);
    int r = 0;
    if (depth == 0) {
        r = SBI_ERR_SYNC_WAIT_NOT_OWNED;
    }
    else if (deadline < 0 || deadline > sbi_monotonic_ns()) {
        r = sync_wait(s, cwaiter_ready, w, deadline);
    }
    if (r != 1) {
        sbi_mutex_lock_py(&s->mutex);
        if (w->notified) {
            if (r == 0) {
                r = 1;  // notified as it timed out: not a timeout
            }
            else {
                cond_notify_locked(s, 1);  // pass the notification on
            }
        }
        else {
            cwaiter_unlink(s, w);
        }
        sbi_mutex_unlock(&s->mutex);
    }
    PyMem_RawFree(w);
    if (depth > 0) {
        int err = lock_restore(lock, depth);
        if (err < 0) {
            // The interpreter is closing and the lock is not held: the
            // release that ends the caller's "with cond:" must not let go
            // of someone else's hold (sbi_sync_cond_release()).
            cond_lost_lock = s;
            r = r >= 0 || r == SBI_ERR_PYEXC ? err : r;
            if (PyErr_Occurred()) {
                PyErr_Clear();  // superseded by the closing
            }
        }
    }
    return r;
}

void
sbi_sync_cond_acquired(sbi_sync *s)
{
    if (cond_lost_lock == s) {
        cond_lost_lock = NULL;
    }
}

int
sbi_sync_cond_release(sbi_sync *s)
{
    if (cond_lost_lock == s) {
        cond_lost_lock = NULL;
        return 0;
    }
    return sbi_sync_release(s->u.cond.lock, 1);
}

int
sbi_sync_cond_notify(sbi_sync *s, Py_ssize_t n)
{
    if (!sbi_sync_is_owned(s->u.cond.lock)) {
        return SBI_ERR_SYNC_NOTIFY_NOT_OWNED;
    }
    sbi_mutex_lock_py(&s->mutex);
    cond_notify_locked(s, n);
    sbi_mutex_unlock(&s->mutex);
    return 0;
}

/* =====================================================================
 * Barrier: threading.Barrier's algorithm, with the action run outside
 * the mutex (state RELEASING keeps newcomers out meanwhile).
 */

/* Entering wait(): wait while the barrier drains, resets or releases,
 * then count oneself in; the last one in starts releasing. */
typedef struct {
    Py_ssize_t index;
    int last;
} barrier_entry;

static int
barrier_enter_ready(sbi_sync *s, void *arg)
{
    barrier_entry *e = arg;
    switch (s->u.barrier.state) {
    case BARRIER_BROKEN:
        return SBI_ERR_BARRIER_BROKEN;
    case BARRIER_FILLING:
        e->index = s->u.barrier.count++;
        e->last = e->index + 1 == s->u.barrier.parties;
        if (e->last) {
            s->u.barrier.state = BARRIER_RELEASING;
        }
        return 1;
    default:
        return 0;
    }
}

/* Inside wait(): wait until released (or broken, or reset). */
static int
barrier_released_ready(sbi_sync *s, void *arg)
{
    (void)arg;
    int st = s->u.barrier.state;
    return st == BARRIER_DRAINING || st < 0;
}

/* needs s->mutex */
static void
barrier_break_locked(sbi_sync *s)
{
    s->u.barrier.state = BARRIER_BROKEN;
    sync_wake(s);
}

int
sbi_sync_barrier_wait(sbi_sync *s, int64_t timeout_ns,
                      int (*run_action)(const sbi_xidata *action),
                      Py_ssize_t *index)
{
    // Entering is not bounded by the timeout (as in threading).
    barrier_entry entry = {0, 0};
    sbi_mutex_lock_py(&s->mutex);
    int r = barrier_enter_ready(s, &entry);
    sbi_mutex_unlock(&s->mutex);
    if (r == 0) {
        r = sync_wait(s, barrier_enter_ready, &entry, -1);
    }
    if (r < 0) {
        return r;
    }
    int last = entry.last;
    // The timeout counts from here, as threading's _wait() does.
    int64_t deadline = timeout_ns < 0 ? -1 : sbi_monotonic_ns() + timeout_ns;
    if (last) {
        r = 1;
        if (s->u.barrier.action != NULL && run_action(s->u.barrier.action) < 0)
        {
            r = SBI_ERR_PYEXC;
        }
        sbi_mutex_lock_py(&s->mutex);
        if (r != 1) {
            barrier_break_locked(s);
        }
        else if (s->u.barrier.state == BARRIER_RELEASING) {
            s->u.barrier.state = BARRIER_DRAINING;
            sync_wake(s);
        }
        else {
            // abort() or reset() came while the action ran (threading's
            // would have waited for the action): the waiters see that
            // state, and this thread returns its index, as there.
            sync_wake(s);
        }
        sbi_mutex_unlock(&s->mutex);
    }
    else {
        r = sync_wait(s, barrier_released_ready, NULL, deadline);
        sbi_mutex_lock_py(&s->mutex);
        if (r == 0 && barrier_released_ready(s, NULL)) {
            r = 1;  // released (or reset) after the timeout's last look
        }
        if (r == 0 && s->u.barrier.state == BARRIER_RELEASING) {
            // Timed out while the action runs: threading's waiter could
            // not even take the lock back by then; wait for the outcome.
            sbi_mutex_unlock(&s->mutex);
            r = sync_wait(s, barrier_released_ready, NULL, -1);
            sbi_mutex_lock_py(&s->mutex);
        }
        if (r == 0) {
            barrier_break_locked(s);  // timed out: break it for everyone
            r = SBI_ERR_BARRIER_BROKEN;
        }
        else if (r == 1 && s->u.barrier.state < 0) {
            r = SBI_ERR_BARRIER_BROKEN;
        }
        sbi_mutex_unlock(&s->mutex);
    }
    // Leaving: the last one out ends draining or resetting.
    sbi_mutex_lock_py(&s->mutex);
    if (--s->u.barrier.count == 0 &&
        (s->u.barrier.state == BARRIER_RESETTING ||
         s->u.barrier.state == BARRIER_DRAINING))
    {
        s->u.barrier.state = BARRIER_FILLING;
        sync_wake(s);
    }
    sbi_mutex_unlock(&s->mutex);
    *index = entry.index;
    return r;
}

void
sbi_sync_barrier_reset(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    if (s->u.barrier.count > 0) {
        if (s->u.barrier.state == BARRIER_FILLING ||
            s->u.barrier.state == BARRIER_BROKEN)
        {
            s->u.barrier.state = BARRIER_RESETTING;
        }
    }
    else {
        s->u.barrier.state = BARRIER_FILLING;
    }
    sync_wake(s);
    sbi_mutex_unlock(&s->mutex);
}

void
sbi_sync_barrier_abort(sbi_sync *s)
{
    sbi_mutex_lock_py(&s->mutex);
    barrier_break_locked(s);
    sbi_mutex_unlock(&s->mutex);
}

void
sbi_sync_barrier_status(sbi_sync *s, Py_ssize_t *n_waiting, int *broken)
{
    sbi_mutex_lock_py(&s->mutex);
    *n_waiting =
        s->u.barrier.state == BARRIER_FILLING ? s->u.barrier.count : 0;
    *broken = s->u.barrier.state == BARRIER_BROKEN;
    sbi_mutex_unlock(&s->mutex);
}
