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
