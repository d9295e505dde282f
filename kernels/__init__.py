"""Numba-jitted compute kernels of microsim: plain arrays in, plain arrays out.

No I/O, no printing and no imports from microsim live here, so the same kernels
serve the single-process library and a distributed driver.
"""
