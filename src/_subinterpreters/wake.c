/* wake.c -- the registry of blocked waits, so that interrupts and close()
 * wake them at once (see wake.h).
 *
 * Calls only lock.h and common.h (layers: docs/design.md).  Lock order:
 * wake.mutex, then the mutex a registered wait names (a kicker holds both
 * for a store and a broadcast).  A waiter never takes wake.mutex while
 * holding its own mutex, and holders of those mutexes never wait for
 * anything but their condition.
 */
#include "wake.h"

static struct {
    sbi_mutex mutex;
    sbi_wake *head;    // mutex
    int64_t *closing;  // mutex: ids of the interpreters being closed
    int nclosing;      // mutex
    int capclosing;    // mutex
} wake = {.mutex = SBI_MUTEX_INIT};

/* needs lock */
static int
closing_locked(int64_t cid)
{
    for (int i = 0; i < wake.nclosing; i++) {
        if (wake.closing[i] == cid) {
            return 1;
        }
    }
    return 0;
}

int
sbi_wake_begin(sbi_wake *w, sbi_mutex *mutex, sbi_cond *cond)
{
    w->tid = PyThread_get_thread_ident();
    w->cid = sbi_current_cid();
    w->mutex = mutex;
    w->cond = cond;
    w->kicked = 0;
    sbi_mutex_lock_py(&wake.mutex);
    if (closing_locked(w->cid)) {
        sbi_mutex_unlock(&wake.mutex);
        return SBI_ERR_INTERP_CLOSING;
    }
    w->next = wake.head;
    wake.head = w;
    sbi_mutex_unlock(&wake.mutex);
    return 0;
}

void
sbi_wake_end(sbi_wake *w)
{
    sbi_mutex_lock_any(&wake.mutex);
    sbi_wake **p = &wake.head;
    while (*p != NULL && *p != w) {
        p = &(*p)->next;
    }
    if (SBI_ALWAYS(*p != NULL)) {
        *p = w->next;
    }
    sbi_mutex_unlock(&wake.mutex);
}

/* Kick w (needs wake.mutex). */
static void
kick(sbi_wake *w)
{
    sbi_mutex_lock(w->mutex);
    w->kicked = 1;
    sbi_cond_broadcast(w->cond);
    sbi_mutex_unlock(w->mutex);
}

void
sbi_wake_kick_thread(unsigned long tid)
{
    sbi_mutex_lock_any(&wake.mutex);
    for (sbi_wake *w = wake.head; w != NULL; w = w->next) {
        if (w->tid == tid) {
            kick(w);
        }
    }
    sbi_mutex_unlock(&wake.mutex);
}

void
sbi_wake_set_closing(int64_t cid, int closing)
{
    sbi_mutex_lock_any(&wake.mutex);
    if (closing) {
        if (!closing_locked(cid)) {
            if (wake.nclosing == wake.capclosing) {
                int cap = wake.capclosing ? wake.capclosing * 2 : 8;
                int64_t *p =
                    PyMem_RawRealloc(wake.closing, (size_t)cap * sizeof(*p));
                if (p != NULL) {
                    wake.closing = p;
                    wake.capclosing = cap;
                }
            }
            // Out of memory: the waits are still kicked once; only a
            // wait begun after this one is not refused.
            if (wake.nclosing < wake.capclosing) {
                wake.closing[wake.nclosing++] = cid;
            }
        }
        for (sbi_wake *w = wake.head; w != NULL; w = w->next) {
            if (w->cid == cid) {
                kick(w);
            }
        }
    }
    else {
        for (int i = 0; i < wake.nclosing; i++) {
            if (wake.closing[i] == cid) {
                wake.closing[i] = wake.closing[--wake.nclosing];
                break;
            }
        }
    }
    sbi_mutex_unlock(&wake.mutex);
}

int
sbi_wake_is_closing(int64_t cid)
{
    sbi_mutex_lock_any(&wake.mutex);
    int r = closing_locked(cid);
    sbi_mutex_unlock(&wake.mutex);
    return r;
}

void
sbi_wake_fork_lock(void)
{
    sbi_mutex_lock(&wake.mutex);
}

void
sbi_wake_fork_unlock(void)
{
    sbi_mutex_unlock(&wake.mutex);
}

void
sbi_wake_after_fork(void)
{
    (void)sbi_mutex_init(&wake.mutex);
    wake.head = NULL;
    wake.nclosing = 0;  // (the array is kept for reuse)
}
