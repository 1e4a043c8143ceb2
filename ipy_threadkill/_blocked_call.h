/*
 * ipy_threadkill._native: a thread's blocked system call, and the checks that
 * tell a signal handler it interrupted exactly that call. Shared by the
 * interrupt rung (_native.c) and the forced cancel (_force.c).
 *
 * x86_64 keeps no syscall number in the signal frame, and newer glibc issues
 * every cancellable call from one shared site: so pc, sp and all six argument
 * registers must match what /proc/self/task/<tid>/syscall showed, the call
 * must have returned -EINTR, and a system-call instruction must sit right
 * before pc. Everything here is async-signal-safe.
 */
#ifndef IPY_THREADKILL_BLOCKED_CALL_H
#define IPY_THREADKILL_BLOCKED_CALL_H

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#  define THREADKILL_HAVE_BLOCKED_CALL 1
#endif

#ifdef THREADKILL_HAVE_BLOCKED_CALL
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <ucontext.h>

#if defined(__x86_64__)
#  define PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#  define SP(uc) ((uc)->uc_mcontext.gregs[REG_RSP])
#  define RET(uc) ((uc)->uc_mcontext.gregs[REG_RAX])
#elif defined(__aarch64__)
#  define PC(uc) ((uc)->uc_mcontext.pc)
#  define SP(uc) ((uc)->uc_mcontext.sp)
#  define RET(uc) ((uc)->uc_mcontext.regs[0])
#endif  /* architecture */

/* The blocked system call, as /proc/self/task/<tid>/syscall showed it. */
typedef struct {
    pid_t tid;
    pid_t pid;
    long nr;
    unsigned long args[6];
    unsigned long sp;
    unsigned long pc;
} blocked_call;

/* Whether signal frame `uc` shows `call` just interrupted (returning -EINTR). */
static inline int
frame_at_call(const ucontext_t *uc, const blocked_call *call)
{
    const unsigned char *pc = (const unsigned char *)(uintptr_t)PC(uc);

    if ((long)RET(uc) != -EINTR)
        return 0;
    if ((unsigned long)PC(uc) != call->pc || (unsigned long)SP(uc) != call->sp)
        return 0;
#if defined(__x86_64__)
    if ((unsigned long)uc->uc_mcontext.gregs[REG_RDI] != call->args[0]
        || (unsigned long)uc->uc_mcontext.gregs[REG_RSI] != call->args[1]
        || (unsigned long)uc->uc_mcontext.gregs[REG_RDX] != call->args[2]
        || (unsigned long)uc->uc_mcontext.gregs[REG_R10] != call->args[3]
        || (unsigned long)uc->uc_mcontext.gregs[REG_R8] != call->args[4]
        || (unsigned long)uc->uc_mcontext.gregs[REG_R9] != call->args[5])
        return 0;
    return pc[-2] == 0x0f && pc[-1] == 0x05;                 /* syscall */
#elif defined(__aarch64__)
    /* x0 now holds the result; x1-x5 and the number in x8 are intact. */
    for (int i = 1; i < 6; i++) {
        if ((unsigned long)uc->uc_mcontext.regs[i] != call->args[i])
            return 0;
    }
    if ((long)uc->uc_mcontext.regs[8] != call->nr)
        return 0;
    return *(const uint32_t *)(pc - 4) == 0xd4000001u;       /* svc #0 */
#endif  /* architecture */
}

/* Whether `handler` is the SA_SIGINFO handler of `signum`. */
static inline int
handler_installed_for(int signum, void (*handler)(int, siginfo_t *, void *))
{
    struct sigaction current;

    if (signum == 0 || sigaction(signum, NULL, &current) != 0)
        return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == handler;
}

/* Install `handler` on the first real-time signal from SIGRTMIN+2 that nobody
 * handles (glibc keeps the two below for itself); no SA_RESTART, since the
 * interrupted call must return -EINTR. Returns the signal, or 0 if none is free,
 * or -1 with errno set; `previous` receives the action replaced. */
static inline int
take_free_rt_signal(void (*handler)(int, siginfo_t *, void *), struct sigaction *previous)
{
    struct sigaction action;

    memset(&action, 0, sizeof(action));
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&action.sa_mask);
    for (int signum = SIGRTMIN + 2; signum <= SIGRTMAX; signum++) {
        struct sigaction current;

        if (sigaction(signum, NULL, &current) != 0)
            continue;
        if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL)
            continue;
        if (sigaction(signum, &action, previous) != 0)
            return -1;
        return signum;
    }
    return 0;
}

/* Discard every pending instance of `signum`, in every thread, and keep its
 * current action. A thread that blocks the signal would otherwise keep it
 * pending until it unblocks it, and then meet whatever action is installed by
 * then: after release, the default one, which ends the process. The kernel
 * discards pending instances when the action becomes SIG_IGN (POSIX, "Signal
 * Actions"; Linux does it for the whole thread group). Only we send `signum`,
 * and only while holding the lock the caller holds, so none is lost that
 * anybody meant to deliver. Returns 0, or -1 with errno set. */
static inline int
discard_pending(int signum)
{
    struct sigaction current, ignore;

    if (sigaction(signum, NULL, &current) != 0)
        return -1;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (sigaction(signum, &ignore, NULL) != 0)
        return -1;
    return sigaction(signum, &current, NULL);
}

#ifdef Py_PYTHON_H
/* Keep `handler` on *signum while it is still there (someone may have replaced
 * it: leave that signal to them), else move it to a free real-time signal,
 * saving the replaced action in `previous` if not NULL. Returns 0, or -1 with
 * OSError set. */
static inline int
claim_rt_signal(int *signum, void (*handler)(int, siginfo_t *, void *),
                struct sigaction *previous)
{
    int taken;

    if (handler_installed_for(*signum, handler))
        return 0;
    taken = take_free_rt_signal(handler, previous);
    *signum = taken > 0 ? taken : 0;
    if (taken < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (taken == 0) {
        PyErr_SetString(PyExc_OSError, "no free real-time signal");
        return -1;
    }
    return 0;
}
#endif  /* Py_PYTHON_H */
#endif  /* THREADKILL_HAVE_BLOCKED_CALL */

#endif  /* IPY_THREADKILL_BLOCKED_CALL_H */
