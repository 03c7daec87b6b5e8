/* hooks.c -- subscriber lists for lifecycle events (see hooks.h).
 *
 * The list only grows and an entry is written before the count that
 * publishes it, so running it needs no lock; registering takes
 * registered.mutex (a leaf lock, no Python API inside).
 */
#include "hooks.h"
#include "lock.h"
#include "tuning.h"

static struct {
    sbi_mutex mutex;  // serialises registrations
    const sbi_hooks *list[SBI_HOOKS_MAX];
    int n;  // atomic
} registered = {.mutex = SBI_MUTEX_INIT};

int
sbi_hooks_register(const sbi_hooks *hooks)
{
    int rc = 0;
    sbi_mutex_lock_py(&registered.mutex);
    int i = 0;
    while (i < registered.n && registered.list[i] != hooks) {
        i++;
    }
    if (i == registered.n) {
        if (registered.n < SBI_HOOKS_MAX) {
            registered.list[i] = hooks;
            __atomic_store_n(&registered.n, i + 1, __ATOMIC_RELEASE);
        }
        else {
            rc = -1;
        }
    }
    sbi_mutex_unlock(&registered.mutex);
    if (rc < 0) {
        PyErr_SetString(PyExc_RuntimeError, "too many lifecycle hooks");
    }
    return rc;
}

void
sbi_hooks_run_closed(int64_t cid)
{
    int n = __atomic_load_n(&registered.n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        if (registered.list[i]->closed != NULL) {
            registered.list[i]->closed(cid);
        }
    }
}

void
sbi_hooks_run_exiting(void)
{
    int n = __atomic_load_n(&registered.n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        if (registered.list[i]->exiting != NULL) {
            registered.list[i]->exiting();
        }
    }
}

void
sbi_hooks_after_fork(void)
{
    (void)pthread_mutex_init(&registered.mutex, NULL);
}
