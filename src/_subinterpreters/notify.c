/* notify.c -- notifiers: an eventfd on Linux, a pipe elsewhere (see
 * notify.h).  No lock: the descriptors are written once by open() and
 * only read after; signalling is one write(2).
 *
 * Calls only common.h (layers: docs/design.md).
 */
#include "notify.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if SBI_HAVE_EVENTFD
#  include <sys/eventfd.h>
#endif

int
sbi_notify_open(sbi_notify *n)
{
    n->rfd = n->wfd = -1;
#if SBI_HAVE_EVENTFD
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n->rfd = n->wfd = fd;
#else
    int fds[2];
    if (pipe(fds) < 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0)
        {
            int saved = errno;
            (void)close(fds[0]);
            (void)close(fds[1]);
            errno = saved;
            return -1;
        }
    }
    n->rfd = fds[0];
    n->wfd = fds[1];
#endif
    return 0;
}

void
sbi_notify_signal(const sbi_notify *n)
{
    int saved = errno;
#if SBI_HAVE_EVENTFD
    uint64_t one = 1;
    ssize_t r = write(n->wfd, &one, sizeof(one));
#else
    char one = 1;
    ssize_t r = write(n->wfd, &one, 1);
#endif
    (void)r;  // EAGAIN: already readable, which is all a signal means
    errno = saved;
}

int
sbi_notify_drain(const sbi_notify *n)
{
    int saved = errno;
    int had = 0;
#if SBI_HAVE_EVENTFD
    uint64_t count;
    had = read(n->rfd, &count, sizeof(count)) == (ssize_t)sizeof(count);
#else
    char buf[64];
    while (read(n->rfd, buf, sizeof(buf)) > 0) {
        had = 1;
    }
#endif
    errno = saved;
    return had;
}

void
sbi_notify_close(sbi_notify *n)
{
    if (n == NULL) {
        return;
    }
    if (n->wfd >= 0 && n->wfd != n->rfd) {
        (void)close(n->wfd);
    }
    if (n->rfd >= 0) {
        (void)close(n->rfd);
    }
    n->rfd = n->wfd = -1;
}
