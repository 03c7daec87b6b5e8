/* queue_aio.c -- the raw pieces of Queue.aget() and Queue.aput()
 * (subinterpreters/_aio.py has the coroutines).
 *
 * A watch (_QueueWatch) links a notifier into a queue's watchers
 * (queue.c): puts and gets in any interpreter signal it, and the event
 * loop, watching its descriptor with add_reader(), wakes the coroutines
 * waiting on that queue to try again with get_nowait()/put.  One watch
 * per event loop, queue and direction, however many coroutines wait.
 * Nothing is taken from the queue on a coroutine's behalf, so a
 * cancelled waiter can lose no item.
 *
 * A packed item (_QueueItem) is an item serialised once by aput(), so
 * that trying again while the queue is full neither copies nor pickles
 * the object again: aput() sends the object as it was when called, as
 * put() does.
 *
 * Ownership: a watch holds a binding on its queue and owns its raw part
 * (PyMem_Raw: other interpreters' threads read the notifier through the
 * queue's list); close() unlinks it first, so no signal can reach a
 * closed descriptor.  Thread state attached everywhere, in the
 * interpreter that made the object.
 *
 * Calls queue.c, notify.c and state.c (layers: docs/design.md).
 */
#include "queue_aio.h"
#include <errno.h>
#include <stddef.h>

/* =====================================================================
 * Watches
 */
typedef struct {
    sbi_qwatch watch;  // linked into the queue while open
    sbi_notify notify;
} qwatch_raw;

typedef struct {
    PyObject_HEAD
    int64_t qid;
    sbi_queue *q;     // our binding; NULL once closed
    qwatch_raw *raw;  // PyMem_Raw; NULL once closed
    int put;
} QueueWatchObject;

#define QueueWatchObject_CAST(op) ((QueueWatchObject *)(op))

/* Unlink, close and free, dropping the binding.  Idempotent. */
static void
qwatch_close(QueueWatchObject *self)
{
    sbi_queue *q = self->q;
    qwatch_raw *raw = self->raw;
    self->q = NULL;
    self->raw = NULL;
    if (raw != NULL) {
        sbi_queue_unwatch(q, &raw->watch);  // no signal after this
        sbi_notify_close(&raw->notify);
        PyMem_RawFree(raw);
    }
    if (q != NULL) {
        sbi_queue_decref(q);
    }
}

PyObject *
sbi_queue_aio_watch(sbi_state *st, int64_t qid, int put)
{
    sbi_queue *q = NULL;
    int err = sbi_queue_bind(qid, &q);
    if (err < 0) {
        return sbi_state_raise(st, err, qid, NULL);
    }
    QueueWatchObject *self =
        PyObject_New(QueueWatchObject, st->QueueWatchType);
    qwatch_raw *raw = self ? PyMem_RawMalloc(sizeof(*raw)) : NULL;
    if (raw == NULL) {
        if (self != NULL) {
            self->q = NULL;
            self->raw = NULL;
            Py_DECREF(self);
            PyErr_NoMemory();
        }
        sbi_queue_decref(q);
        return NULL;
    }
    self->qid = qid;
    self->q = q;
    self->raw = NULL;
    self->put = put;
    if (sbi_notify_open(&raw->notify) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        PyMem_RawFree(raw);
        Py_DECREF(self);
        return NULL;
    }
    raw->watch.next = NULL;
    raw->watch.notify = &raw->notify;
    raw->watch.put = put;
    err = sbi_queue_watch(q, &raw->watch);
    if (err < 0) {
        sbi_notify_close(&raw->notify);
        PyMem_RawFree(raw);
        Py_DECREF(self);
        return sbi_state_raise(st, err, qid, NULL);
    }
    self->raw = raw;
    return (PyObject *)self;
}

static void
QueueWatch_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    qwatch_close(QueueWatchObject_CAST(op));
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* The raw part of an open watch, or NULL with ValueError. */
static qwatch_raw *
qwatch_open_raw(PyObject *op)
{
    qwatch_raw *raw = QueueWatchObject_CAST(op)->raw;
    if (raw == NULL) {
        PyErr_SetString(PyExc_ValueError, "the queue watch is closed");
    }
    return raw;
}

static PyObject *
QueueWatch_fileno(PyObject *op, PyObject *unused)
{
    qwatch_raw *raw = qwatch_open_raw(op);
    return raw ? PyLong_FromLong(raw->notify.rfd) : NULL;
}

static PyObject *
QueueWatch_drain(PyObject *op, PyObject *unused)
{
    qwatch_raw *raw = qwatch_open_raw(op);
    return raw ? PyBool_FromLong(sbi_notify_drain(&raw->notify)) : NULL;
}

static PyObject *
QueueWatch_close(PyObject *op, PyObject *unused)
{
    qwatch_close(QueueWatchObject_CAST(op));
    Py_RETURN_NONE;
}

static PyObject *
QueueWatch_repr(PyObject *op)
{
    QueueWatchObject *self = QueueWatchObject_CAST(op);
    return PyUnicode_FromFormat(
        "<_QueueWatch of Queue(%lld) for %s%s>", (long long)self->qid,
        self->put ? "put" : "get", self->raw ? "" : ", closed");
}

static PyMethodDef QueueWatch_methods[] = {
    {"fileno", QueueWatch_fileno, METH_NOARGS,
     PyDoc_STR("fileno($self, /)\n--\n\n"
               "The descriptor that becomes readable when the queue "
               "changes.")},
    {"drain", QueueWatch_drain, METH_NOARGS,
     PyDoc_STR("drain($self, /)\n--\n\n"
               "Make the descriptor unreadable again; return whether it "
               "was readable.")},
    {"close", QueueWatch_close, METH_NOARGS,
     PyDoc_STR("close($self, /)\n--\n\n"
               "Stop watching and close the descriptor (idempotent).")},
    {NULL, NULL},
};

static PyType_Slot QueueWatch_slots[] = {
    {Py_tp_dealloc, QueueWatch_dealloc},
    {Py_tp_repr, QueueWatch_repr},
    {Py_tp_methods, QueueWatch_methods},
    {Py_tp_doc, "A queue's changes as a readable descriptor (for "
                "Queue.aget() and Queue.aput())."},
    {0, NULL},
};

static PyType_Spec QueueWatch_spec = {
    .name = "subinterpreters._core._QueueWatch",
    .basicsize = sizeof(QueueWatchObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = QueueWatch_slots,
};

/* =====================================================================
 * Packed items
 */
typedef struct {
    PyObject_HEAD
    sbi_qitem *item;  // owned; NULL once queued
} QueueItemObject;

#define QueueItemObject_CAST(op) ((QueueItemObject *)(op))

PyObject *
sbi_queue_aio_item_new(sbi_state *st, sbi_qitem *item)
{
    QueueItemObject *self = PyObject_New(QueueItemObject, st->QueueItemType);
    if (self == NULL) {
        sbi_qitem_free(item);
        return NULL;
    }
    self->item = item;
    return (PyObject *)self;
}

sbi_qitem *
sbi_queue_aio_item_take(sbi_state *st, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, st->QueueItemType)) {
        PyErr_Format(PyExc_TypeError, "expected a packed queue item, got %T",
                     obj);
        return NULL;
    }
    sbi_qitem *item = QueueItemObject_CAST(obj)->item;
    if (item == NULL) {
        PyErr_SetString(PyExc_ValueError, "the item was queued already");
        return NULL;
    }
    QueueItemObject_CAST(obj)->item = NULL;
    return item;
}

void
sbi_queue_aio_item_restore(PyObject *obj, sbi_qitem *item)
{
    assert(QueueItemObject_CAST(obj)->item == NULL);
    QueueItemObject_CAST(obj)->item = item;
}

static void
QueueItem_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    sbi_qitem *item = QueueItemObject_CAST(op)->item;
    tp->tp_free(op);
    if (item != NULL) {
        sbi_qitem_free(item);
    }
    Py_DECREF(tp);
}

static PyType_Slot QueueItem_slots[] = {
    {Py_tp_dealloc, QueueItem_dealloc},
    {Py_tp_doc, "An object serialised once for Queue.aput()."},
    {0, NULL},
};

static PyType_Spec QueueItem_spec = {
    .name = "subinterpreters._core._QueueItem",
    .basicsize = sizeof(QueueItemObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = QueueItem_slots,
};

/* =====================================================================
 * Module glue
 */
int
sbi_queue_aio_init(PyObject *m, sbi_state *st)
{
    st->QueueWatchType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &QueueWatch_spec, NULL);
    if (st->QueueWatchType == NULL) {
        return -1;
    }
    st->QueueItemType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &QueueItem_spec, NULL);
    return st->QueueItemType == NULL ? -1 : 0;
}
