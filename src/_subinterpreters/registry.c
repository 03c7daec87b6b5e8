/* registry.c -- the process-global registry of our interpreters (see
 * registry.h).
 */
#include "registry.h"

sbi_registry_t sbi_registry = {.mutex = SBI_MUTEX_INIT,
                               .park_max = SBI_PARK_MAX};

const char *
sbi_registry_whence_name(int whence)
{
    switch (whence) {
#define SBI_X(name, value, str)                                               \
  case value:                                                                 \
    return str;
        SBI_WHENCE_MAP(SBI_X)
#undef SBI_X
    default:
        return "unknown";
    }
}

/* A number unique to the calling OS thread for its whole life (thread
 * idents can be reused once a thread ends; these never are). */
uint64_t
sbi_registry_thread_serial(void)
{
    static _Thread_local uint64_t serial = 0;
    static uint64_t next = 0;
    if (serial == 0) {
        serial = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
    }
    return serial;
}

/* A public id for an interpreter whose CPython id is cid: cid itself the
 * first time, unless a reused interpreter took that number already; a
 * reused one always gets a number above every id given out.  needs lock */
int64_t
sbi_registry_fresh_id(int64_t cid)
{
    int64_t id = cid > sbi_registry.last_id ? cid : sbi_registry.last_id + 1;
    sbi_registry.last_id = id;
    if (id != cid) {
        __atomic_store_n(&sbi_registry.remapped, 1, __ATOMIC_RELAXED);
    }
    return id;
}

/* The public id of interpreter cur (CPython's, unless it is one of ours
 * that was reused).  needs lock */
int64_t
sbi_registry_pid_of(PyInterpreterState *cur)
{
    int64_t id = PyInterpreterState_GetID(cur);
    if (id == 0 || !__atomic_load_n(&sbi_registry.remapped, __ATOMIC_RELAXED))
    {
        return id;
    }
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->interp == cur) {
            return e->id;
        }
    }
    return id;
}

/* The public id of the current interpreter.  Thread state attached. */
int64_t
sbi_registry_current_pid(void)
{
    PyInterpreterState *cur = PyInterpreterState_Get();
    int64_t cid = PyInterpreterState_GetID(cur);
    // Main (the usual caller of call()) is never remapped: no lock.
    if (cid == 0 || !__atomic_load_n(&sbi_registry.remapped, __ATOMIC_RELAXED))
    {
        return cid;
    }
    sbi_mutex_lock_py(&sbi_registry.mutex);
    int64_t id = sbi_registry_pid_of(cur);
    sbi_mutex_unlock(&sbi_registry.mutex);
    return id;
}

sbi_entry *
sbi_registry_find(int64_t id)  // needs lock
{
    for (sbi_entry *e = sbi_registry.head; e != NULL; e = e->next) {
        if (e->id == id) {
            return e;
        }
    }
    return NULL;
}

void
sbi_registry_remove(sbi_entry *e)  // needs lock
{
    for (sbi_entry **pp = &sbi_registry.head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            return;
        }
    }
}

/* Is id one of ours and alive?  Returns its whence or -1 if unknown. */
int
sbi_registry_lookup_whence(int64_t id)
{
    int whence = -1;
    sbi_mutex_lock_py(&sbi_registry.mutex);
    sbi_entry *e = sbi_registry_find(id);
    if (e != NULL && !e->closing) {
        whence = WHENCE_STDLIB;
    }
    sbi_mutex_unlock(&sbi_registry.mutex);
    if (whence < 0) {
        if (id == 0) {
            whence = WHENCE_RUNTIME;
        }
        else if (id == sbi_registry_current_pid()) {
            whence = WHENCE_UNKNOWN;
        }
    }
    return whence;
}

static _Thread_local int forking_here;
static _Thread_local int creating_here;

int
sbi_registry_forking_here(void)
{
    return forking_here;
}

void
sbi_registry_forking_here_add(int n)
{
    forking_here += n;
}

void
sbi_registry_creating_here_add(int n)
{
    creating_here += n;
}

void
sbi_registry_after_fork(void)
{
    (void)pthread_mutex_init(&sbi_registry.mutex, NULL);
    // The other threads are gone, with their guards and creations; this
    // thread's guard does not hold creations back here (its at-fork
    // hooks may create: the fork is done).
    sbi_registry.forking = 0;
    sbi_registry.creating = creating_here;
}
