"""kontain: run unmodified Linux programs in their own tiny KVM virtual machine."""

__version__ = "0.1.0"
