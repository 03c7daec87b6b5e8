/* xidata.c -- cross-interpreter data: serialising Python values into
 * self-contained raw memory in one interpreter (the encoder, one
 * encode_* per type), the container's lifetime, and the per-thread
 * scratch buffers.
 *
 * The wire format is in wire.h and the decoder in xidecode.c.  Functions
 * cross as code when funcship.c says they may (code.c packs them), what
 * has no native form as a pickle through pickling.c, buffers without a
 * copy through shbuf.c, handles through the kinds registered in
 * handles.c.
 */
#include "xidata.h"
#include "wire.h"
#include "xidecode.h"
#include "funcship.h"
#include "code.h"
#include "pickling.h"
#include "tuning.h"
#include <pthread.h>
#include <string.h>

/* =====================================================================
 * Per-thread scratch buffers
 *
 * glibc serves a big allocation with mmap, or trims its heap when a big
 * block goes back, so a fresh data buffer of a megabyte per transfer
 * costs a page fault per 4 KiB page on first touch -- more than the copy
 * (about 740 faults for a 1 MiB call() round trip).  So each OS thread
 * keeps the biggest data buffer of SBI_SCRATCH_MIN..SBI_SCRATCH_MAX bytes it
 * freed last, and its next big encoding writes into it.
 *
 * The slot belongs to the thread: no lock; any thread, with or without a
 * thread state (the raw allocator needs no GIL).  The buffer is freed by
 * the key's destructor when the thread exits (the main thread's stays
 * until the process ends).  Memory bound: SBI_SCRATCH_MAX per thread that
 * made or freed a big transfer.  The capacity lives in a thread-local
 * next to the key, so the key's value is the buffer itself.
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_usable;  // the key exists (set once)
static _Thread_local size_t scratch_cap;

static void
scratch_destroy(void *p)  // thread exit, no thread state
{
    PyMem_RawFree(p);
}

static void
scratch_init(void)
{
    scratch_usable = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

/* Take this thread's scratch buffer if it holds at least need bytes.
 * Returns it (now owned by the caller, *cap set) or NULL. */
static char *
scratch_take(size_t need, size_t *cap)
{
    (void)pthread_once(&scratch_once, scratch_init);
    if (!scratch_usable) {
        return NULL;
    }
    char *p = pthread_getspecific(scratch_key);
    if (p == NULL || scratch_cap < need) {
        return NULL;
    }
    *cap = scratch_cap;
    (void)pthread_setspecific(scratch_key, NULL);
    scratch_cap = 0;
    return p;
}

/* Give up a data buffer of capacity cap (PyMem_Raw; NULL accepted): kept
 * as this thread's scratch buffer if its size fits and it is bigger than
 * the one kept, else freed. */
static void
scratch_give(char *p, size_t cap)
{
    if (p == NULL) {
        return;
    }
    if (cap >= SBI_SCRATCH_MIN && cap <= SBI_SCRATCH_MAX) {
        (void)pthread_once(&scratch_once, scratch_init);
        if (scratch_usable) {
            char *old = pthread_getspecific(scratch_key);
            if (old == NULL || scratch_cap < cap) {
                if (pthread_setspecific(scratch_key, p) == 0) {
                    scratch_cap = cap;
                    PyMem_RawFree(old);
                    return;
                }
            }
        }
    }
    PyMem_RawFree(p);
}

/* =====================================================================
 * The container and the writer
 */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
    sbi_shbuf **bufs;
    Py_ssize_t nbufs;
    Py_ssize_t capbufs;
    sbi_handle_ref *handles;
    Py_ssize_t nhandles;
    Py_ssize_t caphandles;
    sbi_xi_mode mode;
    PyObject **pins;  // NULL: copy every blob; else borrow big
                      // immutable payloads, pinning their owner
                      // in the list *pins (created on demand)
    int borrows;      // a blob was borrowed
    int too_deep;     // SBI_MAX_DEPTH exceeded, or a container seen
                      // twice: FULL mode pickles the whole value
    size_t nodes;     // DATA mode: objects encoded so far
    int trusted;      // encoding defaults that default_is_native()
                      // checked: repeated immutables are copied
    PyObject **seen;  // FULL mode: containers encoded so far
    size_t capseen;   // (open addressing; borrowed pointers)
    size_t nseen;
} writer;

static void
writer_release(writer *w)
{
    for (Py_ssize_t i = 0; i < w->nbufs; i++) {
        sbi_shbuf_decref(w->bufs[i]);
    }
    sbi_handles_release(w->handles, w->nhandles);
    scratch_give(w->p, w->cap);
    PyMem_RawFree(w->bufs);
    PyMem_RawFree(w->handles);
    PyMem_RawFree(w->seen);
    memset(w, 0, sizeof(*w));
}

/* FULL mode: note that container obj is being encoded.  A container met
 * twice (a shared reference, or a cycle) would be copied once per
 * reference -- exponentially for nested sharing -- and lose its identity,
 * so the whole value is pickled instead, as pickle keeps both.  Returns
 * 0, or -1 with an exception (too_deep set for a repeat). */
static int
writer_see(writer *w, PyObject *obj)
{
    if (w->mode != SBI_XI_FULL || w->trusted) {
        return 0;
    }
    if (w->nseen * 2 >= w->capseen) {
        size_t cap = w->capseen ? w->capseen * 2 : 64;
        PyObject **t = PyMem_RawCalloc(cap, sizeof(PyObject *));
        if (t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < w->capseen; i++) {
            PyObject *o = w->seen[i];
            if (o != NULL) {
                size_t h = ((uintptr_t)o >> 4) & (cap - 1);
                while (t[h] != NULL) {
                    h = (h + 1) & (cap - 1);
                }
                t[h] = o;
            }
        }
        PyMem_RawFree(w->seen);
        w->seen = t;
        w->capseen = cap;
    }
    size_t h = ((uintptr_t)obj >> 4) & (w->capseen - 1);
    while (w->seen[h] != NULL) {
        if (w->seen[h] == obj) {
            w->too_deep = 1;
            PyErr_SetString(PyExc_ValueError, "shared reference");
            return -1;
        }
        h = (h + 1) & (w->capseen - 1);
    }
    w->seen[h] = obj;
    w->nseen++;
    return 0;
}

static int
writer_grow(writer *w, size_t extra)
{
    if (w->len + extra <= w->cap) {
        return 0;
    }
    if (extra > SIZE_MAX - w->len - 64) {
        PyErr_NoMemory();
        return -1;
    }
    size_t need = w->len + extra;
    size_t cap = w->cap ? w->cap : 64;
    if (need > cap * 2) {
        // A large blob: size exactly (plus room for a little more data)
        // rather than doubling past it.
        cap = need + 64;
    }
    while (cap < need) {
        cap *= 2;
    }
    size_t scap;
    char *p = cap >= SBI_SCRATCH_MIN ? scratch_take(need, &scap) : NULL;
    if (p != NULL) {
        if (w->len > 0) {
            memcpy(p, w->p, w->len);
        }
        scratch_give(w->p, w->cap);
        cap = scap;
    }
    else {
        p = PyMem_RawRealloc(w->p, cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    w->p = p;
    w->cap = cap;
    return 0;
}

static int
write_raw(writer *w, const void *src, size_t n)
{
    if (writer_grow(w, n) < 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(w->p + w->len, src, n);
    }
    w->len += n;
    return 0;
}

static int
write_tag(writer *w, char tag)
{
    return write_raw(w, &tag, 1);
}

static int
write_u64(writer *w, uint64_t v)
{
    return write_raw(w, &v, sizeof(v));
}

static int
write_blob(writer *w, char tag, const void *src, size_t n)
{
    if (writer_grow(w, 1 + sizeof(uint64_t) + n) < 0) {
        return -1;
    }
    w->p[w->len++] = tag;
    uint64_t len = n;
    memcpy(w->p + w->len, &len, sizeof(len));
    w->len += sizeof(len);
    if (n > 0) {
        memcpy(w->p + w->len, src, n);
    }
    w->len += n;
    return 0;
}

/* Borrowed blobs.  When the writer has pins (the sender keeps them alive
 * and waits until the receiver has decoded: call() arguments,
 * prepare_main() values -- never queues, whose putter goes on), a payload
 * of at least SBI_BORROW_MIN bytes owned by an immutable object is not
 * copied: the data records its address and length, and owner is
 * appended to *w->pins, so the receiver's decoding is the only copy.
 * The reference in the pins keeps the payload alive, in place and
 * unchanged even if the sender drops its own references meanwhile (other
 * threads of its interpreter run while it waits): owner must be an exact
 * bytes or str, whose contents never change and whose in-place resizes
 * need a reference count of 1 (bytearray is mutable: always copied).
 * The receiver reads the payload while attached to its own interpreter;
 * it never touches the object itself.
 *
 * Writes tag then the blob; 0, or -1 with an exception set. */
static int
write_blob_from(writer *w, char tag, PyObject *owner, const void *src,
                size_t n)
{
    if (w->pins == NULL || n < SBI_BORROW_MIN) {
        return write_blob(w, tag, src, n);
    }
    if (*w->pins == NULL) {
        *w->pins = PyList_New(0);
        if (*w->pins == NULL) {
            return -1;
        }
    }
    if (PyList_Append(*w->pins, owner) < 0 ||
        writer_grow(w, 1 + 2 * sizeof(uint64_t)) < 0)
    {
        return -1;
    }
    uint64_t word[2] = {(uint64_t)n | BLOB_BORROWED, (uint64_t)(uintptr_t)src};
    w->p[w->len++] = tag;
    memcpy(w->p + w->len, word, sizeof(word));
    w->len += sizeof(word);
    w->borrows = 1;
    return 0;
}

/* =====================================================================
 * Encoding
 */
/* Raise NotShareableError(fmt % obj), chaining the current exception. */
static void
raise_not_shareable(PyObject *obj, const char *fmt)
{
    if (!sbi_wire_keep_interrupt()) {
        return;
    }
    PyObject *cause = PyErr_GetRaisedException();
    PyObject *tp = sbi_wire_not_shareable_type();
    if (tp == NULL) {
        Py_XDECREF(cause);
        return;
    }
    PyErr_Format(tp, fmt, obj);
    if (cause != NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        PyException_SetCause(exc, cause);  // steals cause
        PyException_SetContext(exc, Py_NewRef(cause));
        PyErr_SetRaisedException(exc);
    }
}

static int encode(writer *w, PyObject *obj, int depth);

static int
encode_pickle(writer *w, PyObject *obj)
{
    PyObject *data = sbi_pickling_dumps(obj);
    if (data == NULL) {
        if (!sbi_wire_keep_interrupt()) {
            return -1;
        }
        if (PyFunction_Check(obj)) {
            PyObject *why = NULL;
            PyObject *cause = PyErr_GetRaisedException();
            int stateless = sbi_funcship_ships_as_code(obj, &why);
            PyErr_Clear();
            PyErr_SetRaisedException(cause);
            if (stateless == 0 && why != NULL) {
                cause = PyErr_GetRaisedException();
                PyObject *tp = sbi_wire_not_shareable_type();
                if (tp != NULL) {
                    PyErr_Format(tp,
                                 "function %R is not shareable: %U, and it "
                                 "cannot be pickled",
                                 obj, why);
                    PyObject *exc = PyErr_GetRaisedException();
                    PyException_SetCause(exc, cause);
                    PyErr_SetRaisedException(exc);
                }
                else {
                    Py_XDECREF(cause);
                }
                Py_DECREF(why);
                return -1;
            }
            Py_XDECREF(why);
        }
        raise_not_shareable(obj, "%R does not support cross-interpreter "
                                 "data (it could not be pickled)");
        return -1;
    }
    const char *p = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *file = sbi_pickling_main_file(p, n);
    const char *fp = NULL;
    Py_ssize_t fn = 0;
    if (file != NULL) {
        fp = PyUnicode_AsUTF8AndSize(file, &fn);
        if (fp == NULL) {
            PyErr_Clear();
            fn = 0;
        }
    }
    // data is a bytes we hold (immutable): it can be borrowed
    int rc = write_blob_from(w, TAG_PICKLE, data, p, (size_t)n);
    if (rc == 0) {
        rc = write_u64(w, (uint64_t)fn);
    }
    if (rc == 0 && fn > 0) {
        rc = write_raw(w, fp, (size_t)fn);
        // What obj is, for the receiver's error if it cannot load the
        // script (raise_no_main()); only a hint, so a failure to say it
        // (other than an interrupt) leaves it empty.
        PyObject *desc = rc == 0 ? sbi_funcship_describe(obj) : NULL;
        Py_ssize_t dn = 0;
        const char *dp = desc ? PyUnicode_AsUTF8AndSize(desc, &dn) : NULL;
        if (dp == NULL && rc == 0 && sbi_wire_keep_interrupt()) {
            PyErr_Clear();
            dp = "";
            dn = 0;
        }
        rc = dp == NULL || write_u64(w, (uint64_t)dn) < 0
                 ? -1
                 : write_raw(w, dp, (size_t)dn);
        Py_XDECREF(desc);
    }
    Py_XDECREF(file);
    Py_DECREF(data);
    return rc;
}

/* Module-level builtin functions and classes that their module and
 * qualified name find again in the sender (what pickle would do with
 * them) travel as that reference, so the receiver needs no pickle.
 * Returns 1 if written, 0 if obj is not such an object (nothing written,
 * no exception), -1 with an exception. */
static int
encode_global(writer *w, PyObject *obj)
{
    int is_func = PyCFunction_Check(obj) && PyCFunction_GET_SELF(obj) &&
                  PyModule_Check(PyCFunction_GET_SELF(obj));
    if (!is_func && !PyType_Check(obj)) {
        return 0;
    }
    PyObject *modname = NULL, *qualname = NULL, *mod = NULL, *found = NULL;
    int rc = 0;
    modname = PyObject_GetAttrString(obj, "__module__");
    qualname = modname ? PyObject_GetAttrString(obj, "__qualname__") : NULL;
    // '__main__' and pseudo-modules such as '<fake __main__>' are left to
    // pickle, which maps them back to the receiver's __main__.
    if (qualname == NULL || !PyUnicode_Check(modname) ||
        !PyUnicode_Check(qualname) ||
        PyUnicode_CompareWithASCIIString(modname, "__main__") == 0 ||
        PyUnicode_FindChar(modname, '<', 0, PyUnicode_GET_LENGTH(modname),
                           1) != -1 ||
        PyUnicode_FindChar(qualname, '<', 0, PyUnicode_GET_LENGTH(qualname),
                           1) != -1)
    {
        goto done;  // not a plain global: pickle decides
    }
    mod = PyImport_GetModule(modname);
    found = mod ? sbi_funcship_resolve_qualname(mod, qualname) : NULL;
    if (found != obj) {
        goto done;
    }
    Py_ssize_t mn, qn;
    const char *m = PyUnicode_AsUTF8AndSize(modname, &mn);
    const char *q = m ? PyUnicode_AsUTF8AndSize(qualname, &qn) : NULL;
    if (q == NULL) {
        goto done;
    }
    rc = write_blob(w, TAG_GLOBAL, m, (size_t)mn) < 0 ||
                 write_u64(w, (uint64_t)qn) < 0 ||
                 write_raw(w, q, (size_t)qn) < 0
             ? -1
             : 1;
done:
    // A failed lookup means "not a plain global"; anything else (an
    // interrupt, MemoryError) propagates.
    if (rc == 0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError) ||
            PyErr_ExceptionMatches(PyExc_TypeError) ||
            PyErr_ExceptionMatches(PyExc_ValueError))
        {
            PyErr_Clear();
        }
        else {
            rc = -1;
        }
    }
    Py_XDECREF(found);
    Py_XDECREF(mod);
    Py_XDECREF(qualname);
    Py_XDECREF(modname);
    return rc;
}

static int
encode_func(writer *w, PyObject *func, int depth)
{
    PyObject *code = PyFunction_GetCode(func);  // borrowed
    PyObject *defaults = PyFunction_GetDefaults(func);
    PyObject *kwdefaults = PyFunction_GetKwDefaults(func);
    int with_defaults = defaults != NULL || kwdefaults != NULL;
    uint64_t token;
    PyObject *data;
    if (sbi_code_pack(code, &token, &data) < 0) {
        return -1;
    }
    int rc =
        write_blob(w, with_defaults ? TAG_FUNCDEF : TAG_FUNC,
                   PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    if (rc == 0) {
        rc = write_u64(w, token);
    }
    Py_DECREF(data);
    if (rc == 0 && with_defaults) {
        // Natively encodable (sbi_funcship_ships_as_code()): nothing is pickled.
        Py_XINCREF(defaults);
        Py_XINCREF(kwdefaults);
        int trusted = w->trusted;
        w->trusted = 1;
        rc = encode(w, defaults ? defaults : Py_None, depth + 1);
        if (rc == 0) {
            rc = encode(w, kwdefaults ? kwdefaults : Py_None, depth + 1);
        }
        w->trusted = trusted;
        Py_XDECREF(defaults);
        Py_XDECREF(kwdefaults);
    }
    return rc;
}

static int
encode_bigint(writer *w, PyObject *obj)
{
    PyObject *hex = PyNumber_ToBase(obj, 16);
    if (hex == NULL) {
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(hex, &n);
    int rc = s == NULL ? -1 : write_blob(w, TAG_BIGINT, s, (size_t)n);
    Py_DECREF(hex);
    return rc;
}

static int
encode_items(writer *w, char tag, PyObject *seq, int depth)
{
    // seq is a tuple or list; a list may change while items are encoded
    // (encoding can run Python code through pickle), so index safely.
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (write_tag(w, tag) < 0 || write_u64(w, (uint64_t)n) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PySequence_Fast_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "list changed size while being shared");
            return -1;
        }
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
        int rc = encode(w, item, depth + 1);
        Py_DECREF(item);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
encode_dict(writer *w, PyObject *dict, int depth)
{
    Py_ssize_t n = PyDict_GET_SIZE(dict);
    if (write_tag(w, TAG_DICT) < 0 || write_u64(w, (uint64_t)n) < 0) {
        return -1;
    }
    PyObject *items = PyDict_Items(dict);  // snapshot
    if (items == NULL) {
        return -1;
    }
    int rc = 0;
    if (PyList_GET_SIZE(items) != n) {
        PyErr_SetString(PyExc_RuntimeError, "dict changed size");
        rc = -1;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *kv = PyList_GET_ITEM(items, i);  // borrowed
        rc = encode(w, PyTuple_GET_ITEM(kv, 0), depth + 1);
        if (rc == 0) {
            rc = encode(w, PyTuple_GET_ITEM(kv, 1), depth + 1);
        }
    }
    Py_DECREF(items);
    return rc;
}

static int
encode_set(writer *w, char tag, PyObject *set, int depth)
{
    PyObject *seq = PySequence_List(set);
    if (seq == NULL) {
        return -1;
    }
    int rc = encode_items(w, tag, seq, depth);
    Py_DECREF(seq);
    return rc;
}

static int
encode_buffer(writer *w, PyObject *obj)
{
    if (w->nbufs == w->capbufs) {
        Py_ssize_t cap = w->capbufs ? w->capbufs * 2 : 4;
        sbi_shbuf **p = PyMem_RawRealloc(w->bufs, cap * sizeof(*p));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->bufs = p;
        w->capbufs = cap;
    }
    sbi_shbuf *b = sbi_shbuf_new(obj);
    if (b == NULL) {
        return -1;
    }
    w->bufs[w->nbufs] = b;
    if (write_tag(w, TAG_BUFFER) < 0 || write_u64(w, (uint64_t)w->nbufs) < 0) {
        sbi_shbuf_decref(b);
        return -1;
    }
    w->nbufs++;
    return 0;
}

static int
encode_handle(writer *w, int kind, int64_t id)
{
    if (w->nhandles == w->caphandles) {
        Py_ssize_t cap = w->caphandles ? w->caphandles * 2 : 4;
        sbi_handle_ref *p = PyMem_RawRealloc(w->handles, cap * sizeof(*p));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->handles = p;
        w->caphandles = cap;
    }
    int err = sbi_handles_get(kind)->bind(id);  // kind came from kind_of
    if (err < 0) {
        sbi_state *st = sbi_state_current();
        if (st != NULL) {
            (void)sbi_state_raise(st, err, id, NULL);
        }
        return -1;
    }
    w->handles[w->nhandles++] = (sbi_handle_ref){(uint8_t)kind, id};
    uint8_t k = (uint8_t)kind;
    if (write_tag(w, TAG_HANDLE) < 0 || write_raw(w, &k, sizeof(k)) < 0 ||
        write_raw(w, &id, sizeof(id)) < 0)
    {
        return -1;
    }
    return 0;
}

/* Encode obj; -1 with an exception set on failure.  In FULL mode a value
 * with no native form is pickled in place. */
static int
encode_int(writer *w, PyObject *obj)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        return encode_bigint(w, obj);
    }
    int64_t v64 = (int64_t)v;
    if (write_tag(w, TAG_INT) < 0) {
        return -1;
    }
    return write_raw(w, &v64, sizeof(v64));
}

static int
encode_float(writer *w, PyObject *obj)
{
    double d = PyFloat_AS_DOUBLE(obj);
    if (write_tag(w, TAG_FLOAT) < 0) {
        return -1;
    }
    return write_raw(w, &d, sizeof(d));
}

static int
encode_complex(writer *w, PyObject *obj)
{
    double d[2] = {PyComplex_RealAsDouble(obj), PyComplex_ImagAsDouble(obj)};
    if (write_tag(w, TAG_COMPLEX) < 0) {
        return -1;
    }
    return write_raw(w, d, sizeof(d));
}

/* The kind byte, then the characters as a blob under it. */
static int
encode_str(writer *w, PyObject *obj)
{
    char kind = (char)PyUnicode_KIND(obj);
    size_t n = (size_t)PyUnicode_GET_LENGTH(obj) * (size_t)kind;
    if (write_tag(w, TAG_STR) < 0) {
        return -1;
    }
    return write_blob_from(w, kind, obj, PyUnicode_DATA(obj), n);
}

/* A function travels as code if it is stateless: 1 if written, 0 if it
 * is not stateless (nothing written), -1 on error. */
static int
encode_stateless(writer *w, PyObject *func, int depth)
{
    PyObject *why = NULL;
    int r = sbi_funcship_ships_as_code(func, &why);
    Py_XDECREF(why);
    if (r <= 0) {
        return r;
    }
    return encode_func(w, func, depth) < 0 ? -1 : 1;
}

/* DATA mode: tp has no native form that may outlive every interpreter. */
static int
refuse_data(PyTypeObject *tp)
{
    PyObject *t = sbi_wire_not_shareable_type();
    if (t != NULL) {
        PyErr_Format(t,
                     "%.200s objects cannot be stored: only None, bool, int, "
                     "float, complex, str, bytes, bytearray, tuple, list, "
                     "dict, set, frozenset and shareable objects (queues, "
                     "sync primitives, SharedDicts) can",
                     tp->tp_name);
    }
    return -1;
}

static int
encode(writer *w, PyObject *obj, int depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (w->mode == SBI_XI_DATA && ++w->nodes > SBI_DATA_MAX_NODES) {
        PyObject *t = sbi_wire_not_shareable_type();
        if (t != NULL) {
            PyErr_Format(t, "value too large to store: more than %zu objects",
                         SBI_DATA_MAX_NODES);
        }
        return -1;
    }
    if (depth > SBI_MAX_DEPTH) {
        w->too_deep = 1;
        PyErr_SetString(PyExc_RecursionError,
                        "value nested too deeply to share natively");
        return -1;
    }
    if (obj == Py_None) {
        return write_tag(w, TAG_NONE);
    }
    if (tp == &PyBool_Type) {
        return write_tag(w, obj == Py_True ? TAG_TRUE : TAG_FALSE);
    }
    if (tp == &PyLong_Type) {
        return encode_int(w, obj);
    }
    if (tp == &PyFloat_Type) {
        return encode_float(w, obj);
    }
    if (tp == &PyUnicode_Type) {
        return encode_str(w, obj);
    }
    if (tp == &PyBytes_Type) {
        return write_blob_from(w, TAG_BYTES, obj, PyBytes_AS_STRING(obj),
                               (size_t)PyBytes_GET_SIZE(obj));
    }
    if (tp == &PyTuple_Type) {
        if (PyTuple_GET_SIZE(obj) > 0 && writer_see(w, obj) < 0) {
            return -1;
        }
        return encode_items(w, TAG_TUPLE, obj, depth);
    }
    if (tp == &PyMemoryView_Type && w->mode != SBI_XI_DATA) {
        return encode_buffer(w, obj);
    }
    int64_t hid;
    int kind = sbi_handles_kind_of(obj, &hid);
    if (kind >= 0) {
        return encode_handle(w, kind, hid);
    }
    if (w->mode == SBI_XI_NATIVE) {
        PyObject *t = sbi_wire_not_shareable_type();
        if (t != NULL) {
            PyErr_Format(t, "%R does not support cross-interpreter data", obj);
        }
        return -1;
    }
    /* FULL and DATA modes from here on */
    if (tp == &PyMemoryView_Type) {
        return refuse_data(tp);  // DATA mode: FULL encoded it above
    }
    if ((tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type ||
         tp == &PyFrozenSet_Type) &&
        writer_see(w, obj) < 0)
    {
        return -1;
    }
    if (tp == &PyList_Type) {
        return encode_items(w, TAG_LIST, obj, depth);
    }
    if (tp == &PyDict_Type) {
        return encode_dict(w, obj, depth);
    }
    if (tp == &PySet_Type) {
        return encode_set(w, TAG_SET, obj, depth);
    }
    if (tp == &PyFrozenSet_Type) {
        return encode_set(w, TAG_FROZENSET, obj, depth);
    }
    if (tp == &PyComplex_Type) {
        return encode_complex(w, obj);
    }
    if (tp == &PyByteArray_Type) {
        return write_blob(w, TAG_BYTEARRAY, PyByteArray_AS_STRING(obj),
                          (size_t)PyByteArray_GET_SIZE(obj));
    }
    if (w->mode == SBI_XI_DATA) {
        return refuse_data(tp);
    }
    if (tp == &PyFunction_Type) {
        int r = encode_stateless(w, obj, depth);
        if (r != 0) {
            return r < 0 ? -1 : 0;
        }
    }
    int g = encode_global(w, obj);
    if (g != 0) {
        return g < 0 ? -1 : 0;
    }
    return encode_pickle(w, obj);
}

static sbi_xidata *
writer_finish(writer *w)
{
    sbi_xidata *xd = PyMem_RawMalloc(sizeof(*xd));
    if (xd == NULL) {
        writer_release(w);
        PyErr_NoMemory();
        return NULL;
    }
    // A big buffer (a scratch buffer, say) holding much less than its
    // size gives the rest back: queue items can live long.
    if (w->cap >= SBI_SCRATCH_MIN && w->cap / 2 > w->len &&
        w->cap - w->len > SBI_SCRATCH_MIN)
    {
        char *p = PyMem_RawRealloc(w->p, w->len > 0 ? w->len : 1);
        if (p != NULL) {
            w->p = p;
            w->cap = w->len > 0 ? w->len : 1;
        }
    }
    xd->owner = sbi_current_cid();
    xd->data = w->p;
    xd->len = w->len;
    xd->cap = w->cap;
    xd->borrows = w->borrows;
    xd->bufs = w->bufs;
    xd->nbufs = w->nbufs;
    xd->handles = w->handles;
    xd->nhandles = w->nhandles;
    PyMem_RawFree(w->seen);
    memset(w, 0, sizeof(*w));
    return xd;
}

sbi_xidata *
sbi_xidata_new_pinned(PyObject *obj, sbi_xi_mode mode, PyObject **pins)
{
    writer w = {0};
    w.mode = mode;
    w.pins = pins;
    if (encode(&w, obj, 0) < 0) {
        int too_deep = w.too_deep;
        writer_release(&w);
        if (!too_deep) {
            return NULL;
        }
        if (mode != SBI_XI_FULL) {
            // Named by its type: the repr of such a value can be huge (or
            // take for ever, when it shares its parts).
            PyObject *exc = PyErr_GetRaisedException();
            PyObject *name = PyType_GetName(Py_TYPE(obj));
            if (name == NULL) {
                Py_XDECREF(exc);
            }
            else {
                PyErr_SetRaisedException(exc);
                raise_not_shareable(name,
                                    mode == SBI_XI_NATIVE
                                        ? "this %S is nested too deeply to "
                                          "share"
                                        : "this %S is nested too deeply (or "
                                          "contains itself) to be stored");
                Py_DECREF(name);
            }
            return NULL;
        }
        // Too deep, cyclic or with shared parts for the native form:
        // pickle it whole.  (What the first try pinned stays pinned
        // until the caller drops the pins: harmless.)
        PyErr_Clear();
        w.mode = mode;
        w.pins = pins;
        if (encode_pickle(&w, obj) < 0) {
            writer_release(&w);
            return NULL;
        }
    }
    return writer_finish(&w);
}

sbi_xidata *
sbi_xidata_new(PyObject *obj, sbi_xi_mode mode)
{
    return sbi_xidata_new_pinned(obj, mode, NULL);
}

sbi_xidata *
sbi_xidata_new_callable(PyObject *func, PyObject **pins)
{
    writer w = {0};
    w.mode = SBI_XI_FULL;
    w.pins = pins;
    int rc = 0;
    PyObject *why = NULL;
    int stateless =
        PyFunction_Check(func) ? sbi_funcship_ships_as_code(func, &why) : 0;
    Py_XDECREF(why);
    if (stateless < 0) {
        return NULL;
    }
    if (stateless) {
        rc = encode_func(&w, func, 0);
        if (rc < 0 && w.too_deep) {
            // Its defaults nest too deeply after all: pickle it.
            PyErr_Clear();
            writer_release(&w);
            w.mode = SBI_XI_FULL;
            w.pins = pins;
            stateless = 0;
            rc = 0;
        }
    }
    if (!stateless) {
        rc = encode_global(&w, func);
        rc = rc == 0 ? encode_pickle(&w, func) : rc < 0 ? -1 : 0;
    }
    if (rc < 0) {
        writer_release(&w);
        return NULL;
    }
    return writer_finish(&w);
}

void
sbi_xidata_free(sbi_xidata *xd)
{
    if (xd == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < xd->nbufs; i++) {
        sbi_shbuf_decref(xd->bufs[i]);
    }
    sbi_handles_release(xd->handles, xd->nhandles);
    PyMem_RawFree(xd->bufs);
    PyMem_RawFree(xd->handles);
    scratch_give(xd->data, xd->cap);
    PyMem_RawFree(xd);
}

int64_t
sbi_xidata_owner(const sbi_xidata *xd)
{
    return xd->owner;
}

int
sbi_xidata_has_buffers(const sbi_xidata *xd)
{
    return xd->nbufs > 0;
}

static int
is_shareable(PyObject *obj, int depth)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (obj == Py_None || tp == &PyBool_Type || tp == &PyLong_Type ||
        tp == &PyFloat_Type || tp == &PyUnicode_Type || tp == &PyBytes_Type ||
        tp == &PyMemoryView_Type)
    {
        return 1;
    }
    if (tp == &PyTuple_Type) {
        if (depth >= SBI_MAX_DEPTH) {
            return 0;  // prepare_main would refuse it as too deep
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(obj); i++) {
            if (!is_shareable(PyTuple_GET_ITEM(obj, i), depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    int64_t hid;
    return sbi_handles_kind_of(obj, &hid) >= 0;
}

int
sbi_xidata_is_shareable(PyObject *obj)
{
    return is_shareable(obj, 0);
}

PyObject *
sbi_xidata_load(const sbi_xidata *xd, PyObject *main_ns)
{
    return sbi_xidecode_load(xd, main_ns);
}

/* =====================================================================
 * Module glue
 */
int
sbi_xidata_module_init(PyObject *m, sbi_state *st)
{
    return sbi_shbuf_module_init(m, st);
}
