/* registry.h -- the process-global registry of the interpreters this
 * module created (from any interpreter): their records, public ids and
 * whence values.
 *
 * Calls only compat.h, lock.h, common.h (layers: docs/design.md).
 * Everything above
 * (interrupts, sessions, parking, the lifecycle, the Interpreter type)
 * works on these records under sbi_registry.mutex.
 *
 * Lock: sbi_registry.mutex is a leaf lock held only for list operations
 * and flag updates; no Python API is called while it is held.
 */
#ifndef SBI_REGISTRY_H
#define SBI_REGISTRY_H

#include "common.h"
#include "lock.h"
#include "tuning.h"

/* whence values and their names, as in 3.14 */
#define SBI_WHENCE_MAP(X)                                                     \
  X(UNKNOWN, 0, "unknown")                                                    \
  X(RUNTIME, 1, "runtime init")                                               \
  X(LEGACY_CAPI, 2, "legacy C-API")                                           \
  X(CAPI, 3, "C-API")                                                         \
  X(XI, 4, "cross-interpreter C-API")                                         \
  X(STDLIB, 5, "_interpreters module")

enum {
#define SBI_X(name, value, str) WHENCE_##name = value,
    SBI_WHENCE_MAP(SBI_X)
#undef SBI_X
};

/* The name of a whence value, as in 3.14 ("unknown" for others). */
const char *sbi_registry_whence_name(int whence);

/* A number unique to the calling OS thread for its whole life (thread
 * idents can be reused once a thread ends; these never are).  Any
 * thread, no thread state needed. */
uint64_t sbi_registry_thread_serial(void);

/* An interpreter whose owning references are all gone. */
typedef enum {
    SBI_ORPHAN_NO = 0,   // owned, or being ended
    SBI_ORPHAN_REAP,     // lost its owners while it could not end: ended at
                         // the next create(), close() or session exit
    SBI_ORPHAN_AT_EXIT,  // ending it failed: only the exit hook retries
} sbi_orphan;

/* One interpreter of ours.  Fields are protected by sbi_registry.mutex
 * unless their comment says otherwise. */
typedef struct sbi_entry {
    struct sbi_entry *next;
    int64_t id;   // public id: fresh on every reuse
    int64_t cid;  // CPython's id: owner of queue items
                  // and shared buffers (see park.c)
    PyInterpreterState *interp;
    // A thread state made right after Py_NewInterpreterFromConfig (which
    // replaces the start-up one), kept until destruction: while it
    // exists the interpreter's thread list is never empty, so CPython
    // never reuses the preallocated initial thread state, which is racy
    // on 3.12.1/3.13.0 (gh-126914).  It starts as the creating thread's
    // cached thread state; leaving the cache (eviction, parking) never
    // deletes it.
    PyThreadState *keeper;
    Py_ssize_t refs;                // owning Interpreter objects
    unsigned long running_tid;      // thread running __main__, 0 if idle
    PyThreadState *running_tstate;  // its thread state in this interpreter
    int closing;                    // being destroyed: invisible
    sbi_orphan orphaned;
    int exit_failed;          // could not be destroyed at exit
    int interrupters;         // sbi_interrupt_interp() calls in flight
    int interrupt_pending;    // an interrupt was sent to the session
    int interrupt_unwind;     // ... by an unwind (sbi_interrupt_unwind)
    int user_code;            // the session runs the caller's code:
                              // interrupts land only then
    uint64_t unwinding;       // serial of the session an unwinder
                              // thread interrupts (0: none)
    int parkable;             // its pristine snapshot was taken
    uint64_t env_hash;        // sbi_park_environ_hash() at creation
    uint64_t session_serial;  // counts sessions, for targeted interrupts
    // Thread states kept between sessions, one per OS thread (keyed by
    // sbi_registry_thread_serial()), so a call does not pay for creating a thread
    // state and its frame stack each time.  Touched only by the thread
    // that holds the running flag (or destroys the interpreter), with the
    // registry lock held for the lookups.
    struct {
        uint64_t serial;
        unsigned long ident;
        PyThreadState *tstate;
    } cache[SBI_TSTATE_CACHE];
    int ncache;
} sbi_entry;

typedef struct {
    sbi_mutex mutex;
    sbi_entry *head;           // protected by mutex
    int shutting_down;         // protected by mutex
    unsigned long exit_ident;  // protected by mutex; runs the exit hook
    sbi_entry *parked;         // protected by mutex; closed, reusable
    int nparked;               // protected by mutex
    int park_max;              // protected by mutex
    int64_t last_id;           // protected by mutex; highest public id
    int forking;               // protected by mutex; os.fork() guards
    long fork_pid;             // protected by mutex; the forking process
    int creating;              // protected by mutex; create()s under way
    int remapped;              // set once, atomic: some id != cid
} sbi_registry_t;

/* The one registry of the process. */
extern sbi_registry_t sbi_registry;

/* A public id for an interpreter whose CPython id is cid: cid itself the
 * first time, unless a reused interpreter took that number already; a
 * reused one always gets a number above every id given out.  Needs
 * lock. */
int64_t sbi_registry_fresh_id(int64_t cid);

/* The public id of interpreter cur (CPython's, unless it is one of ours
 * that was reused).  Needs lock. */
int64_t sbi_registry_pid_of(PyInterpreterState *cur);

/* The public id of the current interpreter.  Thread state attached; takes
 * the lock only when some id was remapped. */
int64_t sbi_registry_current_pid(void);

/* The live or closing record with public id id, or NULL.  Needs lock. */
sbi_entry *sbi_registry_find(int64_t id);

/* Unlink e from the live list.  Needs lock. */
void sbi_registry_remove(sbi_entry *e);

/* Is id one of ours and alive?  Returns its whence, or -1 if unknown.
 * Thread state attached. */
int sbi_registry_lookup_whence(int64_t id);

/* The calling thread's part of `forking` and `creating` (os.fork()
 * guards and create() calls it runs now), kept per thread so that a
 * forked child, where only this thread lives, can start from them. */
int sbi_registry_forking_here(void);
void sbi_registry_forking_here_add(int n);
void sbi_registry_creating_here_add(int n);

/* In the child of fork(): the lock may have been held by a thread that
 * does not exist there, and only this thread's forks and creations are
 * under way. */
void sbi_registry_after_fork(void);

#endif /* SBI_REGISTRY_H */
