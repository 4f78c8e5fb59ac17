"""Write the ``.pyi`` stubs of kl_fast's compiled modules from their Cython sources.

Usage: ``python tools/make_stubs.py`` (from the repository root, with the
extensions built: the constants' types are read from them) rewrites
``kl_fast/_cython/<family>.pyi`` for every ``src/<family>.pyx``: each ``def`` with its
arguments (memoryviews as ``numpy.ndarray``, C numbers as ``int``/``float``/
``bool``) and each module-level constant.  ``tests/test_layout.py`` checks the
stubs name exactly what the built modules export, so a kernel signature change
that is not re-stubbed fails the tests.
"""

import importlib
import inspect
import pathlib
import re
import textwrap

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]

_C_TYPES = {
    "int": "int", "bint": "bool", "double": "float", "float": "float",
    "Py_ssize_t": "int", "int64_t": "int", "str": "str", "object": "Any",
}

_DEF = re.compile(r"^def (\w+)\((.*?)\):", re.S | re.M)
_CONST = re.compile(r"^([A-Z][A-Z0-9_]*|rel_entr) = (.+)$", re.M)


def _py_type(decl):
    """The annotation of one Cython argument declaration (without its name)."""
    if "[" in decl:                       # a typed memoryview
        return "np.ndarray"
    words = decl.replace("const ", "").split()
    return _C_TYPES.get(words[0], "Any") if words else "Any"


def _argument(text):
    text = " ".join(text.split())
    default = None
    if "=" in text:
        text, default = (part.strip() for part in text.split("=", 1))
    name = re.findall(r"\w+", text)[-1]
    decl = text[: text.rfind(name)].strip()
    stub = f"{name}: {_py_type(decl)}" if decl else name
    return f"{stub} = ..." if default is not None else stub


def _docline(source, end):
    """The first line of the docstring after position `end`, or None."""
    m = re.match(r'\s*"""(.*?)(?:"""|\n)', source[end:])
    return m.group(1).strip() if m else None


def stub_text(pyx):
    source = pyx.read_text()
    lines = [f'"""Stub of kl_fast._cython.{pyx.stem}, compiled from src/{pyx.name}.', "",
             'Written by tools/make_stubs.py: do not edit by hand."""', "",
             "from typing import Any", "", "import numpy as np", ""]
    module = importlib.import_module(f"kl_fast._cython.{pyx.stem}")   # the built module
    for name, _value in _CONST.findall(source):
        value = getattr(module, name)
        if isinstance(value, np.ufunc):
            kind = "np.ufunc"
        elif isinstance(value, dict):
            kind = "dict[str, int]"
        else:
            kind = type(value).__name__
        lines.append(f"{name}: {kind}")
    defs = {m.group(1): (m.group(2), m.end()) for m in _DEF.finditer(source)}
    # the row kernels rows.pyx makes from src/kl_blocks.h's table (QUANTITY_CODES): the
    # arguments of the _reduce_rows they call, less the kind code and Renyi's c
    arg_decls = {}
    for a in re.split(r",(?![^\[]*\])", defs.get("_reduce_rows", ("", 0))[0]):
        if a.strip():
            arg_decls[_argument(a).split(":")[0]] = a
    for name in getattr(module, "QUANTITY_CODES", {}):
        params = inspect.signature(getattr(module, name)).parameters
        doc = getattr(module, name).__doc__
        defs[name] = (", ".join(arg_decls[a] for a in params), f'"""{doc}"""')
    for name, (args, end) in defs.items():
        if name.startswith("_"):
            continue
        parts = [a for a in re.split(r",(?![^\[]*\])", args) if a.strip()]
        args = [_argument(a) for a in parts]
        head = f"def {name}({', '.join(args)}) -> Any:"
        if len(head) > 99:
            head = f"def {name}(\n" + "".join(f"    {a},\n" for a in args) + ") -> Any:"
        doc = _docline(end, 0) if isinstance(end, str) else _docline(source, end)
        lines += ["", ""]
        if doc and len(doc) > 90:
            doc = textwrap.fill(doc, 92, subsequent_indent="    ") + "\n    "
        lines.append(head + (f'\n    """{doc}"""' if doc else " ..."))
    text = re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)).rstrip() + "\n"
    # one blank line after the imports, as isort (ruff I001) wants in stubs
    text = text.replace("import numpy as np\n\n\n", "import numpy as np\n\n")
    if "-> Any" not in text:
        text = text.replace("from typing import Any\n\n", "")
    return text


def main():
    for pyx in sorted((ROOT / "src").glob("*.pyx")):
        out = ROOT / "kl_fast" / "_cython" / f"{pyx.stem}.pyi"
        out.write_text(stub_text(pyx))
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
