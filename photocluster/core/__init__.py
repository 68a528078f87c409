"""Core: the types, settings and errors every layer shares, and the review's read model
(:mod:`~photocluster.core.readmodel`: what the review pages show, as plain data).

Imports nothing from photocluster outside ``core``; everything may import it.
"""
