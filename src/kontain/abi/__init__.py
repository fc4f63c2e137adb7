"""The Linux x86-64 ABI as data: syscall numbers, errno, flags, signals and struct layouts.

Nothing here does anything; every other layer imports its numbers from here, so that each
number of the Linux ABI is written down exactly once.
"""
