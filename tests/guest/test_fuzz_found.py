"""What the system call fuzzer (tests/programs/fuzz.c, test_fuzz.py) found: one small
program per bug (tests/programs/fuzz_found.c CASE), run natively and under km."""

import pytest

from kt import KM, as_user, build, compare, run


def found(case: str, **kw):
    native, guest = compare([build("fuzz_found"), case], **kw)
    assert "internal error" not in guest.err and "Traceback" not in guest.err, guest.err
    return native, guest


def found_as_user(case: str):
    """``found`` for a case that needs a user without privileges (root bypasses limits)."""
    program = build("fuzz_found")
    native, guest = run(as_user([program, case])), run(as_user(KM + [program, case]))
    assert "internal error" not in guest.err and "Traceback" not in guest.err, guest.err
    assert (guest.returncode, guest.text) == (native.returncode, native.text), \
        f"natively ({native.returncode}):\n{native.text}\nunder km ({guest.returncode}):\n{guest.text}"
    return native, guest

def test_clone_stack_is_only_a_register():
    """clone's stack argument is the child's RSP, whatever it is (a kernel or non-canonical
    address: the child faults when it uses it).  km stored it in a signed register slot
    and failed with an internal error, in the child of a fork, which then went on as a
    second copy of the parent."""
    native, _ = found("clone-stack")
    assert native.text.count("child exited 7") == 8 and native.text.count("ended") == 4, native.text

def test_clone3_checks_its_stack_and_exit_signal():
    """clone3 refuses a stack without a size, a size without a stack, a range outside user
    space, and an exit signal that is not one (EINVAL), before anything else."""
    native, _ = found("clone3-stack")
    assert native.text.count("Invalid argument") == 9, native.text

def test_altstack_autodisarm():
    """SS_AUTODISARM is bit 31 of ss_flags: km packed it as a signed int and died with a
    traceback at the next signal."""
    native, _ = found("altstack-autodisarm")
    assert "flags back: 0x80000000" in native.text and "handled again 10" in native.text, native.text


def test_signalfd_takes_no_descriptor_of_the_program():
    """While a signalfd had a signal pending, km held a connection to it at the lowest
    free descriptor: the program's next file got another number than on Linux, and a
    program that closed that descriptor made km fail with internal errors (EBADF)."""
    native, _ = found("signalfd-fds")
    assert "next descriptor: signalfd + 1" in native.text and native.text.count("signal 10") == 2, native.text


def test_masked_waits_keep_the_host_mask():
    """ppoll, pselect6, epoll_pwait and epoll_pwait2 gave the program's signal mask to
    km's own host thread: a signal the program handles (its interval timer's SIGALRM)
    then took its default action on km, which died by SIGALRM.  The mask is now the
    program's alone: what it lets through ends the call (at once if already pending),
    what it blocks stays pending until the old mask is back."""
    native, _ = found("masked-waits")
    assert native.text.count("handled yes") == 4 and native.text.count("handled 0 during, 1 after") == 4, native.text


def test_fork_fails_with_the_hosts_errno():
    """With RLIMIT_NPROC at 0 fork, vfork and clone fail with EAGAIN: km's own fork failed
    the same way, and the BlockingIOError came out as an internal error (ENOSYS)."""
    native, _ = found_as_user("nproc-fork")
    assert native.text.count("Resource temporarily unavailable") == 3, native.text


def test_thread_fails_with_eagain():
    """With RLIMIT_NPROC at 0 a thread cannot be made either: EAGAIN."""
    native, _ = found_as_user("nproc-thread")
    assert "thread: Resource temporarily unavailable" in native.text, native.text


def test_signals_32_and_33_reach_the_program():
    """glibc's pthread_create unblocks signals 32 and 33 (its own) in the thread that
    creates a thread: km's threads had them unblocked at their default action, and the
    program's kill(0, 32) ended km (killed by signal 32) instead of reaching its handler."""
    native, _ = found("signal-32-33")
    assert native.text == "signal 32 handled: yes, signal 33 handled: yes\n", native.text


def test_select_reads_the_sets_only_as_far_as_the_descriptor_table():
    """select and pselect6 read nfds bits of each set: 256 MiB for INT_MAX, which failed
    with EFAULT past the program's buffer, or with MemoryError (an internal error).
    Linux reads as far as its descriptor table goes."""
    native, _ = found("select-huge-nfds")
    assert native.text.count(": 1 \n") == 6, native.text


def test_sigpending_limit_is_the_programs():
    """RLIMIT_SIGPENDING went to km's own process, where at 0 it stopped the real-time
    signal that interrupts a vCPU thread's blocking call: a read of an empty pipe was
    never interrupted by the program's SIGALRM, and km hung."""
    native, _ = found("sigpending-zero", timeout=60)
    assert "Interrupted system call, handled yes" in native.text, native.text


def test_proc_files_ignore_the_file_size_limit():
    """RLIMIT_FSIZE limits the files a program writes, not what it reads from /proc."""
    native, _ = found("fsize-proc")
    assert native.text.count(": read") == 3 and "next descriptor: 3" in native.text, native.text


def test_signalfd_readiness_from_two_threads():
    """A signalfd's readiness was updated by the signal thread (the program's timer) and
    by the vCPU thread (its own kill) at once: both closed the same connection, and the
    second got EBADF (an internal error in kill, tgkill, or delivering a signal), or
    could have closed a file of the program's that had just been given that number."""
    native, _ = found("signalfd-race")
    assert native.text.endswith("SIGUSR1 yes, SIGUSR2 yes, SIGALRM yes\n"), native.text


def test_mlockall_future_leaves_km_its_memory():
    """mlockall(MCL_FUTURE) went to km's own process and locked every later allocation of
    km's: the stack of the host thread for a new guest thread failed past RLIMIT_MEMLOCK
    (an internal error in clone, ENOSYS)."""
    native, _ = found_as_user("mlockall-future")
    assert "thread: ended" in native.text, native.text


def test_execve_of_a_fifo_is_refused(tmp):
    """execve of a FIFO or a socket fails with EACCES on Linux, which runs nothing but
    regular files.  km opened the file to read its header, and the open of a FIFO waited
    for a writer: km hung (the fuzzer's random name happened to be a FIFO it had made)."""
    native, _ = found("exec-fifo", cwd=tmp, timeout=60)
    assert native.text.count("Permission denied") == 4, native.text


def test_signalfd_survives_a_program_that_closes_what_it_never_opened():
    """The signal thread's transient socket() and accept4() descriptors of a signalfd
    are made in the program's range (the lowest free number): a program that closed
    numbers it never opened could close one first, and km's own close then failed with
    EBADF (an internal error delivering a signal)."""
    native, _ = found("signalfd-close-race")
    assert native.text == "handled SIGUSR2 yes, SIGALRM yes\n", native.text


def test_writes_past_the_file_size_limit_raise_sigxfsz(tmp):
    """Past RLIMIT_FSIZE, write, truncate and the like fail with EFBIG and Linux sends
    SIGXFSZ, which ends a program that does not handle it.  The host sent it to km's
    thread, where it is ignored: the program never got it, and went on."""
    native, _ = found("fsize-sigxfsz", cwd=tmp)
    assert "SIGXFSZ 3" in native.text and "child killed by 25" in native.text, native.text


def test_dirfd_is_ignored_for_an_absolute_path():
    """The *at calls ignore their directory descriptor for an absolute path: km refused
    any number in its own range with EBADF first (openat(100000, "/dev/null") failed)."""
    native, _ = found("dirfd-absolute")
    assert native.text.count("opened") == 3 and native.text.count("): -1 Bad file descriptor") == 3, native.text


def test_argument_checks_in_linux_order():
    """clone takes CLONE_IO, CLONE_SYSVSEM and CLONE_DETACHED for a new process (km said
    EINVAL); clone3 says E2BIG past a page (km: EINVAL); mlock2 checks its flags before
    its range (km: ENOMEM).  Found comparing the fuzzer's native and km traces."""
    native, _ = found("flag-checks")
    assert native.text.count("child exited 7") == 3 and native.text.count("Argument list too long") == 2, native.text


def test_descriptor_errors_come_before_iovec_and_msghdr_errors():
    """Linux looks at the descriptor (not open, not writable, not seekable, not a socket)
    and the flags before it reads an iovec or a msghdr; km read those first and said
    EFAULT or EINVAL where Linux says EBADF, EINVAL, ESPIPE or ENOTSOCK."""
    native, _ = found("fd-errors-first")
    assert "Bad address" not in native.text and native.text.count("Not a socket") == 4, native.text


def test_execve_opens_the_program_before_reading_argv():
    """execve opens the program before it reads argv and envp: a missing or unrunnable
    program is ENOENT or EACCES even with a bad argv (km read argv first: EFAULT), and a
    directory is EACCES (km: EISDIR)."""
    native, _ = found("exec-order")
    assert native.text.count("Permission denied") == 3 and "No such file" in native.text, native.text


def test_offsets_before_descriptors_and_descriptors_before_whence():
    """pread64, pwrite64, preadv and pwritev refuse a negative offset (EINVAL) before
    they look at the descriptor (km: EBADF first); lseek is the other way round."""
    native, _ = found("offsets-first")
    assert native.text.count("Invalid argument") == 4 and "Bad file descriptor" in native.text, native.text


def test_socketpair_writes_its_descriptors_first():
    """socketpair writes its two descriptor numbers before it makes the sockets: a bad
    address is EFAULT whatever the family (km: EAFNOSUPPORT or EOPNOTSUPP first)."""
    native, _ = found("socketpair-efault")
    assert native.text.count("Bad address") == 3, native.text


def test_msghdr_negative_namelen():
    """A msghdr's negative msg_namelen is EINVAL before a msg_iovlen over UIO_MAXIOV is
    EMSGSIZE."""
    native, _ = found("msghdr-namelen")
    assert native.text.count("Invalid argument") == 2, native.text


def test_more_checks_in_linux_order():
    """A descriptor km hands on to the kernel that is not open is EBADF where Linux looks
    at it (inotify_add_watch(-1, mask 0): EINVAL, km said EBADF); getrlimit(NULL) is
    EFAULT (km: 0); rt_sigqueueinfo checks its siginfo first (E2BIG, km: EINVAL or
    success) and a handler never sees bytes past the kernel's part of a known one;
    setgroups says EPERM before a bad size's EINVAL.  Found comparing the traces."""
    native, _ = found_as_user("checks-in-order")
    assert native.text.count("Argument list too long") == 3 and "clear tail: 1\nrt" in native.text, native.text
    assert "getrlimit(RLIMIT_STACK, NULL)            -1 Bad address" in native.text, native.text


def test_closed_descriptors_where_linux_looks_at_them():
    """A descriptor that is not open, one the program never had or one of km's own (just
    above the hard RLIMIT_NOFILE it started with), is EBADF exactly where Linux looks at
    descriptors: after epoll_ctl's event, epoll_pwait's mask, epoll_pwait2's and
    recvmmsg's timeout, sendfile's offset and vmsplice's flags, before epoll_wait's
    maxevents.  And mmap takes prot bits it does not know, as Linux does (km: EINVAL).
    Found comparing the fuzzer's traces once its descriptors reached km's range."""
    native, _ = found_as_user("closed-fds-in-order")
    assert native.text.count("Bad file descriptor") == 3 * 5 and "prot with unknown bits): mapped" in native.text, \
        native.text


def test_timeouts_come_first():
    """select, pselect6 and ppoll read and check their timeout before nfds, the mask or
    the descriptors (km: EINVAL or EFAULT for those first); an ioctl request km does not
    serve on a descriptor that is not open is EBADF (km: ENOTTY)."""
    native, _ = found("timeouts-first")
    assert native.text.count("Bad address") == 3 and native.text.count("Bad file descriptor") == 2, native.text


def test_ipc_calls_a_signal_kept_from_starting_are_eintr_only_if_they_would_wait():
    """semop, msgsnd and msgrcv that a signal kept from starting failed with EINTR under
    km; Linux does so only with a call that would wait (a bad id is EINVAL, a semop up or
    a msgrcv with a message there is done).  km failed ~250 of these 12000 calls before;
    one in a run of the full suite still failed once (known-issues.md), so km may have
    a few where the native run has none."""
    program = build("fuzz_found")
    native, guest = run([program, "ipc-not-interrupted"]), run(KM + [program, "ipc-not-interrupted"])
    assert "internal error" not in guest.err and "Traceback" not in guest.err, guest.err
    counts = [dict(part.rsplit(" ", 1) for part in r.text.strip().split(", ")) for r in (native, guest)]
    assert counts[0]["other"] == "0" and counts[0]["semop up"] == "3000", native.text
    assert int(counts[1]["other"]) <= 3 and counts[1]["semop bad id EINVAL"] == "3000", guest.text


def test_vdso_as_a_buffer_and_arch_map_vdso():
    """The vDSO is a buffer system calls can read, as on Linux (km: EFAULT: the host
    reads km's window, where the vDSO's memslots had nothing), and ARCH_MAP_VDSO_* is
    EEXIST while one is mapped (km: EINVAL)."""
    program = build("fuzz_found")
    if "no vdso" in run(KM + [program, "vdso-calls"]).text:
        pytest.skip("km gives programs no vDSO on this platform")
    native, _ = found("vdso-calls")
    assert "write(pipe, vdso, 4)                     4" in native.text and "File exists" in native.text, native.text


def test_waitid_options_before_the_pidfd():
    """waitid checks its options and its id's sign before a P_PIDFD descriptor, also one
    of km's own range (km: EBADF first); recvfrom and sendto their buffer (EFAULT for a
    kernel address) before the descriptor."""
    native, _ = found_as_user("waitid-order")
    assert native.text.count("Invalid argument") == 4 and native.text.count("Bad address") == 2, native.text


def test_timer_create_looks_at_the_clock_first():
    """timer_create says what is wrong with the clock (EINVAL, EOPNOTSUPP) before what is
    wrong with the sigevent; km refused a sigevent it does not serve first (EINVAL)."""
    native, _ = found("timer-clock-first")
    assert native.text.count(" supported\n") == 4, native.text


def test_more_first_checks_in_linux_order():
    """rt_sigaction reads the new action before it looks at the signal (EFAULT first) and
    keeps the change when writing the old one fails (km undid it); kill of a bad signal
    to no process is ESRCH (km: EINVAL); execveat reads its path, signalfd4 its mask,
    pselect6 its mask pair before their other checks; sched_setaffinity's length is an
    unsigned int (km, checking a u64 range, said EFAULT for a high half)."""
    native, _ = found("more-orders")
    assert native.text.count("Bad address") == 6 and "set all the same: 1" in native.text, native.text
    assert "0xfffffff8): its mask's size" in native.text and "No such process" in native.text, native.text


def test_mprotect_and_poll_look_at_what_linux_looks_at():
    """mprotect of a zero length succeeds whatever the protection says, PROT_SEM is a bit
    it takes, a wrapping length is ENOMEM (km: EINVAL, or 0); poll's and ppoll's nfds
    is an unsigned int (km: EINVAL for a high half)."""
    native, _ = found("mprotect-poll-order")
    assert native.text.count(" 0 \n") == 4 and "Out of memory" in native.text, native.text  # (musl's ENOMEM)
