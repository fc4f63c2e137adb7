"""ELF loading: parse and validate (elf), then map and build the initial stack (load)."""
