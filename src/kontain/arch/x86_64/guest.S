/*
 * All the code kontain puts into a guest VM.  The program itself is the only other code.
 *
 * Two pages, both outside the program's address window (see layout.py):
 *
 *   .stub      user-executable, read-only.  MSR_LSTAR points at syscall_entry.
 *   .handlers  supervisor-only.  IDT gates 0..31 point at the vector stubs.
 *
 * tools/gen_guest_code.py assembles this file into guest_code.py; the unit test
 * tests/unit/test_guest_code.py re-assembles it and checks that the bytes match.
 *
 * Ports: the monitor listens on SYS_PORT (0x10, the only port the TSS I/O bitmap lets
 * CPL3 use) and EXC_PORT (0x11, used from CPL0 only).
 */
        .equ SYS_PORT, 0x10
        .equ EXC_PORT, 0x11

        .code64

/* ------------------------------------------------------------------------------- */
        .section .stub, "ax"
        .globl syscall_entry, syscall_return, probe, iret_path

/*
 * The program's `syscall` lands here with RCX = return RIP and R11 = RFLAGS.
 * On PVM (kvm_pvm) `syscall` does not change privilege: we are still at CPL3, RFLAGS
 * is untouched (FMASK = 0), and `jmp *%rcx` returns.  On hardware KVM we are at CPL0
 * and `sysretq` returns; platform.py patches syscall_return at start-up.  Neither path
 * touches the program's stack or any register but RAX (the result), like Linux.
 */
syscall_entry:
        out     %al, $SYS_PORT          /* exit to the monitor; it writes RAX */
syscall_return:
        jmp     *%rcx                   /* PVM.  Hardware KVM: sysretq (48 0f 07) */
        int3                            /* room for the 3-byte sysretq */

/*
 * Start-up probe (platform.py): run at CPL3 with RAX = a number no Linux syscall has.
 * The monitor looks at CS at the resulting exit: CPL3 means PVM-style, CPL0 hardware.
 */
        .balign 16
probe:
        syscall
        ud2

/*
 * Hardware KVM only: a return to user mode that restores every register (rt_sigreturn,
 * signal delivery).  The monitor points RSP at an iret frame it wrote on this vCPU's
 * exception stack and RIP here, still at CPL0.
 */
        .balign 16
iret_path:
        iretq

/* ------------------------------------------------------------------------------- */
        .section .handlers, "ax"
        .globl vectors, exc_common

/*
 * One 16-byte stub per exception vector.  Each pushes a zero "error code" when the CPU
 * pushes none, then the vector number, so the monitor finds the same frame for every
 * vector at RSP: [vector, error, RIP, CS, RFLAGS, RSP, SS].  No general register is
 * touched: the monitor reads the program's registers at the fault, unchanged.
 */
        .macro  vector n, has_error
        .balign 16
        .if     \has_error == 0
        pushq   $0
        .endif
        pushq   $\n
        jmp     exc_common
        .endm

        .balign 16
vectors:
        vector  0, 0    /* #DE divide error */
        vector  1, 0    /* #DB debug */
        vector  2, 0    /* NMI */
        vector  3, 0    /* #BP int3 (gate DPL 3) */
        vector  4, 0    /* #OF into (gate DPL 3) */
        vector  5, 0    /* #BR bound */
        vector  6, 0    /* #UD invalid opcode */
        vector  7, 0    /* #NM device not available */
        vector  8, 1    /* #DF double fault */
        vector  9, 0    /* coprocessor segment overrun */
        vector 10, 1    /* #TS invalid TSS */
        vector 11, 1    /* #NP segment not present */
        vector 12, 1    /* #SS stack fault */
        vector 13, 1    /* #GP general protection */
        vector 14, 1    /* #PF page fault (CR2 holds the address) */
        vector 15, 0
        vector 16, 0    /* #MF x87 floating point */
        vector 17, 1    /* #AC alignment check */
        vector 18, 0    /* #MC machine check */
        vector 19, 0    /* #XM SIMD floating point */
        vector 20, 0    /* #VE */
        vector 21, 1    /* #CP control protection */
        vector 22, 0
        vector 23, 0
        vector 24, 0
        vector 25, 0
        vector 26, 0
        vector 27, 0
        vector 28, 0
        vector 29, 1
        vector 30, 1
        vector 31, 0

/*
 * Report to the monitor, which may rewrite the frame (to resume elsewhere, e.g. a
 * signal handler) and the registers, then drop vector and error and return.
 */
exc_common:
        out     %al, $EXC_PORT
        add     $16, %rsp
        iretq

/* ------------------------------------------------------------------------------- */
/*
 * The polling tier (PVM only; kernel/poll.py is the monitor's half).  Each vCPU below
 * layout.POLL_VCPUS gets its own copy of this section, POLL_COPY bytes apart, and its
 * MSR_LSTAR points at poll_entry in its copy.  POLL_DISTANCE bytes after each copy lies
 * that vCPU's slot (a user-writable page), which every access below reaches
 * RIP-relative, so all the copies are the same bytes.  Slot layout:
 *
 *   +0  state  u32   0 idle, 1 posted, 2 taken by the poller, 3 done, 4 done and the
 *                    monitor wants an exit (signals to deliver), 5 declined (exit and
 *                    let the vCPU's own thread run it)
 *   +4  on     u32   while a monitor thread polls this slot: the number of rounds to
 *                    spin before giving up (the monitor writes it; 0: off)
 *   +8  nr, +16..+63 rdi rsi rdx r10 r8 r9, +64 result, +72 rflags (r11 at entry),
 *   +80 the return address (rcx at entry)
 *
 * A call the poller may serve (poll_map, written by the monitor into this read-only
 * page: calls that never block and need no registers) is posted to the slot; the stub
 * spins until the poller answers.  Past its spin budget it takes the request back
 * (cmpxchg 1 -> 0) and exits with `out` as syscall_entry does; if the poller took it
 * meanwhile, it waits for the answer (those calls do not block).  Anything else exits
 * at once.  The program can scribble on its slot: it then only lies to itself, as the
 * monitor re-checks every request.  The flags, which the stub's compares change, are
 * given back from R11 (the monitor does so at the exits; poll_done restores OF and,
 * with sahf, SF ZF AF PF CF: DF, IF and TF are never changed here).
 */
        .equ POLL_DISTANCE, 0x4000
        .equ POLL_SPIN_MAX, 100000
        .equ S_STATE, poll_entry + POLL_DISTANCE
        .equ S_ON, S_STATE + 4
        .equ S_NR, S_STATE + 8
        .equ S_ARGS, S_STATE + 16
        .equ S_RESULT, S_STATE + 64
        .equ S_FLAGS, S_STATE + 72
        .equ S_RCX, S_STATE + 80
        .equ ST_IDLE, 0                 /* the slot's states */
        .equ ST_POSTED, 1
        .equ ST_DONE, 3
        .equ ST_DONE_EXIT, 4

        .section .poll, "ax"
        .globl poll_entry, poll_posted, poll_withdrawn, poll_exit, poll_done, poll_declined, poll_done_exit
        .globl poll_done_return, poll_end, poll_map
poll_entry:
        cmpl    $0, S_ON(%rip)
        je      poll_exit
        cmpq    $512, %rax
        jae     poll_exit
        btq     %rax, .Lmap(%rip)
        jnc     poll_exit
        movq    %rax, S_NR(%rip)
        movq    %rdi, S_ARGS(%rip)
        movq    %rsi, S_ARGS+8(%rip)
        movq    %rdx, S_ARGS+16(%rip)
        movq    %r10, S_ARGS+24(%rip)
        movq    %r8, S_ARGS+32(%rip)
        movq    %r9, S_ARGS+40(%rip)
        movq    %r11, S_FLAGS(%rip)
        movq    %rcx, S_RCX(%rip)       /* the return address (which site: km --timings) */
        movl    $ST_POSTED, S_STATE(%rip) /* posted (x86 keeps stores in order) */
poll_posted:
        movl    S_ON(%rip), %eax        /* the spin budget (the monitor's choice) */
        cmpl    $POLL_SPIN_MAX, %eax    /* (bounded, should the program scribble on it) */
        jbe     1f
        movl    $POLL_SPIN_MAX, %eax
1:      cmpl    $ST_DONE, S_STATE(%rip)
        jae     poll_done
        pause
        subl    $1, %eax                /* (a budget of 0: the poller switched the slot */
        ja      1b                      /* off as it was posted; one round, not 2^32) */
        movl    $ST_POSTED, %eax        /* too long: take it back unless it was taken */
        xorl    %edx, %edx
        lock cmpxchgl %edx, S_STATE(%rip)
        movq    S_ARGS+16(%rip), %rdx
        je      poll_withdrawn
2:      cmpl    $ST_DONE, S_STATE(%rip)       /* taken: the answer is near */
        jae     poll_done
        pause
        jmp     2b
poll_withdrawn:
        movq    S_NR(%rip), %rax
poll_exit:
        out     %al, $SYS_PORT          /* as syscall_entry; the monitor sets RFLAGS = R11 */
        jmp     *%rcx
poll_done:
        cmpl    $ST_DONE_EXIT, S_STATE(%rip)
        je      poll_done_exit
        ja      poll_declined
        movl    S_FLAGS(%rip), %eax
        btl     $11, %eax               /* OF */
        jnc     3f
        movb    $0x7f, %ah
        addb    $1, %ah                 /* OF = 1 */
        jmp     4f
3:      xorb    %ah, %ah                /* OF = 0 */
4:      movb    %al, %ah
        sahf                            /* SF ZF AF PF CF; mov changes no flag from here */
        movq    S_RESULT(%rip), %rax
        movl    $ST_IDLE, S_STATE(%rip)
        jmp     *%rcx
poll_declined:                          /* 5: the poller will not run it (it could block) */
        movl    $ST_IDLE, S_STATE(%rip)
        jmp     poll_withdrawn
poll_done_exit:
        movq    S_RESULT(%rip), %rax
        out     %al, $SYS_PORT          /* the call is done: the monitor delivers signals */
poll_done_return:                       /* RIP at that exit */
        jmp     *%rcx
poll_end:
        .balign 64
poll_map:
.Lmap:
        .fill   64, 1, 0                /* bit n: syscall n may be polled (the monitor fills it) */
