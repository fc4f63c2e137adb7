"""KVM through ioctls: the ABI as data (abi) and one object per KVM file descriptor (api)."""
