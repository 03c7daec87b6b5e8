/* wake.h -- waking threads blocked in our waits (see wake.c).
 *
 * A thread about to block on one of our condition variables registers an
 * sbi_wake naming the mutex and condition it will wait on.  Interrupts
 * (Interpreter.interrupt(), Ctrl-C) and close() then kick it awake at
 * once, with no periodic polling: the waiter sees w->kicked under its own
 * mutex and returns to check why.
 */
#ifndef SBI_WAKE_H
#define SBI_WAKE_H

#include "common.h"
#include "lock.h"

typedef struct sbi_wake {
    struct sbi_wake *next;  // wake.mutex
    unsigned long tid;      // the waiting thread
    int64_t cid;            // CPython's id of its interpreter
    sbi_mutex *mutex;       // what it waits on
    sbi_cond *cond;
    int kicked;  // protected by *mutex
} sbi_wake;

/* Register w (on the caller's stack) for waits on cond with mutex, in
 * the current thread and interpreter.  Returns 0, or
 * SBI_ERR_INTERP_CLOSING (w not registered) if the current interpreter is
 * being closed: a wait there would keep close() from joining its threads.
 * Thread state attached; mutex not held. */
int sbi_wake_begin(sbi_wake *w, sbi_mutex *mutex, sbi_cond *cond);

/* Unregister w.  Any thread state; mutex not held. */
void sbi_wake_end(sbi_wake *w);

/* Kick every registered wait of thread tid.  Any thread, with or without
 * a thread state; no lock of ours held. */
void sbi_wake_kick_thread(unsigned long tid);

/* Interpreter cid starts closing (closing=1): kick its waits and refuse
 * new ones (sbi_wake_begin()) until it is done (closing=0).  Any thread;
 * no lock of ours held.  A thread of cid whose wait is refused may still
 * be running threading's atexit hooks or winding down: it gets
 * InterpreterError from a contended wait, which is what lets close()
 * join it. */
void sbi_wake_set_closing(int64_t cid, int closing);

/* Is interpreter cid closing?  Any thread. */
int sbi_wake_is_closing(int64_t cid);

/* Held across fork() (before fork: lock; in the parent after: unlock);
 * in the child, sbi_wake_after_fork() makes a fresh one. */
void sbi_wake_fork_lock(void);
void sbi_wake_fork_unlock(void);

/* In the child of fork(): the waiters are gone with their threads. */
void sbi_wake_after_fork(void);

#endif /* SBI_WAKE_H */
