/* queue.h -- the raw layer of the queues between interpreters (see
 * queue.c): process-global FIFOs of cross-interpreter data, with no
 * PyObject* and no exception set; functions return 0 or a negative
 * SBI_ERR_*.  queue_type.c is the Python layer above.
 */
#ifndef SBI_QUEUE_H
#define SBI_QUEUE_H

#include "common.h"
#include "lock.h"
#include "xidata.h"
#include "notify.h"

/* What happens to an item when the interpreter that put it is destroyed.
 * X(name, value as in 3.14's _interpqueues, index in the module state's
 *   unbound_objects tuple (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE)) */
#define QUEUE_UNBOUND_MAP(X)                                                  \
  X(REMOVE, 1, 2)                                                             \
  X(ERROR, 2, 1)                                                              \
  X(REPLACE, 3, 0)

enum {
#define SBI_X(name, value, index) UNBOUND_##name = value,
    QUEUE_UNBOUND_MAP(SBI_X)
#undef SBI_X
};

/* Index of op in unbound_objects, -1 for an unknown op. */
static inline int
sbi_queue_unbound_index(int op)
{
    switch (op) {
#define SBI_X(name, value, index)                                             \
case value:                                                                   \
  return index;
        QUEUE_UNBOUND_MAP(SBI_X)
#undef SBI_X
    default:
        return -1;
    }
}

/* One queued value.  Owned by the queue's list while linked (protected by
 * the queue's mutex), by whoever unlinked it afterwards. */
typedef struct sbi_qitem {
    struct sbi_qitem *next;
    sbi_xidata *data;  // NULL once unbound (a placeholder)
    int64_t owner;     // interpreter that put it
    int unboundop;     // UNBOUND_*
} sbi_qitem;

/* An event loop's interest in a queue (notify.h): its notifier is
 * signalled whenever an item is added (put = 0: a get may now succeed)
 * or removed (put = 1: a put may), and when the queue dies or the process
 * starts shutting down.  Linked in q->watchers under q->mutex; owned by
 * whoever linked it, who unlinks it before freeing it or dropping its
 * binding on the queue. */
typedef struct sbi_qwatch {
    struct sbi_qwatch *next;  // protected by the queue's mutex
    const sbi_notify *notify;
    int put;
} sbi_qwatch;

typedef struct sbi_queue {
    /* registry fields, protected by queues.mutex */
    struct sbi_queue *next;
    Py_ssize_t refs;  // bindings; freed when it drops to 0
    int destroyed;    // killed early: no new bindings

    /* immutable once linked */
    int64_t id;
    Py_ssize_t maxsize;  // <= 0: unbounded (kept as given)
    int unboundop;       // default UNBOUND_* for put()
    int ready;           // QUEUE_HAVE_* parts initialised

    sbi_mutex mutex;
    sbi_cond not_empty;  // signalled when an item is added
    sbi_cond not_full;   // signalled when an item is removed
    sbi_cond drained;    // broadcast when the last waiter of a
                         // dead queue leaves
    /* protected by mutex */
    int alive;
    Py_ssize_t getters;  // threads waiting in get()
    Py_ssize_t putters;  // threads waiting in put()
    sbi_qitem *head;
    sbi_qitem *tail;
    Py_ssize_t count;      // items, placeholders included
    uint64_t version;      // atomic, written under mutex: bumped by
                           // every put and get (spinning waiters)
    sbi_qwatch *watchers;  // event loops awaiting a change
} sbi_queue;

typedef struct {
    int put;          // 1: put, 0: get
    sbi_qitem *item;  // put: the item to add (the queue owns it once added);
                      // get: the item taken, owned by the caller
} sbi_queue_op;

/* Free item and its data.  Any thread, with or without a thread state;
 * never with a queue lock or the registry lock held. */
void sbi_qitem_free(sbi_qitem *item);

/* Create a queue with one binding, owned by the caller.  *pq is set on
 * success.  Returns 0, SBI_ERR_NOMEM or SBI_ERR_QUEUE_IDS.  Thread state
 * attached (the registry lock is taken without the GIL). */
int sbi_queue_create(Py_ssize_t maxsize, int unboundop, sbi_queue **pq);

/* Take a binding on live queue qid; *pq (may be NULL) receives the queue.
 * 0 or SBI_ERR_QUEUE_NOT_FOUND.  Any thread. */
int sbi_queue_bind(int64_t qid, sbi_queue **pq);

/* Drop one binding on q; the last one frees it.  Any thread, with or
 * without a thread state; no lock held.  May free items, and through them
 * release other queues. */
void sbi_queue_decref(sbi_queue *q);

/* Kill queue qid now, whatever its bindings (3.14's low-level destroy()):
 * it is no longer found, its items are dropped and its waiters wake with
 * SBI_ERR_QUEUE_DESTROYED.  Returns 0 or SBI_ERR_QUEUE_NOT_FOUND.  Thread
 * state attached. */
int sbi_queue_destroy_id(int64_t qid);

/* A snapshot of the linked queues, each with a temporary binding (drop
 * with sbi_queue_snapshot_free()).  0 or SBI_ERR_NOMEM.  Any thread. */
int sbi_queue_snapshot(sbi_queue ***pqs, Py_ssize_t *pn);
void sbi_queue_snapshot_free(sbi_queue **qs, Py_ssize_t n);

/* Do op on q: one try, then, if block is true and op would block, wait
 * until deadline (monotonic ns, -1: none).  0, SBI_ERR_QUEUE_FULL /
 * _EMPTY, SBI_ERR_QUEUE_DESTROYED, SBI_ERR_QUEUE_SHUTTING_DOWN, or
 * SBI_ERR_PYEXC with an exception set (a signal handler, a pending call
 * or an interrupt raised while waiting).  Thread state attached; the
 * caller holds a binding on q. */
int sbi_queue_do(sbi_queue *q, sbi_queue_op *op, int block, int64_t deadline);

/* Link w (notify and put set by the caller) into q's watchers.  0, or
 * SBI_ERR_QUEUE_DESTROYED if q is dead.  Thread state attached; the
 * caller holds a binding on q until it has called sbi_queue_unwatch(). */
int sbi_queue_watch(sbi_queue *q, sbi_qwatch *w);

/* Unlink w: once this returns nobody signals its notifier.  Any thread,
 * with or without a thread state. */
void sbi_queue_unwatch(sbi_queue *q, sbi_qwatch *w);

/* The item count of q, or -1 if it is dead.  Thread state attached. */
Py_ssize_t sbi_queue_count(sbi_queue *q);

/* Was q destroyed early (sbi_queue_destroy_id())?  Thread state
 * attached. */
int sbi_queue_is_destroyed(sbi_queue *q);

/* The bindings on live queue qid, or -1 if there is none.  Thread state
 * attached. */
Py_ssize_t sbi_queue_refs(int64_t qid);

/* The handle kind's raw side (xidata.h): bind and release queue qid. */
int sbi_queue_handle_bind(int64_t qid);
void sbi_queue_handle_release(int64_t qid);

/* Hooks (hooks.h).  closed: apply the unbound policy to every item
 * interpreter id put in any queue (attached to that interpreter).
 * exiting: wake every thread blocked in a queue operation. */
void sbi_queue_unbind_interp(int64_t id);
void sbi_queue_wake_all(void);

/* In the child of fork(): the locks may have been held by threads that
 * do not exist there. */
void sbi_queue_after_fork(void);

#endif /* SBI_QUEUE_H */
