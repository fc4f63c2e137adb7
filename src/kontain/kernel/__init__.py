"""The process model the syscall handlers share: processes, tasks, descriptors, signals."""
