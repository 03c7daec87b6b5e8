/* queue.c -- FIFO queues between interpreters (PEP 734 Queue): the raw
 * layer.
 *
 * Owns:
 *  - the process-global registry of queues (`queues`): ids, binding
 *    counts, the "process is shutting down" flag;
 *  - each queue: a FIFO of items (cross-interpreter data plus the id of
 *    the interpreter that put it and its unbound op), a mutex and the
 *    condition variables blocking put()/get() wait on (queue_wait()).
 *
 * Works on C structs only, holds no PyObject* and sets no exception
 * (except SBI_ERR_PYEXC: a signal handler raised while waiting); returns
 * 0 or a negative SBI_ERR_*.  The Python layer, queue_type.c, maps those
 * codes to exceptions with sbi_state_raise().
 *
 * Lifetimes.  A queue lives while its binding count (`refs`) is > 0: one
 * per Queue object in any interpreter, one per Queue inside
 * cross-interpreter data in transit (the handle kind's bind/release), and
 * short
 * temporary ones taken by this file.  A Queue object keeps a pointer to
 * the struct, which its binding keeps allocated.  When refs drops to 0 the
 * queue is unlinked, killed (marked dead, waiters woken and drained) and
 * freed.  _queue_destroy() kills a queue early (3.14's low-level
 * destroy()): it is unlinked for lookups at once, but the struct stays
 * until the last binding is released.
 *
 * Lock order: queues.mutex (registry) -> queue->mutex.  Both are leaf
 * locks: no Python API is called and nothing is waited for while one is
 * held, except that a queue's conditions are waited on with its own mutex
 * (and no GIL).  Cross-interpreter data is never freed under either lock
 * (freeing may release other queues and take queues.mutex).
 */
#include "queue.h"
#include "xidata.h"
#include "interrupt.h"
#include "tuning.h"
#include "lock.h"
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

/* =====================================================================
 * Items
 */

/* Free item and its data.  Any thread, with or without a thread state;
 * never with a queue lock or the registry lock held. */
void
sbi_qitem_free(sbi_qitem *item)
{
    sbi_xidata_free(item->data);
    PyMem_RawFree(item);
}

/* Free a NULL-terminated chain of items (same rules as qitem_free). */
static void
qitem_free_chain(sbi_qitem *item)
{
    while (item != NULL) {
        sbi_qitem *next = item->next;
        sbi_qitem_free(item);
        item = next;
    }
}

/* =====================================================================
 * The queue record
 */
enum {
    QUEUE_HAVE_MUTEX = 1,
    QUEUE_HAVE_NOT_EMPTY = 2,
    QUEUE_HAVE_NOT_FULL = 4,
    QUEUE_HAVE_DRAINED = 8,
    QUEUE_READY = 15,
};

/* Phase 1 of construction: every field consistent, nothing allocated,
 * so that queue_fini() is safe whatever phase 2 reached. */
static void
queue_preinit(sbi_queue *q, Py_ssize_t maxsize, int unboundop)
{
    memset(q, 0, sizeof(*q));
    q->maxsize = maxsize;
    q->unboundop = unboundop;
}

/* Phase 2: create the lock and conditions.  0 or SBI_ERR_NOMEM; on error
 * queue_fini() undoes what was done. */
static int
queue_init(sbi_queue *q)
{
    if (sbi_mutex_init(&q->mutex) < 0) {
        return SBI_ERR_NOMEM;
    }
    q->ready |= QUEUE_HAVE_MUTEX;
    if (sbi_cond_init(&q->not_empty) < 0) {
        return SBI_ERR_NOMEM;
    }
    q->ready |= QUEUE_HAVE_NOT_EMPTY;
    if (sbi_cond_init(&q->not_full) < 0) {
        return SBI_ERR_NOMEM;
    }
    q->ready |= QUEUE_HAVE_NOT_FULL;
    if (sbi_cond_init(&q->drained) < 0) {
        return SBI_ERR_NOMEM;
    }
    q->ready |= QUEUE_HAVE_DRAINED;
    q->alive = 1;
    return 0;
}

/* Destroy what queue_init() made (a half-built queue too).  The queue
 * must be dead or never have been linked: no items, no waiters. */
static void
queue_fini(sbi_queue *q)
{
    assert(q->head == NULL && q->getters == 0 && q->putters == 0);
    assert(q->watchers == NULL);
    if (q->ready & QUEUE_HAVE_DRAINED) {
        sbi_cond_fini(&q->drained);
    }
    if (q->ready & QUEUE_HAVE_NOT_FULL) {
        sbi_cond_fini(&q->not_full);
    }
    if (q->ready & QUEUE_HAVE_NOT_EMPTY) {
        sbi_cond_fini(&q->not_empty);
    }
    if (q->ready & QUEUE_HAVE_MUTEX) {
        sbi_mutex_fini(&q->mutex);
    }
    q->ready = 0;
}

/* Lock m from any thread: with a thread state attached the GIL is
 * released while blocking (lock.h rule), without one it just blocks. */
static void
queue_lock_any(sbi_mutex *m)
{
    if (PyThreadState_GetUnchecked() != NULL) {
        sbi_mutex_lock_py(m);
    }
    else {
        sbi_mutex_lock(m);
    }
}

/* Signal the watchers of q that wait for room (put = 1) or for an item
 * (put = 0); put = -1: every watcher.  needs q->mutex */
static void
queue_notify_locked(sbi_queue *q, int put)
{
    for (sbi_qwatch *w = q->watchers; w != NULL; w = w->next) {
        if (put < 0 || w->put == put) {
            sbi_notify_signal(w->notify);
        }
    }
}

/* Mark q dead, wake every waiter, wait (not spin) until they have left,
 * and return the items it held (the caller frees them, outside any
 * lock).  Any thread; if a thread state is attached, its GIL is
 * released while waiting.  No lock held on entry. */
static sbi_qitem *
queue_kill_and_wait(sbi_queue *q)
{
    PyThreadState *ts = PyThreadState_GetUnchecked();
    if (ts != NULL) {
        (void)PyEval_SaveThread();
    }
    sbi_mutex_lock(&q->mutex);
    sbi_qitem *items = q->head;
    q->alive = 0;
    q->head = q->tail = NULL;
    q->count = 0;
    sbi_cond_broadcast(&q->not_empty);
    sbi_cond_broadcast(&q->not_full);
    queue_notify_locked(q, -1);
    while (q->getters + q->putters > 0) {
        (void)sbi_cond_wait_until(&q->drained, &q->mutex, -1);
    }
    sbi_mutex_unlock(&q->mutex);
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
    }
    return items;
}

/* Kill (if still alive) and free an unlinked queue with no bindings left.
 * Any thread; no lock held. */
static void
queue_free(sbi_queue *q)
{
    sbi_qitem *items = queue_kill_and_wait(q);
    qitem_free_chain(items);
    queue_fini(q);
    PyMem_RawFree(q);
}

/* =====================================================================
 * The registry
 */
static struct {
    sbi_mutex mutex;
    sbi_queue *head;           // protected by mutex
    Py_ssize_t count;          // queues on the list; protected by mutex
    int64_t next_id;           // protected by mutex; never reused
    atomic_int shutting_down;  // set once by sbi_queue_wake_all()
} queues = {.mutex = SBI_MUTEX_INIT, .next_id = 1};

static sbi_queue *
queues_find(int64_t qid)  // needs queues.mutex
{
    for (sbi_queue *q = queues.head; q != NULL; q = q->next) {
        if (q->id == qid) {
            return q;
        }
    }
    return NULL;
}

static void
queues_unlink(sbi_queue *q)  // needs queues.mutex
{
    for (sbi_queue **pp = &queues.head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            queues.count--;
            return;
        }
    }
    assert(0);
}

/* Create a queue with one binding, owned by the caller.  *pq is set on
 * success.  Returns 0, SBI_ERR_NOMEM or SBI_ERR_QUEUE_IDS.  Thread state
 * attached (the registry lock is taken without the GIL). */
int
sbi_queue_create(Py_ssize_t maxsize, int unboundop, sbi_queue **pq)
{
    sbi_queue *q = PyMem_RawMalloc(sizeof(*q));
    if (q == NULL) {
        return SBI_ERR_NOMEM;
    }
    queue_preinit(q, maxsize, unboundop);
    int err = queue_init(q);
    if (err < 0) {
        goto error;
    }
    q->refs = 1;
    sbi_mutex_lock_py(&queues.mutex);
    if (queues.next_id == INT64_MAX) {
        err = SBI_ERR_QUEUE_IDS;
    }
    else {
        q->id = queues.next_id++;
        q->next = queues.head;
        queues.head = q;
        queues.count++;
    }
    sbi_mutex_unlock(&queues.mutex);
    if (err < 0) {
        goto error;
    }
    *pq = q;
    return 0;

error:
    queue_fini(q);
    PyMem_RawFree(q);
    return err;
}

/* Take a binding on live queue qid; *pq (may be NULL) receives the queue.
 * 0 or SBI_ERR_QUEUE_NOT_FOUND.  Any thread. */
int
sbi_queue_bind(int64_t qid, sbi_queue **pq)
{
    int err = 0;
    queue_lock_any(&queues.mutex);
    sbi_queue *q = queues_find(qid);
    if (q == NULL || q->destroyed) {
        err = SBI_ERR_QUEUE_NOT_FOUND;
    }
    else {
        q->refs++;
    }
    sbi_mutex_unlock(&queues.mutex);
    if (pq != NULL) {
        *pq = err == 0 ? q : NULL;
    }
    return err;
}

/* Drop one binding on q; the last one frees it.  Any thread, with or
 * without a thread state; no lock held.  May free items, and through them
 * release other queues. */
void
sbi_queue_decref(sbi_queue *q)
{
    queue_lock_any(&queues.mutex);
    assert(q->refs > 0);
    int last = --q->refs == 0;
    if (last) {
        queues_unlink(q);
    }
    sbi_mutex_unlock(&queues.mutex);
    if (last) {
        queue_free(q);
    }
}

/* Kill queue qid now, whatever its bindings (3.14's low-level destroy()):
 * it is no longer found, its items are dropped and its waiters wake with
 * SBI_ERR_QUEUE_DESTROYED.  Returns 0 or SBI_ERR_QUEUE_NOT_FOUND.  Thread
 * state attached. */
int
sbi_queue_destroy_id(int64_t qid)
{
    sbi_queue *q = NULL;
    int err = sbi_queue_bind(qid, &q);
    if (err < 0) {
        return err;
    }
    sbi_mutex_lock_py(&queues.mutex);
    int first = !q->destroyed;
    q->destroyed = 1;
    sbi_mutex_unlock(&queues.mutex);
    if (first) {
        qitem_free_chain(queue_kill_and_wait(q));
    }
    sbi_queue_decref(q);
    return first ? 0 : SBI_ERR_QUEUE_NOT_FOUND;
}

/* A snapshot of the linked queues, each with a temporary binding (drop
 * with sbi_queue_snapshot_free()).  0 or SBI_ERR_NOMEM.  Any thread. */
int
sbi_queue_snapshot(sbi_queue ***pqs, Py_ssize_t *pn)
{
    sbi_queue **qs = NULL;
    Py_ssize_t cap = 0;
    for (;;) {
        queue_lock_any(&queues.mutex);
        if (queues.count <= cap) {
            Py_ssize_t n = 0;
            for (sbi_queue *q = queues.head; q != NULL; q = q->next) {
                q->refs++;
                qs[n++] = q;
            }
            sbi_mutex_unlock(&queues.mutex);
            *pqs = qs;
            *pn = n;
            return 0;
        }
        cap = queues.count + 8;
        sbi_mutex_unlock(&queues.mutex);
        PyMem_RawFree(qs);
        qs = PyMem_RawMalloc((size_t)cap * sizeof(*qs));
        if (qs == NULL) {
            return SBI_ERR_NOMEM;
        }
    }
}

void
sbi_queue_snapshot_free(sbi_queue **qs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        sbi_queue_decref(qs[i]);
    }
    PyMem_RawFree(qs);
}

/* =====================================================================
 * Put and get
 */

/* Try op once.  Returns 0 (done), SBI_ERR_QUEUE_FULL / _EMPTY (would
 * block) or SBI_ERR_QUEUE_DESTROYED.  Needs q->mutex. */
static int
queue_try_locked(sbi_queue *q, sbi_queue_op *op)
{
    if (!q->alive) {
        return SBI_ERR_QUEUE_DESTROYED;
    }
    if (op->put) {
        if (q->maxsize > 0 && q->count >= q->maxsize) {
            return SBI_ERR_QUEUE_FULL;
        }
        op->item->next = NULL;
        if (q->tail == NULL) {
            q->head = op->item;
        }
        else {
            q->tail->next = op->item;
        }
        q->tail = op->item;
        q->count++;
        __atomic_add_fetch(&q->version, 1, __ATOMIC_RELEASE);
        if (q->getters > 0) {
            sbi_cond_signal(&q->not_empty);
        }
        queue_notify_locked(q, 0);
        return 0;
    }
    sbi_qitem *item = q->head;
    if (item == NULL) {
        return SBI_ERR_QUEUE_EMPTY;
    }
    q->head = item->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    q->count--;
    __atomic_add_fetch(&q->version, 1, __ATOMIC_RELEASE);
    item->next = NULL;
    op->item = item;
    if (q->putters > 0) {
        sbi_cond_signal(&q->not_full);
    }
    queue_notify_locked(q, 1);
    return 0;
}

static inline int
queue_would_block(const sbi_queue_op *op)
{
    return op->put ? SBI_ERR_QUEUE_FULL : SBI_ERR_QUEUE_EMPTY;
}

/* The one place where a thread blocks on a queue.
 *
 * Waits until op can be done and does it, until the absolute monotonic
 * deadline (ns; < 0: no limit) passes, the queue is killed or the process
 * starts shutting down.  The GIL is released while waiting; every
 * SBI_QUEUE_POLL_NS the thread takes it back to run signal handlers (Ctrl-C
 * raises KeyboardInterrupt here in the main thread), pending calls, and
 * to see whether Interpreter.interrupt() targeted it (KeyboardInterrupt).
 * Other reasons to stop waiting belong next to those.
 *
 * Returns 0 when done, SBI_ERR_QUEUE_FULL / _EMPTY on timeout,
 * SBI_ERR_QUEUE_DESTROYED, SBI_ERR_QUEUE_SHUTTING_DOWN, or SBI_ERR_PYEXC with
 * an exception set.  Thread state attached, no lock held; the caller holds
 * a binding on q. */
static int
queue_wait(sbi_queue *q, sbi_queue_op *op, int64_t deadline)
{
    static int ncpu = 0;  // atomic; any thread may fill it in
    int cpus = __atomic_load_n(&ncpu, __ATOMIC_RELAXED);
    if (cpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = n > 0 ? (int)n : 1;
        __atomic_store_n(&ncpu, cpus, __ATOMIC_RELAXED);
    }
    int blocked = queue_would_block(op);
    sbi_cond *cond = op->put ? &q->not_full : &q->not_empty;
    int spin = cpus > 1;
    for (;;) {
        int64_t now = sbi_monotonic_ns();
        int64_t slice_end = now + SBI_QUEUE_POLL_NS;
        if (deadline >= 0 && deadline < slice_end) {
            slice_end = deadline;
        }
        int err;
        Py_BEGIN_ALLOW_THREADS
        if (spin) {
            // Only before the first sleep: a change of version is a hint
            // that the op may now succeed (tried below, under the lock).
            int64_t spin_end = now + SBI_QUEUE_SPIN_NS;
            if (spin_end > slice_end) {
                spin_end = slice_end;
            }
            uint64_t v0 = __atomic_load_n(&q->version, __ATOMIC_ACQUIRE);
            for (unsigned i = 1;
                 __atomic_load_n(&q->version, __ATOMIC_ACQUIRE) == v0; i++) {
                sbi_cpu_relax();
                if ((i & 63) == 0 && sbi_monotonic_ns() >= spin_end) {
                    break;
                }
            }
            spin = 0;
        }
        sbi_mutex_lock(&q->mutex);
        Py_ssize_t *waiters = op->put ? &q->putters : &q->getters;
        (*waiters)++;
        for (;;) {
            err = queue_try_locked(q, op);
            if (err != blocked) {
                break;
            }
            if (atomic_load(&queues.shutting_down)) {
                err = SBI_ERR_QUEUE_SHUTTING_DOWN;
                break;
            }
            if (sbi_cond_wait_until(cond, &q->mutex, slice_end)) {
                // Timed out; a wake-up may have raced with the timeout.
                err = queue_try_locked(q, op);
                break;
            }
        }
        (*waiters)--;
        if (!q->alive && q->getters + q->putters == 0) {
            sbi_cond_broadcast(&q->drained);
        }
        sbi_mutex_unlock(&q->mutex);
        Py_END_ALLOW_THREADS
        if (err != blocked) {
            return err;
        }
        if (deadline >= 0 && sbi_monotonic_ns() >= deadline) {
            return err;
        }
        if (PyErr_CheckSignals() < 0 || Py_MakePendingCalls() < 0 ||
            sbi_interrupt_check() < 0)
        {
            return SBI_ERR_PYEXC;
        }
    }
}

/* Do op on q: one try, then, if block is true and op would block, wait
 * (queue_wait(), same returns).  Thread state attached; the caller holds
 * a binding on q. */
int
sbi_queue_do(sbi_queue *q, sbi_queue_op *op, int block, int64_t deadline)
{
    sbi_mutex_lock_py(&q->mutex);
    int err = queue_try_locked(q, op);
    sbi_mutex_unlock(&q->mutex);
    if (err != queue_would_block(op) || !block) {
        return err;
    }
    return queue_wait(q, op, deadline);
}

/* =====================================================================
 * Unbinding the items of a destroyed interpreter
 */

/* Apply the unbound policy to q's items put by interpreter id: REMOVE
 * items are unlinked and freed; ERROR and REPLACE items lose their data
 * and stay as placeholders.  Any thread; no lock held.
 *
 * Data is freed outside q's lock, so the pointers are moved to an array
 * sized in a first pass.  Nothing of id can be added in between (id is
 * being destroyed: only the destroying thread runs in it).  If the array
 * cannot be allocated, those items keep their data (they stay readable;
 * their shared buffers are abandoned with their owner). */
static void
queue_unbind_items(sbi_queue *q, int64_t id)
{
    Py_ssize_t n = 0;
    queue_lock_any(&q->mutex);
    for (sbi_qitem *it = q->head; it != NULL; it = it->next) {
        if (it->owner == id && it->data != NULL &&
            it->unboundop != UNBOUND_REMOVE) {
            n++;
        }
    }
    sbi_mutex_unlock(&q->mutex);

    sbi_xidata **dropped = NULL;
    if (n > 0) {
        dropped = PyMem_RawMalloc((size_t)n * sizeof(*dropped));
        if (dropped == NULL) {
            n = 0;
        }
    }
    Py_ssize_t ndropped = 0;
    sbi_qitem *removed = NULL;
    queue_lock_any(&q->mutex);
    sbi_qitem **pp = &q->head;
    sbi_qitem *prev = NULL;
    while (*pp != NULL) {
        sbi_qitem *it = *pp;
        if (it->owner != id) {
            prev = it;
            pp = &it->next;
            continue;
        }
        if (it->unboundop == UNBOUND_REMOVE) {
            *pp = it->next;
            if (q->tail == it) {
                q->tail = prev;
            }
            q->count--;
            it->next = removed;
            removed = it;
            continue;
        }
        if (it->data != NULL && ndropped < n) {
            dropped[ndropped++] = it->data;
            it->data = NULL;
        }
        prev = it;
        pp = &it->next;
    }
    if (removed != NULL && q->putters > 0) {
        sbi_cond_broadcast(&q->not_full);
    }
    if (removed != NULL) {
        queue_notify_locked(q, 1);
    }
    sbi_mutex_unlock(&q->mutex);

    for (Py_ssize_t i = 0; i < ndropped; i++) {
        sbi_xidata_free(dropped[i]);
    }
    PyMem_RawFree(dropped);
    qitem_free_chain(removed);
}

/* =====================================================================
 * Bindings, and the hooks (registered with handles.c and hooks.c)
 */
int
sbi_queue_handle_bind(int64_t qid)
{
    return sbi_queue_bind(qid, NULL);
}

void
sbi_queue_handle_release(int64_t qid)
{
    queue_lock_any(&queues.mutex);
    sbi_queue *q = queues_find(qid);  // a destroyed queue is still found
    int last = 0;
    if (SBI_ALWAYS(q != NULL && q->refs > 0)) {
        last = --q->refs == 0;
        if (last) {
            queues_unlink(q);
        }
    }
    sbi_mutex_unlock(&queues.mutex);
    if (last) {
        queue_free(q);
    }
}

/* Hook closed() (hooks.h): apply the unbound policy to every
 * item interpreter id put in any queue.  Attached to that interpreter. */
void
sbi_queue_unbind_interp(int64_t id)
{
    sbi_queue **qs = NULL;
    Py_ssize_t n = 0;
    if (sbi_queue_snapshot(&qs, &n) < 0) {
        // Out of memory: the items stay bound (readable), which is safe.
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        queue_unbind_items(qs[i], id);
    }
    sbi_queue_snapshot_free(qs, n);
}

/* Hook exiting(): wake every thread blocked in a queue
 * operation. */
void
sbi_queue_wake_all(void)
{
    atomic_store(&queues.shutting_down, 1);
    PyThreadState *ts = PyThreadState_GetUnchecked();
    if (ts != NULL) {
        (void)PyEval_SaveThread();
    }
    sbi_mutex_lock(&queues.mutex);
    for (sbi_queue *q = queues.head; q != NULL; q = q->next) {
        sbi_mutex_lock(&q->mutex);
        sbi_cond_broadcast(&q->not_empty);
        sbi_cond_broadcast(&q->not_full);
        queue_notify_locked(q, -1);
        sbi_mutex_unlock(&q->mutex);
    }
    sbi_mutex_unlock(&queues.mutex);
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
    }
}

/* The queue registry is statically initialised and outlives every module
 * instance: queues may still be bound by data in transit between
 * interpreters when a module instance goes away, and queues left at
 * process exit are reclaimed with the process (as in 3.14's release
 * builds). */

int
sbi_queue_watch(sbi_queue *q, sbi_qwatch *w)
{
    sbi_mutex_lock_py(&q->mutex);
    int alive = q->alive;
    if (alive) {
        w->next = q->watchers;
        q->watchers = w;
    }
    sbi_mutex_unlock(&q->mutex);
    return alive ? 0 : SBI_ERR_QUEUE_DESTROYED;
}

void
sbi_queue_unwatch(sbi_queue *q, sbi_qwatch *w)
{
    queue_lock_any(&q->mutex);
    for (sbi_qwatch **pp = &q->watchers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    w->next = NULL;
    sbi_mutex_unlock(&q->mutex);
}

/* The item count of q, or -1 if it is dead.  Thread state attached. */
Py_ssize_t
sbi_queue_count(sbi_queue *q)
{
    sbi_mutex_lock_py(&q->mutex);
    Py_ssize_t n = q->alive ? q->count : -1;
    sbi_mutex_unlock(&q->mutex);
    return n;
}

int
sbi_queue_is_destroyed(sbi_queue *q)
{
    sbi_mutex_lock_py(&queues.mutex);
    int destroyed = q->destroyed;
    sbi_mutex_unlock(&queues.mutex);
    return destroyed;
}

Py_ssize_t
sbi_queue_refs(int64_t qid)
{
    sbi_mutex_lock_py(&queues.mutex);
    sbi_queue *q = queues_find(qid);
    Py_ssize_t refs = q != NULL && !q->destroyed ? q->refs : -1;
    sbi_mutex_unlock(&queues.mutex);
    return refs;
}

void
sbi_queue_after_fork(void)
{
    // The threads that may have held these locks do not exist here.
    (void)sbi_mutex_init(&queues.mutex);
    for (sbi_queue *q = queues.head; q != NULL; q = q->next) {
        (void)sbi_mutex_init(&q->mutex);
        (void)sbi_cond_init(&q->not_empty);
        (void)sbi_cond_init(&q->not_full);
        (void)sbi_cond_init(&q->drained);
        q->getters = q->putters = 0;  // their waiters are gone
        q->watchers = NULL;  // the event loops watching stay in the parent
    }
}
