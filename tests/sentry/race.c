#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
/* One thread swaps a directory and a symlink that points far above the
   root (renameat2 RENAME_EXCHANGE); the main thread keeps opening a path
   through that name.  Inside the sandbox the open may land in the directory
   or in the container's own tree, never on the host. */
static volatile int stop;
static void *swap(void *a) {
    (void)a;
    while (!stop) syscall(SYS_renameat2, AT_FDCWD, "w/d", AT_FDCWD, "w/l", 2);
    return 0;
}
int main(int argc, char **argv) {
    const char *target = argv[1];
    int iters = atoi(argv[2]);
    mkdir("w", 0755); mkdir("w/d", 0755);
    int fd = open("w/d/inside", O_CREAT | O_WRONLY, 0644); write(fd, "INSIDE\n", 7); close(fd);
    char link[4096]; snprintf(link, sizeof link, "%s", target);
    symlink(link, "w/l");
    pthread_t t; pthread_create(&t, 0, swap, 0);
    int opened = 0, host = 0;
    char path[4200]; snprintf(path, sizeof path, "w/d/%s", argv[3]);
    for (int i = 0; i < iters; i++) {
        char buf[64] = {0};
        int f = open(path, O_RDONLY);
        if (f >= 0) { opened++; read(f, buf, 63); close(f); if (strstr(buf, "HOST-SECRET")) host++; }
        /* Both names: one of them is the directory at any time (three opens
           per round, so a strict alternation with the swapper still lands
           on both states). */
        f = open("w/d/inside", O_RDONLY);
        if (f >= 0) { opened++; close(f); }
        f = open("w/l/inside", O_RDONLY);
        if (f >= 0) { opened++; close(f); }
    }
    stop = 1; pthread_join(t, 0);
    printf("opened %d host %d\n", opened, host);
    return 0;
}
