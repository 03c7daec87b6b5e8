/* sigint.h -- Ctrl-C forwarding into the interpreter the main thread
 * runs (see sigint.c).
 */
#ifndef SBI_SIGINT_H
#define SBI_SIGINT_H

#include "common.h"

/* In the caller's interpreter, before switching to interpreter id: if
 * this is the main thread of the main interpreter, make sure our handler
 * is in front of Python's and point it at id.  Returns 1 if armed (then
 * call sbi_sigint_watch_end() after switching back).  Thread state
 * attached. */
int sbi_sigint_watch_begin(int64_t id);

/* Disarm: Ctrl-C goes to the main interpreter only.  Any thread. */
void sbi_sigint_watch_end(void);

/* Before one of our blocking waits (thread state attached): if this is
 * the main thread of the main interpreter, make Ctrl-C kick the wait
 * awake (wake.c).  Returns 1 if armed; then call sbi_sigint_wait_end()
 * after the wait. */
int sbi_sigint_wait_begin(void);
void sbi_sigint_wait_end(void);

/* In the child of fork(): the watcher thread did not survive. */
void sbi_sigint_after_fork(void);

#endif /* SBI_SIGINT_H */
