"""Helpers of LO's client kept for its scripts: `file_caster.python_file_caster`."""
