/* kontain.h: what a program running under km can ask km itself.
 *
 * km_snapshot(path, flags): write a snapshot of the calling program to `path` (NULL:
 * km's default, ./kmsnap.PID).  Every other thread is paused while it is written.
 * Returns 0 in the run that took it, 1 in each run resumed from it (`km FILE` or
 * `km resume FILE`), and -errno on failure: -ENOSYS outside km (the call number is
 * outside Linux's range), -EOPNOTSUPP when the program holds something a snapshot
 * cannot take along (km says what on its stderr), the file's errno if it cannot be
 * written.  flags: KM_SNAPSHOT_EXIT ends the program once the file is written (the
 * call then returns only in resumed runs).
 */
#ifndef KONTAIN_H
#define KONTAIN_H

#define KM_SNAPSHOT 0x4B4D00
#define KM_SNAPSHOT_EXIT 1

static inline long km_snapshot(const char *path, unsigned long flags)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)KM_SNAPSHOT), "D"(path), "S"(flags) : "rcx", "r11", "memory");
    return ret;
}

#endif
