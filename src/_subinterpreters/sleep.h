/* sleep.h -- time.sleep() that interrupts, timeouts, Ctrl-C and close()
 * cut short, in our interpreters (see sleep.c).
 */
#ifndef SBI_SLEEP_H
#define SBI_SLEEP_H

#include "common.h"

/* Replace time.sleep in the current interpreter (a new one of ours).
 * Never fails: a failure is reported as unraisable and leaves CPython's.
 * Thread state attached. */
void sbi_sleep_install(void);

#endif /* SBI_SLEEP_H */
