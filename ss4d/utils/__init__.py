"""Small helpers any floor may use (they import nothing from ss4d but :mod:`ss4d.errors`)."""

from ss4d.utils.atomic import atomic_file, atomic_folder, check_output, fsync_tree

__all__ = ["atomic_file", "atomic_folder", "check_output", "fsync_tree"]
