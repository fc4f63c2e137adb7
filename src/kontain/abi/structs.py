"""C struct layouts of the Linux x86-64 ABI, as ``struct`` module formats.

Each :class:`CStruct` names its C type and fields so that ``tests/unit/test_layouts.py``
can compile a C program and compare every size and offset with what the compiler says.
The ``struct`` module with native alignment (``@``) follows the same rules as the C
compiler on this ABI, so a format like ``@iQ`` already contains the padding; the class
adds the trailing padding that ``struct`` leaves out.

Why ``struct`` and not ctypes Structures: packing and unpacking with a precompiled
``struct.Struct`` is several times faster, and these run on the hypercall path.
"""

from __future__ import annotations

import struct

_ALIGN = {"b": 1, "B": 1, "c": 1, "s": 1, "x": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "l": 8, "L": 8, "d": 8, "P": 8}


class CStruct:
    """One C struct: ``fields`` is a list of (name, code) with struct codes like ``"Q"``,
    ``"65s"`` or ``"3q"`` (an array: unpacks to several values under one name).

    ``cname`` is how C spells the type (for the layout test); ``header`` is the C header
    that defines it there.
    """

    def __init__(self, cname: str, fields: list[tuple[str, str]], header: str = "", packed: bool = False):
        self.cname = cname
        self.header = header
        self.fields = fields
        self.names = [n for n, _ in fields]
        codes = "".join(c for _, c in fields)
        align = max((_ALIGN[c[-1]] for _, c in fields), default=1)
        prefix = "<" if packed else "@"
        tail = "" if packed else f"0{'BHIQ'[[1, 2, 4, 8].index(align)]}"
        self.struct = struct.Struct(prefix + codes + tail)
        self.size = self.struct.size
        self.offsets: dict[str, int] = {}
        acc = ""
        for n, c in fields:
            # the offset of a field is the size of everything before it, plus its alignment
            self.offsets[n] = struct.calcsize(prefix + acc + ("0" + c[-1] if not packed and c[-1] != "s" else ""))
            acc += c
        self.pack = self.struct.pack
        self.unpack = self.struct.unpack
        self.unpack_from = self.struct.unpack_from
        self.pack_into = self.struct.pack_into

    def __repr__(self) -> str:
        return f"<CStruct {self.cname} size={self.size}>"


timespec = CStruct("struct timespec", [("tv_sec", "q"), ("tv_nsec", "q")], "time.h")
timeval = CStruct("struct timeval", [("tv_sec", "q"), ("tv_usec", "q")], "sys/time.h")
iovec = CStruct("struct iovec", [("iov_base", "Q"), ("iov_len", "Q")], "sys/uio.h")
rlimit = CStruct("struct rlimit", [("rlim_cur", "Q"), ("rlim_max", "Q")], "sys/resource.h")
# the kernel's struct stat for x86-64 (what newfstatat/fstat write)
stat = CStruct(
    "struct stat",
    [
        ("st_dev", "Q"), ("st_ino", "Q"), ("st_nlink", "Q"), ("st_mode", "I"), ("st_uid", "I"),
        ("st_gid", "I"), ("__pad0", "i"), ("st_rdev", "Q"), ("st_size", "q"), ("st_blksize", "q"),
        ("st_blocks", "q"), ("st_atime", "q"), ("st_atime_nsec", "q"), ("st_mtime", "q"),
        ("st_mtime_nsec", "q"), ("st_ctime", "q"), ("st_ctime_nsec", "q"), ("__unused", "3q"),
    ],
    "sys/stat.h",
)
utsname = CStruct(
    "struct utsname",
    [("sysname", "65s"), ("nodename", "65s"), ("release", "65s"), ("version", "65s"), ("machine", "65s"), ("domainname", "65s")],
    "sys/utsname.h",
)
# the kernel's struct sigaction (not libc's): handler, flags, restorer, one 64-bit mask
k_sigaction = CStruct("struct kernel_sigaction", [("handler", "Q"), ("flags", "Q"), ("restorer", "Q"), ("mask", "Q")])
stack_t = CStruct("stack_t", [("ss_sp", "Q"), ("ss_flags", "I"), ("ss_size", "Q")], "signal.h")
pollfd = CStruct("struct pollfd", [("fd", "i"), ("events", "h"), ("revents", "h")], "poll.h")
winsize = CStruct("struct winsize", [("ws_row", "H"), ("ws_col", "H"), ("ws_xpixel", "H"), ("ws_ypixel", "H")], "sys/ioctl.h")
robust_list_head = CStruct("struct robust_list_head", [("list", "Q"), ("futex_offset", "q"), ("list_op_pending", "Q")],
                           "linux/futex.h")
sysinfo = CStruct(
    "struct sysinfo",
    [
        ("uptime", "q"), ("loads", "3Q"), ("totalram", "Q"), ("freeram", "Q"), ("sharedram", "Q"),
        ("bufferram", "Q"), ("totalswap", "Q"), ("freeswap", "Q"), ("procs", "H"), ("pad", "H"),
        ("totalhigh", "Q"), ("freehigh", "Q"), ("mem_unit", "I"), ("_f", "0s"),
    ],
    "sys/sysinfo.h",
)
itimerval = CStruct("struct itimerval", [("it_interval", "2q"), ("it_value", "2q")], "sys/time.h")
tms = CStruct("struct tms", [("tms_utime", "q"), ("tms_stime", "q"), ("tms_cutime", "q"), ("tms_cstime", "q")], "sys/times.h")

itimerspec = CStruct("struct itimerspec", [("it_interval", "2q"), ("it_value", "2q")], "time.h")

# -- signal delivery (the kernel's layouts, <asm/sigcontext.h> and <asm/ucontext.h>) ----------
SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                   "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip")
sigcontext = CStruct(
    "struct sigcontext",
    [(r, "Q") for r in SIGCONTEXT_REGS]
    + [("eflags", "Q"), ("cs", "H"), ("gs", "H"), ("fs", "H"), ("ss", "H"), ("err", "Q"), ("trapno", "Q"),
       ("oldmask", "Q"), ("cr2", "Q"), ("fpstate", "Q"), ("reserved1", "8Q")],
    "asm/sigcontext.h",
)
# struct ucontext of the kernel: uc_flags, uc_link, uc_stack (stack_t), uc_mcontext, uc_sigmask (8 bytes)
ucontext = CStruct(
    "struct ucontext",
    [("uc_flags", "Q"), ("uc_link", "Q"), ("uc_stack", "24s"), ("uc_mcontext", "256s"), ("uc_sigmask", "Q")],
    "asm/ucontext.h",
)
SIGINFO_SIZE = 128
# the fxsave area's software-reserved bytes that describe the xsave state after it
fpx_sw_bytes = CStruct("struct _fpx_sw_bytes",
                       [("magic1", "I"), ("extended_size", "I"), ("xfeatures", "Q"), ("xstate_size", "I"),
                        ("padding", "7I")], "asm/sigcontext.h")
FXSAVE_SW_BYTES = 464  # offset of sw_reserved in the 512-byte fxsave area
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2 = 0x46505853, 0x46505845
signalfd_siginfo = CStruct(
    "struct signalfd_siginfo",
    [("ssi_signo", "I"), ("ssi_errno", "i"), ("ssi_code", "i"), ("ssi_pid", "I"), ("ssi_uid", "I"), ("ssi_fd", "i"),
     ("ssi_tid", "I"), ("ssi_band", "I"), ("ssi_overrun", "I"), ("ssi_trapno", "I"), ("ssi_status", "i"),
     ("ssi_int", "i"), ("ssi_ptr", "Q"), ("ssi_utime", "Q"), ("ssi_stime", "Q"), ("ssi_addr", "Q"),
     ("ssi_addr_lsb", "H"), ("__pad2", "H"), ("ssi_syscall", "i"), ("ssi_call_addr", "Q"), ("ssi_arch", "I"),
     ("__pad", "28s")],
    "sys/signalfd.h",
)
clone_args = CStruct(
    "struct clone_args",
    [("flags", "Q"), ("pidfd", "Q"), ("child_tid", "Q"), ("parent_tid", "Q"), ("exit_signal", "Q"), ("stack", "Q"),
     ("stack_size", "Q"), ("tls", "Q"), ("set_tid", "Q"), ("set_tid_size", "Q"), ("cgroup", "Q")],
    "linux/sched.h",
)
# the times, then the counters (longs)
rusage = CStruct("struct rusage", [("ru_utime", "16s"), ("ru_stime", "16s"), ("ru_maxrss", "q"), ("ru_ixrss", "q"),
                                   ("ru_idrss", "q"), ("ru_isrss", "q"), ("ru_minflt", "q"), ("ru_majflt", "q"),
                                   ("ru_nswap", "q"), ("ru_inblock", "q"), ("ru_oublock", "q"), ("ru_msgsnd", "q"),
                                   ("ru_msgrcv", "q"), ("ru_nsignals", "q"), ("ru_nvcsw", "q"), ("ru_nivcsw", "q")],
                 "sys/resource.h")
flock = CStruct("struct flock", [("l_type", "h"), ("l_whence", "h"), ("l_start", "q"), ("l_len", "q"), ("l_pid", "i")],
                "fcntl.h")
# PR_SET_MM_MAP's argument (PR_SET_MM_MAP_SIZE tells its size)
prctl_mm_map = CStruct(
    "struct prctl_mm_map",
    [("start_code", "Q"), ("end_code", "Q"), ("start_data", "Q"), ("end_data", "Q"), ("start_brk", "Q"), ("brk", "Q"),
     ("start_stack", "Q"), ("arg_start", "Q"), ("arg_end", "Q"), ("env_start", "Q"), ("env_end", "Q"), ("auxv", "Q"),
     ("auxv_size", "I"), ("exe_fd", "I")],
    "linux/prctl.h",
)
# struct sigevent: value, signo, notify, then a union whose first member is the thread id
sigevent = CStruct("struct sigevent", [("sigev_value", "Q"), ("sigev_signo", "i"), ("sigev_notify", "i"),
                                       ("sigev_notify_thread_id", "i"), ("_pad", "44s")], "signal.h")

# -- System V IPC: the kernel's 64-bit layouts (<asm/ipcbuf.h>, <asm/shmbuf.h>, <asm/sembuf.h>,
# <asm/msgbuf.h>), which x86-64's C libraries use as they are (glibc's names in the layout test)
ipc64_perm = CStruct(
    "struct ipc_perm",
    [("key", "i"), ("uid", "I"), ("gid", "I"), ("cuid", "I"), ("cgid", "I"), ("mode", "I"), ("seq", "H"),
     ("__pad2", "H"), ("__unused1", "Q"), ("__unused2", "Q")],
    "sys/ipc.h",
)
shmid64_ds = CStruct(
    "struct shmid_ds",
    [("shm_perm", f"{ipc64_perm.size}s"), ("shm_segsz", "Q"), ("shm_atime", "q"), ("shm_dtime", "q"),
     ("shm_ctime", "q"), ("shm_cpid", "i"), ("shm_lpid", "i"), ("shm_nattch", "Q"), ("__unused4", "Q"),
     ("__unused5", "Q")],
    "sys/shm.h",
)
semid64_ds = CStruct(
    "struct semid_ds",
    [("sem_perm", f"{ipc64_perm.size}s"), ("sem_otime", "q"), ("__unused1", "Q"), ("sem_ctime", "q"),
     ("__unused2", "Q"), ("sem_nsems", "Q"), ("__unused3", "Q"), ("__unused4", "Q")],
    "sys/sem.h",
)
msqid64_ds = CStruct(
    "struct msqid_ds",
    [("msg_perm", f"{ipc64_perm.size}s"), ("msg_stime", "q"), ("msg_rtime", "q"), ("msg_ctime", "q"),
     ("msg_cbytes", "Q"), ("msg_qnum", "Q"), ("msg_qbytes", "Q"), ("msg_lspid", "i"), ("msg_lrpid", "i"),
     ("__unused4", "Q"), ("__unused5", "Q")],
    "sys/msg.h",
)
# what IPC_INFO and SHM_INFO, SEM_INFO, MSG_INFO write
shminfo64 = CStruct("struct shminfo", [("shmmax", "Q"), ("shmmin", "Q"), ("shmmni", "Q"), ("shmseg", "Q"),
                                       ("shmall", "Q"), ("__unused", "4Q")], "sys/shm.h")
shm_info = CStruct("struct shm_info", [("used_ids", "i"), ("shm_tot", "Q"), ("shm_rss", "Q"), ("shm_swp", "Q"),
                                       ("swap_attempts", "Q"), ("swap_successes", "Q")], "sys/shm.h")
seminfo = CStruct("struct seminfo", [(n, "i") for n in ("semmap", "semmni", "semmns", "semmnu", "semmsl", "semopm",
                                                         "semume", "semusz", "semvmx", "semaem")], "sys/sem.h")
msginfo = CStruct("struct msginfo", [("msgpool", "i"), ("msgmap", "i"), ("msgmax", "i"), ("msgmnb", "i"),
                                     ("msgmni", "i"), ("msgssz", "i"), ("msgtql", "i"), ("msgseg", "H")], "sys/msg.h")
sembuf = CStruct("struct sembuf", [("sem_num", "H"), ("sem_op", "h"), ("sem_flg", "h")], "sys/sem.h")
MSGBUF_MTEXT = 8  # struct msgbuf { long mtype; char mtext[]; }: the text follows the type
# POSIX message queues (mq_open's and mq_getsetattr's attributes)
mq_attr = CStruct("struct mq_attr", [("mq_flags", "q"), ("mq_maxmsg", "q"), ("mq_msgsize", "q"), ("mq_curmsgs", "q"),
                                     ("__pad", "32s")], "mqueue.h")
# Linux AIO (linux/aio_abi.h): a request, a completion, the ring's header, io_pgetevents' mask
iocb = CStruct("struct iocb", [("aio_data", "Q"), ("aio_key", "I"), ("aio_rw_flags", "i"), ("aio_lio_opcode", "H"),
                               ("aio_reqprio", "h"), ("aio_fildes", "I"), ("aio_buf", "Q"), ("aio_nbytes", "Q"),
                               ("aio_offset", "q"), ("aio_reserved2", "Q"), ("aio_flags", "I"), ("aio_resfd", "I")],
               "linux/aio_abi.h")
io_event = CStruct("struct io_event", [("data", "Q"), ("obj", "Q"), ("res", "q"), ("res2", "q")], "linux/aio_abi.h")
# (the kernel's own, fs/aio.c: not in a uapi header, so not compared with a compiler)
aio_ring = CStruct("struct aio_ring", [("id", "I"), ("nr", "I"), ("head", "I"), ("tail", "I"), ("magic", "I"),
                                       ("compat_features", "I"), ("incompat_features", "I"), ("header_length", "I")])
# (io_pgetevents' struct __aio_sigset: not in every distribution's linux/aio_abi.h)
aio_sigset = CStruct("struct __aio_sigset", [("sigmask", "Q"), ("sigsetsize", "Q")])

# Layouts compared against the C compiler by the unit tests.
ALL = [timespec, timeval, iovec, rlimit, stat, utsname, stack_t, pollfd, winsize, robust_list_head, sysinfo, itimerval, tms,
       itimerspec, sigcontext, ucontext, fpx_sw_bytes, signalfd_siginfo, clone_args, sigevent, ipc64_perm, shmid64_ds,
       semid64_ds, msqid64_ds, shminfo64, shm_info, seminfo, msginfo, sembuf, mq_attr,
       prctl_mm_map, flock, rusage, iocb, io_event]
