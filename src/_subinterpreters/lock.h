/* lock.h -- the one lock abstraction: sbi_mutex and sbi_cond.
 *
 * Built on POSIX threads on every supported CPython: our queues need a
 * condition variable with a timed wait, which neither PyMutex (3.13) nor
 * PyThread_type_lock (3.12) offers.  Using one primitive everywhere keeps
 * the lock order analysable.  (A Windows port would swap in SRWLOCK and
 * CONDITION_VARIABLE here, and nowhere else.)
 *
 * Rule: never block on one of these while a GIL is held.  Use
 * sbi_mutex_lock_py(), which tries first and, on contention, detaches the
 * calling thread state while it waits.  Code running with no thread state
 * attached uses sbi_mutex_lock().
 */
#ifndef SBI_LOCK_H
#define SBI_LOCK_H

#include <Python.h>
#include <pthread.h>
#include "compat.h"
#include <time.h>
#include <errno.h>

typedef pthread_mutex_t sbi_mutex;
typedef pthread_cond_t sbi_cond;

#define SBI_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER

static inline int
sbi_mutex_init(sbi_mutex *m)
{
    return pthread_mutex_init(m, NULL) == 0 ? 0 : -1;
}

static inline void
sbi_mutex_fini(sbi_mutex *m)
{
    (void)pthread_mutex_destroy(m);
}

/* Blocking lock; only with no thread state attached, or for locks whose
 * holders never wait for anything (leaf locks held for a few stores). */
static inline void
sbi_mutex_lock(sbi_mutex *m)
{
    (void)pthread_mutex_lock(m);
}

static inline void
sbi_mutex_unlock(sbi_mutex *m)
{
    (void)pthread_mutex_unlock(m);
}

/* Lock with a thread state attached: try first; on contention, wait for
 * the mutex with the GIL released, then try again.  The mutex is never
 * held while waiting for the GIL (a holder of some GIL may be waiting for
 * the mutex with sbi_mutex_lock).  Never fails. */
static inline void
sbi_mutex_lock_py(sbi_mutex *m)
{
    while (pthread_mutex_trylock(m) != 0) {
        Py_BEGIN_ALLOW_THREADS(void)
        pthread_mutex_lock(m);
        (void)pthread_mutex_unlock(m);
        Py_END_ALLOW_THREADS
    }
}

/* Lock from code that may or may not have a thread state attached. */
static inline void
sbi_mutex_lock_any(sbi_mutex *m)
{
    if (PyThreadState_GetUnchecked() != NULL) {
        sbi_mutex_lock_py(m);
    }
    else {
        (void)pthread_mutex_lock(m);
    }
}

/* Condition variables use CLOCK_MONOTONIC so that timeouts do not move
 * with the wall clock. */
static inline int
sbi_cond_init(sbi_cond *c)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        return -1;
    }
    (void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &attr);
    (void)pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

static inline void
sbi_cond_fini(sbi_cond *c)
{
    (void)pthread_cond_destroy(c);
}

static inline void
sbi_cond_broadcast(sbi_cond *c)
{
    (void)pthread_cond_broadcast(c);
}

static inline void
sbi_cond_signal(sbi_cond *c)
{
    (void)pthread_cond_signal(c);
}

/* A hint to the CPU that this thread is spinning. */
static inline void
sbi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Monotonic time in nanoseconds. */
static inline int64_t
sbi_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait on c (m held, no thread state attached) until signalled or the
 * absolute monotonic deadline (ns) passes; deadline < 0 waits without a
 * limit.  Returns 0 when woken, 1 on timeout.  Spurious wake-ups happen:
 * callers loop on their predicate. */
static inline int
sbi_cond_wait_until(sbi_cond *c, sbi_mutex *m, int64_t deadline_ns)
{
    if (deadline_ns < 0) {
        (void)pthread_cond_wait(c, m);
        return 0;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    int rc = pthread_cond_timedwait(c, m, &ts);
    return rc == ETIMEDOUT ? 1 : 0;
}

#endif /* SBI_LOCK_H */
