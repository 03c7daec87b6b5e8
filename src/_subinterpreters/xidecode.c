/* xidecode.c -- rebuilding Python values from cross-interpreter data
 * (wire.h) in the receiving interpreter.
 *
 * One decode_* function per tag; the pickle path falls back to
 * re-running the sender's script as __main__ (pickling.c) and turns a
 * failure there into one NotShareableError saying why.
 */
#include "xidecode.h"
#include "funcship.h"
#include "code.h"
#include "pickling.h"
#include <string.h>

typedef struct {
    const struct sbi_xidata *xd;
    size_t pos;
    PyObject *main_ns;
} reader;

static int
read_raw(reader *r, void *dst, size_t n)
{
    if (SBI_NEVER(r->pos + n > r->xd->len)) {
        PyErr_SetString(PyExc_RuntimeError, "corrupt cross-interpreter data");
        return -1;
    }
    memcpy(dst, r->xd->data + r->pos, n);
    r->pos += n;
    return 0;
}

static int
read_u64(reader *r, uint64_t *v)
{
    return read_raw(r, v, sizeof(*v));
}

/* Pointer to the next n bytes, advancing.  NULL with exception. */
static const char *
read_span(reader *r, size_t n)
{
    if (SBI_NEVER(r->pos + n > r->xd->len)) {
        PyErr_SetString(PyExc_RuntimeError, "corrupt cross-interpreter data");
        return NULL;
    }
    const char *p = r->xd->data + r->pos;
    r->pos += n;
    return p;
}

/* The payload of a blob, advancing past it: in the data, or borrowed
 * from the sender (alive while the sender's pins are).  NULL with an
 * exception if the data is corrupt. */
static const char *
read_blob(reader *r, size_t *n)
{
    uint64_t len;
    if (read_u64(r, &len) < 0) {
        return NULL;
    }
    if (len & BLOB_BORROWED) {
        uint64_t addr;
        if (SBI_NEVER(!r->xd->borrows) || read_u64(r, &addr) < 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "corrupt cross-interpreter data");
            return NULL;
        }
        *n = (size_t)(len & ~BLOB_BORROWED);
        return (const char *)(uintptr_t)addr;
    }
    *n = (size_t)len;
    return read_span(r, *n);
}

/* If the current exception, or its context, says that the sender's
 * script could not stand in for __main__ here (pickling.h), replace it
 * with one NotShareableError saying why and what to do, and return 1;
 * else return 0. */
static int
raise_no_main(const char *what, size_t whatlen)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *found = NULL;
    int hops = 0;  // a context chain can be made circular
    for (PyObject *e = exc; found == NULL && e != NULL && hops++ < 8;) {
        PyObject *name = PyErr_GivenExceptionMatches(e, PyExc_ImportError)
                             ? PyObject_GetAttrString(e, "name")
                             : NULL;
        if (name != NULL && PyUnicode_Check(name) &&
            PyUnicode_CompareWithASCIIString(name, "__main__") == 0)
        {
            found = e;
        }
        Py_XDECREF(name);
        PyErr_Clear();
        PyObject *next = PyException_GetContext(e);
        Py_XDECREF(next);  // e keeps it alive
        e = next;
    }
    PyObject *tp = found ? sbi_wire_not_shareable_type() : NULL;
    if (tp == NULL) {
        PyErr_Clear();
        PyErr_SetRaisedException(exc);
        return 0;
    }
    PyObject *detail = PyObject_Str(found);
    PyObject *desc =
        detail ? PyUnicode_DecodeUTF8(what, (Py_ssize_t)whatlen, "replace")
               : NULL;
    if (desc != NULL) {
        PyErr_Format(tp, "%V" SBI_NO_MAIN ": %U",
                     PyUnicode_GET_LENGTH(desc) ? desc : NULL, "an object",
                     detail);
    }
    Py_XDECREF(desc);
    Py_XDECREF(detail);
    Py_DECREF(exc);
    return 1;
}

/* Turn the current exception into RuntimeError("object could not be
 * unpickled") with it as the cause, as a failed unpickling reports. */
static void
raise_unpickle_failed(void)
{
    if (!sbi_wire_keep_interrupt()) {
        return;
    }
    PyObject *cause = PyErr_GetRaisedException();
    PyErr_SetString(PyExc_RuntimeError, "object could not be unpickled");
    PyObject *exc = PyErr_GetRaisedException();
    PyException_SetCause(exc, cause);
    PyErr_SetRaisedException(exc);
}

static PyObject *
decode_pickle(reader *r)
{
    size_t n, fn;
    const char *p = read_blob(r, &n);
    if (p == NULL) {
        return NULL;
    }
    const char *fp = read_blob(r, &fn);
    if (fp == NULL) {
        return NULL;
    }
    PyObject *mv =
        PyMemoryView_FromMemory((char *)p, (Py_ssize_t)n, PyBUF_READ);
    if (mv == NULL) {
        return NULL;
    }
    size_t dn = 0;
    const char *dp = fn > 0 ? read_blob(r, &dn) : "";
    if (dp == NULL) {
        Py_DECREF(mv);
        return NULL;
    }
    PyObject *res = sbi_pickling_loads(mv, NULL);
    if (res == NULL && fn > 0 && sbi_wire_keep_interrupt()) {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *path = PyUnicode_DecodeUTF8(fp, (Py_ssize_t)fn, NULL);
        if (path != NULL) {
            res = sbi_pickling_loads(mv, path);
            Py_DECREF(path);
        }
        if (res == NULL) {
            // Report the original failure; the re-run's is its context.
            PyObject *exc2 = PyErr_GetRaisedException();
            if (exc2 != NULL) {
                PyException_SetContext(exc, exc2);
            }
            PyErr_SetRaisedException(exc);
        }
        else {
            Py_DECREF(exc);
        }
    }
    if (res == NULL &&
        !(fn > 0 && sbi_wire_keep_interrupt() && raise_no_main(dp, dn)))
    {
        raise_unpickle_failed();
    }
    Py_DECREF(mv);
    return res;
}

static PyObject *
decode_global(reader *r)
{
    size_t mn, qn;
    const char *m = read_blob(r, &mn);
    const char *q = m ? read_blob(r, &qn) : NULL;
    if (q == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    PyObject *modname = PyUnicode_DecodeUTF8(m, (Py_ssize_t)mn, NULL);
    PyObject *qualname =
        modname ? PyUnicode_DecodeUTF8(q, (Py_ssize_t)qn, NULL) : NULL;
    PyObject *mod = qualname ? PyImport_Import(modname) : NULL;
    if (mod != NULL) {
        res = sbi_funcship_resolve_qualname(mod, qualname);
    }
    if (res == NULL) {
        raise_unpickle_failed();
    }
    Py_XDECREF(mod);
    Py_XDECREF(qualname);
    Py_XDECREF(modname);
    return res;
}

static PyObject *decode(reader *r);

static PyObject *
decode_func(reader *r, int with_defaults)
{
    size_t n;
    uint64_t token;
    const char *p = read_blob(r, &n);
    if (p == NULL || read_u64(r, &token) < 0) {
        return NULL;
    }
    PyObject *code = sbi_code_unpack(token, p, (Py_ssize_t)n);
    if (code == NULL) {
        return NULL;
    }
    PyObject *globals;
    if (r->main_ns != NULL) {
        globals = Py_NewRef(r->main_ns);
    }
    else {
        globals = PyDict_New();
        if (globals == NULL || PyDict_SetItemString(globals, "__builtins__",
                                                    PyEval_GetBuiltins()) < 0)
        {
            Py_XDECREF(globals);
            Py_DECREF(code);
            return NULL;
        }
    }
    PyObject *func = PyFunction_New(code, globals);
    Py_DECREF(globals);
    Py_DECREF(code);
    if (func != NULL && with_defaults) {
        PyObject *defaults = decode(r);
        PyObject *kwdefaults = defaults ? decode(r) : NULL;
        if (kwdefaults == NULL || PyFunction_SetDefaults(func, defaults) < 0 ||
            PyFunction_SetKwDefaults(func, kwdefaults) < 0)
        {
            Py_CLEAR(func);
        }
        Py_XDECREF(defaults);
        Py_XDECREF(kwdefaults);
    }
    return func;
}

static PyObject *
decode_seq(reader *r, char tag)
{
    uint64_t n;
    if (read_u64(r, &n) < 0) {
        return NULL;
    }
    PyObject *seq = tag == TAG_TUPLE ? PyTuple_New((Py_ssize_t)n)
                                     : PyList_New((Py_ssize_t)n);
    if (seq == NULL) {
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        PyObject *item = decode(r);
        if (item == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
        if (tag == TAG_TUPLE) {
            PyTuple_SET_ITEM(seq, (Py_ssize_t)i, item);
        }
        else {
            PyList_SET_ITEM(seq, (Py_ssize_t)i, item);
        }
    }
    return seq;
}

static PyObject *
decode_dict(reader *r)
{
    uint64_t n;
    if (read_u64(r, &n) < 0) {
        return NULL;
    }
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        PyObject *k = decode(r);
        PyObject *v = k ? decode(r) : NULL;
        int rc = v ? PyDict_SetItem(d, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

static PyObject *
decode_set(reader *r, char tag)
{
    PyObject *items = decode_seq(r, TAG_LIST);
    if (items == NULL) {
        return NULL;
    }
    PyObject *s = tag == TAG_SET ? PySet_New(items) : PyFrozenSet_New(items);
    Py_DECREF(items);
    return s;
}

static PyObject *
decode_int(reader *r)
{
    int64_t v;
    return read_raw(r, &v, sizeof(v)) < 0 ? NULL : PyLong_FromLongLong(v);
}

static PyObject *
decode_bigint(reader *r)
{
    size_t n;
    const char *p = read_blob(r, &n);
    PyObject *s = p ? PyUnicode_FromStringAndSize(p, (Py_ssize_t)n) : NULL;
    if (s == NULL) {
        return NULL;
    }
    PyObject *v = PyLong_FromUnicodeObject(s, 0);
    Py_DECREF(s);
    return v;
}

static PyObject *
decode_float(reader *r)
{
    double d;
    return read_raw(r, &d, sizeof(d)) < 0 ? NULL : PyFloat_FromDouble(d);
}

static PyObject *
decode_complex(reader *r)
{
    double d[2];
    return read_raw(r, d, sizeof(d)) < 0 ? NULL
                                         : PyComplex_FromDoubles(d[0], d[1]);
}

static PyObject *
decode_str(reader *r)
{
    unsigned char kind;
    size_t n;
    if (read_raw(r, &kind, 1) < 0) {
        return NULL;
    }
    const char *p = read_blob(r, &n);
    if (p == NULL) {
        return NULL;
    }
    if (SBI_NEVER(kind == 0 || n % kind != 0)) {
        PyErr_SetString(PyExc_RuntimeError, "corrupt str data");
        return NULL;
    }
    return PyUnicode_FromKindAndData(kind, p, (Py_ssize_t)(n / kind));
}

static PyObject *
decode_bytes(reader *r, char tag)
{
    size_t n;
    const char *p = read_blob(r, &n);
    if (p == NULL) {
        return NULL;
    }
    return tag == TAG_BYTES ? PyBytes_FromStringAndSize(p, (Py_ssize_t)n)
                            : PyByteArray_FromStringAndSize(p, (Py_ssize_t)n);
}

static PyObject *
decode_buffer(reader *r)
{
    uint64_t i;
    if (read_u64(r, &i) < 0) {
        return NULL;
    }
    if (SBI_NEVER(i >= (uint64_t)r->xd->nbufs)) {
        PyErr_SetString(PyExc_RuntimeError, "corrupt buffer index");
        return NULL;
    }
    return sbi_shbuf_to_memoryview(r->xd->bufs[i]);
}

static PyObject *
decode_handle(reader *r)
{
    uint8_t kind;
    int64_t id;
    if (read_raw(r, &kind, sizeof(kind)) < 0 ||
        read_raw(r, &id, sizeof(id)) < 0) {
        return NULL;
    }
    const sbi_handle_kind *hk = sbi_handles_get(kind);
    if (hk == NULL) {
        PyErr_Format(PyExc_RuntimeError,
                     "corrupt cross-interpreter data (handle kind %d)",
                     (int)kind);
        return NULL;
    }
    return hk->object(id);
}

static PyObject *
decode(reader *r)
{
    char tag;
    if (read_raw(r, &tag, 1) < 0) {
        return NULL;
    }
    switch (tag) {
    case TAG_NONE:
        Py_RETURN_NONE;
    case TAG_TRUE:
        Py_RETURN_TRUE;
    case TAG_FALSE:
        Py_RETURN_FALSE;
    case TAG_INT:
        return decode_int(r);
    case TAG_BIGINT:
        return decode_bigint(r);
    case TAG_FLOAT:
        return decode_float(r);
    case TAG_COMPLEX:
        return decode_complex(r);
    case TAG_STR:
        return decode_str(r);
    case TAG_BYTES:
    case TAG_BYTEARRAY:
        return decode_bytes(r, tag);
    case TAG_TUPLE:
    case TAG_LIST:
        return decode_seq(r, tag);
    case TAG_DICT:
        return decode_dict(r);
    case TAG_SET:
    case TAG_FROZENSET:
        return decode_set(r, tag);
    case TAG_PICKLE:
        return decode_pickle(r);
    case TAG_GLOBAL:
        return decode_global(r);
    case TAG_FUNC:
    case TAG_FUNCDEF:
        return decode_func(r, tag == TAG_FUNCDEF);
    case TAG_BUFFER:
        return decode_buffer(r);
    case TAG_HANDLE:
        return decode_handle(r);
    default:
        PyErr_Format(PyExc_RuntimeError,
                     "corrupt cross-interpreter data (tag %d)", tag);
        return NULL;
    }
}

PyObject *
sbi_xidecode_load(const struct sbi_xidata *xd, PyObject *main_ns)
{
    reader r = {xd, 0, main_ns};
    return decode(&r);
}
