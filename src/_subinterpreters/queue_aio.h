/* queue_aio.h -- what lets an event loop await a queue without a thread
 * per waiter (see queue_aio.c): watches (a notifier linked into a queue's
 * watchers) and packed items (put's serialisation done once, tried
 * again until the queue has room).
 */
#ifndef SBI_QUEUE_AIO_H
#define SBI_QUEUE_AIO_H

#include "queue.h"
#include "state.h"

/* A new watch object on q (id qid) for puts (put = 1) or gets (put = 0):
 * it takes a binding of its own.  New reference, or NULL with an
 * exception (QueueNotFoundError for a dead queue, OSError if no
 * descriptor can be opened).  Thread state attached. */
PyObject *sbi_queue_aio_watch(sbi_state *st, int64_t qid, int put);

/* Wrap item (owned; it passes to the new object, also on failure).  New
 * reference, or NULL with an exception. */
PyObject *sbi_queue_aio_item_new(sbi_state *st, sbi_qitem *item);

/* Take the item out of packed item obj: the caller owns it (give it back
 * with sbi_queue_aio_item_restore() if it could not be queued).  NULL
 * with TypeError if obj is no packed item, ValueError if it was queued
 * already. */
sbi_qitem *sbi_queue_aio_item_take(sbi_state *st, PyObject *obj);

/* Put item, taken from obj, back into it. */
void sbi_queue_aio_item_restore(PyObject *obj, sbi_qitem *item);

int sbi_queue_aio_init(PyObject *m, sbi_state *st);

#endif /* SBI_QUEUE_AIO_H */
