/* A C library with a lock of its own, as a database engine has for each
 * connection: tk_locked_read holds it across a blocking read. A forced unwind
 * there would leave it held, and tk_try_lock would then fail for ever. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static pthread_mutex_t connection = PTHREAD_MUTEX_INITIALIZER;

long
tk_locked_read(int fd, int mask)
{
    char byte;
    long got;

    if (mask) {
        sigset_t all;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    pthread_mutex_lock(&connection);
    got = read(fd, &byte, 1);
    pthread_mutex_unlock(&connection);
    return got;
}

int
tk_try_lock(void)
{
    if (pthread_mutex_trylock(&connection) != 0)
        return 0;
    pthread_mutex_unlock(&connection);
    return 1;
}
