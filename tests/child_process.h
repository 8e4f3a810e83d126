/* Runs a function in a forked child, for tests of code that ends the process (a fatal error,
 * a protection fault) without ending the test program. Include after <cmocka.h>. */
#ifndef EUAR_TESTS_CHILD_PROCESS_H
#define EUAR_TESTS_CHILD_PROCESS_H

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child that exits 0 when fn returns; returns the child's wait status. */
static inline int run_child(void (*fn)(void)) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka catches SIGSEGV in the parent's tests; the child must die of it. */
        signal(SIGSEGV, SIG_DFL);
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Checks that fn, run in a child, ends it with exit status code. */
static inline void assert_child_exits(void (*fn)(void), int code) {
    int status = run_child(fn);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

#endif
