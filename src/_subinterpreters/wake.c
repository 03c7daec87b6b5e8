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

/* Interpreters being closed: a handful at a time.  A slot holds cid + 1
 * (0 is the main interpreter's id), 0 when free. */
#define WAKE_CLOSING_MAX 16
#define WAKE_FREE 0

static struct {
    sbi_mutex mutex;
    sbi_wake *head;                     // mutex
    int64_t closing[WAKE_CLOSING_MAX];  // mutex: cid + 1, or WAKE_FREE
    int nclosing;                       // mutex: slots in use
} wake = {.mutex = SBI_MUTEX_INIT};

/* needs lock */
static int
closing_locked(int64_t cid)
{
    if (wake.nclosing == 0) {
        return 0;
    }
    for (int i = 0; i < WAKE_CLOSING_MAX; i++) {
        if (wake.closing[i] == cid + 1) {
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
    int slot = -1;
    for (int i = 0; i < WAKE_CLOSING_MAX; i++) {
        if (wake.closing[i] == (closing ? WAKE_FREE : cid + 1)) {
            slot = i;
            break;
        }
    }
    if (closing) {
        // With no free slot (more interpreters closing at once than
        // WAKE_CLOSING_MAX), waits are still kicked once; only a wait
        // begun after this one is not refused.
        if (slot >= 0 && !closing_locked(cid)) {
            wake.closing[slot] = cid + 1;
            wake.nclosing++;
        }
        for (sbi_wake *w = wake.head; w != NULL; w = w->next) {
            if (w->cid == cid) {
                kick(w);
            }
        }
    }
    else if (slot >= 0) {
        wake.closing[slot] = WAKE_FREE;
        wake.nclosing--;
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
    for (int i = 0; i < WAKE_CLOSING_MAX; i++) {
        wake.closing[i] = WAKE_FREE;
    }
    wake.nclosing = 0;
}
