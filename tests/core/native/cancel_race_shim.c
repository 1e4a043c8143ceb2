/* Test shim, preloaded (LD_PRELOAD) into a victim interpreter: it makes the
 * blocked call of the armed thread complete right at the moment a forced kill
 * sends its signal or cancel, which is the race a forced kill must survive.
 *
 * It interposes pthread_cancel() and syscall(); for tgkill and
 * rt_tgsigqueueinfo aimed at the armed thread (and for any pthread_cancel while
 * armed) it first writes a byte to the pipe the victim reads, then waits until
 * /proc shows the victim out of that call, and only then lets the call go on.
 * syscall() is forwarded with six argument words: enough for every Linux system
 * call on x86_64 and aarch64, where variadic longs travel in registers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long (*real_syscall)(long, ...);
static int (*real_pthread_cancel)(pthread_t);
static atomic_int armed_tid;
static atomic_int wake_fd = -1;
static atomic_int completed;

/* Resolved on first use, and in a constructor: other libraries' constructors
 * (3.13's mimalloc) call syscall() before this library's constructor runs, and
 * a signal handler must not be the first to resolve it. */
static void
shim_resolve(void)
{
    if (real_syscall == NULL)
        real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    if (real_pthread_cancel == NULL)
        real_pthread_cancel = (int (*)(pthread_t))dlsym(RTLD_NEXT, "pthread_cancel");
}

__attribute__((constructor)) static void
shim_init(void)
{
    shim_resolve();
}

/* Arm for OS thread `tid`, reading from a pipe whose write end is `fd`; 0 disarms. */
void
race_shim_arm(int tid, int fd)
{
    atomic_store(&wake_fd, fd);
    atomic_store(&armed_tid, tid);
}

/* How many blocked calls the shim completed. */
int
race_shim_completed(void)
{
    return atomic_load(&completed);
}

static int
read_syscall(int tid, char *text, size_t size)
{
    char path[64];
    ssize_t got;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    got = read(fd, text, size - 1);
    close(fd);
    if (got <= 0)
        return -1;
    text[got] = '\0';
    return 0;
}

static void
complete_call(int tid)
{
    char before[256], now[256];
    struct timespec step = {0, 100000};

    if (read_syscall(tid, before, sizeof(before)) < 0)
        return;
    if (write(atomic_load(&wake_fd), "x", 1) != 1)
        return;
    for (int i = 0; i < 2000; i++) {         /* up to 200 ms */
        if (read_syscall(tid, now, sizeof(now)) < 0 || strcmp(now, before) != 0)
            break;
        nanosleep(&step, NULL);
    }
    atomic_fetch_add(&completed, 1);
}

long
syscall(long nr, ...)
{
    long a[6];
    va_list ap;
    int tid = atomic_load(&armed_tid);

    shim_resolve();
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (tid != 0 && (nr == SYS_tgkill || nr == SYS_rt_tgsigqueueinfo) && a[1] == tid)
        complete_call(tid);
    return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int
pthread_cancel(pthread_t thread)
{
    int tid = atomic_load(&armed_tid);

    shim_resolve();
    if (tid != 0)
        complete_call(tid);
    return real_pthread_cancel(thread);
}
