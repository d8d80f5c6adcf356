"""The errors a user can cause, each carrying one clear line for the CLI to print.

Every user-facing failure is an :class:`EdgeFinerError`; the CLI prints ``str(err)`` and exits
non-zero instead of showing a traceback.  Anything else escaping is a bug.
"""
from __future__ import annotations


class EdgeFinerError(Exception):
    """Base class: the message is meant for the person at the keyboard."""


class BundleError(EdgeFinerError):
    """A bundle is missing, malformed, tampered with or incompatible."""


class BundleNotFound(BundleError):
    """No installed bundle matches a name, path or language."""


class ArchiveError(BundleError):
    """A bundle archive is unsafe or unreadable; nothing was extracted."""


class InputError(EdgeFinerError):
    """An input file or text cannot be read as asked (encoding, permissions, kind)."""


class OutputError(EdgeFinerError):
    """An output cannot be written without losing data (exists, unwritable, is an input)."""


class DiskFullError(OutputError):
    """The output device is full (or a file size limit was hit): no later output can be written
    either, so the run stops here; what was written is whole and ``--resume`` finishes it."""


class CatalogueError(BundleError):
    """A catalogue folder or index is missing or malformed, or an archive in it does not match
    its index entry; nothing was installed."""
