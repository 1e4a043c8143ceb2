/*
 * ipy_threadkill._native: SYSCALLS, {name: number} for this architecture, of
 * the system calls the Python side names: /proc shows only numbers. Which of
 * them to interrupt, and with what result, is decided in Python.
 */
#include "_native.h"

#ifdef THREADKILL_HAVE_INTERRUPT
#include <sys/syscall.h>

#define SYSCALL_ENTRY(name) {#name, SYS_##name}
static const struct { const char *name; long nr; } syscall_numbers[] = {
    SYSCALL_ENTRY(read), SYSCALL_ENTRY(readv), SYSCALL_ENTRY(pread64),
    SYSCALL_ENTRY(write), SYSCALL_ENTRY(writev), SYSCALL_ENTRY(pwrite64),
    SYSCALL_ENTRY(recvfrom), SYSCALL_ENTRY(recvmsg), SYSCALL_ENTRY(sendto),
    SYSCALL_ENTRY(sendmsg), SYSCALL_ENTRY(accept), SYSCALL_ENTRY(accept4),
    SYSCALL_ENTRY(connect), SYSCALL_ENTRY(clock_nanosleep), SYSCALL_ENTRY(pselect6),
    SYSCALL_ENTRY(ppoll), SYSCALL_ENTRY(epoll_pwait), SYSCALL_ENTRY(wait4),
    SYSCALL_ENTRY(waitid), SYSCALL_ENTRY(futex), SYSCALL_ENTRY(rt_sigtimedwait),
    SYSCALL_ENTRY(rt_sigsuspend), SYSCALL_ENTRY(openat), SYSCALL_ENTRY(flock),
    SYSCALL_ENTRY(fcntl), SYSCALL_ENTRY(ioctl), SYSCALL_ENTRY(msgrcv),
    SYSCALL_ENTRY(semtimedop), SYSCALL_ENTRY(mq_timedreceive),
    /* Not on every architecture (aarch64 has no open, select, poll, epoll_wait
     * or pause), nor in older kernels' headers. */
#ifdef SYS_open
    SYSCALL_ENTRY(open),
#endif  /* SYS_open */
#ifdef SYS_nanosleep
    SYSCALL_ENTRY(nanosleep),
#endif  /* SYS_nanosleep */
#ifdef SYS_select
    SYSCALL_ENTRY(select),
#endif  /* SYS_select */
#ifdef SYS_poll
    SYSCALL_ENTRY(poll),
#endif  /* SYS_poll */
#ifdef SYS_epoll_wait
    SYSCALL_ENTRY(epoll_wait),
#endif  /* SYS_epoll_wait */
#ifdef SYS_epoll_pwait2
    SYSCALL_ENTRY(epoll_pwait2),
#endif  /* SYS_epoll_pwait2 */
#ifdef SYS_pause
    SYSCALL_ENTRY(pause),
#endif  /* SYS_pause */
#ifdef SYS_futex_waitv
    SYSCALL_ENTRY(futex_waitv),
#endif  /* SYS_futex_waitv */
};
#undef SYSCALL_ENTRY

/* Adds SYSCALLS to `module`. Returns 0, or -1 with an exception set. */
int
add_syscall_table(PyObject *module)
{
    PyObject *table = PyDict_New();

    if (table == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(syscall_numbers) / sizeof(syscall_numbers[0]); i++) {
        PyObject *nr = PyLong_FromLong(syscall_numbers[i].nr);
        if (nr == NULL || PyDict_SetItemString(table, syscall_numbers[i].name, nr) < 0) {
            Py_XDECREF(nr);
            Py_DECREF(table);
            return -1;
        }
        Py_DECREF(nr);
    }
    if (PyModule_AddObject(module, "SYSCALLS", table) < 0) {
        Py_DECREF(table);
        return -1;
    }
    return 0;
}
#else
int
add_syscall_table(PyObject *Py_UNUSED(module))
{
    return 0;                   /* no system call is interrupted here */
}
#endif  /* THREADKILL_HAVE_INTERRUPT */
