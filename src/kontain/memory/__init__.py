"""The guest window (checked access) and the address space the program sees in it."""
