/* process.h -- the process around our interpreters: the exit hook, the
 * os.fork() guard and what a forked child resets (see process.c).
 */
#ifndef SBI_PROCESS_H
#define SBI_PROCESS_H

#include "common.h"
#include "state.h"

/* Once per process (any interpreter's module init): register the fork
 * handler that resets our process-wide state in a child. */
void sbi_process_init(void);

/* Module-level functions (listed in module.c). */
PyObject *sbi_process_atexit(PyObject *m, PyObject *unused);
PyObject *sbi_process_count(PyObject *m, PyObject *unused);
PyObject *sbi_process_parking(PyObject *m, PyObject *arg);
PyObject *sbi_process_fork_begin(PyObject *m, PyObject *unused);
PyObject *sbi_process_fork_end(PyObject *m, PyObject *unused);

/* _note_ctrl_c_exit(): the program ends with an uncaught
 * KeyboardInterrupt (decided by __init__.py's threading exit hook); the
 * exit hook then makes sure the process dies by SIGINT (compat.h). */
PyObject *sbi_process_note_ctrl_c_exit(PyObject *m, PyObject *unused);

#endif /* SBI_PROCESS_H */
