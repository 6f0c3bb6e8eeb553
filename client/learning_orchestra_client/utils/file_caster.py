"""LO's `python_file_caster`: the code of a Python file, as text to send as a step's code.

LO's scripts keep long code (builder/sparkml's `modelingCode`, a function step's code) in a
file of its own and send its text: ``modeling_code = python_file_caster("modeling_code.py")``.
"""

from __future__ import annotations

import os
from pathlib import Path


def python_file_caster(
    source: str | os.PathLike[str],
    filename: str = "<string>",
    flags: int = 0,
    dont_inherit: bool = False,
    optimize: int = -1,
) -> str:
    """The text of the Python file at path `source`, once it compiles: a syntax error shows
    here, on the client, rather than in the step. The other arguments are `compile`'s.

    Raises:
        OSError: `source` cannot be read.
        SyntaxError: the file is not valid Python.
    """
    text = Path(source).read_text()
    compile(text, filename, "exec", flags=flags, dont_inherit=dont_inherit, optimize=optimize)
    return text
