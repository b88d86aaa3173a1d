"""Wire and domain formats: settings, request/response schemas, enums.

Nothing here does I/O; every other layer may import it.
"""
