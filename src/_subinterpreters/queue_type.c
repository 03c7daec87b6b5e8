/* queue_type.c -- the Python layer of the queues: the Queue heap type
 * (one object per id in each interpreter, cached in module state),
 * create_queue() and the private helpers used by subinterpreters._queues
 * and the tests.  A Queue object holds a binding on its raw queue
 * (queue.c).
 *
 * Queues register with the layers below at module init: a handle kind
 * with handles.c (a Queue crosses interpreters as its id) and the hooks of
 * hooks.c (an interpreter closed: unbind its items; the process exiting:
 * wake every waiter); and the loader of QueueEmpty/QueueFull with
 * state.c, for raising.
 *
 * Calls queue.c, xidata.c, handles.c, hooks.c and state.c (layers: docs/design.md).
 */
#include "queue_type.h"
#include "queue.h"
#include "queue_aio.h"
#include "hooks.h"
#include "xidata.h"
#include <math.h>
#include <stddef.h>

/* =====================================================================
 * Python layer: registered types and errors
 */

/* Store the classes and sentinels defined by subinterpreters._queues in
 * st.  All borrowed; 0, or -1 with TypeError if they do not fit. */
static int
queue_types_set(sbi_state *st, PyObject *empty, PyObject *full,
                PyObject *unbound, PyObject *unbound_error,
                PyObject *unbound_remove)
{
    if (!PyType_Check(empty) || !PyType_Check(full) ||
        !PyType_IsSubtype((PyTypeObject *)empty,
                          (PyTypeObject *)st->QueueError) ||
        !PyType_IsSubtype((PyTypeObject *)full,
                          (PyTypeObject *)st->QueueError))
    {
        PyErr_SetString(PyExc_TypeError,
                        "QueueEmpty and QueueFull must subclass QueueError");
        return -1;
    }
    PyObject *objs = PyTuple_Pack(3, unbound, unbound_error, unbound_remove);
    if (objs == NULL) {
        return -1;
    }
    Py_XSETREF(st->QueueEmpty, Py_NewRef(empty));
    Py_XSETREF(st->QueueFull, Py_NewRef(full));
    Py_XSETREF(st->unbound_objects, objs);
    return 0;
}

/* Make sure subinterpreters._queues has registered its types in this
 * interpreter, importing it if needed, so that an interpreter that only
 * received a Queue needs no import of its own.  0, or -1 with an
 * exception.  Thread state attached. */
static int
queue_types_ready(sbi_state *st)
{
    if (st->QueueEmpty != NULL && st->unbound_objects != NULL) {
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("subinterpreters._queues");
    if (mod == NULL) {
        return -1;
    }
    int rc = 0;
    if (st->QueueEmpty == NULL || st->unbound_objects == NULL) {
        // _queues was imported before with another instance of _core (a
        // re-import): register its objects with this one.
        static const char *const names[] = {
            "QueueEmpty",    "QueueFull",      "UNBOUND",
            "UNBOUND_ERROR", "UNBOUND_REMOVE",
        };
        PyObject *objs[5] = {NULL};
        for (int i = 0; i < 5 && rc == 0; i++) {
            objs[i] = PyObject_GetAttrString(mod, names[i]);
            rc = objs[i] == NULL ? -1 : 0;
        }
        if (rc == 0) {
            rc = queue_types_set(st, objs[0], objs[1], objs[2], objs[3],
                                 objs[4]);
        }
        for (int i = 0; i < 5; i++) {
            Py_XDECREF(objs[i]);
        }
    }
    Py_DECREF(mod);
    return rc;
}

/* Raise the exception for raw error err on queue qid.  Always returns
 * NULL. */
static PyObject *
queue_raise(sbi_state *st, int err, int64_t qid)
{
    return sbi_state_raise(st, err, qid, NULL);
}

/* The unbound op for an `unbounditems` argument.  0, or -1 with
 * NotImplementedError for an unknown value. */
static int
queue_unboundop_from_object(sbi_state *st, PyObject *obj, int *op)
{
    if (queue_types_ready(st) < 0) {
        return -1;
    }
#define SBI_X(name, value, index)                                             \
  if (obj == PyTuple_GET_ITEM(st->unbound_objects, index)) {                  \
    *op = value;                                                              \
    return 0;                                                                 \
  }
    QUEUE_UNBOUND_MAP(SBI_X)
#undef SBI_X
    PyErr_Format(PyExc_NotImplementedError,
                 "unsupported unbound replacement op %R", obj);
    return -1;
}

/* The sentinel for op (borrowed), or NULL with an exception. */
static PyObject *
queue_unboundop_to_object(sbi_state *st, int op)
{
    int index = sbi_queue_unbound_index(op);
    if (SBI_NEVER(index < 0)) {
        PyErr_SetString(PyExc_SystemError, "bad unbound op");
        return NULL;
    }
    if (queue_types_ready(st) < 0) {
        return NULL;
    }
    return PyTuple_GET_ITEM(st->unbound_objects, index);
}

/* =====================================================================
 * Python layer: argument helpers
 */

/* The absolute monotonic deadline (ns) for a timeout argument: -1 for
 * None (or absent) and for timeouts too long to matter.  0, or -1 with
 * ValueError / TypeError. */
static int
queue_deadline(PyObject *timeout, int64_t *deadline)
{
    *deadline = -1;
    if (timeout == NULL || timeout == Py_None) {
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(t >= 0.0)) {  // negative or NaN
        PyErr_SetString(PyExc_ValueError,
                        "timeout value must be non-negative");
        return -1;
    }
    if (t < 1e9) {  // else: about 31 years, treated as no limit
        *deadline = sbi_monotonic_ns() + (int64_t)(t * 1e9);
    }
    return 0;
}

/* =====================================================================
 * Python layer: the Queue type
 */
typedef struct {
    PyObject_HEAD
    int64_t id;
    sbi_queue *q;  // kept allocated by this object's binding
    PyObject *weakreflist;
} QueueObject;

#define QueueObject_CAST(op) ((QueueObject *)(op))

static void Queue_dealloc(PyObject *op);

/* Wrap q, on which the caller holds a binding that passes to the new
 * object (also on failure), and cache the object.  New reference or NULL
 * with an exception.  Needs the GIL of st's interpreter. */
static PyObject *
queue_object_new(sbi_state *st, sbi_queue *q, PyObject *key)
{
    QueueObject *self = PyObject_New(QueueObject, st->QueueType);
    if (self == NULL) {
        sbi_queue_decref(q);
        return NULL;
    }
    self->id = q->id;
    self->q = q;
    self->weakreflist = NULL;
    if (sbi_state_cache_put(st->queue_cache, key, (PyObject *)self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* The Queue object for qid in st's interpreter: the cached one, or a new
 * one that binds the queue.  New reference or NULL with an exception
 * (QueueNotFoundError if the queue does not exist). */
static PyObject *
queue_object_get(sbi_state *st, int64_t qid)
{
    PyObject *obj = NULL;
    PyObject *key = PyLong_FromLongLong(qid);
    if (key == NULL) {
        return NULL;
    }
    int err;
    obj = sbi_state_cache_get(st->queue_cache, key, &err);
    if (obj != NULL || err < 0) {
        goto done;
    }
    if (queue_types_ready(st) < 0) {
        goto done;
    }
    sbi_queue *q = NULL;
    err = sbi_queue_bind(qid, &q);
    if (err < 0) {
        queue_raise(st, err, qid);
        goto done;
    }
    // Binding may have released the GIL: another thread of this
    // interpreter may have made the object meanwhile.
    obj = sbi_state_cache_get(st->queue_cache, key, &err);
    if (obj != NULL || err < 0) {
        sbi_queue_decref(q);
        goto done;
    }
    obj = queue_object_new(st, q, key);
done:
    Py_DECREF(key);
    return obj;
}

static PyObject *
Queue_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *idobj;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Queue() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Queue", 1, 1, &idobj)) {
        return NULL;
    }
    if (!PyLong_Check(idobj)) {
        PyErr_Format(PyExc_TypeError, "id must be an int, got %R", idobj);
        return NULL;
    }
    int overflow = 0;
    long long id = PyLong_AsLongLongAndOverflow(idobj, &overflow);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow > 0) {
        PyErr_SetString(PyExc_OverflowError, "queue ID too large");
        return NULL;
    }
    if (id < 0 || overflow < 0) {
        PyErr_Format(PyExc_ValueError,
                     "queue ID must be a non-negative int, got %R", idobj);
        return NULL;
    }
    return queue_object_get(sbi_state_from_type(tp), id);
}

static void
Queue_dealloc(PyObject *op)
{
    QueueObject *self = QueueObject_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject *exc = PyErr_GetRaisedException();
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs(op);
    }
    sbi_state *st = PyType_GetModuleState(tp);
    if (st != NULL && st->queue_cache != NULL) {
        sbi_state_cache_forget(st->queue_cache, self->id);
    }
    sbi_queue *q = self->q;
    tp->tp_free(op);
    if (q != NULL) {
        sbi_queue_decref(q);
    }
    Py_DECREF(tp);
    PyErr_SetRaisedException(exc);
}

static PyObject *
Queue_repr(PyObject *op)
{
    return PyUnicode_FromFormat("Queue(%lld)",
                                (long long)QueueObject_CAST(op)->id);
}

static Py_hash_t
Queue_hash(PyObject *op)
{
    return sbi_state_hash_id(QueueObject_CAST(op)->id);
}

static PyObject *
Queue_reduce(PyObject *op, PyObject *unused)
{
    return Py_BuildValue("O(L)", (PyObject *)Py_TYPE(op),
                         (long long)QueueObject_CAST(op)->id);
}

static PyObject *
Queue_get_id(PyObject *op, void *closure)
{
    return PyLong_FromLongLong(QueueObject_CAST(op)->id);
}

static PyObject *
Queue_get_maxsize(PyObject *op, void *closure)
{
    return PyLong_FromSsize_t(QueueObject_CAST(op)->q->maxsize);
}

static PyObject *
Queue_get_unbounditems(PyObject *op, void *closure)
{
    sbi_state *st = PyType_GetModuleState(Py_TYPE(op));
    int unboundop = QueueObject_CAST(op)->q->unboundop;
    return Py_XNewRef(queue_unboundop_to_object(st, unboundop));
}

PyDoc_STRVAR(Queue_qsize_doc,
             "qsize($self, /)\n--\n\n"
             "Return the number of items in the queue (unbound placeholders\n"
             "included).");

static PyObject *
Queue_qsize(PyObject *op, PyTypeObject *cls, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames)
{
    QueueObject *self = QueueObject_CAST(op);
    if (nargs > 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "qsize() takes no arguments");
        return NULL;
    }
    Py_ssize_t n = sbi_queue_count(self->q);
    if (n < 0) {
        return queue_raise(PyType_GetModuleState(cls), SBI_ERR_QUEUE_DESTROYED,
                           self->id);
    }
    return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(Queue_empty_doc,
             "empty($self, /)\n--\n\n"
             "Return True if the queue is empty (qsize() == 0).");

static PyObject *
Queue_empty(PyObject *op, PyTypeObject *cls, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames)
{
    QueueObject *self = QueueObject_CAST(op);
    if (nargs > 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "empty() takes no arguments");
        return NULL;
    }
    Py_ssize_t n = sbi_queue_count(self->q);
    if (n < 0) {
        return queue_raise(PyType_GetModuleState(cls), SBI_ERR_QUEUE_DESTROYED,
                           self->id);
    }
    return PyBool_FromLong(n == 0);
}

PyDoc_STRVAR(Queue_full_doc,
             "full($self, /)\n--\n\n"
             "Return True if the queue is bounded (maxsize > 0) and full.");

static PyObject *
Queue_full(PyObject *op, PyTypeObject *cls, PyObject *const *args,
           Py_ssize_t nargs, PyObject *kwnames)
{
    QueueObject *self = QueueObject_CAST(op);
    if (nargs > 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "full() takes no arguments");
        return NULL;
    }
    Py_ssize_t n = sbi_queue_count(self->q);
    if (n < 0) {
        return queue_raise(PyType_GetModuleState(cls), SBI_ERR_QUEUE_DESTROYED,
                           self->id);
    }
    Py_ssize_t maxsize = self->q->maxsize;
    return PyBool_FromLong(maxsize > 0 && n >= maxsize);
}

/* Serialise obj into a new item for q (a NotShareableError is raised
 * before anything is queued).  unbounditems NULL or None: the queue's
 * default.  New item owned by the caller, or NULL with an exception. */
static sbi_qitem *
queue_item_pack(sbi_state *st, sbi_queue *q, PyObject *obj,
                PyObject *unbounditems)
{
    int unboundop = q->unboundop;
    if (unbounditems != NULL && unbounditems != Py_None &&
        queue_unboundop_from_object(st, unbounditems, &unboundop) < 0)
    {
        return NULL;
    }
    sbi_qitem *item = PyMem_RawMalloc(sizeof(*item));
    if (item == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    item->next = NULL;
    item->owner = sbi_current_cid();
    item->unboundop = unboundop;
    item->data = sbi_xidata_new(obj, SBI_XI_FULL);
    if (item->data == NULL) {
        PyMem_RawFree(item);
        return NULL;
    }
    return item;
}

/* put() and put_nowait(): serialise obj here, then add it.  New
 * reference (None) or NULL. */
static PyObject *
queue_put_impl(sbi_state *st, QueueObject *self, PyObject *obj, int block,
               PyObject *timeout, PyObject *unbounditems)
{
    int64_t deadline = -1;
    if (block && queue_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    sbi_qitem *item = queue_item_pack(st, self->q, obj, unbounditems);
    if (item == NULL) {
        return NULL;
    }
    sbi_queue_op op = {1, item};
    int err = sbi_queue_do(self->q, &op, block, deadline);
    if (err < 0) {
        sbi_qitem_free(item);
        return queue_raise(st, err, self->id);
    }
    Py_RETURN_NONE;
}

/* The value of an item taken by get(), which is consumed (freed).  New
 * reference or NULL with an exception. */
static PyObject *
queue_item_result(sbi_state *st, sbi_qitem *item)
{
    PyObject *res = NULL;
    if (item->data != NULL) {
        res = sbi_xidata_load(item->data, NULL);
    }
    else if (item->unboundop == UNBOUND_ERROR) {
        PyErr_SetString(st->ItemInterpreterDestroyed,
                        "item's original interpreter destroyed");
    }
    else if (SBI_ALWAYS(item->unboundop == UNBOUND_REPLACE)) {
        res = Py_XNewRef(queue_unboundop_to_object(st, UNBOUND_REPLACE));
    }
    else {
        PyErr_SetString(PyExc_SystemError, "removed item still queued");
    }
    sbi_qitem_free(item);
    return res;
}

/* get() and get_nowait().  New reference or NULL. */
static PyObject *
queue_get_impl(sbi_state *st, QueueObject *self, int block, PyObject *timeout)
{
    int64_t deadline = -1;
    if (block && queue_deadline(timeout, &deadline) < 0) {
        return NULL;
    }
    sbi_queue_op op = {0, NULL};
    int err = sbi_queue_do(self->q, &op, block, deadline);
    if (err < 0) {
        return queue_raise(st, err, self->id);
    }
    return queue_item_result(st, op.item);
}

PyDoc_STRVAR(
    Queue_put_doc,
    "put($self, obj, /, block=True, timeout=None, *, unbounditems=None)\n"
    "--\n\n"
    "Add obj to the queue.\n\n"
    "If block is true, wait while the queue is full: without limit when\n"
    "timeout is None, else for at most timeout seconds, then raise\n"
    "QueueFull.  The wait can be interrupted with Ctrl-C.\n\n"
    "The object is copied (natively, else by pickle; memoryviews share\n"
    "their buffer and a Queue stays the same queue).  unbounditems says\n"
    "what get() does with the item if this interpreter is destroyed\n"
    "first: UNBOUND (returned in its place), UNBOUND_ERROR (get() raises\n"
    "ItemInterpreterDestroyed) or UNBOUND_REMOVE (the item disappears);\n"
    "None means the queue's default.");

static PyObject *
Queue_put(PyObject *op, PyTypeObject *cls, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"obj", "block", "timeout",
                                        "unbounditems"};
    PyObject *a[4];
    if (sbi_state_parse_args("put", args, nargs, kwnames, names, 3, 1, 4, a) <
        0) {
        return NULL;
    }
    int block = a[1] == NULL ? 1 : PyObject_IsTrue(a[1]);
    if (block < 0) {
        return NULL;
    }
    return queue_put_impl(PyType_GetModuleState(cls), QueueObject_CAST(op),
                          a[0], block, a[2], a[3]);
}

PyDoc_STRVAR(Queue_put_nowait_doc,
             "put_nowait($self, obj, /, *, unbounditems=None)\n--\n\n"
             "Add obj to the queue, or raise QueueFull if it is full.");

static PyObject *
Queue_put_nowait(PyObject *op, PyTypeObject *cls, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"obj", "unbounditems"};
    PyObject *a[2];
    if (sbi_state_parse_args("put_nowait", args, nargs, kwnames, names, 1, 1,
                             2, a) < 0)
    {
        return NULL;
    }
    return queue_put_impl(PyType_GetModuleState(cls), QueueObject_CAST(op),
                          a[0], 0, NULL, a[1]);
}

PyDoc_STRVAR(
    Queue_get_doc,
    "get($self, /, block=True, timeout=None)\n--\n\n"
    "Remove and return the next item.\n\n"
    "If block is true, wait while the queue is empty: without limit when\n"
    "timeout is None, else for at most timeout seconds, then raise\n"
    "QueueEmpty.  The wait can be interrupted with Ctrl-C.  An item whose\n"
    "interpreter was destroyed gives UNBOUND or raises\n"
    "ItemInterpreterDestroyed, following its unbounditems.");

static PyObject *
Queue_get(PyObject *op, PyTypeObject *cls, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"block", "timeout"};
    PyObject *a[2];
    if (sbi_state_parse_args("get", args, nargs, kwnames, names, 2, 0, 2, a) <
        0) {
        return NULL;
    }
    int block = a[0] == NULL ? 1 : PyObject_IsTrue(a[0]);
    if (block < 0) {
        return NULL;
    }
    return queue_get_impl(PyType_GetModuleState(cls), QueueObject_CAST(op),
                          block, a[1]);
}

PyDoc_STRVAR(
    Queue_get_nowait_doc,
    "get_nowait($self, /)\n--\n\n"
    "Remove and return the next item, or raise QueueEmpty if there is\n"
    "none.");

static PyObject *
Queue_get_nowait(PyObject *op, PyTypeObject *cls, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs > 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "get_nowait() takes no arguments");
        return NULL;
    }
    return queue_get_impl(PyType_GetModuleState(cls), QueueObject_CAST(op), 0,
                          NULL);
}

/* ---------------------------------------------------------------------
 * asyncio (queue_aio.c has the raw pieces, subinterpreters._aio the
 * coroutines)
 */
PyDoc_STRVAR(
    Queue_aget_doc,
    "aget($self, /, timeout=None)\n--\n\n"
    "Remove and return the next item, awaiting one without blocking the\n"
    "event loop and without a thread: as get(), QueueEmpty if timeout\n"
    "seconds pass first.  Cancelling the awaiting task takes nothing from\n"
    "the queue.");

static PyObject *
Queue_aget(PyObject *op, PyTypeObject *cls, PyObject *const *args,
           Py_ssize_t nargs, PyObject *kwnames)
{
    return sbi_state_forward("subinterpreters._aio", "queue_get", op, args,
                             nargs, kwnames);
}

PyDoc_STRVAR(
    Queue_aput_doc,
    "aput($self, obj, /, timeout=None, *, unbounditems=None)\n--\n\n"
    "Add obj to the queue, awaiting room without blocking the event loop\n"
    "and without a thread: as put(), QueueFull if timeout seconds pass\n"
    "first.  obj is copied once, when aput() is called.  Cancelling the\n"
    "awaiting task before it returns leaves the queue without obj.");

static PyObject *
Queue_aput(PyObject *op, PyTypeObject *cls, PyObject *const *args,
           Py_ssize_t nargs, PyObject *kwnames)
{
    return sbi_state_forward("subinterpreters._aio", "queue_put", op, args,
                             nargs, kwnames);
}

/* _watch(put): a _QueueWatch for this queue (queue_aio.h). */
static PyObject *
Queue_watch(PyObject *op, PyTypeObject *cls, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"put"};
    PyObject *a[1];
    if (sbi_state_parse_args("_watch", args, nargs, kwnames, names, 1, 1, 1,
                             a) < 0)
    {
        return NULL;
    }
    int put = PyObject_IsTrue(a[0]);
    if (put < 0) {
        return NULL;
    }
    return sbi_queue_aio_watch(PyType_GetModuleState(cls),
                               QueueObject_CAST(op)->id, put);
}

/* _pack(obj, unbounditems=None): obj serialised for _put_packed(). */
static PyObject *
Queue_pack(PyObject *op, PyTypeObject *cls, PyObject *const *args,
           Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"obj", "unbounditems"};
    PyObject *a[2];
    if (sbi_state_parse_args("_pack", args, nargs, kwnames, names, 2, 1, 2,
                             a) < 0) {
        return NULL;
    }
    sbi_state *st = PyType_GetModuleState(cls);
    sbi_qitem *item = queue_item_pack(st, QueueObject_CAST(op)->q, a[0], a[1]);
    return item ? sbi_queue_aio_item_new(st, item) : NULL;
}

/* _put_packed(item): put_nowait() of a packed item: QueueFull leaves it
 * packed, for the next try. */
static PyObject *
Queue_put_packed(PyObject *op, PyTypeObject *cls, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"item"};
    PyObject *a[1];
    if (sbi_state_parse_args("_put_packed", args, nargs, kwnames, names, 1, 1,
                             1, a) < 0)
    {
        return NULL;
    }
    sbi_state *st = PyType_GetModuleState(cls);
    QueueObject *self = QueueObject_CAST(op);
    sbi_qitem *item = sbi_queue_aio_item_take(st, a[0]);
    if (item == NULL) {
        return NULL;
    }
    sbi_queue_op qop = {1, item};
    int err = sbi_queue_do(self->q, &qop, 0, -1);
    if (err < 0) {
        sbi_queue_aio_item_restore(a[0], item);
        return queue_raise(st, err, self->id);
    }
    Py_RETURN_NONE;
}

#define QUEUE_METHOD(name, func, doc)                                         \
  {                                                                           \
    name, _PyCFunction_CAST(func),                                            \
        METH_METHOD | METH_FASTCALL | METH_KEYWORDS, doc                      \
  }

static PyMethodDef Queue_methods[] = {
    QUEUE_METHOD("put", Queue_put, Queue_put_doc),
    QUEUE_METHOD("put_nowait", Queue_put_nowait, Queue_put_nowait_doc),
    QUEUE_METHOD("get", Queue_get, Queue_get_doc),
    QUEUE_METHOD("get_nowait", Queue_get_nowait, Queue_get_nowait_doc),
    QUEUE_METHOD("aget", Queue_aget, Queue_aget_doc),
    QUEUE_METHOD("aput", Queue_aput, Queue_aput_doc),
    QUEUE_METHOD("_watch", Queue_watch, NULL),
    QUEUE_METHOD("_pack", Queue_pack, NULL),
    QUEUE_METHOD("_put_packed", Queue_put_packed, NULL),
    QUEUE_METHOD("qsize", Queue_qsize, Queue_qsize_doc),
    QUEUE_METHOD("empty", Queue_empty, Queue_empty_doc),
    QUEUE_METHOD("full", Queue_full, Queue_full_doc),
    {"__reduce__", Queue_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

#undef QUEUE_METHOD

static PyGetSetDef Queue_getset[] = {
    {"id", Queue_get_id, NULL, "the queue's ID", NULL},
    {"maxsize", Queue_get_maxsize, NULL,
     "the maximum number of items (<= 0: unbounded)", NULL},
    {"unbounditems", Queue_get_unbounditems, NULL,
     "the default unbounditems of put()", NULL},
    {NULL},
};

static PyMemberDef Queue_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(QueueObject, weakreflist),
     Py_READONLY},
    {NULL},
};

PyDoc_STRVAR(Queue_doc,
             "Queue(id, /)\n--\n\n"
             "A cross-interpreter FIFO queue (one object per id in each\n"
             "interpreter).  Create one with create_queue().");

static PyType_Slot Queue_slots[] = {
    {Py_tp_new, Queue_new},
    {Py_tp_dealloc, Queue_dealloc},
    {Py_tp_repr, Queue_repr},
    {Py_tp_hash, Queue_hash},
    {Py_tp_methods, Queue_methods},
    {Py_tp_getset, Queue_getset},
    {Py_tp_members, Queue_members},
    {Py_tp_doc, (void *)Queue_doc},
    {0, NULL},
};

static PyType_Spec Queue_spec = {
    .name = "subinterpreters.Queue",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Queue_slots,
};

/* =====================================================================
 * The handle kind's Python side (registered with handles.c)
 */
static int
queue_handle_check(PyObject *obj, int64_t *qid)
{
    // Only our Queue type (in any interpreter, any module instance) has
    // this dealloc; the type cannot be subclassed.
    if (Py_TYPE(obj)->tp_dealloc != Queue_dealloc) {
        return 0;
    }
    *qid = QueueObject_CAST(obj)->id;
    return 1;
}

static PyObject *
queue_handle_object(int64_t qid)
{
    sbi_state *st = sbi_state_current();
    if (st == NULL) {
        return NULL;
    }
    return queue_object_get(st, qid);
}

/* =====================================================================
 * Module functions
 */
PyDoc_STRVAR(
    queue_create_doc,
    "create_queue($module, /, maxsize=0, *, unbounditems=UNBOUND)\n--\n\n"
    "Return a new cross-interpreter queue.\n\n"
    "maxsize <= 0 means unbounded.  unbounditems is the default of\n"
    "Queue.put() for items whose interpreter is destroyed.");

static PyObject *
queue_create(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const names[] = {"maxsize", "unbounditems"};
    PyObject *a[2];
    sbi_state *st = sbi_state_of(m);
    if (sbi_state_parse_args("create_queue", args, nargs, kwnames, names, 1, 0,
                             2, a) < 0)
    {
        return NULL;
    }
    Py_ssize_t maxsize = 0;
    if (a[0] != NULL) {
        maxsize = PyNumber_AsSsize_t(a[0], PyExc_OverflowError);
        if (maxsize == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    int unboundop = UNBOUND_REPLACE;
    if (a[1] != NULL && queue_unboundop_from_object(st, a[1], &unboundop) < 0)
    {
        return NULL;
    }
    if (queue_types_ready(st) < 0) {
        return NULL;
    }
    sbi_queue *q = NULL;
    int err = sbi_queue_create(maxsize, unboundop, &q);
    if (err < 0) {
        return queue_raise(st, err, -1);
    }
    PyObject *key = PyLong_FromLongLong(q->id);
    if (key == NULL) {
        sbi_queue_decref(q);
        return NULL;
    }
    PyObject *obj = queue_object_new(st, q, key);
    Py_DECREF(key);
    return obj;
}

/* Convert a queue id argument (O& converter). */
static int
queue_id_converter(PyObject *arg, void *ptr)
{
    int64_t *qid = ptr;
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "id must be an int, got %R", arg);
        return 0;
    }
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred()) {
        return 0;
    }
    if (v < 0) {
        PyErr_Format(PyExc_ValueError,
                     "queue ID must be a non-negative int, got %R", arg);
        return 0;
    }
    *qid = v;
    return 1;
}

PyDoc_STRVAR(
    queue_register_types_doc,
    "_register_queue_types($module, empty, full, unbound, unbound_error,\n"
    "                      unbound_remove, /)\n--\n\n"
    "Register QueueEmpty, QueueFull and the unbounditems sentinels (called\n"
    "by subinterpreters._queues in each interpreter).");

static PyObject *
queue_register_types(PyObject *m, PyObject *args)
{
    PyObject *empty, *full, *unbound, *unbound_error, *unbound_remove;
    if (!PyArg_ParseTuple(args, "OOOOO:_register_queue_types", &empty, &full,
                          &unbound, &unbound_error, &unbound_remove))
    {
        return NULL;
    }
    if (queue_types_set(sbi_state_of(m), empty, full, unbound, unbound_error,
                        unbound_remove) < 0)
    {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    queue_destroy_doc,
    "_queue_destroy($module, qid, /)\n--\n\n"
    "Destroy the queue now, whatever refers to it: its items are dropped,\n"
    "blocked put()/get() calls raise QueueNotFoundError, and so does any\n"
    "later use.");

static PyObject *
queue_destroy(PyObject *m, PyObject *arg)
{
    int64_t qid;
    if (!queue_id_converter(arg, &qid)) {
        return NULL;
    }
    int err = sbi_queue_destroy_id(qid);
    if (err < 0) {
        return queue_raise(sbi_state_of(m), err, qid);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(queue_list_ids_doc,
             "_queue_list_ids($module, /)\n--\n\n"
             "Return the ids of all existing queues, oldest first.");

static PyObject *
queue_list_ids(PyObject *m, PyObject *unused)
{
    sbi_queue **qs = NULL;
    Py_ssize_t n = 0;
    PyObject *list = NULL;
    int err = sbi_queue_snapshot(&qs, &n);
    if (err < 0) {
        return queue_raise(sbi_state_of(m), err, -1);
    }
    list = PyList_New(0);
    // The registry list is newest first.
    for (Py_ssize_t i = n - 1; list != NULL && i >= 0; i--) {
        sbi_queue *q = qs[i];
        if (sbi_queue_is_destroyed(q)) {
            continue;
        }
        PyObject *id = PyLong_FromLongLong(q->id);
        if (id == NULL || PyList_Append(list, id) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(id);
    }
    sbi_queue_snapshot_free(qs, n);
    return list;
}

PyDoc_STRVAR(
    queue_refs_doc,
    "_queue_refs($module, qid, /)\n--\n\n"
    "Return the number of bindings on the queue (Queue objects in all\n"
    "interpreters plus copies in transit).  For tests.");

static PyObject *
queue_refs(PyObject *m, PyObject *arg)
{
    int64_t qid;
    if (!queue_id_converter(arg, &qid)) {
        return NULL;
    }
    Py_ssize_t refs = sbi_queue_refs(qid);
    if (refs < 0) {
        return queue_raise(sbi_state_of(m), SBI_ERR_QUEUE_NOT_FOUND, qid);
    }
    return PyLong_FromSsize_t(refs);
}

static PyMethodDef queue_methods[] = {
    {"create_queue", _PyCFunction_CAST(queue_create),
     METH_FASTCALL | METH_KEYWORDS, queue_create_doc},
    {"_register_queue_types", queue_register_types, METH_VARARGS,
     queue_register_types_doc},
    {"_queue_destroy", queue_destroy, METH_O, queue_destroy_doc},
    {"_queue_list_ids", queue_list_ids, METH_NOARGS, queue_list_ids_doc},
    {"_queue_refs", queue_refs, METH_O, queue_refs_doc},
    {NULL, NULL},
};

/* =====================================================================
 * Module glue
 */
int
sbi_queue_type_init(PyObject *m, sbi_state *st)
{
    st->QueueType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Queue_spec, NULL);
    if (st->QueueType == NULL) {
        return -1;
    }
    if (PyModule_AddType(m, st->QueueType) < 0) {
        return -1;
    }
    st->queue_cache = PyDict_New();
    if (st->queue_cache == NULL || sbi_queue_aio_init(m, st) < 0) {
        return -1;
    }
    static const sbi_handle_kind queue_handle = {
        queue_handle_check, sbi_queue_handle_bind, sbi_queue_handle_release,
        queue_handle_object};
    static const sbi_hooks queue_hooks = {sbi_queue_unbind_interp,
                                          sbi_queue_wake_all};
    if (sbi_handles_register(&queue_handle) < 0 ||
        sbi_hooks_register(&queue_hooks) < 0)
    {
        return -1;
    }
    // QueueEmpty, QueueFull and unbound_objects are registered by
    // subinterpreters._queues (queue_types_ready()), loaded when first
    // needed, for raising too.
    sbi_state_register_loader(queue_types_ready);
    return PyModule_AddFunctions(m, queue_methods);
}
