/* System V IPC: shared memory (across fork, exec and exit; pieces left by munmap,
 * mprotect and mremap; SHM_RDONLY, SHM_REMAP, SHM_RND, IPC_RMID while attached; what
 * /proc/self/maps shows), semaphores (SEM_UNDO, timeouts, signals, GETALL/SETALL),
 * message queues (types, IPC_NOWAIT, MSG_NOERROR, E2BIG) and hostile pointers.  Every
 * check prints one line with nothing that differs from run to run (no ids, addresses
 * or pids), so the km run must print exactly what the native run prints.  Every object
 * is IPC_PRIVATE or keyed by ftok on the caller's own file, and removed before the end.
 *
 *   sysvipc                 everything below, in one process and its children
 *   sysvipc owner FILE      make a segment and a semaphore keyed by FILE, say "ready",
 *                           wait for a visitor (an unrelated process), report, remove
 *   sysvipc visitor FILE    attach the owner's segment, write to it, wake the owner
 *   sysvipc big MIB         attach a segment of MIB MiB (under km --memory: ENOMEM)
 *   (attach ID, semval ID: what the exec'd children of the main run do) */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SAY(what, cond) printf("%-52s %s\n", what, (cond) ? "ok" : "FAILED")
#define VAL(what, v) printf("%-52s %ld\n", what, (long)(v))
#define ERR(what, expr) do { errno = 0; long r_ = (long)(expr); printf("%-52s %ld %s\n", what, r_ < 0 ? -1L : r_, r_ < 0 ? ename(errno) : ""); } while (0)

static long pg;
static char self[4096];

static const char *ename(int e) {
    switch (e) {
    case EFAULT: return "EFAULT"; case EINVAL: return "EINVAL"; case EACCES: return "EACCES";
    case ENOMEM: return "ENOMEM"; case EPERM: return "EPERM"; case EAGAIN: return "EAGAIN";
    case EIDRM: return "EIDRM"; case ENOMSG: return "ENOMSG"; case E2BIG: return "E2BIG";
    case EINTR: return "EINTR"; case ENOENT: return "ENOENT"; case EEXIST: return "EEXIST";
    case ERANGE: return "ERANGE"; case ENOSYS: return "ENOSYS"; case EFBIG: return "EFBIG";
    default: { static char b[16]; snprintf(b, sizeof b, "errno%d", e); return b; }
    }
}

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *info; };

static struct shmid_ds shm_stat(int id) {
    struct shmid_ds d;
    memset(&d, 0, sizeof d);
    if (shmctl(id, IPC_STAT, &d) < 0) d.shm_nattch = (shmatt_t)-errno;
    return d;
}

static long nattch(int id) { return (long)shm_stat(id).shm_nattch; }

/* The /proc/self/maps lines of the attachment at base (pieces within len of it):
 * page offset from base, pages, perms, file offset, dev, inode == id, name (the
 * segment's key in it said as "<key>" when it is the one expected). */
static void maps_of(const char *what, int id, key_t key, char *base, long len) {
    char want[32];
    snprintf(want, sizeof want, "/SYSV%08x (deleted)", (unsigned)key);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    printf("%s:\n", what);
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        unsigned maj, min;
        char perms[8];
        int name = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &lo, &hi, perms, &off, &maj, &min, &ino, &name) < 7) continue;
        if ((char *)lo < base || (char *)lo >= base + len || !name || strncmp(line + name, "/SYSV", 5)) continue;
        line[strcspn(line, "\n")] = 0;
        printf("  +%ld %ld pages %s %08lx %02x:%02x inode=id:%d %s\n", (long)((char *)lo - base) / pg,
               (long)(hi - lo) / pg, perms, off, maj, min, ino == (unsigned long)id,
               strcmp(line + name, want) ? line + name : "/SYSV<key> (deleted)");
    }
    if (f) fclose(f);
}

static void maps(const char *what, int id, char *base, long len) { maps_of(what, id, IPC_PRIVATE, base, len); }

/* The Locked: field of /proc/self/smaps for the mapping that starts at a (kB). */
static long locked_kb(char *a) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int here = 0;
    long kb = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            here = (char *)lo == a;
        else if (here && sscanf(line, "Locked: %ld kB", &kb) == 1)
            break;
    }
    if (f) fclose(f);
    return kb;
}

static int child_status(pid_t p) {
    int st = 0;
    waitpid(p, &st, 0);
    return WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void on_alarm(int sig) { (void)sig; }

static sigjmp_buf fault_jump;
static siginfo_t fault_info;

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    fault_info = *si;
    siglongjmp(fault_jump, 1);
}

/* Write to a: 0 if it worked, else the SIGSEGV's si_code (+100 if si_addr is not a). */
static int write_fault(char *a) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    int r = 0;
    if (!sigsetjmp(fault_jump, 1))
        *(volatile char *)a = 1;
    else
        r = fault_info.si_code + (fault_info.si_addr == a ? 0 : 100);
    sigaction(SIGSEGV, &old, NULL);
    return r;
}

static void alarm_in_ms(int ms) {
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static int semval(int id, int n) { return semctl(id, n, GETVAL); }

/* -- shared memory -------------------------------------------------------------------- */
static void shared_memory(void) {
    long size = 3 * pg + 100;
    int id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    SAY("shmget", id >= 0);
    struct shmid_ds d = shm_stat(id);
    SAY("IPC_STAT: size, mode, owner, creator", d.shm_segsz == (size_t)size && (d.shm_perm.mode & 0777) == 0600
        && d.shm_perm.uid == geteuid() && d.shm_perm.cuid == geteuid() && d.shm_perm.__key == IPC_PRIVATE);
    SAY("IPC_STAT: cpid is us, no attach yet", d.shm_cpid == getpid() && d.shm_lpid == 0 && d.shm_nattch == 0
        && d.shm_atime == 0 && d.shm_ctime != 0);

    char *p = shmat(id, NULL, 0);
    SAY("shmat anywhere", p != (char *)-1 && ((unsigned long)p & (pg - 1)) == 0);
    SAY("a new segment is zero", p[0] == 0 && p[size - 1] == 0 && p[4 * pg - 1] == 0);
    strcpy(p, "parent");
    strcpy(p + 3 * pg, "last page");
    d = shm_stat(id);
    SAY("IPC_STAT after shmat: nattch 1, lpid, atime", d.shm_nattch == 1 && d.shm_lpid == getpid() && d.shm_atime);
    maps("maps of the attachment", id, p, 4 * pg);

    /* fork: the child shares the attachment, its exit detaches */
    pid_t c = fork();
    if (c == 0) {
        int ok = !strcmp(p, "parent") && nattch(id) == 2;
        strcpy(p, "child");
        _exit(ok ? 7 : 1);
    }
    VAL("fork: child saw the parent's data, nattch 2", child_status(c));
    SAY("fork: the parent sees the child's write", !strcmp(p, "child"));
    VAL("fork: the child's exit detached it (nattch)", nattch(id));

    /* exec detaches: the child's exec'd program sees only the parent's attachment */
    c = fork();
    if (c == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%d", id);
        execl(self, self, "attach", arg, (char *)NULL);
        _exit(100);
    }
    VAL("exec'd child", child_status(c));
    SAY("the exec'd child wrote to it", !strcmp(p, "exec'd child was here"));
    VAL("after the exec'd child ended (nattch)", nattch(id));

    /* mprotect and munmap cut it into pieces: each counts as an attachment */
    SAY("mprotect one page read-only", mprotect(p + pg, pg, PROT_READ) == 0);
    VAL("nattch after mprotect", nattch(id));
    maps("maps after mprotect", id, p, 4 * pg);
    c = fork();
    if (c == 0) { p[pg] = 1; _exit(0); }
    VAL("write to the read-only page (status)", child_status(c));
    SAY("mprotect it back", mprotect(p + pg, pg, PROT_READ | PROT_WRITE) == 0);
    maps("maps after mprotect back", id, p, 4 * pg);
    SAY("munmap a page", munmap(p + 2 * pg, pg) == 0);
    VAL("nattch after munmap", nattch(id));
    maps("maps after munmap", id, p, 4 * pg);
    ERR("shmdt of a middle piece's address", shmdt(p + pg));
    ERR("shmdt not page aligned", shmdt(p + 1));
    ERR("shmdt of the attachment", shmdt(p));
    VAL("nattch after shmdt (every piece went)", nattch(id));
    maps("maps after shmdt", id, p, 4 * pg);
    ERR("shmdt again", shmdt(p));

    /* mremap: shrink in place, DONTUNMAP keeps the old range on the same pages */
    p = shmat(id, NULL, 0);
    SAY("shmat again: the data is still there", p != (char *)-1 && !strcmp(p, "exec'd child was here"));
    /* (glibc's mremap passes junk as the new address unless MREMAP_FIXED: Linux checks it) */
    char *q = (char *)syscall(SYS_mremap, p, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    SAY("mremap DONTUNMAP moves", q != MAP_FAILED && q != p);
    strcpy(q, "through q");
    SAY("both ranges are the segment", !strcmp(p, "through q") && !strcmp(q + 3 * pg, "last page"));
    VAL("nattch after DONTUNMAP", nattch(id));
    ERR("shmdt of the moved range", shmdt(q));
    SAY("mremap shrinks in place", mremap(p, 4 * pg, 2 * pg, 0) == p);
    maps("maps after shrinking", id, p, 4 * pg);
    ERR("shmdt of the shrunk attachment", shmdt(p));
    VAL("nattch", nattch(id));

    /* where: SHM_REMAP over a mapping, SHM_RND, a given free address */
    char *r = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    r[0] = 'x';
    ERR("shmat over a mapping", shmat(id, r, 0));
    ERR("shmat with SHM_REMAP and no address", shmat(id, NULL, SHM_REMAP));
    ERR("shmat at an unaligned address", shmat(id, r + 10, 0));
    SAY("shmat SHM_REMAP|SHM_RND over the mapping", shmat(id, r + 10, SHM_REMAP | SHM_RND) == r);
    SAY("the mapping is the segment now", !strcmp(r, "through q"));
    maps("maps after SHM_REMAP", id, r, 4 * pg);
    ERR("shmdt", shmdt(r));
    SAY("shmat at a given free address", shmat(id, r, 0) == r && !strcmp(r, "through q"));
    ERR("shmdt", shmdt(r));

    /* SHM_RDONLY: reads work, a write is SIGSEGV, mprotect cannot make it writable */
    char *ro = shmat(id, NULL, SHM_RDONLY);
    SAY("shmat SHM_RDONLY", ro != (char *)-1 && !strcmp(ro, "through q"));
    maps("maps of a read-only attachment", id, ro, 4 * pg);
    c = fork();
    if (c == 0) { ro[0] = 'w'; _exit(0); }
    VAL("write to a SHM_RDONLY attachment (status)", child_status(c));
    VAL("... caught: si_code (SEGV_ACCERR), at the address", write_fault(ro + pg + 5));
    ERR("mprotect it writable", mprotect(ro, pg, PROT_READ | PROT_WRITE));
    ERR("shmdt", shmdt(ro));
    char *x = shmat(id, NULL, SHM_EXEC);
    SAY("shmat SHM_EXEC", x != (char *)-1);
    maps("maps of an executable attachment", id, x, 4 * pg);
    ERR("shmdt", shmdt(x));

    /* mlockall(MCL_FUTURE) locks a later attachment as it locks a later mapping */
    c = fork();
    if (c == 0) {
        if (mlockall(MCL_FUTURE)) _exit(100);
        char *l = shmat(id, NULL, 0);
        _exit(l == (char *)-1 ? 101 : locked_kb(l) / 4);
    }
    VAL("mlockall(MCL_FUTURE), shmat: pages locked", child_status(c));

    /* control */
    d = shm_stat(id);
    d.shm_perm.mode = 0640;
    ERR("IPC_SET mode 0640", shmctl(id, IPC_SET, &d));
    VAL("IPC_STAT mode", shm_stat(id).shm_perm.mode & 0777);
    struct shminfo si;
    SAY("IPC_INFO", shmctl(0, IPC_INFO, (struct shmid_ds *)&si) >= 0 && si.shmmni > 0 && si.shmmax > 0);
    struct shm_info sinfo;
    SAY("SHM_INFO", shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo) >= 0 && sinfo.used_ids > 0);
    SAY("SHM_STAT of its index gives its id", shmctl(id % 32768, SHM_STAT, &d) == id);
    ERR("SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
    ERR("SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
    ERR("unknown command", shmctl(id, 99, &d));
    ERR("IPC_STAT with IPC_64 (not on x86-64)", shmctl(id, IPC_STAT | 0x100, &d));
    ERR("negative id", shmctl(-1, IPC_STAT, &d));
    ERR("shmat of a negative id", shmat(-1, NULL, 0));

    /* IPC_RMID while attached: the memory stays until the last detach */
    p = shmat(id, NULL, 0);
    ERR("IPC_RMID while attached", shmctl(id, IPC_RMID, NULL));
    d = shm_stat(id);
    SAY("marked for destruction, key now private", (d.shm_perm.mode & SHM_DEST) && d.shm_perm.__key == 0);
    SAY("still readable and writable", !strcmp(p, "through q") && strcpy(p, "still here"));
    q = shmat(id, NULL, 0);
    SAY("still attachable by id (as Linux allows)", q != (char *)-1 && !strcmp(q, "still here"));
    maps("maps of a removed segment", id, q, 4 * pg);
    c = fork();
    if (c == 0) _exit(!strcmp(p, "still here") && nattch(id) == 4 ? 7 : 1);
    VAL("a forked child sees it too", child_status(c));
    ERR("shmdt", shmdt(q));
    ERR("shmdt of the last attachment", shmdt(p));
    VAL("a write there: si_code (SEGV_MAPERR), at the address", write_fault(p + 5));
    ERR("then it is gone (IPC_STAT)", shmctl(id, IPC_STAT, &d));
}

/* -- semaphores ------------------------------------------------------------------------ */
static void semaphores(void) {
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    SAY("semget", id >= 0);
    unsigned short set[3] = {1, 2, 3}, got[3] = {0};
    union semun a = {.array = set};
    ERR("SETALL 1 2 3", semctl(id, 0, SETALL, a));
    a.array = got;
    ERR("GETALL", semctl(id, 0, GETALL, a));
    printf("%-52s %d %d %d\n", "values", got[0], got[1], got[2]);
    a.val = 5;
    ERR("SETVAL 0 5", semctl(id, 0, SETVAL, a));
    VAL("GETVAL 0", semval(id, 0));
    struct sembuf op = {0, -2, 0};
    ERR("semop -2", semop(id, &op, 1));
    VAL("GETVAL 0", semval(id, 0));
    SAY("GETPID is us", semctl(id, 0, GETPID) == getpid());
    VAL("GETNCNT", semctl(id, 0, GETNCNT));
    VAL("GETZCNT", semctl(id, 0, GETZCNT));
    struct sembuf two[2] = {{1, -2, 0}, {2, 1, 0}};
    ERR("semop of two at once", semop(id, two, 2));
    a.array = got;
    semctl(id, 0, GETALL, a);
    printf("%-52s %d %d %d\n", "values", got[0], got[1], got[2]);
    struct sembuf take = {1, -1, IPC_NOWAIT};
    ERR("semop IPC_NOWAIT on 0", semop(id, &take, 1));
    take.sem_flg = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    ERR("semtimedop timing out", semtimedop(id, &take, 1, &ts));
    struct timespec bad_ts = {0, 2000000000};
    ERR("semtimedop with a bad timeout", semtimedop(id, &take, 1, &bad_ts));
    ERR("semop of sem 7 of 3", semop(id, &(struct sembuf){7, 1, 0}, 1));
    ERR("semop of 100000 operations", semop(id, two, 100000));
    ERR("semop of none", semop(id, two, 0));

    /* SEM_UNDO: undone when the process exits, kept across exec */
    pid_t c = fork();
    if (c == 0) {
        struct sembuf up = {2, 3, SEM_UNDO};
        _exit(semop(id, &up, 1) == 0 ? semval(id, 2) : 100);
    }
    VAL("a child's SEM_UNDO +3: GETVAL 2", child_status(c));
    VAL("undone at its exit: GETVAL 2", semval(id, 2));
    c = fork();
    if (c == 0) {
        struct sembuf up = {2, 5, SEM_UNDO};
        char arg[32];
        snprintf(arg, sizeof arg, "%d", id);
        if (semop(id, &up, 1) == 0) execl(self, self, "semval", arg, (char *)NULL);
        _exit(100);
    }
    VAL("SEM_UNDO +5 then exec: the new program's GETVAL 2", child_status(c));
    VAL("undone when the exec'd program exited", semval(id, 2));

    /* a blocked semop woken by another process */
    c = fork();
    if (c == 0) {
        for (int i = 0; i < 20000 && semctl(id, 1, GETNCNT) != 1; i++) usleep(1000);
        int waiting = semctl(id, 1, GETNCNT);
        struct sembuf up = {1, 1, 0};
        semop(id, &up, 1);
        _exit(waiting == 1 ? 7 : 1);
    }
    ERR("semop blocked until a child's +1", semop(id, &take, 1));
    VAL("the child saw one waiter", child_status(c));

    /* a signal interrupts semop: EINTR even with SA_RESTART */
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarm_in_ms(30);
    ERR("semop interrupted by a SA_RESTART handler", semop(id, &take, 1));
    alarm_in_ms(30);
    ERR("semtimedop interrupted", semtimedop(id, &take, 1, &(struct timespec){20, 0}));

    struct semid_ds ds;
    a.buf = &ds;
    ERR("IPC_STAT", semctl(id, 0, IPC_STAT, a));
    SAY("IPC_STAT: nsems, mode, times", ds.sem_nsems == 3 && (ds.sem_perm.mode & 0777) == 0600 && ds.sem_otime
        && ds.sem_ctime);
    ds.sem_perm.mode = 0604;
    ERR("IPC_SET mode 0604", semctl(id, 0, IPC_SET, a));
    semctl(id, 0, IPC_STAT, a);
    VAL("mode", ds.sem_perm.mode & 0777);
    struct seminfo si;
    a.info = &si;
    SAY("IPC_INFO", semctl(id, 0, IPC_INFO, a) >= 0 && si.semmsl > 0 && si.semopm > 0);
    SAY("SEM_INFO", semctl(id, 0, SEM_INFO, a) >= 0 && si.semmni > 0);
    ERR("unknown command", semctl(id, 0, 99, a));
    ERR("SETVAL out of range", semctl(id, 0, SETVAL, (union semun){.val = 40000}));
    ERR("GETVAL of sem 3 of 3", semctl(id, 3, GETVAL));
    ERR("IPC_RMID", semctl(id, 0, IPC_RMID));
    ERR("semop after IPC_RMID", semop(id, &take, 1));
}

/* -- message queues -------------------------------------------------------------------- */
struct msg { long type; char text[64]; };

static void messages(void) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    SAY("msgget", id >= 0);
    struct msg m;
    const char *texts[] = {"", "one", "two", "three"};
    for (int t = 3; t >= 1; t--) {
        m.type = t;
        strcpy(m.text, texts[t]);
        msgsnd(id, &m, strlen(m.text) + 1, 0);
    }
    m.type = 2;
    strcpy(m.text, "two again");
    ERR("msgsnd four messages", msgsnd(id, &m, strlen(m.text) + 1, 0));
    struct msqid_ds ds;
    ERR("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    SAY("IPC_STAT: qnum 4, lspid is us", ds.msg_qnum == 4 && ds.msg_lspid == getpid() && ds.msg_lrpid == 0);
    VAL("IPC_STAT: bytes", ds.__msg_cbytes);
    memset(&m, 0, sizeof m);
    ERR("msgrcv type 2", msgrcv(id, &m, sizeof m.text, 2, 0));
    printf("%-52s %ld %s\n", "got", m.type, m.text);
    ERR("msgrcv type -2 (lowest type up to 2)", msgrcv(id, &m, sizeof m.text, -2, 0));
    printf("%-52s %ld %s\n", "got", m.type, m.text);
    ERR("msgrcv MSG_EXCEPT 3", msgrcv(id, &m, sizeof m.text, 3, MSG_EXCEPT));
    printf("%-52s %ld %s\n", "got", m.type, m.text);
    ERR("msgrcv into 2 bytes: E2BIG", msgrcv(id, &m, 2, 0, 0));
    ERR("msgrcv into 2 bytes, MSG_NOERROR", msgrcv(id, &m, 2, 0, MSG_NOERROR));
    printf("%-52s %ld %.2s\n", "got", m.type, m.text);
    ERR("msgrcv IPC_NOWAIT on an empty queue", msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT));
    ERR("msgsnd of type 0", msgsnd(id, &(struct msg){0, "x"}, 2, 0));
    ERR("msgsnd past msgmax", msgsnd(id, &m, 1 << 20, 0));
    ERR("msgsnd of a negative size", msgsnd(id, &m, (size_t)-1, 0));
    m.type = 9;
    msgsnd(id, &m, 4, 0);
    ERR("msgrcv with a huge size (only the message is copied)", msgrcv(id, &m, (size_t)1 << 40, 0, 0));
    ERR("msgrcv with a negative size", msgrcv(id, &m, (size_t)-1, 0, IPC_NOWAIT));

    ERR("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    ds.msg_qbytes = 100;
    ERR("IPC_SET qbytes 100", msgctl(id, IPC_SET, &ds));
    m.type = 1;
    ERR("msgsnd 60 bytes", msgsnd(id, &m, 60, IPC_NOWAIT));
    ERR("msgsnd 60 more, IPC_NOWAIT: full", msgsnd(id, &m, 60, IPC_NOWAIT));
    ERR("msgrcv", msgrcv(id, &m, sizeof m.text, 0, 0));

    /* a blocked msgrcv woken by another process, and one interrupted by a signal */
    pid_t c = fork();
    if (c == 0) {
        usleep(20000);
        struct msg w = {5, "from the child"};
        _exit(msgsnd(id, &w, sizeof w.text, 0) == 0 ? 7 : 1);
    }
    ERR("msgrcv blocked until a child sends", msgrcv(id, &m, sizeof m.text, 5, 0));
    printf("%-52s %ld %s\n", "got", m.type, m.text);
    VAL("child", child_status(c));
    alarm_in_ms(30);
    ERR("msgrcv interrupted by a SA_RESTART handler", msgrcv(id, &m, sizeof m.text, 0, 0));
    struct msginfo mi;
    SAY("IPC_INFO", msgctl(id, IPC_INFO, (struct msqid_ds *)&mi) >= 0 && mi.msgmax > 0 && mi.msgmnb > 0);
    SAY("MSG_INFO", msgctl(id, MSG_INFO, (struct msqid_ds *)&mi) >= 0);
    ERR("unknown command", msgctl(id, 99, &ds));
    ERR("IPC_RMID", msgctl(id, IPC_RMID, NULL));
    ERR("msgsnd after IPC_RMID", msgsnd(id, &m, 4, 0));
}

/* -- hostile pointers ------------------------------------------------------------------ */
#define T(what, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); printf("  %-50s %ld %s\n", what, r_ < 0 ? -1L : r_, r_ < 0 ? ename(errno) : ""); } while (0)

static void hostile(void) {
    int shm = shmget(IPC_PRIVATE, pg, IPC_CREAT | 0600);
    int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    int msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *hole = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(hole + pg, pg, PROT_NONE);
    /* (hole + pg - 20: 20 readable bytes, fewer than any structure but a sembuf and a timespec) */
    char *bad[] = {NULL, (char *)1, (char *)0x1000, (char *)0xdead00000000, (char *)0x7fffffffffff,
                   (char *)0xffffffffffff0000, (char *)-1, hole + pg, hole + pg - 20, ro};
    struct sembuf op = {0, 0, IPC_NOWAIT};  /* (sem 0 stays 0: nothing here ever blocks) */
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b = bad[i];
        int readable = b == ro || b == hole + pg - 20;
        printf("-- pointer #%u\n", i);
        struct msg m = {1, "x"};
        msgsnd(msq, &m, 2, IPC_NOWAIT);
        T("shmctl IPC_STAT", SYS_shmctl, shm, IPC_STAT, b);
        if (b != ro) T("shmctl IPC_SET", SYS_shmctl, shm, IPC_SET, b);  /* (from ro: zeros, mode 0) */
        T("shmctl IPC_INFO", SYS_shmctl, 0, IPC_INFO, b);
        T("shmctl SHM_INFO", SYS_shmctl, 0, SHM_INFO, b);
        T("shmdt", SYS_shmdt, b);
        T("semctl IPC_STAT", SYS_semctl, sem, 0, IPC_STAT, b);
        if (b != ro) T("semctl IPC_SET", SYS_semctl, sem, 0, IPC_SET, b);
        T("semctl GETALL", SYS_semctl, sem, 0, GETALL, b);
        T("semctl SETALL", SYS_semctl, sem, 0, SETALL, b);
        T("semctl SEM_INFO", SYS_semctl, sem, 0, SEM_INFO, b);
        T("semctl SETVAL (a value, not a pointer)", SYS_semctl, sem, 1, SETVAL, (long)b << 32 | 3);
        if (!readable) {  /* (operations read from readable memory could block) */
            T("semop", SYS_semop, sem, b, 1);
            T("semtimedop sops", SYS_semtimedop, sem, b, 1, NULL);
        }
        T("semtimedop timeout", SYS_semtimedop, sem, &op, 1, b);
        T("msgsnd", SYS_msgsnd, msq, b, 2, IPC_NOWAIT);
        T("msgrcv", SYS_msgrcv, msq, b, 2, 0, IPC_NOWAIT);
        T("msgctl IPC_STAT", SYS_msgctl, msq, IPC_STAT, b);
        if (b != ro) T("msgctl IPC_SET", SYS_msgctl, msq, IPC_SET, b);
        T("msgctl MSG_INFO", SYS_msgctl, msq, MSG_INFO, b);
    }
    struct msg m;
    while (msgrcv(msq, &m, sizeof m.text, 0, IPC_NOWAIT) >= 0) {}
    SAY("hostile: removed", shmctl(shm, IPC_RMID, NULL) == 0 && semctl(sem, 0, IPC_RMID) == 0
        && msgctl(msq, IPC_RMID, NULL) == 0);
}

/* -- the other modes ----------------------------------------------------------------- */
static int exec_attach(int id) {
    long before = nattch(id);
    char *p = shmat(id, NULL, 0);
    if (p == (char *)-1) return 2;
    int ok = before == 1 && nattch(id) == 2 && !strcmp(p, "child");
    strcpy(p, "exec'd child was here");
    return ok ? 7 : 1;
}

/* The owner makes a segment and a semaphore keyed by ftok on FILE, and writes the project
 * id it used into FILE for the visitor: ftok keeps only 16 bits of the inode, so another
 * program may hold a key already (IPC_EXCL fails), and the owner tries the next. */
static int two_processes(const char *mode, const char *file) {
    int shm = -1, sem = -1, proj = 0;
    key_t key = -1;
    char *p = (char *)-1;
    if (!strcmp(mode, "owner")) {
        for (proj = 1; proj < 256; proj++) {
            key = ftok(file, proj);
            shm = shmget(key, pg, IPC_CREAT | IPC_EXCL | 0600);
            if (shm < 0) continue;
            sem = semget(key, 1, IPC_CREAT | IPC_EXCL | 0600);
            if (sem >= 0) break;
            shmctl(shm, IPC_RMID, NULL);
            shm = -1;
        }
        FILE *f = fopen(file, "w");
        fprintf(f, "%d\n", proj);
        fclose(f);
        if (shm >= 0) p = shmat(shm, NULL, 0);
        SAY("owner: made a keyed segment and semaphore", shm >= 0 && sem >= 0 && p != (char *)-1);
        if (p == (char *)-1) return 1;
        maps_of("owner: maps", shm, key, p, pg);
        printf("ready\n");
        fflush(stdout);
        struct sembuf wait = {0, -1, 0};
        ERR("owner: woken by the visitor", semtimedop(sem, &wait, 1, &(struct timespec){60, 0}));
        printf("%-52s %s\n", "owner: the segment says", p);
        struct shmid_ds d = shm_stat(shm);
        SAY("owner: the visitor attached and detached", d.shm_nattch == 1 && d.shm_lpid != getpid());
        ERR("owner: shmdt", shmdt(p));
        ERR("owner: IPC_RMID", shmctl(shm, IPC_RMID, NULL));
        ERR("owner: IPC_RMID", semctl(sem, 0, IPC_RMID));
        return 0;
    }
    FILE *f = fopen(file, "r");
    if (!f || fscanf(f, "%d", &proj) != 1) return 1;
    fclose(f);
    key = ftok(file, proj);
    shm = shmget(key, 0, 0);
    sem = semget(key, 0, 0);
    if (shm >= 0) p = shmat(shm, NULL, 0);
    SAY("visitor: found the segment and semaphore by key", shm >= 0 && sem >= 0 && p != (char *)-1);
    if (p == (char *)-1) {
        printf("shmget %d semget %d: %s\n", shm, sem, ename(errno));
        return 1;
    }
    maps_of("visitor: maps", shm, key, p, pg);
    VAL("visitor: nattch", nattch(shm));
    strcpy(p, "the visitor was here");
    ERR("visitor: shmdt", shmdt(p));
    struct sembuf post = {0, 1, 0};
    ERR("visitor: wake the owner", semop(sem, &post, 1));
    return 0;
}

static int big(long mib) {
    int id = shmget(IPC_PRIVATE, mib << 20, IPC_CREAT | 0600);
    char *p = shmat(id, NULL, 0);
    printf("shmat of %ld MiB: %s\n", mib, p == (char *)-1 ? ename(errno) : "attached");
    if (p != (char *)-1) {
        p[(mib << 20) - 1] = 1;
        shmdt(p);
    }
    printf("nattch %ld\n", nattch(id));
    printf("removed %d\n", shmctl(id, IPC_RMID, NULL));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);  /* every line out before any fork */
    pg = sysconf(_SC_PAGESIZE);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    if (argc > 2 && !strcmp(argv[1], "attach")) return exec_attach(atoi(argv[2]));
    if (argc > 2 && !strcmp(argv[1], "semval")) return semval(atoi(argv[2]), 2);
    if (argc > 2 && (!strcmp(argv[1], "owner") || !strcmp(argv[1], "visitor"))) return two_processes(argv[1], argv[2]);
    if (argc > 2 && !strcmp(argv[1], "big")) return big(atol(argv[2]));
    shared_memory();
    semaphores();
    messages();
    hostile();
    return 0;
}
