/* hooks.h -- subscriber lists for events of the interpreter lifecycle, so
 * that the lifecycle (a higher layer) tells the features built on it
 * (queues, ...) without calling them.
 *
 * Calls only compat.h, lock.h, common.h (layers: docs/design.md).
 * Features register at module init (idempotent); the lifecycle runs the
 * lists.
 */
#ifndef SBI_HOOKS_H
#define SBI_HOOKS_H

#include "common.h"

/* What one feature wants to hear; either member may be NULL. */
typedef struct {
    /* Interpreter cid (CPython's id) is being destroyed or parked: drop
     * or flag what it owns.  Runs attached to that interpreter. */
    void (*closed)(int64_t cid);
    /* The process is exiting (the exit hook runs in the main
     * interpreter): wake every thread blocked on the feature. */
    void (*exiting)(void);
} sbi_hooks;

/* Register hooks (static storage, never freed; registering the same
 * pointer again does nothing).  0, or -1 with an exception if the list is
 * full.  Thread state attached. */
int sbi_hooks_register(const sbi_hooks *hooks);

/* Call every registered closed() / exiting(), in registration order. */
void sbi_hooks_run_closed(int64_t cid);
void sbi_hooks_run_exiting(void);

/* In the child of fork(): the lock may have been held by a thread that
 * does not exist there. */
void sbi_hooks_after_fork(void);

#endif /* SBI_HOOKS_H */
