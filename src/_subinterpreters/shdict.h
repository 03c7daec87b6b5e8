/* shdict.h -- SharedDict, raw layer (see shdict.c): a hash table in
 * process-global memory whose keys and values are cross-interpreter data
 * (xidata.h, SBI_XI_DATA mode), shared by id (shared.h).
 *
 * Keys are looked up by their canonical form (sbi_shd_key): bytes equal
 * exactly when the Python keys are equal (1 == 1.0 == True; all NaNs are
 * one key), made by the Python layer.  The key as first stored is kept apart, for reading back.
 *
 * Values are held in counted blobs, so that a reader takes a reference
 * under the lock and decodes after letting go of it.  Every function
 * takes the dict's mutex itself (a leaf: no Python API, nothing waited
 * for under it); a thread state may be attached.  Blobs handed out carry
 * a reference the caller drops with sbi_blob_decref().
 */
#ifndef SBI_SHDICT_H
#define SBI_SHDICT_H

#include "shared.h"
#include "xidata.h"

typedef struct {
    int64_t refs;  // atomic
    sbi_xidata *xd;
} sbi_blob;

/* A blob owning xd (also on failure), with one reference; NULL if out of
 * memory. */
sbi_blob *sbi_blob_new(sbi_xidata *xd);
void sbi_blob_incref(sbi_blob *b);
/* Any thread; NULL is accepted. */
void sbi_blob_decref(sbi_blob *b);

typedef struct {
    const char *data;  // the canonical form
    size_t len;
    uint64_t hash;
} sbi_shd_key;

typedef struct sbi_shdict sbi_shdict;

/* A new empty dict with one reference owned by the caller (drop it with
 * sbi_shared_decref() on its sbi_shared, the first member), or NULL. */
sbi_shdict *sbi_shdict_new(void);
/* The raw type of every SharedDict (shared.h). */
extern const sbi_shared_type sbi_shdict_shared;

/* 1 with *value set (a reference) if k is there, else 0. */
int sbi_shdict_get(sbi_shdict *d, const sbi_shd_key *k, sbi_blob **value);

Py_ssize_t sbi_shdict_len(sbi_shdict *d);

/* How sbi_shdict_store() treats a key that is there. */
typedef enum {
    SBI_SHD_SET,         // replace its value
    SBI_SHD_SETDEFAULT,  // keep it
    SBI_SHD_CAS,         // replace it only if its value is *expect
} sbi_shd_how;

/* Store value under k, as how says.  key is k's stored form, needed only
 * if k is not there yet: with key NULL, returns SBI_SHD_NEED_KEY then
 * and changes nothing.  *old (if old is not NULL) receives a reference
 * to k's value before the call, or NULL if k was not there.  CAS with
 * expect NULL stores only if k is absent.  Returns 1 if value was
 * stored, 0 if not (SETDEFAULT: k there; CAS: its value was not expect),
 * SBI_SHD_NEED_KEY, or SBI_ERR_NOMEM.  The dict takes its own
 * references to key and value. */
#define SBI_SHD_NEED_KEY 2
int sbi_shdict_store(sbi_shdict *d, const sbi_shd_key *k, sbi_blob *key,
                     sbi_blob *value, sbi_shd_how how, const sbi_blob *expect,
                     sbi_blob **old);

/* Store n pairs at once, as SBI_SHD_SET with every key given.  Returns 0
 * or SBI_ERR_NOMEM (then nothing was stored, unless the memory ran out
 * copying a key: then the pairs before it were). */
int sbi_shdict_store_many(sbi_shdict *d, Py_ssize_t n, const sbi_shd_key *k,
                          sbi_blob *const *keys, sbi_blob *const *values);

/* Remove k if its value is expect (NULL: whatever it is): 1 if removed,
 * else 0.  (Readers decode a reference first and remove after, so that a
 * value that fails to load is not lost.) */
int sbi_shdict_pop(sbi_shdict *d, const sbi_shd_key *k,
                   const sbi_blob *expect);

/* The last pair stored: 1 with references in *key and *value, or 0 if
 * the dict is empty. */
int sbi_shdict_last(sbi_shdict *d, sbi_blob **key, sbi_blob **value);

/* Remove the last pair if it is still (key, value): 1 if removed, else
 * 0. */
int sbi_shdict_pop_last(sbi_shdict *d, const sbi_blob *key,
                        const sbi_blob *value);

void sbi_shdict_clear(sbi_shdict *d);

/* Every pair, in insertion order: arrays of references (free them and
 * their blobs with sbi_shdict_free_snapshot()); keys or values may be
 * NULL when not wanted.  0, or SBI_ERR_NOMEM. */
int sbi_shdict_snapshot(sbi_shdict *d, sbi_blob ***keys, sbi_blob ***values,
                        Py_ssize_t *n);
void sbi_shdict_free_snapshot(sbi_blob **keys, sbi_blob **values,
                              Py_ssize_t n);

#endif /* SBI_SHDICT_H */
