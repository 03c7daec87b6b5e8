/* sync.h -- cross-interpreter synchronisation primitives, raw layer (see
 * sync.c): Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and
 * Barrier with the semantics of threading's classes, in process-global
 * memory, shared by id (shared.h).
 *
 * Blocking calls take a thread state attached and release the GIL while
 * they wait.  They return 1 when done, 0 on timeout (or when a
 * non-blocking call would block), or a negative SBI_ERR_*: SBI_ERR_PYEXC
 * when a signal handler or an interrupt raised (KeyboardInterrupt),
 * SBI_ERR_INTERP_CLOSING when the caller's interpreter is being closed.
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds; < 0 means none.
 */
#ifndef SBI_SYNC_H
#define SBI_SYNC_H

#include "shared.h"
#include "xidata.h"

#define SBI_SYNC_KINDS(X)                                                     \
  X(LOCK, "Lock")                                                             \
  X(RLOCK, "RLock")                                                           \
  X(SEMAPHORE, "Semaphore")                                                   \
  X(BOUNDED_SEMAPHORE, "BoundedSemaphore")                                    \
  X(EVENT, "Event")                                                           \
  X(CONDITION, "Condition")                                                   \
  X(BARRIER, "Barrier")

typedef enum {
#define SBI_X(name, text) SBI_SYNC_##name,
    SBI_SYNC_KINDS(SBI_X)
#undef SBI_X
        SBI_SYNC_NKINDS
} sbi_sync_kind;

typedef struct sbi_cwaiter sbi_cwaiter;

typedef struct sbi_sync {
    sbi_shared base;  // first: an sbi_sync is an sbi_shared
    sbi_sync_kind kind;
    sbi_mutex mutex;
    sbi_cond cond;
    Py_ssize_t waiters;  // mutex: threads blocked on cond
    union {
        struct {                  // LOCK, RLOCK; mutex
            unsigned long owner;  // RLOCK: the OS thread; 0 if free
            uint64_t count;       // recursion depth; LOCK: 0 or 1
        } lock;
        struct {  // SEMAPHORE, BOUNDED_SEMAPHORE; mutex
            Py_ssize_t value;
            Py_ssize_t bound;  // the initial value if bounded, else -1
        } sem;
        struct {  // EVENT; mutex
            int flag;
            uint64_t sets;  // set() calls that changed the flag
        } event;
        struct {                    // CONDITION
            struct sbi_sync *lock;  // a LOCK or RLOCK; holds a reference
            sbi_cwaiter *head;      // mutex: FIFO of waiters
            sbi_cwaiter *tail;
        } cond;
        struct {  // BARRIER; mutex
            Py_ssize_t parties;
            Py_ssize_t count;    // threads inside wait()
            int state;           // BARRIER_* in sync.c
            double timeout;      // the default; < 0: none
            sbi_xidata *action;  // the callable, or NULL
        } barrier;
    } u;
} sbi_sync;

/* What a new primitive starts with (the fields its kind uses). */
typedef struct {
    Py_ssize_t value;    // semaphores: the initial value (>= 0)
    sbi_sync *lock;      // Condition: its lock (a reference is taken)
    Py_ssize_t parties;  // Barrier (>= 1)
    double timeout;      // Barrier: default timeout; < 0: none
    sbi_xidata *action;  // Barrier: owned by the new primitive
} sbi_sync_args;

/* A new primitive with one reference owned by the caller, or NULL.
 * args->action passes to the primitive (also on failure).  Any thread. */
sbi_sync *sbi_sync_new(sbi_sync_kind kind, const sbi_sync_args *args);

/* Drop a reference. */
static inline void
sbi_sync_decref(sbi_sync *s)
{
    sbi_shared_decref(&s->base);
}

/* The raw type of every primitive (shared.h). */
extern const sbi_shared_type sbi_sync_shared;

/* Lock, RLock, semaphores.  acquire: 1 / 0 / error (see above).
 * release: 0, or SBI_ERR_SYNC_UNLOCKED (Lock), SBI_ERR_SYNC_NOT_OWNED
 * (RLock), SBI_ERR_SYNC_OVER_RELEASE (BoundedSemaphore),
 * SBI_ERR_SYNC_OVERFLOW (Semaphore past PY_SSIZE_T_MAX); n > 0 is the
 * semaphores' count and 1 for the locks. */
int sbi_sync_acquire(sbi_sync *s, int blocking, int64_t deadline);
int sbi_sync_release(sbi_sync *s, Py_ssize_t n);
int sbi_sync_locked(sbi_sync *s);
/* RLock: held by the calling thread.  Lock: held by anyone (what
 * threading.Condition calls owning a plain lock). */
int sbi_sync_is_owned(sbi_sync *s);
/* Semaphores: the current value. */
Py_ssize_t sbi_sync_value(sbi_sync *s);

/* Event. */
void sbi_sync_event_set(sbi_sync *s, int flag);
int sbi_sync_event_is_set(sbi_sync *s);
int sbi_sync_event_wait(sbi_sync *s, int64_t deadline);

/* Condition: wait() (1 notified, 0 timed out, or an error; also
 * SBI_ERR_SYNC_WAIT_NOT_OWNED) and notify(n) (0, or
 * SBI_ERR_SYNC_NOTIFY_NOT_OWNED); n < 0 notifies everyone (notify_all;
 * the Python layer refuses a negative n). */
int sbi_sync_cond_wait(sbi_sync *s, int64_t deadline);
/* Condition.release(): its lock's release, except right after a wait()
 * that ended without the lock (SBI_ERR_INTERP_CLOSING): then nothing. */
int sbi_sync_cond_release(sbi_sync *s);
/* Condition.acquire() succeeded: a release now is a real one. */
void sbi_sync_cond_acquired(sbi_sync *s);
int sbi_sync_cond_notify(sbi_sync *s, Py_ssize_t n);

/* Barrier wait(): returns 1 with *index set, or SBI_ERR_BARRIER_BROKEN
 * or another error.  timeout_ns (< 0: none) counts from when the caller
 * is let in (after a previous round drained).  The thread completing the barrier calls
 * run_action(arg) with the barrier's action (GIL held, no lock of ours
 * held); it returns 0, or -1 with an exception set (the barrier breaks
 * and the error is returned as SBI_ERR_PYEXC). */
int sbi_sync_barrier_wait(sbi_sync *s, int64_t timeout_ns,
                          int (*run_action)(const sbi_xidata *action),
                          Py_ssize_t *index);
void sbi_sync_barrier_reset(sbi_sync *s);
void sbi_sync_barrier_abort(sbi_sync *s);
/* n_waiting and broken, read together. */
void sbi_sync_barrier_status(sbi_sync *s, Py_ssize_t *n_waiting, int *broken);

#endif /* SBI_SYNC_H */
