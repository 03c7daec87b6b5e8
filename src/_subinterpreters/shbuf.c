/* shbuf.c -- shared buffers: zero-copy memoryviews of one interpreter's
 * buffer in others.
 *
 * A record holds the Py_buffer taken from the exporter in its owner
 * interpreter.  Views in other interpreters (SharedBuffer objects) and
 * xidata in transit each hold one reference.  When the last goes, the
 * buffer must be released in the owner, with the owner's GIL: at once if
 * the current thread is attached there, else the record is put on the
 * pending list, drained when a thread next enters the owner (sessions,
 * API calls, destruction) -- for the main interpreter also through
 * Py_AddPendingCall, which always targets main since 3.12.
 *
 * Calls state.c and lock.h only (layers: docs/design.md).  Lock:
 * shbufs.mutex, a leaf lock.
 */
#include "shbuf.h"
#include "lock.h"

struct sbi_shbuf {
    Py_buffer view;  // owned by the owner interpreter
    int64_t owner;
    Py_ssize_t refs;         // protected by shbufs.mutex
    int abandoned;           // owner gone: never release
    struct sbi_shbuf *next;  // in shbufs.live or shbufs.pending
    struct sbi_shbuf *prev;
};

static struct {
    sbi_mutex mutex;
    sbi_shbuf *live;     // protected by mutex
    sbi_shbuf *pending;  // protected by mutex
    int main_scheduled;  // protected by mutex
} shbufs = {.mutex = SBI_MUTEX_INIT};

static void
shbuf_unlink(sbi_shbuf **head, sbi_shbuf *b)  // needs lock
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    }
    else {
        *head = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    b->next = b->prev = NULL;
}

static void
shbuf_push(sbi_shbuf **head, sbi_shbuf *b)  // needs lock
{
    b->prev = NULL;
    b->next = *head;
    if (*head != NULL) {
        (*head)->prev = b;
    }
    *head = b;
}

/* Take the buffer of obj in the current interpreter.  NULL with an
 * exception set on failure. */
sbi_shbuf *
sbi_shbuf_new(PyObject *obj)
{
    sbi_shbuf *b = PyMem_RawCalloc(1, sizeof(*b));
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_FULL) < 0) {
        PyErr_Clear();
        if (PyObject_GetBuffer(obj, &b->view, PyBUF_FULL_RO) < 0) {
            PyMem_RawFree(b);
            return NULL;
        }
    }
    b->owner = sbi_current_cid();
    b->refs = 1;
    sbi_mutex_lock_py(&shbufs.mutex);
    shbuf_push(&shbufs.live, b);
    sbi_mutex_unlock(&shbufs.mutex);
    return b;
}

static void
shbuf_incref(sbi_shbuf *b)  // any thread
{
    sbi_mutex_lock(&shbufs.mutex);
    b->refs++;
    sbi_mutex_unlock(&shbufs.mutex);
}

static int
drain_main_pending(void *unused)
{
    sbi_shbuf_drain_current();
    return 0;
}

/* Drop one reference; any thread, with or without a thread state. */
void
sbi_shbuf_decref(sbi_shbuf *b)
{
    int release_now = 0;
    int schedule_main = 0;
    sbi_mutex_lock(&shbufs.mutex);
    assert(b->refs > 0);
    if (--b->refs > 0) {
        sbi_mutex_unlock(&shbufs.mutex);
        return;
    }
    shbuf_unlink(&shbufs.live, b);
    if (b->abandoned) {
        sbi_mutex_unlock(&shbufs.mutex);
        PyMem_RawFree(b);
        return;
    }
    PyThreadState *ts = PyThreadState_GetUnchecked();
    if (ts != NULL &&
        PyInterpreterState_GetID(PyThreadState_GetInterpreter(ts)) == b->owner)
    {
        release_now = 1;
    }
    else {
        shbuf_push(&shbufs.pending, b);
        if (b->owner == 0 && !shbufs.main_scheduled) {
            shbufs.main_scheduled = 1;
            schedule_main = 1;
        }
    }
    sbi_mutex_unlock(&shbufs.mutex);
    if (release_now) {
        PyBuffer_Release(&b->view);
        PyMem_RawFree(b);
    }
    else if (schedule_main) {
        // Runs in the main interpreter's main thread; failure to queue
        // only delays the release to the next drain.
        if (Py_AddPendingCall(drain_main_pending, NULL) < 0) {
            sbi_mutex_lock(&shbufs.mutex);
            shbufs.main_scheduled = 0;
            sbi_mutex_unlock(&shbufs.mutex);
        }
    }
}

void
sbi_shbuf_drain_current(void)
{
    int64_t me = sbi_current_cid();
    for (;;) {
        sbi_shbuf *found = NULL;
        sbi_mutex_lock_py(&shbufs.mutex);
        if (me == 0) {
            shbufs.main_scheduled = 0;
        }
        for (sbi_shbuf *b = shbufs.pending; b != NULL; b = b->next) {
            if (b->owner == me) {
                found = b;
                shbuf_unlink(&shbufs.pending, b);
                break;
            }
        }
        sbi_mutex_unlock(&shbufs.mutex);
        if (found == NULL) {
            return;
        }
        PyBuffer_Release(&found->view);
        PyMem_RawFree(found);
    }
}

Py_ssize_t
sbi_shbuf_count_owned(int64_t id)
{
    Py_ssize_t n = 0;
    sbi_mutex_lock(&shbufs.mutex);
    for (sbi_shbuf *b = shbufs.live; b != NULL; b = b->next) {
        if (b->owner == id && !b->abandoned) {
            n++;
        }
    }
    sbi_mutex_unlock(&shbufs.mutex);
    return n;
}

void
sbi_shbuf_abandon(int64_t id)
{
    sbi_mutex_lock(&shbufs.mutex);
    for (sbi_shbuf *b = shbufs.live; b != NULL; b = b->next) {
        if (b->owner == id) {
            b->abandoned = 1;
        }
    }
    sbi_mutex_unlock(&shbufs.mutex);
}

/* ---------------------------------------------------------------------
 * SharedBuffer: the exporter behind a received memoryview.  One object
 * per received view, owned by the receiving interpreter; it holds one
 * reference on the record.
 */
typedef struct {
    PyObject_HEAD
    sbi_shbuf *buf;
} SharedBufferObject;

static int
SharedBuffer_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    SharedBufferObject *self = (SharedBufferObject *)op;
    Py_buffer *src = &self->buf->view;
    if ((flags & PyBUF_WRITABLE) && src->readonly) {
        PyErr_SetString(PyExc_BufferError, "shared buffer is read-only");
        return -1;
    }
    if (!(flags & PyBUF_STRIDES) && !PyBuffer_IsContiguous(src, 'C')) {
        PyErr_SetString(PyExc_BufferError, "shared buffer is not contiguous");
        return -1;
    }
    *view = *src;
    view->obj = Py_NewRef(op);
    view->internal = NULL;
    if (!(flags & PyBUF_FORMAT)) {
        view->format = NULL;
    }
    if (!(flags & PyBUF_ND)) {
        view->shape = NULL;
    }
    if (!(flags & PyBUF_STRIDES)) {
        view->strides = NULL;
    }
    return 0;
}

static void
SharedBuffer_dealloc(PyObject *op)
{
    SharedBufferObject *self = (SharedBufferObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->buf != NULL) {
        sbi_shbuf_decref(self->buf);
        self->buf = NULL;
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyType_Slot SharedBuffer_slots[] = {
    {Py_tp_dealloc, SharedBuffer_dealloc},
    {Py_bf_getbuffer, SharedBuffer_getbuffer},
    {0, NULL},
};

static PyType_Spec SharedBuffer_spec = {
    .name = "subinterpreters._core.SharedBuffer",
    .basicsize = sizeof(SharedBufferObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SharedBuffer_slots,
};

/* A memoryview over b in the current interpreter (takes a reference on
 * b).  NULL with an exception on failure. */
PyObject *
sbi_shbuf_to_memoryview(sbi_shbuf *b)
{
    sbi_state *st = sbi_state_current();
    if (st == NULL) {
        return NULL;
    }
    SharedBufferObject *obj =
        PyObject_New(SharedBufferObject, st->SharedBufferType);
    if (obj == NULL) {
        return NULL;
    }
    shbuf_incref(b);
    obj->buf = b;
    PyObject *mv = PyMemoryView_FromObject((PyObject *)obj);
    Py_DECREF(obj);
    return mv;
}

int
sbi_shbuf_module_init(PyObject *m, sbi_state *st)
{
    st->SharedBufferType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &SharedBuffer_spec, NULL);
    return st->SharedBufferType == NULL ? -1 : 0;
}

void
sbi_shbuf_after_fork(void)
{
    (void)sbi_mutex_init(&shbufs.mutex);
}
