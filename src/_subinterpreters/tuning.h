/* tuning.h -- every timeout, retry count and size limit of the C core,
 * each with the reason for its value.  Change them here only.
 *
 * Includes only C headers; any file may include it (layers:
 * docs/design.md).
 */
#ifndef SBI_TUNING_H
#define SBI_TUNING_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------
 * Interpreters (registry.c, session.c, park.c, lifecycle.c, process.c)
 */

/* Thread states an interpreter keeps between sessions, one per OS thread:
 * a call from a thread seen before needs no new thread state (and frame
 * stack).  Pools use one thread per worker; 8 covers a handful of callers
 * per interpreter, the oldest is evicted beyond that. */
#define SBI_TSTATE_CACHE 8

/* Closed pristine interpreters kept for reuse by create(), by default
 * (_core._parking(n) changes it): each holds ~2.3 MiB, and two cover the
 * create()/close() churn of a pool that recycles workers. */
#define SBI_PARK_MAX 2

/* How long close() waits for the interpreter's other threads to end
 * after joining the ones threading knows (a _thread-started thread may
 * still be returning), and how often it looks. */
#define SBI_CLOSE_WAIT_MS 100
#define SBI_THREADS_POLL_US 10000

/* At process exit: how long the exit hook interrupts and waits for
 * interpreters still running code in daemon threads, in all; how long it
 * waits for each one's threads to end; and how often it looks. */
#define SBI_EXIT_DEADLINE_NS ((int64_t)3 * 1000 * 1000 * 1000)
#define SBI_EXIT_THREADS_WAIT_MS 2000
#define SBI_EXIT_POLL_US 10000

/* How long create() waits for an os.fork() under way in another thread
 * (held back so that the child inherits no interpreter half made).  The
 * fork itself takes milliseconds; its at-fork hooks run arbitrary code,
 * and one that waits for this very create() would wait for ever. */
#define SBI_FORK_WAIT_MS 10000

/* ---------------------------------------------------------------------
 * Interrupts (interrupt.c)
 */

/* interrupt() right after is_running() may find the session between
 * taking the running flag and switching in: it waits for that, up to
 * TRIES * POLL_US (100 ms), before reporting that nothing was running. */
#define SBI_INTERRUPT_START_TRIES 200
#define SBI_INTERRUPT_START_POLL_US 500

/* interrupt(unwind=True), exec(timeout=), a cancelled pool task: code
 * that swallows the KeyboardInterrupt is interrupted again at its next
 * line; a finally block, except body or __exit__ (which run) is
 * interrupted in turn if it runs longer than this. */
#define SBI_UNWIND_GRACE_NS ((int64_t)500 * 1000 * 1000)

/* exec(timeout=): if the interrupt did not land (the session was between
 * two states), the watchdog tries again this much later. */
#define SBI_WATCHDOG_RETRY_NS ((int64_t)10 * 1000 * 1000)

/* ---------------------------------------------------------------------
 * Registration tables (hooks.c, xidata.c)
 */

/* Features that register lifecycle hooks or handle kinds: one each for
 * queues today; room for the features to come. */
#define SBI_HOOKS_MAX 8
#define SBI_HANDLE_KINDS_MAX 8

/* ---------------------------------------------------------------------
 * Queues (queue.c)
 */

/* How often a blocked thread wakes up to run signal handlers and pending
 * calls (Ctrl-C latency). */
#define SBI_QUEUE_POLL_NS ((int64_t)50 * 1000 * 1000)

/* Before going to sleep on the condition, a blocked thread spins this
 * long (GIL released, no lock) watching the queue's version: waking a
 * sleeping thread costs tens of microseconds on an idle machine, more than
 * a ping-pong between two interpreters otherwise takes.  Not on one CPU. */
#define SBI_QUEUE_SPIN_NS ((int64_t)50 * 1000)

/* ---------------------------------------------------------------------
 * Cross-interpreter data (xidata.c) and per-interpreter blocks (state.c)
 */

/* Nesting deeper than this is not encoded natively: FULL mode pickles
 * the whole value instead (pickle also handles cycles). */
#define SBI_MAX_DEPTH 200

/* SharedDict keys and values: at most this many objects in one value
 * (a value sharing its parts is copied once per reference, so a small
 * but deeply shared one could otherwise take forever). */
#define SBI_DATA_MAX_NODES ((size_t)10 * 1000 * 1000)

/* A function's defaults travel with its code (xidata.c TAG_FUNCDEF) only
 * up to this many objects; bigger ones send the function by pickle.  The
 * check runs on every send of the function, so it is kept cheap. */
#define SBI_DEFAULTS_MAX_NODES 10000

/* The smallest payload worth borrowing instead of copying (below it a
 * copy costs less than pinning its owner). */
#define SBI_BORROW_MIN ((size_t)64 * 1024)

/* Per-thread scratch buffers: data buffers of this many bytes are kept
 * for reuse by the thread that frees them (one per thread). */
#define SBI_SCRATCH_MIN ((size_t)64 * 1024)
#define SBI_SCRATCH_MAX ((size_t)4 * 1024 * 1024)

/* Bound on each code cache; a full cache is simply emptied. */
#define SBI_CODE_CACHE_MAX 512

/* Blocks sbi_state_local() remembers per thread: three keys, in a few
 * interpreters per thread. */
#define SBI_LOCAL_CACHE_SIZE 16

#endif /* SBI_TUNING_H */
