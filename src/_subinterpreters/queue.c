/* queue.c -- placeholder until the queue subsystem lands (issue 3). */
#include "queue.h"

int
sbi_queue_check(PyObject *obj, int64_t *qid)
{
    return 0;
}

int
sbi_queue_bind(int64_t qid)
{
    return SBI_ERR_QUEUE_NOT_FOUND;
}

void
sbi_queue_release(int64_t qid)
{
}

PyObject *
sbi_queue_object(int64_t qid)
{
    PyErr_SetString(PyExc_NotImplementedError, "queues");
    return NULL;
}

void
sbi_queues_unbind_interp(int64_t id)
{
}

void
sbi_queues_wake_all(void)
{
}

int
sbi_queue_module_init(PyObject *m, sbi_state *st)
{
    return 0;
}
