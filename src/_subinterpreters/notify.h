/* notify.h -- a descriptor an event loop watches, signalled from any
 * thread of any interpreter (see notify.c).
 *
 * How an awaiting coroutine waits without a thread of its own: the raw
 * layer (queues) signals the notifier when the state a waiter waits for
 * may have changed, and the event loop, which watches the read end,
 * wakes the coroutine to try again.
 */
#ifndef SBI_NOTIFY_H
#define SBI_NOTIFY_H

#include "common.h"

typedef struct {
    int rfd;  // watched by the event loop (an eventfd, or a pipe's
    int wfd;  // read end); signalled through wfd (== rfd for eventfd)
} sbi_notify;

/* Open n's descriptors, non-blocking and close-on-exec.  0, or -1 with
 * errno set (n then holds -1s).  Any thread; no Python API. */
int sbi_notify_open(sbi_notify *n);

/* Make n readable.  Never blocks and never fails (a notifier already
 * signalled stays so).  Any thread, with or without a thread state, any
 * lock held: async-signal-safe. */
void sbi_notify_signal(const sbi_notify *n);

/* Make n unreadable again.  Returns 1 if it had been signalled, 0 if not.
 * Never blocks.  The thread of the event loop that watches it. */
int sbi_notify_drain(const sbi_notify *n);

/* Close n's descriptors (NULL-safe, idempotent: sets them to -1).  Nobody
 * may signal n any more. */
void sbi_notify_close(sbi_notify *n);

#endif /* SBI_NOTIFY_H */
