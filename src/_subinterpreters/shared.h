/* shared.h -- process-global objects shared by every interpreter (sync
 * primitives, SharedDicts), found by int64 id and kept alive by counted
 * references (see shared.c).
 *
 * A feature embeds sbi_shared as the first member of its own struct and
 * gives a static sbi_shared_type.  Python objects and cross-interpreter
 * handles each hold one reference; the last release unlinks the object
 * and calls its type's destroy() outside every lock.
 */
#ifndef SBI_SHARED_H
#define SBI_SHARED_H

#include "common.h"
#include "lock.h"

typedef struct sbi_shared sbi_shared;

typedef struct {
    const char *name;  // for messages: "Lock", "SharedDict", ...
    /* Free o and everything it holds.  Any thread, with or without a
     * thread state; no lock held. */
    void (*destroy)(sbi_shared *o);
    /* The lock guarding o's state, held across fork() by
     * sbi_shared_fork_lock(); in the child, after_fork() resets it (and
     * what the threads that are gone left: their waits). */
    sbi_mutex *(*mutex_of)(sbi_shared *o);
    void (*after_fork)(sbi_shared *o);
} sbi_shared_type;

struct sbi_shared {
    int64_t id;  // set by sbi_shared_add()
    const sbi_shared_type *type;
    int64_t refs;      // protected by the registry lock
    sbi_shared *next;  // hash chain; registry lock
};

/* Give o (zeroed or otherwise unlinked) an id and one reference owned by
 * the caller, and make it findable.  Returns 0, or SBI_ERR_NOMEM.  Any
 * thread; a thread state may be attached (the lock is a leaf). */
int sbi_shared_add(sbi_shared *o, const sbi_shared_type *type);

/* Take a reference to the object with id, if it exists and has type
 * (NULL: any type).  Returns it, or NULL. Any thread. */
sbi_shared *sbi_shared_bind(int64_t id, const sbi_shared_type *type);

/* Take another reference to o (the caller holds one).  Any thread. */
void sbi_shared_incref(sbi_shared *o);

/* Drop one reference; the last one destroys o.  Any thread, with or
 * without a thread state; no lock of o's may be held. */
void sbi_shared_decref(sbi_shared *o);

/* The handle kind callbacks (xidata.h) every shared type uses: bind and
 * release one reference by id. */
int sbi_shared_handle_bind(int64_t id);
void sbi_shared_handle_release(int64_t id);

/* The id the next object will get.  Any thread. */
int64_t sbi_shared_next_id(void);

/* How many objects of type exist (for leak tests); NULL: all. */
Py_ssize_t sbi_shared_count(const sbi_shared_type *type);

/* Before fork(): take the registry lock and every object's; in the
 * parent after it: let go of them.  No thread state needed (nobody holds
 * these while waiting for a GIL). */
void sbi_shared_fork_lock(void);
void sbi_shared_fork_unlock(void);

/* In the child of fork(): reset the registry lock and every object's
 * (type->after_fork). */
void sbi_shared_after_fork(void);

#endif /* SBI_SHARED_H */
