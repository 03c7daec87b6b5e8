/* sigint.c -- Ctrl-C forwarding.
 *
 * While the main thread of the main interpreter runs code in another
 * interpreter, Python's SIGINT handler only sets a flag that nobody looks
 * at until the call returns.  We chain our own handler in front of it:
 * it calls the previous handler, then wakes a watcher thread through a
 * pipe (write() is async-signal-safe); the watcher interrupts the
 * interpreter the main thread is in.  Back in the caller, the pending
 * signal is handled as usual and the caller gets KeyboardInterrupt.
 *
 * The same pipe wakes the main thread when it blocks in one of our waits
 * in the main interpreter (sync primitives): the watcher kicks it
 * (wake.c), and the wait runs the handler, which raises.
 *
 * Calls interrupt.c and wake.c (layers: docs/design.md).
 */
#include "sigint.h"
#include "interrupt.h"
#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct {
    struct sigaction prev;  // the handler we chain to
    int pipe[2];
    int64_t target;            // atomic: interpreter to interrupt
    int main_waiting;          // atomic: the main thread waits in ours
    unsigned long main_ident;  // main thread, once known
} sigint = {.pipe = {-1, -1}};

static void
sigint_handler(int signum, siginfo_t *info, void *uctx)
{
    static volatile sig_atomic_t active = 0;
    if (active) {
        return;  // a handler we chained to chained back to us
    }
    active = 1;
    int saved = errno;
    if (sigint.prev.sa_flags & SA_SIGINFO) {
        if (sigint.prev.sa_sigaction != NULL) {
            sigint.prev.sa_sigaction(signum, info, uctx);
        }
    }
    else if (sigint.prev.sa_handler != SIG_DFL &&
             sigint.prev.sa_handler != SIG_IGN &&
             sigint.prev.sa_handler != NULL)
    {
        sigint.prev.sa_handler(signum);
    }
    if (__atomic_load_n(&sigint.target, __ATOMIC_RELAXED) != 0 ||
        __atomic_load_n(&sigint.main_waiting, __ATOMIC_RELAXED))
    {
        char b = 1;
        ssize_t r = write(sigint.pipe[1], &b, 1);
        (void)r;
    }
    errno = saved;
    active = 0;
}

static void *
sigint_watcher(void *arg)
{
    for (;;) {
        char b;
        ssize_t r = read(sigint.pipe[0], &b, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return NULL;
        }
        int64_t id = __atomic_load_n(&sigint.target, __ATOMIC_RELAXED);
        if (id != 0) {
            (void)sbi_interrupt_unwind(id);
        }
        if (__atomic_load_n(&sigint.main_waiting, __ATOMIC_RELAXED)) {
            sbi_wake_kick_thread(sigint.main_ident);
        }
    }
}

/* In the main thread of the main interpreter, with a Python handler for
 * SIGINT: put our handler in front of it and start the watcher.  Returns
 * 1 if armed, else 0 (nothing to forward).  Thread state attached. */
static int
sigint_arm(void)
{
    if (PyInterpreterState_GetID(PyInterpreterState_Get()) != 0) {
        return 0;
    }
    if (sigint.main_ident == 0) {
        PyObject *threading = PyImport_ImportModule("threading");
        PyObject *t = threading
                          ? PyObject_CallMethod(threading, "main_thread", NULL)
                          : NULL;
        PyObject *ident = t ? PyObject_GetAttrString(t, "ident") : NULL;
        if (ident != NULL && PyLong_Check(ident)) {
            sigint.main_ident = PyLong_AsUnsignedLong(ident);
        }
        Py_XDECREF(ident);
        Py_XDECREF(t);
        Py_XDECREF(threading);
        PyErr_Clear();
    }
    if (PyThread_get_thread_ident() != sigint.main_ident) {
        return 0;
    }
    struct sigaction cur;
    if (sigaction(SIGINT, NULL, &cur) < 0) {
        return 0;
    }
    int ours =
        (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == sigint_handler;
    if (!ours && !(cur.sa_flags & SA_SIGINFO) &&
        (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN))
    {
        return 0;  // the program does not handle Ctrl-C: leave it be
    }
    if (sigint.pipe[0] < 0) {
        // First use, or in the child of a fork (sbi_sigint_after_fork()).
        pthread_t th;
        if (pipe(sigint.pipe) < 0) {
            sigint.pipe[0] = sigint.pipe[1] = -1;
            return 0;
        }
        (void)fcntl(sigint.pipe[0], F_SETFD, FD_CLOEXEC);
        (void)fcntl(sigint.pipe[1], F_SETFD, FD_CLOEXEC);
        (void)fcntl(sigint.pipe[1], F_SETFL, O_NONBLOCK);
        if (pthread_create(&th, NULL, sigint_watcher, NULL) != 0) {
            close(sigint.pipe[0]);
            close(sigint.pipe[1]);
            sigint.pipe[0] = sigint.pipe[1] = -1;
            return 0;
        }
        (void)pthread_detach(th);
    }
    if (!ours) {
        struct sigaction handler;
        memset(&handler, 0, sizeof(handler));
        handler.sa_sigaction = sigint_handler;
        handler.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&handler.sa_mask);
        sigint.prev = cur;
        if (sigaction(SIGINT, &handler, NULL) < 0) {
            return 0;
        }
    }
    return 1;
}

int
sbi_sigint_watch_begin(int64_t id)
{
    if (!sigint_arm()) {
        return 0;
    }
    __atomic_store_n(&sigint.target, id, __ATOMIC_RELAXED);
    return 1;
}

int
sbi_sigint_wait_begin(void)
{
    if (!sigint_arm()) {
        return 0;
    }
    __atomic_store_n(&sigint.main_waiting, 1, __ATOMIC_RELAXED);
    return 1;
}

void
sbi_sigint_wait_end(void)
{
    __atomic_store_n(&sigint.main_waiting, 0, __ATOMIC_RELAXED);
}

void
sbi_sigint_after_fork(void)
{
    if (sigint.pipe[0] >= 0) {
        close(sigint.pipe[0]);
        close(sigint.pipe[1]);
        sigint.pipe[0] = sigint.pipe[1] = -1;
    }
    sigint.target = 0;
    sigint.main_waiting = 0;
    sigint.main_ident = 0;
}

void
sbi_sigint_watch_end(void)
{
    __atomic_store_n(&sigint.target, 0, __ATOMIC_RELAXED);
}
