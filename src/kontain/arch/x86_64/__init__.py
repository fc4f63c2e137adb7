"""x86-64: long mode, page tables, GDT/IDT/TSS, MSRs, CPUID and the guest code."""
