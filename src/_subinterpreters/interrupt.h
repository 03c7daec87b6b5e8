/* interrupt.h -- interrupting the code an interpreter of ours runs (see
 * interrupt.c).
 */
#ifndef SBI_INTERRUPT_H
#define SBI_INTERRUPT_H

#include "registry.h"

/* Raise KeyboardInterrupt in the code running interpreter id's __main__
 * (only in session `serial` unless it is 0).  Any thread, with or without
 * a thread state.  Refused once the process is shutting down, except for
 * the exit hook itself (at_exit).  Returns 1 if delivered, 0 if nothing
 * was running, or a negative SBI_ERR_*. */
int sbi_interrupt_interp(int64_t id, uint64_t serial, int at_exit);

/* As sbi_interrupt_interp(id, 0, 0), and then, until the interrupted
 * session has left the caller's code, code that catches the
 * KeyboardInterrupt is interrupted again at its next line (see interrupt.c,
 * "Unwinding"), so the interruption cannot be swallowed.  Returns
 * as sbi_interrupt_interp(), or SBI_ERR_NOMEM if no thread can be
 * started (then it interrupted once).  Any thread. */
int sbi_interrupt_unwind(int64_t id);

/* The session of e starts (on = 1) or stops (on = 0) running the
 * caller's code (exec's code, call's function): interrupts land only in
 * between, never in what the session does around it.  Stopping also drops
 * an interrupt sent but not raised yet.  In the target interpreter,
 * thread state attached. */
void sbi_interrupt_user_code(sbi_entry *e, int on);

/* For blocking waits (queues): if the current thread runs __main__ of the
 * current interpreter and Interpreter.interrupt() targeted it, consume the
 * interrupt and raise KeyboardInterrupt (-1); else 0.  Thread state
 * attached. */
int sbi_interrupt_check(void);

/* A watchdog thread that interrupts one session when its deadline
 * passes. */
typedef struct {
    sbi_mutex mutex;
    sbi_cond cond;
    int done;    // protected by mutex
    int fired;   // protected by mutex
    int unwind;  // keep interrupting once fired (set at start)
    int64_t id;
    uint64_t serial;
    int64_t deadline_ns;
    pthread_t thread;
} sbi_watchdog;

/* Start w for session serial of interpreter id; once the timeout passes
 * it interrupts the session, and with unwind keeps interrupting it as
 * sbi_interrupt_unwind() does until stopped.  -1 (no exception) if the
 * thread cannot be started. */
int sbi_watchdog_start(sbi_watchdog *w, int64_t id, uint64_t serial,
                       double timeout, int unwind);

/* Stop and join w (thread state attached: the GIL is released while
 * joining, since the watchdog may be waiting for it).  Returns whether
 * it fired. */
int sbi_watchdog_stop(sbi_watchdog *w);

#endif /* SBI_INTERRUPT_H */
