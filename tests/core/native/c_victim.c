/* The positive control: the same blocking read from a plain C library, which
 * a forced unwind passes through (no personality routine in its frames). */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

long
tk_c_read(int fd, int mask)
{
    char byte;

    if (mask) {
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    return read(fd, &byte, 1);
}
