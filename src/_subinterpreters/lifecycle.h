/* lifecycle.h -- creating and ending our interpreters, and who owns them
 * (see lifecycle.c).
 */
#ifndef SBI_LIFECYCLE_H
#define SBI_LIFECYCLE_H

#include "common.h"
#include "state.h"
#include "registry.h"
#include "session.h"

/* create(): a new interpreter -- isolated (own GIL) or legacy (the main
 * interpreter's GIL, see lifecycle.c) -- or a parked isolated one reused.  Returns its
 * public id, the caller holding its first owning reference (released
 * with sbi_lifecycle_decref()), or -1 with an exception. */
int64_t sbi_lifecycle_create(sbi_state *st, int isolated);

/* close(): end interpreter id (or park it), waiting briefly for its
 * threads.  0, or -1 with an exception. */
int sbi_lifecycle_close(sbi_state *st, int64_t id);

/* Take an owning reference to interpreter id.  0, or SBI_ERR_NOT_FOUND
 * if it is gone or closing. */
int sbi_lifecycle_incref(int64_t id);

/* Drop an owning reference; the last one ends the interpreter when that
 * is possible now, or marks it orphaned (reaped later).  Never leaves an
 * exception set. */
void sbi_lifecycle_decref(int64_t id);

/* sbi_session_exit(), then reap the interpreter if it lost its last
 * owner while the session ran. */
void sbi_lifecycle_leave(sbi_session *s);

/* Parked interpreters the limit no longer allows, or all of them, are
 * ended (see sbi_park_evict()). */
void sbi_lifecycle_evict_parked(int all, int limit);

/* For the exit hook.  Claim e for ending (needs sbi_registry.mutex):
 * 0, or an SBI_ERR_* if it is running, current or closing. */
int sbi_lifecycle_claim(sbi_entry *e, PyInterpreterState *cur);

/* How an entry whose ending failed is marked, in the same lock hold as
 * its unclaiming (once unlocked, another thread may take and free it). */
typedef enum {
    SBI_FAIL_KEEP = 0,  // owned: stays as it was (close())
    SBI_FAIL_ORPHAN,    // unowned: only the exit hook retries it
    SBI_FAIL_AT_EXIT,   // the exit hook gave up on it
} sbi_fail_mark;

/* End claimed e, waiting up to wait_ms for its threads; force abandons
 * shared buffers still viewed elsewhere (process exit) and never parks.
 * 0 (e is gone), or an SBI_ERR_* with e unclaimed and marked. */
int sbi_lifecycle_destroy(sbi_entry *e, int wait_ms, int force,
                          sbi_fail_mark mark);

/* In the child of fork(). */
void sbi_lifecycle_after_fork(void);

#endif /* SBI_LIFECYCLE_H */
