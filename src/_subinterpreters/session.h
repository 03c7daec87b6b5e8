/* session.h -- switching the calling OS thread into one of our
 * interpreters and back (see session.c), and running a call there from a
 * module-level frame.
 */
#ifndef SBI_SESSION_H
#define SBI_SESSION_H

#include "common.h"
#include "state.h"
#include "registry.h"

/* One visit of the calling thread to an interpreter's __main__. */
typedef struct {
    sbi_entry *entry;
    PyThreadState *caller;  // NULL when no switch happened
    PyThreadState *tstate;  // the thread state running in the target
    uint64_t serial;        // e->session_serial of this session
    int sigint;             // Ctrl-C forwarding armed (main thread)
} sbi_session;

/* Mark interpreter id as running __main__ in this thread and switch the
 * thread into it.  Caller attached.  0, or -1 with an exception set (in
 * the caller's interpreter). */
int sbi_session_enter(sbi_state *st, int64_t id, sbi_session *s,
                      const char *op);

/* Switch back to the caller and mark the target idle.  No exception may
 * be set in the target.  Returns 1 if the interpreter lost its last
 * owner while running (the caller then reaps it: sbi_lifecycle_leave()
 * does both), else 0. */
int sbi_session_exit(sbi_session *s);

/* __main__.__dict__ of the current interpreter.  New reference (code
 * run through it may replace sys.modules['__main__']). */
PyObject *sbi_session_main_dict(void);

/* Call func(*args, **kwargs) from a module-level frame on __main__ (ns,
 * its dict).  args may be NULL (no args), kwargs NULL or a dict.  New
 * reference or NULL. */
PyObject *sbi_session_call_in_main(PyObject *ns, PyObject *func,
                                   PyObject *args, PyObject *kwargs);

#endif /* SBI_SESSION_H */
