/* shared.c -- the registry of process-global shared objects: an id
 * assigned at creation, a hash table from id to object, and reference
 * counts (see shared.h).
 *
 * Calls only lock.h and common.h (layers: docs/design.md).  Lock:
 * shared.mutex, a leaf: held for a few table operations, never while
 * calling out (destroy() runs after it is released).
 */
#include "shared.h"

#include <string.h>

static struct {
    sbi_mutex mutex;
    sbi_shared **buckets;  // mutex; nbuckets entries, a power of two
    size_t nbuckets;       // mutex
    size_t count;          // mutex
    int64_t next_id;       // mutex
} shared = {.mutex = SBI_MUTEX_INIT, .next_id = 1};

static size_t
bucket_of(int64_t id, size_t nbuckets)
{
    uint64_t h = (uint64_t)id * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (nbuckets - 1);
}

/* Double the table (needs lock).  On allocation failure the table stays
 * as it is: chains just get longer. */
static void
grow(void)
{
    size_t n = shared.nbuckets ? shared.nbuckets * 2 : 64;
    sbi_shared **b = PyMem_RawCalloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < shared.nbuckets; i++) {
        sbi_shared *o = shared.buckets[i];
        while (o != NULL) {
            sbi_shared *next = o->next;
            size_t k = bucket_of(o->id, n);
            o->next = b[k];
            b[k] = o;
            o = next;
        }
    }
    PyMem_RawFree(shared.buckets);
    shared.buckets = b;
    shared.nbuckets = n;
}

/* needs lock */
static sbi_shared *
find(int64_t id)
{
    if (shared.nbuckets == 0) {
        return NULL;
    }
    sbi_shared *o = shared.buckets[bucket_of(id, shared.nbuckets)];
    while (o != NULL && o->id != id) {
        o = o->next;
    }
    return o;
}

int
sbi_shared_add(sbi_shared *o, const sbi_shared_type *type)
{
    sbi_mutex_lock_any(&shared.mutex);
    if (shared.count >= shared.nbuckets) {
        grow();
        if (shared.nbuckets == 0) {
            sbi_mutex_unlock(&shared.mutex);
            return SBI_ERR_NOMEM;
        }
    }
    o->id = shared.next_id++;
    o->type = type;
    o->refs = 1;
    size_t k = bucket_of(o->id, shared.nbuckets);
    o->next = shared.buckets[k];
    shared.buckets[k] = o;
    shared.count++;
    sbi_mutex_unlock(&shared.mutex);
    return 0;
}

sbi_shared *
sbi_shared_bind(int64_t id, const sbi_shared_type *type)
{
    sbi_mutex_lock_any(&shared.mutex);
    sbi_shared *o = find(id);
    if (o != NULL && (type == NULL || o->type == type)) {
        o->refs++;
    }
    else {
        o = NULL;
    }
    sbi_mutex_unlock(&shared.mutex);
    return o;
}

void
sbi_shared_incref(sbi_shared *o)
{
    sbi_mutex_lock_any(&shared.mutex);
    assert(o->refs > 0);
    o->refs++;
    sbi_mutex_unlock(&shared.mutex);
}

void
sbi_shared_decref(sbi_shared *o)
{
    sbi_mutex_lock_any(&shared.mutex);
    assert(o->refs > 0);
    if (--o->refs > 0) {
        sbi_mutex_unlock(&shared.mutex);
        return;
    }
    sbi_shared **p = &shared.buckets[bucket_of(o->id, shared.nbuckets)];
    while (*p != o) {
        p = &(*p)->next;
    }
    *p = o->next;
    shared.count--;
    sbi_mutex_unlock(&shared.mutex);
    o->type->destroy(o);
}

int
sbi_shared_handle_bind(int64_t id)
{
    return sbi_shared_bind(id, NULL) != NULL ? 0 : SBI_ERR_NOT_FOUND;
}

void
sbi_shared_handle_release(int64_t id)
{
    sbi_mutex_lock_any(&shared.mutex);
    sbi_shared *o = find(id);
    sbi_mutex_unlock(&shared.mutex);
    // The data releasing this handle holds a reference: o exists.
    if (SBI_ALWAYS(o != NULL)) {
        sbi_shared_decref(o);
    }
}

int64_t
sbi_shared_next_id(void)
{
    sbi_mutex_lock_any(&shared.mutex);
    int64_t id = shared.next_id;
    sbi_mutex_unlock(&shared.mutex);
    return id;
}

Py_ssize_t
sbi_shared_count(const sbi_shared_type *type)
{
    Py_ssize_t n = 0;
    sbi_mutex_lock_any(&shared.mutex);
    for (size_t i = 0; i < shared.nbuckets; i++) {
        for (sbi_shared *o = shared.buckets[i]; o != NULL; o = o->next) {
            n += type == NULL || o->type == type;
        }
    }
    sbi_mutex_unlock(&shared.mutex);
    return n;
}

void
sbi_shared_fork_lock(void)
{
    sbi_mutex_lock(&shared.mutex);
    for (size_t i = 0; i < shared.nbuckets; i++) {
        for (sbi_shared *o = shared.buckets[i]; o != NULL; o = o->next) {
            sbi_mutex_lock(o->type->mutex_of(o));
        }
    }
}

void
sbi_shared_fork_unlock(void)
{
    for (size_t i = 0; i < shared.nbuckets; i++) {
        for (sbi_shared *o = shared.buckets[i]; o != NULL; o = o->next) {
            sbi_mutex_unlock(o->type->mutex_of(o));
        }
    }
    sbi_mutex_unlock(&shared.mutex);
}

void
sbi_shared_after_fork(void)
{
    (void)sbi_mutex_init(&shared.mutex);
    for (size_t i = 0; i < shared.nbuckets; i++) {
        for (sbi_shared *o = shared.buckets[i]; o != NULL; o = o->next) {
            o->type->after_fork(o);
        }
    }
}
