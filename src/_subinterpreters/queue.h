/* queue.h -- process-global FIFO queues between interpreters.
 *
 * Entry points used by the rest of the extension.  The raw functions take
 * the queue registry lock only; none needs a thread state unless stated.
 */
#ifndef SBI_QUEUE_H
#define SBI_QUEUE_H

#include "common.h"
#include "module.h"

/* If obj is one of our Queue objects, store its id in *qid, return 1;
 * else return 0.  Thread state attached. */
int sbi_queue_check(PyObject *obj, int64_t *qid);

/* Take / drop one reference on queue qid (a Queue in transit holds one).
 * bind: 0 or SBI_ERR_QUEUE_NOT_FOUND.  release: any thread. */
int sbi_queue_bind(int64_t qid);
void sbi_queue_release(int64_t qid);

/* The Queue object for qid in the current interpreter (the per-interpreter
 * singleton; it takes its own binding).  New reference or NULL with an
 * exception set. */
PyObject *sbi_queue_object(int64_t qid);

/* Called while interpreter id is being destroyed, attached to it: apply
 * the unbound policy to every item it put in any queue. */
void sbi_queues_unbind_interp(int64_t id);

/* Wake every thread blocked in a queue operation (process exit). */
void sbi_queues_wake_all(void);

int sbi_queue_module_init(PyObject *m, sbi_state *st);
int sbi_queue_globals_init(void);
void sbi_queue_globals_fini(void);

#endif /* SBI_QUEUE_H */
