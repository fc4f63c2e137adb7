"""System calls: one table (table.py), one dispatcher (dispatch.py), handlers by family."""
