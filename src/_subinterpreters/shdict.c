/* shdict.c -- SharedDict, raw layer (see shdict.h).
 *
 * A compact, insertion-ordered hash table like CPython's dict: an array
 * of entries in insertion order (removed ones are left as holes until
 * the next rebuild) and an open-addressing index of entry numbers probed
 * with CPython's perturbation scheme.
 *
 * Calls shared.c and xidata.c (layers: docs/design.md).  Lock: each
 * dict's mutex, a leaf.  Blobs are released after it is let go: the last
 * reference to a value may be the last handle to another shared object
 * (a SharedDict inside a SharedDict), whose destruction takes locks.
 */
#include "shdict.h"

#include <string.h>

#define IX_EMPTY ((Py_ssize_t)-1)
#define IX_DUMMY ((Py_ssize_t)-2)
#define INDEX_MIN 8

typedef struct {
    uint64_t hash;
    char *canon;  // NULL: a hole left by a removal
    size_t len;
    sbi_blob *key;
    sbi_blob *value;
} entry;

struct sbi_shdict {
    sbi_shared base;  // first: an sbi_shdict is an sbi_shared
    sbi_mutex mutex;
    entry *entries;  // mutex; nentries used (holes included)
    Py_ssize_t nentries;
    Py_ssize_t capentries;
    Py_ssize_t *index;  // mutex; nindex slots, a power of two
    size_t nindex;
    Py_ssize_t fill;  // mutex: index slots not IX_EMPTY
    Py_ssize_t len;   // mutex: live entries
};

/* =====================================================================
 * Blobs
 */
sbi_blob *
sbi_blob_new(sbi_xidata *xd)
{
    sbi_blob *b = PyMem_RawMalloc(sizeof(*b));
    if (b == NULL) {
        sbi_xidata_free(xd);
        return NULL;
    }
    b->refs = 1;
    b->xd = xd;
    return b;
}

void
sbi_blob_incref(sbi_blob *b)
{
    (void)__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
}

void
sbi_blob_decref(sbi_blob *b)
{
    if (b != NULL && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        sbi_xidata_free(b->xd);
        PyMem_RawFree(b);
    }
}

/* =====================================================================
 * Creation and destruction
 */
static void shdict_destroy(sbi_shared *o);
static sbi_mutex *shdict_mutex_of(sbi_shared *o);
static void shdict_after_fork(sbi_shared *o);

const sbi_shared_type sbi_shdict_shared = {"SharedDict", shdict_destroy,
                                           shdict_mutex_of, shdict_after_fork};

sbi_shdict *
sbi_shdict_new(void)
{
    sbi_shdict *d = PyMem_RawCalloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    if (sbi_mutex_init(&d->mutex) < 0) {
        PyMem_RawFree(d);
        return NULL;
    }
    if (sbi_shared_add(&d->base, &sbi_shdict_shared) < 0) {
        sbi_mutex_fini(&d->mutex);
        PyMem_RawFree(d);
        return NULL;
    }
    return d;
}

/* Free an entries array and what its entries hold.  No lock held. */
static void
entries_free(entry *entries, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (entries[i].canon != NULL) {
            PyMem_RawFree(entries[i].canon);
            sbi_blob_decref(entries[i].key);
            sbi_blob_decref(entries[i].value);
        }
    }
    PyMem_RawFree(entries);
}

static void
shdict_destroy(sbi_shared *o)
{
    sbi_shdict *d = (sbi_shdict *)o;
    entries_free(d->entries, d->nentries);
    PyMem_RawFree(d->index);
    sbi_mutex_fini(&d->mutex);
    PyMem_RawFree(d);
}

static sbi_mutex *
shdict_mutex_of(sbi_shared *o)
{
    return &((sbi_shdict *)o)->mutex;
}

static void
shdict_after_fork(sbi_shared *o)
{
    (void)sbi_mutex_init(&((sbi_shdict *)o)->mutex);
}

/* =====================================================================
 * The table (every function here needs d->mutex)
 */

/* The index slot for k: the one holding its entry, or (not found) the
 * first free one on its probe path.  *ix receives the entry number or
 * IX_EMPTY.  The index exists. */
static size_t
lookup(sbi_shdict *d, const sbi_shd_key *k, Py_ssize_t *ix)
{
    size_t mask = d->nindex - 1;
    uint64_t perturb = k->hash;
    size_t i = (size_t)k->hash & mask;
    size_t free_slot = (size_t)-1;
    for (;;) {
        Py_ssize_t e = d->index[i];
        if (e == IX_EMPTY) {
            *ix = IX_EMPTY;
            return free_slot != (size_t)-1 ? free_slot : i;
        }
        if (e == IX_DUMMY) {
            if (free_slot == (size_t)-1) {
                free_slot = i;
            }
        }
        else {
            entry *en = &d->entries[e];
            if (en->hash == k->hash && en->len == k->len &&
                memcmp(en->canon, k->data, k->len) == 0)
            {
                *ix = e;
                return i;
            }
        }
        perturb >>= 5;
        i = (i * 5 + (size_t)perturb + 1) & mask;
    }
}

static Py_ssize_t
find(sbi_shdict *d, const sbi_shd_key *k, size_t *slot)
{
    Py_ssize_t ix = IX_EMPTY;
    if (d->len == 0) {
        return IX_EMPTY;
    }
    size_t i = lookup(d, k, &ix);
    if (slot != NULL) {
        *slot = i;
    }
    return ix;
}

/* Rebuild the index with room for `want` entries, dropping the holes.
 * 0, or SBI_ERR_NOMEM (the table is unchanged). */
static int
rebuild(sbi_shdict *d, Py_ssize_t want)
{
    size_t n = INDEX_MIN;
    while (n * 2 < (size_t)want * 3) {
        n *= 2;
    }
    Py_ssize_t cap = (Py_ssize_t)(n * 2 / 3);
    Py_ssize_t *index = PyMem_RawMalloc(n * sizeof(*index));
    entry *entries = PyMem_RawMalloc((size_t)cap * sizeof(*entries));
    if (index == NULL || entries == NULL) {
        PyMem_RawFree(index);
        PyMem_RawFree(entries);
        return SBI_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        index[i] = IX_EMPTY;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t e = 0; e < d->nentries; e++) {
        if (d->entries[e].canon == NULL) {
            continue;
        }
        entries[m] = d->entries[e];
        uint64_t perturb = entries[m].hash;
        size_t i = (size_t)perturb & (n - 1);
        while (index[i] != IX_EMPTY) {
            perturb >>= 5;
            i = (i * 5 + (size_t)perturb + 1) & (n - 1);
        }
        index[i] = m++;
    }
    PyMem_RawFree(d->index);
    PyMem_RawFree(d->entries);
    d->index = index;
    d->nindex = n;
    d->entries = entries;
    d->nentries = m;
    d->capentries = cap;
    d->fill = m;
    return 0;
}

/* Append a new entry for k (absent).  0, or SBI_ERR_NOMEM. */
static int
insert(sbi_shdict *d, const sbi_shd_key *k, sbi_blob *key, sbi_blob *value)
{
    // Probing needs an empty index slot: rebuild before the index fills
    // up with dummies as well as before the entries run out.
    if (d->nentries >= d->capentries || d->fill >= d->capentries) {
        int err =
            rebuild(d, d->len + 1 > d->len * 2 ? d->len + 1 : d->len * 2);
        if (err < 0) {
            return err;
        }
    }
    char *canon = PyMem_RawMalloc(k->len > 0 ? k->len : 1);
    if (canon == NULL) {
        return SBI_ERR_NOMEM;
    }
    memcpy(canon, k->data, k->len);
    Py_ssize_t ix;
    size_t slot = lookup(d, k, &ix);
    assert(ix == IX_EMPTY);
    entry *en = &d->entries[d->nentries];
    en->hash = k->hash;
    en->canon = canon;
    en->len = k->len;
    en->key = key;
    en->value = value;
    sbi_blob_incref(key);
    sbi_blob_incref(value);
    if (d->index[slot] == IX_EMPTY) {
        d->fill++;
    }
    d->index[slot] = d->nentries++;
    d->len++;
    return 0;
}

/* Unlink entry ix at index slot; its blobs pass to the caller. */
static void
unlink_entry(sbi_shdict *d, size_t slot, Py_ssize_t ix, sbi_blob **key,
             sbi_blob **value)
{
    entry *en = &d->entries[ix];
    *key = en->key;
    *value = en->value;
    PyMem_RawFree(en->canon);
    en->canon = NULL;
    en->key = en->value = NULL;
    d->index[slot] = IX_DUMMY;
    d->len--;
    // Trailing holes are reused at once (popitem() empties from the end).
    while (d->nentries > 0 && d->entries[d->nentries - 1].canon == NULL) {
        d->nentries--;
    }
    if (d->len == 0) {
        for (size_t i = 0; i < d->nindex; i++) {
            d->index[i] = IX_EMPTY;
        }
        d->fill = 0;
    }
}

/* =====================================================================
 * Operations
 */
int
sbi_shdict_get(sbi_shdict *d, const sbi_shd_key *k, sbi_blob **value)
{
    sbi_mutex_lock_any(&d->mutex);
    Py_ssize_t ix = find(d, k, NULL);
    if (ix >= 0) {
        *value = d->entries[ix].value;
        sbi_blob_incref(*value);
    }
    sbi_mutex_unlock(&d->mutex);
    return ix >= 0;
}

Py_ssize_t
sbi_shdict_len(sbi_shdict *d)
{
    sbi_mutex_lock_any(&d->mutex);
    Py_ssize_t n = d->len;
    sbi_mutex_unlock(&d->mutex);
    return n;
}

/* needs d->mutex.  *replaced receives the dict's own reference to a
 * value it replaced, for the caller to drop after unlocking. */
static int
store_locked(sbi_shdict *d, const sbi_shd_key *k, sbi_blob *key,
             sbi_blob *value, sbi_shd_how how, const sbi_blob *expect,
             sbi_blob **old, sbi_blob **replaced)
{
    *replaced = NULL;
    Py_ssize_t ix = find(d, k, NULL);
    sbi_blob *cur = ix >= 0 ? d->entries[ix].value : NULL;
    if (old != NULL) {
        *old = cur;
        if (cur != NULL) {
            sbi_blob_incref(cur);
        }
    }
    if ((how == SBI_SHD_SETDEFAULT && cur != NULL) ||
        (how == SBI_SHD_CAS && cur != expect))
    {
        return 0;
    }
    if (cur != NULL) {
        sbi_blob_incref(value);
        d->entries[ix].value = value;
        *replaced = cur;
        return 1;
    }
    if (key == NULL) {
        return SBI_SHD_NEED_KEY;
    }
    int err = insert(d, k, key, value);
    return err < 0 ? err : 1;
}

int
sbi_shdict_store(sbi_shdict *d, const sbi_shd_key *k, sbi_blob *key,
                 sbi_blob *value, sbi_shd_how how, const sbi_blob *expect,
                 sbi_blob **old)
{
    sbi_blob *replaced;
    sbi_mutex_lock_any(&d->mutex);
    int r = store_locked(d, k, key, value, how, expect, old, &replaced);
    sbi_mutex_unlock(&d->mutex);
    sbi_blob_decref(replaced);
    return r;
}

int
sbi_shdict_store_many(sbi_shdict *d, Py_ssize_t n, const sbi_shd_key *k,
                      sbi_blob *const *keys, sbi_blob *const *values)
{
    sbi_blob **replaced =
        PyMem_RawCalloc(n > 0 ? (size_t)n : 1, sizeof(*replaced));
    if (replaced == NULL) {
        return SBI_ERR_NOMEM;
    }
    sbi_mutex_lock_any(&d->mutex);
    // Room first, so that nothing fails half-way.
    int err = 0;
    if (d->nentries + n > d->capentries || d->fill + n > d->capentries) {
        err = rebuild(d, d->len + n);
    }
    for (Py_ssize_t i = 0; err == 0 && i < n; i++) {
        Py_ssize_t ix = find(d, &k[i], NULL);
        if (ix >= 0) {
            replaced[i] = d->entries[ix].value;
            sbi_blob_incref(values[i]);
            d->entries[ix].value = values[i];
        }
        else {
            // Room was made above: only the copy of the canonical key
            // can fail here (then the pairs before it stay stored).
            err = insert(d, &k[i], keys[i], values[i]);
        }
    }
    sbi_mutex_unlock(&d->mutex);
    for (Py_ssize_t i = 0; i < n; i++) {
        sbi_blob_decref(replaced[i]);
    }
    PyMem_RawFree(replaced);
    return err;
}

int
sbi_shdict_pop(sbi_shdict *d, const sbi_shd_key *k, const sbi_blob *expect)
{
    sbi_blob *kb = NULL, *vb = NULL;
    sbi_mutex_lock_any(&d->mutex);
    size_t slot = 0;
    Py_ssize_t ix = find(d, k, &slot);
    int found = ix >= 0 && (expect == NULL || d->entries[ix].value == expect);
    if (found) {
        unlink_entry(d, slot, ix, &kb, &vb);
    }
    sbi_mutex_unlock(&d->mutex);
    sbi_blob_decref(kb);
    sbi_blob_decref(vb);
    return found;
}

int
sbi_shdict_last(sbi_shdict *d, sbi_blob **key, sbi_blob **value)
{
    sbi_mutex_lock_any(&d->mutex);
    int found = d->len > 0;
    if (found) {
        entry *en = &d->entries[d->nentries - 1];  // never a hole
        *key = en->key;
        *value = en->value;
        sbi_blob_incref(*key);
        sbi_blob_incref(*value);
    }
    sbi_mutex_unlock(&d->mutex);
    return found;
}

int
sbi_shdict_pop_last(sbi_shdict *d, const sbi_blob *key, const sbi_blob *value)
{
    sbi_blob *kb = NULL, *vb = NULL;
    sbi_mutex_lock_any(&d->mutex);
    int found = 0;
    if (d->len > 0) {
        Py_ssize_t ix = d->nentries - 1;
        entry *en = &d->entries[ix];
        if (en->key == key && en->value == value) {
            sbi_shd_key k = {en->canon, en->len, en->hash};
            size_t slot = 0;
            if (SBI_ALWAYS(find(d, &k, &slot) == ix)) {
                unlink_entry(d, slot, ix, &kb, &vb);
                found = 1;
            }
        }
    }
    sbi_mutex_unlock(&d->mutex);
    sbi_blob_decref(kb);
    sbi_blob_decref(vb);
    return found;
}

void
sbi_shdict_clear(sbi_shdict *d)
{
    sbi_mutex_lock_any(&d->mutex);
    entry *entries = d->entries;
    Py_ssize_t n = d->nentries;
    Py_ssize_t *index = d->index;
    d->entries = NULL;
    d->nentries = d->capentries = d->len = 0;
    d->index = NULL;
    d->nindex = 0;
    d->fill = 0;
    sbi_mutex_unlock(&d->mutex);
    entries_free(entries, n);
    PyMem_RawFree(index);
}

int
sbi_shdict_snapshot(sbi_shdict *d, sbi_blob ***keys, sbi_blob ***values,
                    Py_ssize_t *n)
{
    sbi_blob **ks = NULL, **vs = NULL;
    Py_ssize_t len;
    for (;;) {
        len = sbi_shdict_len(d);
        size_t size = (size_t)(len > 0 ? len : 1) * sizeof(sbi_blob *);
        if ((keys != NULL && (ks = PyMem_RawMalloc(size)) == NULL) ||
            (values != NULL && (vs = PyMem_RawMalloc(size)) == NULL))
        {
            PyMem_RawFree(ks);
            return SBI_ERR_NOMEM;
        }
        sbi_mutex_lock_any(&d->mutex);
        if (d->len == len) {
            break;  // still fits: keep the lock
        }
        sbi_mutex_unlock(&d->mutex);
        PyMem_RawFree(ks);
        PyMem_RawFree(vs);
        ks = vs = NULL;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t e = 0; e < d->nentries; e++) {
        entry *en = &d->entries[e];
        if (en->canon == NULL) {
            continue;
        }
        if (ks != NULL) {
            ks[m] = en->key;
            sbi_blob_incref(en->key);
        }
        if (vs != NULL) {
            vs[m] = en->value;
            sbi_blob_incref(en->value);
        }
        m++;
    }
    sbi_mutex_unlock(&d->mutex);
    assert(m == len);
    if (keys != NULL) {
        *keys = ks;
    }
    if (values != NULL) {
        *values = vs;
    }
    *n = len;
    return 0;
}

void
sbi_shdict_free_snapshot(sbi_blob **keys, sbi_blob **values, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (keys != NULL) {
            sbi_blob_decref(keys[i]);
        }
        if (values != NULL) {
            sbi_blob_decref(values[i]);
        }
    }
    PyMem_RawFree(keys);
    PyMem_RawFree(values);
}
