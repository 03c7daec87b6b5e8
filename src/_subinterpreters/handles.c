/* handles.c -- the table of handle kinds (handles.h).
 *
 * The table only grows, and an entry is written before the count that
 * publishes it: readers need no lock; the mutex only serialises
 * registrations (module init).
 */
#include "handles.h"
#include "lock.h"
#include "tuning.h"
#include <pthread.h>
static struct {
    sbi_mutex mutex;  // serialises registrations
    const sbi_handle_kind *kinds[SBI_HANDLE_KINDS_MAX];
    int n;  // atomic
} handle_kinds = {.mutex = SBI_MUTEX_INIT};

int
sbi_handles_register(const sbi_handle_kind *kind)
{
    int index = -1;
    sbi_mutex_lock_py(&handle_kinds.mutex);
    for (int i = 0; i < handle_kinds.n; i++) {
        if (handle_kinds.kinds[i] == kind) {
            index = i;
        }
    }
    if (index < 0 && handle_kinds.n < SBI_HANDLE_KINDS_MAX) {
        index = handle_kinds.n;
        handle_kinds.kinds[index] = kind;
        __atomic_store_n(&handle_kinds.n, index + 1, __ATOMIC_RELEASE);
    }
    sbi_mutex_unlock(&handle_kinds.mutex);
    if (index < 0) {
        PyErr_SetString(PyExc_RuntimeError, "too many handle kinds");
    }
    return index;
}

void
sbi_handles_after_fork(void)
{
    (void)pthread_mutex_init(&handle_kinds.mutex, NULL);
}

int
sbi_handles_kind_of(PyObject *obj, int64_t *id)
{
    int n = __atomic_load_n(&handle_kinds.n, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        if (handle_kinds.kinds[i]->check(obj, id)) {
            return i;
        }
    }
    return -1;
}

const sbi_handle_kind *
sbi_handles_get(int index)
{
    int n = __atomic_load_n(&handle_kinds.n, __ATOMIC_ACQUIRE);
    return index >= 0 && index < n ? handle_kinds.kinds[index] : NULL;
}

void
sbi_handles_release(const sbi_handle_ref *refs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        handle_kinds.kinds[refs[i].kind]->release(refs[i].id);
    }
}
