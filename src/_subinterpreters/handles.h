/* handles.h -- handle kinds: objects that cross interpreters as the int64
 * id of process-global state that lives while handles to it exist
 * (queues, sync primitives, shared objects; further features alike).
 * Each registers its kind at module init, so the data layer never names
 * a queue.
 */
#ifndef SBI_HANDLES_H
#define SBI_HANDLES_H

#include "common.h"

typedef struct {
    /* Is obj one of these?  Sets *id.  Never fails.  Thread state
     * attached. */
    int (*check)(PyObject *obj, int64_t *id);
    /* Keep id alive while data holding it exists: 0 or a negative
     * SBI_ERR_* (no exception).  Thread state attached. */
    int (*bind)(int64_t id);
    /* Undo one bind.  Any thread, with or without a thread state. */
    void (*release)(int64_t id);
    /* The object for id in the current interpreter: new reference, or
     * NULL with an exception. */
    PyObject *(*object)(int64_t id);
} sbi_handle_kind;

/* One handle held by cross-interpreter data. */
typedef struct {
    uint8_t kind;  // index returned by the registration
    int64_t id;
} sbi_handle_ref;

/* Register kind (static storage, never freed).  Returns its index (the
 * same for the same kind every time), or -1 with an exception if the
 * table is full.  Thread state attached. */
int sbi_handles_register(const sbi_handle_kind *kind);

/* In the child of fork(): the registration lock may have been held by a
 * thread that does not exist there. */
void sbi_handles_after_fork(void);

/* If obj crosses as a handle, its kind index (>= 0) with *id set; else
 * -1.  Never fails.  Thread state attached. */
int sbi_handles_kind_of(PyObject *obj, int64_t *id);

/* The registered kind at index, or NULL if there is none (corrupt data).
 * Any thread; no lock. */
const sbi_handle_kind *sbi_handles_get(int index);

/* Drop the bindings of refs.  Any thread, with or without a thread
 * state. */
void sbi_handles_release(const sbi_handle_ref *refs, Py_ssize_t n);

#endif /* SBI_HANDLES_H */
