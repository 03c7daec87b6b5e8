/* shdict_type.c -- the Python layer of SharedDict: a MutableMapping whose
 * keys and values live outside every interpreter (shdict.c).
 *
 * Values are stored as cross-interpreter data (SBI_XI_DATA) and every read
 * returns a fresh copy in the reader's interpreter.  Keys are found by a
 * canonical encoding made here, equal exactly when the keys are equal as
 * Python dict keys (1, 1.0 and True are the same key; frozensets in any
 * order; shareable objects by id); the key as first stored is what
 * iteration returns.
 *
 * A shared object (shobj.c: the layout, one object per dict per
 * interpreter, crossing interpreters as a handle; it can be stored in
 * another SharedDict).  Registers its type with shobj.c at module init.
 *
 * Calls shdict.c, shobj.c, xidata.c and state.c (layers:
 * docs/design.md).
 */
#include "shdict_type.h"
#include "shdict.h"
#include "shobj.h"
#include "tuning.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* =====================================================================
 * Canonical keys
 */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
    size_t *nodes;  // objects encoded for the whole key (shared count)
    int *too_big;   // set when the key is too deep or too large
    char stack[128];
} cbuf;

static void
cbuf_init(cbuf *b)
{
    b->nodes = NULL;
    b->too_big = NULL;
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
}

static void
cbuf_fini(cbuf *b)
{
    if (b->p != b->stack) {
        PyMem_Free(b->p);
    }
    cbuf_init(b);
}

static int
cbuf_put(cbuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n) {
            cap *= 2;
        }
        char *p = PyMem_Malloc(cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(p, b->p, b->len);
        if (b->p != b->stack) {
            PyMem_Free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int
cbuf_tag(cbuf *b, char tag)
{
    return cbuf_put(b, &tag, 1);
}

static int
cbuf_u64(cbuf *b, uint64_t v)
{
    return cbuf_put(b, &v, sizeof(v));
}

static int
canon_long(cbuf *b, PyObject *v)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        int64_t x64 = (int64_t)x;
        return cbuf_tag(b, 'i') < 0 ? -1 : cbuf_put(b, &x64, sizeof(x64));
    }
    PyObject *hex = PyNumber_ToBase(v, 16);  // no digit limit in base 16
    if (hex == NULL) {
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(hex, &n);
    int r = s == NULL || cbuf_tag(b, 'I') < 0 ||
                    cbuf_u64(b, (uint64_t)n) < 0 ||
                    cbuf_put(b, s, (size_t)n) < 0
                ? -1
                : 0;
    Py_DECREF(hex);
    return r;
}

/* A float key: integral values are the int they equal. */
static int
canon_double(cbuf *b, double d)
{
    if (isfinite(d) && d == floor(d)) {
        if (fabs(d) < 9.2e18) {
            int64_t x = (int64_t)d;
            return cbuf_tag(b, 'i') < 0 ? -1 : cbuf_put(b, &x, sizeof(x));
        }
        PyObject *v = PyLong_FromDouble(d);
        if (v == NULL) {
            return -1;
        }
        int r = canon_long(b, v);
        Py_DECREF(v);
        return r;
    }
    if (isnan(d)) {
        d = NAN;  // one NaN (dicts match NaN keys only by identity)
    }
    return cbuf_tag(b, 'f') < 0 ? -1 : cbuf_put(b, &d, sizeof(d));
}

static int canon(cbuf *b, PyObject *key, int depth);

/* Order-independent: the members' encodings, sorted. */
static int
cbuf_cmp(const void *a, const void *b)
{
    const cbuf *x = *(cbuf *const *)a, *y = *(cbuf *const *)b;
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return memcmp(x->p, y->p, x->len);
}

static int
canon_frozenset(cbuf *b, PyObject *key, int depth)
{
    Py_ssize_t n = PySet_GET_SIZE(key);
    // Sorted through pointers: a cbuf may point into itself.
    cbuf *parts = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(cbuf));
    cbuf **order = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(cbuf *));
    if (parts == NULL || order == NULL) {
        PyMem_Free(parts);
        PyMem_Free(order);
        PyErr_NoMemory();
        return -1;
    }
    int r = -1;
    Py_ssize_t i = 0;
    PyObject *item;
    for (Py_ssize_t j = 0; j < n; j++) {
        cbuf_init(&parts[j]);
        parts[j].nodes = b->nodes;
        parts[j].too_big = b->too_big;
        order[j] = &parts[j];
    }
    PyObject *it = PyObject_GetIter(key);
    if (it == NULL) {
        goto done;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        int bad = i >= n || canon(&parts[i++], item, depth + 1) < 0;
        Py_DECREF(item);
        if (bad) {
            Py_DECREF(it);
            goto done;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        goto done;
    }
    qsort(order, (size_t)n, sizeof(cbuf *), cbuf_cmp);
    if (cbuf_tag(b, 'z') < 0 || cbuf_u64(b, (uint64_t)n) < 0) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (cbuf_u64(b, order[i]->len) < 0 ||
            cbuf_put(b, order[i]->p, order[i]->len) < 0)
        {
            goto done;
        }
    }
    r = 0;
done:
    for (Py_ssize_t j = 0; j < n; j++) {
        cbuf_fini(&parts[j]);
    }
    PyMem_Free(parts);
    PyMem_Free(order);
    return r;
}

/* Append key's canonical encoding.  0, or -1 with TypeError (unhashable,
 * as a dict raises), NotShareableError or MemoryError. */
static int
canon(cbuf *b, PyObject *key, int depth)
{
    PyTypeObject *tp = Py_TYPE(key);
    if (depth > SBI_MAX_DEPTH || ++*b->nodes > SBI_DATA_MAX_NODES) {
        *b->too_big = 1;
        sbi_state *st = sbi_state_current();
        PyErr_SetString(st != NULL ? st->NotShareableError
                                   : PyExc_RecursionError,
                        "key nested too deeply or too large");
        return -1;
    }
    if (key == Py_None) {
        return cbuf_tag(b, 'N');
    }
    if (tp == &PyUnicode_Type) {
        char kind = (char)PyUnicode_KIND(key);
        size_t n = (size_t)PyUnicode_GET_LENGTH(key) * (size_t)kind;
        return cbuf_tag(b, 's') < 0 || cbuf_tag(b, kind) < 0 ||
                       cbuf_u64(b, n) < 0 ||
                       cbuf_put(b, PyUnicode_DATA(key), n) < 0
                   ? -1
                   : 0;
    }
    if (tp == &PyLong_Type || tp == &PyBool_Type) {
        return canon_long(b, key);
    }
    if (tp == &PyFloat_Type) {
        return canon_double(b, PyFloat_AS_DOUBLE(key));
    }
    if (tp == &PyComplex_Type) {
        double re = PyComplex_RealAsDouble(key);
        double im = PyComplex_ImagAsDouble(key);
        if (im == 0) {
            return canon_double(b, re);
        }
        double d[2] = {re == 0 ? 0.0 : re, im};  // -0.0 == 0.0
        if (isnan(d[0])) {
            d[0] = NAN;
        }
        if (isnan(d[1])) {
            d[1] = NAN;
        }
        return cbuf_tag(b, 'c') < 0 ? -1 : cbuf_put(b, d, sizeof(d));
    }
    if (tp == &PyBytes_Type) {
        size_t n = (size_t)PyBytes_GET_SIZE(key);
        return cbuf_tag(b, 'b') < 0 || cbuf_u64(b, n) < 0 ||
                       cbuf_put(b, PyBytes_AS_STRING(key), n) < 0
                   ? -1
                   : 0;
    }
    if (tp == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(key);
        if (cbuf_tag(b, 't') < 0 || cbuf_u64(b, (uint64_t)n) < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (canon(b, PyTuple_GET_ITEM(key, i), depth + 1) < 0) {
                return -1;
            }
        }
        return 0;
    }
    if (tp == &PyFrozenSet_Type) {
        return canon_frozenset(b, key, depth);
    }
    if (PyObject_Hash(key) == -1) {
        return -1;  // unhashable: make_key() raises what a dict raises
    }
    int64_t id;
    int kind = sbi_handles_kind_of(key, &id);
    if (kind >= 0) {  // a queue or sync primitive (a SharedDict is unhashable)
        return cbuf_tag(b, 'h') < 0 || cbuf_tag(b, (char)kind) < 0 ||
                       cbuf_put(b, &id, sizeof(id)) < 0
                   ? -1
                   : 0;
    }
    sbi_state *st = sbi_state_current();
    PyErr_Format(st != NULL ? st->NotShareableError : PyExc_TypeError,
                 "keys must be None, bool, int, float, complex, str, bytes, "
                 "tuples or frozensets of these, or shareable objects "
                 "(queues, sync primitives), not '%.200s'",
                 tp->tp_name);
    return -1;
}

/* FNV-1a, then a final mix so that the low bits (the first probe) depend
 * on every byte. */
static uint64_t
canon_hash(const char *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

/* key's canonical form in b, and k pointing at it. */
static int
make_key(PyObject *key, cbuf *b, sbi_shd_key *k)
{
    size_t nodes = 0;
    int too_big = 0;
    cbuf_init(b);
    b->nodes = &nodes;
    b->too_big = &too_big;
    if (canon(b, key, 0) < 0) {
        cbuf_fini(b);
        PyObject *exc = PyErr_GetRaisedException();
        sbi_state *st = sbi_state_current();  // needs no exception set
        if (st != NULL && !too_big &&
            !PyErr_GivenExceptionMatches(exc, st->NotShareableError) &&
            PyErr_GivenExceptionMatches(exc, PyExc_TypeError))
        {
            // Unhashable: the error a dict raises for the whole key on
            // this Python (3.14 names the key's type and the part's).
            PyObject *tmp = PyDict_New();
            if (tmp != NULL && PyDict_SetItem(tmp, key, Py_None) < 0) {
                Py_CLEAR(exc);
            }
            Py_XDECREF(tmp);
            if (exc == NULL) {
                return -1;
            }
        }
        // (A key too big for us may be too big to print.)
        if (st != NULL && !too_big &&
            PyErr_GivenExceptionMatches(exc, st->NotShareableError))
        {
            // Name the whole key, not just the part that cannot be used.
            PyErr_Format(st->NotShareableError,
                         "cannot use %R as a SharedDict key: %S", key, exc);
            Py_DECREF(exc);
        }
        else {
            PyErr_Clear();
            PyErr_SetRaisedException(exc);
        }
        return -1;
    }
    k->data = b->p;
    k->len = b->len;
    k->hash = canon_hash(b->p, b->len);
    return 0;
}

/* KeyError(key), as a dict raises it (a tuple key stays one argument). */
static void
set_key_error(PyObject *key)
{
    PyObject *args = PyTuple_Pack(1, key);
    if (args != NULL) {
        PyErr_SetObject(PyExc_KeyError, args);
        Py_DECREF(args);
    }
}

/* make_key() for reading: a key that cannot be stored is absent.
 * Returns 0 (k made), 1 (absent: no exception) or -1 with an
 * exception. */
static int
make_read_key(PyObject *key, cbuf *b, sbi_shd_key *k)
{
    if (make_key(key, b, k) == 0) {
        return 0;
    }
    PyObject *exc = PyErr_GetRaisedException();
    sbi_state *st = sbi_state_current();
    if (st != NULL && PyErr_GivenExceptionMatches(exc, st->NotShareableError))
    {
        Py_DECREF(exc);
        return 1;
    }
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
    return -1;
}

/* =====================================================================
 * Values
 */

/* obj as a new blob; NotShareableError names what and key. */
static sbi_blob *
blob_of(PyObject *obj, PyObject *key, const char *what)
{
    sbi_xidata *xd = sbi_xidata_new(obj, SBI_XI_DATA);
    if (xd == NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        sbi_state *st = sbi_state_current();  // needs no exception set
        if (st != NULL &&
            PyErr_GivenExceptionMatches(exc, st->NotShareableError)) {
            PyErr_Format(st->NotShareableError,
                         "cannot store the %s %R in a SharedDict: %S", what,
                         key, exc);
            Py_DECREF(exc);
        }
        else {
            PyErr_Clear();
            PyErr_SetRaisedException(exc);
        }
        return NULL;
    }
    sbi_blob *b = sbi_blob_new(xd);
    if (b == NULL) {
        PyErr_NoMemory();
    }
    return b;
}

/* A new object for blob b in the current interpreter. */
static PyObject *
blob_load(const sbi_blob *b)
{
    return sbi_xidata_load(b->xd, NULL);
}

/* =====================================================================
 * The type
 */
#define SD(op) ((sbi_shdict *)SBI_SHOBJ(op))

/* The type of every SharedDict (registered with shobj.c). */
static PyTypeObject *
shdict_type_of(sbi_state *st, sbi_shared *o)
{
    return st->SharedDictType;
}

/* ---------------------------------------------------------------------
 * Reading
 */

/* The value for key: a new reference; NULL with KeyError (if missing is
 * NULL) or another exception; missing (new reference) if absent. */
static PyObject *
shdict_lookup(PyObject *op, PyObject *key, PyObject *missing)
{
    cbuf b;
    sbi_shd_key k;
    int r = make_read_key(key, &b, &k);
    if (r < 0) {
        return NULL;
    }
    sbi_blob *v = NULL;
    int found = r == 0 && sbi_shdict_get(SD(op), &k, &v);
    if (r == 0) {
        cbuf_fini(&b);
    }
    if (!found) {
        if (missing == NULL) {
            set_key_error(key);
            return NULL;
        }
        return Py_NewRef(missing);
    }
    PyObject *obj = blob_load(v);
    sbi_blob_decref(v);
    return obj;
}

static PyObject *
SharedDict_subscript(PyObject *op, PyObject *key)
{
    return shdict_lookup(op, key, NULL);
}

static int
SharedDict_contains(PyObject *op, PyObject *key)
{
    cbuf b;
    sbi_shd_key k;
    int r = make_read_key(key, &b, &k);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    sbi_blob *v = NULL;
    int found = sbi_shdict_get(SD(op), &k, &v);
    cbuf_fini(&b);
    sbi_blob_decref(v);
    return found;
}

static Py_ssize_t
SharedDict_length(PyObject *op)
{
    return sbi_shdict_len(SD(op));
}

/* A dict with a copy of every pair (keys only, with None values, if
 * values is false). */
static PyObject *
shdict_copy(PyObject *op, int values)
{
    sbi_blob **ks = NULL, **vs = NULL;
    Py_ssize_t n = 0;
    if (sbi_shdict_snapshot(SD(op), &ks, values ? &vs : NULL, &n) < 0) {
        return PyErr_NoMemory();
    }
    PyObject *dict = PyDict_New();
    for (Py_ssize_t i = 0; dict != NULL && i < n; i++) {
        PyObject *k = blob_load(ks[i]);
        PyObject *v = k == NULL ? NULL
                      : values  ? blob_load(vs[i])
                                : Py_NewRef(Py_None);
        if (v == NULL || PyDict_SetItem(dict, k, v) < 0) {
            Py_CLEAR(dict);
        }
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    sbi_shdict_free_snapshot(ks, vs, n);
    return dict;
}

static PyObject *
SharedDict_copy(PyObject *op, PyObject *unused)
{
    return shdict_copy(op, 1);
}

/* keys(), values(), items(): views of a snapshot (a dict copy). */
static PyObject *
shdict_view(PyObject *op, const char *which, int values)
{
    PyObject *dict = shdict_copy(op, values);
    if (dict == NULL) {
        return NULL;
    }
    PyObject *view = PyObject_CallMethod(dict, which, NULL);
    Py_DECREF(dict);
    return view;
}

static PyObject *
SharedDict_keys(PyObject *op, PyObject *unused)
{
    return shdict_view(op, "keys", 0);
}

static PyObject *
SharedDict_values(PyObject *op, PyObject *unused)
{
    return shdict_view(op, "values", 1);
}

static PyObject *
SharedDict_items(PyObject *op, PyObject *unused)
{
    return shdict_view(op, "items", 1);
}

static PyObject *
SharedDict_iter(PyObject *op)
{
    PyObject *keys = shdict_copy(op, 0);
    if (keys == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

static PyObject *
SharedDict_get(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        return PyErr_Format(PyExc_TypeError,
                            "get expected 1 or 2 arguments, got %zd", nargs);
    }
    return shdict_lookup(op, args[0], nargs > 1 ? args[1] : Py_None);
}

/* ---------------------------------------------------------------------
 * Writing
 */

/* Store value under key (canonical form k) as how says
 * (sbi_shdict_store()); *old as there.  *kb caches key's stored form
 * (made the first time the key turns out to be absent; the caller drops
 * it).  Returns what sbi_shdict_store() returns, or -1 with an
 * exception. */
static int
shdict_store(PyObject *op, PyObject *key, const sbi_shd_key *k, sbi_blob **kb,
             sbi_blob *value, sbi_shd_how how, const sbi_blob *expect,
             sbi_blob **old)
{
    int r = sbi_shdict_store(SD(op), k, *kb, value, how, expect, old);
    if (r == SBI_SHD_NEED_KEY) {
        *kb = blob_of(key, key, "key");
        if (*kb == NULL) {
            return -1;
        }
        r = sbi_shdict_store(SD(op), k, *kb, value, how, expect, old);
    }
    if (r < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return r;
}

static int
SharedDict_ass_subscript(PyObject *op, PyObject *key, PyObject *value)
{
    cbuf b;
    sbi_shd_key k;
    if (value == NULL) {
        int r = make_read_key(key, &b, &k);
        if (r < 0) {
            return -1;
        }
        int found = r == 0 && sbi_shdict_pop(SD(op), &k, NULL);
        if (r == 0) {
            cbuf_fini(&b);
        }
        if (!found) {
            set_key_error(key);
            return -1;
        }
        return 0;
    }
    // The key first: an unhashable one is a TypeError, as for a dict.
    if (make_key(key, &b, &k) < 0) {
        return -1;
    }
    int r = -1;
    sbi_blob *kb = NULL;
    sbi_blob *v = blob_of(value, key, "value for key");
    if (v != NULL) {
        r = shdict_store(op, key, &k, &kb, v, SBI_SHD_SET, NULL, NULL);
    }
    sbi_blob_decref(v);
    sbi_blob_decref(kb);
    cbuf_fini(&b);
    return r < 0 ? -1 : 0;
}

/* pop(key[, default]): the value is decoded before it is removed (and
 * removed only if it is still the one decoded), so a value that fails to
 * load stays. */
static PyObject *
SharedDict_pop(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        return PyErr_Format(PyExc_TypeError,
                            "pop expected 1 or 2 arguments, got %zd", nargs);
    }
    cbuf b;
    sbi_shd_key k;
    int r = make_read_key(args[0], &b, &k);
    if (r < 0) {
        return NULL;
    }
    PyObject *obj = NULL;
    while (r == 0) {
        sbi_blob *v = NULL;
        if (!sbi_shdict_get(SD(op), &k, &v)) {
            break;
        }
        obj = blob_load(v);
        int removed = obj != NULL && sbi_shdict_pop(SD(op), &k, v);
        sbi_blob_decref(v);
        if (obj == NULL || removed) {
            break;
        }
        Py_CLEAR(obj);  // replaced meanwhile: again
    }
    if (r == 0) {
        cbuf_fini(&b);
    }
    if (obj == NULL && !PyErr_Occurred()) {
        if (nargs > 1) {
            return Py_NewRef(args[1]);
        }
        set_key_error(args[0]);
    }
    return obj;
}

/* popitem(), decoding before removing as pop() does. */
static PyObject *
SharedDict_popitem(PyObject *op, PyObject *unused)
{
    for (;;) {
        sbi_blob *kb = NULL, *vb = NULL;
        if (!sbi_shdict_last(SD(op), &kb, &vb)) {
            PyErr_SetString(PyExc_KeyError, "popitem(): dictionary is empty");
            return NULL;
        }
        PyObject *k = blob_load(kb);
        PyObject *v = k != NULL ? blob_load(vb) : NULL;
        PyObject *pair = v != NULL ? PyTuple_Pack(2, k, v) : NULL;
        Py_XDECREF(k);
        Py_XDECREF(v);
        int removed = pair != NULL && sbi_shdict_pop_last(SD(op), kb, vb);
        sbi_blob_decref(kb);
        sbi_blob_decref(vb);
        if (pair == NULL || removed) {
            return pair;
        }
        Py_DECREF(pair);  // changed meanwhile: again
    }
}

/* setdefault(key, default=None) */
static PyObject *
SharedDict_setdefault(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        return PyErr_Format(PyExc_TypeError,
                            "setdefault expected 1 or 2 arguments, got %zd",
                            nargs);
    }
    PyObject *dflt = nargs > 1 ? args[1] : Py_None;
    // Read first: a default that cannot be stored is no error when the
    // key is there.
    PyObject *found = shdict_lookup(op, args[0], NULL);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_KeyError)) {
        return found;
    }
    PyErr_Clear();
    cbuf b;
    sbi_shd_key k;
    if (make_key(args[0], &b, &k) < 0) {
        return NULL;
    }
    int r = -1;
    sbi_blob *old = NULL, *kb = NULL;
    sbi_blob *v = blob_of(dflt, args[0], "value for key");
    if (v != NULL) {
        r = shdict_store(op, args[0], &k, &kb, v, SBI_SHD_SETDEFAULT, NULL,
                         &old);
    }
    sbi_blob_decref(v);
    sbi_blob_decref(kb);
    cbuf_fini(&b);
    if (r < 0) {
        return NULL;
    }
    if (r == 1) {
        return Py_NewRef(dflt);
    }
    PyObject *obj = blob_load(old);
    sbi_blob_decref(old);
    return obj;
}

static PyObject *
SharedDict_clear(PyObject *op, PyObject *unused)
{
    sbi_shdict_clear(SD(op));
    Py_RETURN_NONE;
}

/* Store every pair of the list at once (one atomic update). */
static int
shdict_store_pairs(PyObject *op, PyObject *pairs)
{
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    if (n == 0) {
        return 0;
    }
    int r = -1;
    sbi_shd_key *k = PyMem_Calloc((size_t)n, sizeof(*k));
    sbi_blob **kb = PyMem_Calloc((size_t)n, sizeof(*kb));
    sbi_blob **vb = PyMem_Calloc((size_t)n, sizeof(*vb));
    char **canons = PyMem_Calloc((size_t)n, sizeof(*canons));
    if (k == NULL || kb == NULL || vb == NULL || canons == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);  // borrowed
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        cbuf b;
        if (make_key(key, &b, &k[i]) < 0) {
            goto done;
        }
        canons[i] = PyMem_Malloc(b.len > 0 ? b.len : 1);
        if (canons[i] == NULL) {
            cbuf_fini(&b);
            PyErr_NoMemory();
            goto done;
        }
        memcpy(canons[i], b.p, b.len);
        k[i].data = canons[i];
        cbuf_fini(&b);
        kb[i] = blob_of(key, key, "key");
        if (kb[i] == NULL) {
            goto done;
        }
        vb[i] = blob_of(value, key, "value for key");
        if (vb[i] == NULL) {
            goto done;
        }
    }
    if (sbi_shdict_store_many(SD(op), n, k, kb, vb) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    r = 0;
done:
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kb != NULL) {
            sbi_blob_decref(kb[i]);
        }
        if (vb != NULL) {
            sbi_blob_decref(vb[i]);
        }
        if (canons != NULL) {
            PyMem_Free(canons[i]);
        }
    }
    PyMem_Free(k);
    PyMem_Free(kb);
    PyMem_Free(vb);
    PyMem_Free(canons);
    return r;
}

/* update([other], /, **kwargs), as dict.update(), atomically.  The
 * arguments are read by a dict (so every error is the one dict.update()
 * raises on this Python; equal keys collapse as in a dict), whose pairs
 * are then stored in one step. */
static int
shdict_update(PyObject *op, PyObject *other, PyObject *kwargs)
{
    PyObject *tmp = PyDict_New();
    if (tmp == NULL) {
        return -1;
    }
    int r = 0;
    if (other != NULL) {
        PyObject *res = PyObject_CallMethod(tmp, "update", "O", other);
        r = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    if (r == 0 && kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        r = PyDict_Update(tmp, kwargs);
    }
    PyObject *pairs = r == 0 ? PyDict_Items(tmp) : NULL;
    Py_DECREF(tmp);
    if (pairs == NULL) {
        return -1;
    }
    r = shdict_store_pairs(op, pairs);
    Py_DECREF(pairs);
    return r;
}

static PyObject *
SharedDict_update(PyObject *op, PyObject *args, PyObject *kwargs)
{
    PyObject *other = NULL;
    if (!PyArg_UnpackTuple(args, "update", 0, 1, &other)) {
        return NULL;
    }
    if (shdict_update(op, other, kwargs) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* incr(key, delta=1, default=0): read, add, compare-and-store, until no
 * other thread changed the value in between. */
static PyObject *
SharedDict_incr(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    static const char *const names[] = {"key", "delta", "default"};
    PyObject *vals[3] = {NULL, NULL, NULL};
    if (sbi_state_parse_args("incr", args, nargs, kwnames, names, 3, 1, 3,
                             vals) < 0)
    {
        return NULL;
    }
    PyObject *key = vals[0];
    PyObject *delta = vals[1];
    PyObject *dflt = vals[2];
    PyObject *one = NULL, *zero = NULL;
    if (delta == NULL) {
        delta = one = PyLong_FromLong(1);
    }
    if (dflt == NULL) {
        dflt = zero = PyLong_FromLong(0);
    }
    PyObject *result = NULL;
    cbuf b;
    sbi_shd_key k;
    sbi_blob *kb = NULL;
    if (delta == NULL || dflt == NULL || make_key(key, &b, &k) < 0) {
        Py_XDECREF(one);
        Py_XDECREF(zero);
        return NULL;
    }
    for (;;) {
        sbi_blob *cur = NULL;
        PyObject *curobj;
        if (sbi_shdict_get(SD(op), &k, &cur)) {
            curobj = blob_load(cur);
        }
        else {
            curobj = Py_NewRef(dflt);
        }
        if (curobj == NULL) {
            sbi_blob_decref(cur);
            break;
        }
        PyTypeObject *ct = Py_TYPE(curobj), *dt = Py_TYPE(delta);
        if (!(ct == &PyLong_Type || ct == &PyFloat_Type ||
              ct == &PyComplex_Type || ct == &PyBool_Type) ||
            !(dt == &PyLong_Type || dt == &PyFloat_Type ||
              dt == &PyComplex_Type || dt == &PyBool_Type))
        {
            PyErr_Format(PyExc_TypeError,
                         "incr() adds numbers: the value for key %R is "
                         "'%.100s' and delta is '%.100s'",
                         key, ct->tp_name, dt->tp_name);
            Py_DECREF(curobj);
            sbi_blob_decref(cur);
            break;
        }
        PyObject *sum = PyNumber_Add(curobj, delta);
        Py_DECREF(curobj);
        sbi_blob *nb = sum != NULL ? blob_of(sum, key, "value for key") : NULL;
        if (nb == NULL) {
            Py_XDECREF(sum);
            sbi_blob_decref(cur);
            break;
        }
        int r = shdict_store(op, key, &k, &kb, nb, SBI_SHD_CAS, cur, NULL);
        sbi_blob_decref(nb);
        sbi_blob_decref(cur);
        if (r == 1) {
            result = sum;
            break;
        }
        Py_DECREF(sum);
        if (r < 0) {
            break;
        }
        // Changed meanwhile: read again.
    }
    sbi_blob_decref(kb);
    cbuf_fini(&b);
    Py_XDECREF(one);
    Py_XDECREF(zero);
    return result;
}

/* ---------------------------------------------------------------------
 * The rest of the object protocol
 */
static PyObject *
SharedDict_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *other = NULL;
    if (!PyArg_UnpackTuple(args, "SharedDict", 0, 1, &other)) {
        return NULL;
    }
    sbi_shdict *d = sbi_shdict_new();
    if (d == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *self =
        sbi_shobj_wrap(sbi_state_from_type(tp), tp, (sbi_shared *)d);
    if (self != NULL && shdict_update(self, other, kwargs) < 0) {
        Py_CLEAR(self);
    }
    return self;
}

static PyObject *
SharedDict_richcompare(PyObject *a, PyObject *b, int op)
{
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int same_type = Py_TYPE(b) == Py_TYPE(a);
    if (!same_type && !PyDict_Check(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (same_type && SD(a) == SD(b)) {
        return PyBool_FromLong(op == Py_EQ);
    }
    PyObject *x = shdict_copy(a, 1);
    PyObject *y = same_type ? shdict_copy(b, 1) : Py_NewRef(b);
    PyObject *r =
        x != NULL && y != NULL ? PyObject_RichCompare(x, y, op) : NULL;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return r;
}

static PyObject *
SharedDict_repr(PyObject *op)
{
    int rc = Py_ReprEnter(op);
    if (rc != 0) {
        return rc > 0 ? PyUnicode_FromString("SharedDict({...})") : NULL;
    }
    PyObject *copy = shdict_copy(op, 1);
    PyObject *r =
        copy != NULL ? PyUnicode_FromFormat("SharedDict(%R)", copy) : NULL;
    Py_XDECREF(copy);
    Py_ReprLeave(op);
    return r;
}

static PyMethodDef SharedDict_methods[] = {
    {"get", _PyCFunction_CAST(SharedDict_get), METH_FASTCALL,
     PyDoc_STR("get($self, key, default=None, /)\n--\n\n"
               "A copy of the value for key if there is one, else default.")},
    {"pop", _PyCFunction_CAST(SharedDict_pop), METH_FASTCALL,
     PyDoc_STR("pop($self, key, default=<unrepresentable>, /)\n--\n\n"
               "Remove key and return (a copy of) its value; default, or\n"
               "KeyError, if it is not there.")},
    {"popitem", SharedDict_popitem, METH_NOARGS,
     PyDoc_STR("popitem($self, /)\n--\n\n"
               "Remove and return the last (key, value) pair stored.")},
    {"setdefault", _PyCFunction_CAST(SharedDict_setdefault), METH_FASTCALL,
     PyDoc_STR("setdefault($self, key, default=None, /)\n--\n\n"
               "The value for key; if there is none, store default and\n"
               "return it (one atomic step).")},
    {"update", _PyCFunction_CAST(SharedDict_update),
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("update($self, other=(), /, **kwargs)\n--\n\n"
               "Store the pairs of other and kwargs, as dict.update(), in\n"
               "one atomic step.")},
    {"clear", SharedDict_clear, METH_NOARGS,
     PyDoc_STR("clear($self, /)\n--\n\nRemove every pair.")},
    {"copy", SharedDict_copy, METH_NOARGS,
     PyDoc_STR("copy($self, /)\n--\n\nA plain dict with a copy of every "
               "pair.")},
    {"keys", SharedDict_keys, METH_NOARGS,
     PyDoc_STR("keys($self, /)\n--\n\nThe keys, as a snapshot (a view of a "
               "copy).")},
    {"values", SharedDict_values, METH_NOARGS,
     PyDoc_STR("values($self, /)\n--\n\nThe values, as a snapshot.")},
    {"items", SharedDict_items, METH_NOARGS,
     PyDoc_STR("items($self, /)\n--\n\nThe (key, value) pairs, as a "
               "snapshot.")},
    {"incr", _PyCFunction_CAST(SharedDict_incr), METH_FASTCALL | METH_KEYWORDS,
     PyDoc_STR("incr($self, /, key, delta=1, default=0)\n--\n\n"
               "Add delta to the number stored under key (default if there\n"
               "is none) and return the new value, atomically.")},
    {"__reduce__", sbi_shobj_reduce, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef SharedDict_getset[] = {
    {"id", sbi_shobj_get_id, NULL, PyDoc_STR("The dict's id."), NULL},
    {NULL},
};

PyDoc_STRVAR(
    SharedDict_doc,
    "SharedDict(other=(), /, **kwargs)\n--\n\n"
    "A dict shared by every interpreter of the process.\n\n"
    "Keys and values are what call() sends natively (None, bool, int,\n"
    "float, complex, str, bytes, bytearray, tuple, list, dict, set,\n"
    "frozenset, and shareable objects such as queues, sync primitives and\n"
    "other SharedDicts); they are copied in and out, so mutating a value\n"
    "read from it changes nothing shared.  Each operation is atomic across\n"
    "all threads of all interpreters.  Pass it to call(), prepare_main()\n"
    "or a queue and the other interpreter gets an object for the same\n"
    "dict.");

static PyType_Slot SharedDict_slots[] = {
    {Py_tp_new, SharedDict_new},
    {Py_tp_dealloc, sbi_shobj_dealloc},
    {Py_tp_repr, SharedDict_repr},
    {Py_tp_richcompare, SharedDict_richcompare},  // and no hash: mutable
    {Py_tp_iter, SharedDict_iter},
    {Py_tp_methods, SharedDict_methods},
    {Py_tp_getset, SharedDict_getset},
    {Py_tp_members, sbi_shobj_members},
    {Py_tp_doc, (void *)SharedDict_doc},
    {Py_mp_length, SharedDict_length},
    {Py_mp_subscript, SharedDict_subscript},
    {Py_mp_ass_subscript, SharedDict_ass_subscript},
    {Py_sq_contains, SharedDict_contains},
    {0, NULL},
};

static PyType_Spec SharedDict_spec = {
    .name = "subinterpreters.SharedDict",
    .basicsize = sizeof(SharedObject),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_MAPPING,
    .slots = SharedDict_slots,
};

int
sbi_shdict_type_init(PyObject *m, sbi_state *st)
{
    st->SharedDictType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &SharedDict_spec, NULL);
    if (st->SharedDictType == NULL ||
        PyModule_AddType(m, st->SharedDictType) < 0) {
        return -1;
    }
    return sbi_shobj_register(&sbi_shdict_shared, shdict_type_of);
}
