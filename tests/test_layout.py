"""Layout contracts of the package (issue 14): the three backends are packages with
the same family modules, each kernel of the Cython backend present in the other two
with the same arguments; the .pyi stubs of the compiled modules (tools/make_stubs.py)
match what the built modules export -- the same public names, the same argument names
in the same order; no module-level import cycle and no private name imported across
modules; the report width is one number; the registry of benchmarked quantities
(kl_fast/_registry.py) covers every public function."""

import ast
import importlib
import inspect
import pathlib

import pytest

from kl_fast._engine.backends import FAMILY_MODULES

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUBS = sorted((ROOT / "kl_fast" / "_cython").glob("*.pyi"))
SOURCES = sorted((ROOT / "src").glob("*.pyx"))

# Cython helpers with no counterpart in the other backends, and why
COMPILED_ONLY = {
    "rows": {"openmp_enabled",     # whether the extension was built with OpenMP
             "rel_entr_1d",        # scipy drop-in helper on one row
             "sum_tolerance",      # the Cython side of _validation.sum_tolerance (tested equal)
             "vector_fast",        # the one-vector shortcut (_prob_rows.fast_vector)
             "vmath"},             # the vector log/exp, exposed for tests/test_vmath.py
    "elementwise": {"point"},      # the one-element shortcut of the elementwise functions
    "pairwise": {"tile_shape"},    # the tiling the compiled backends share (numba has it)
}


def test_every_compiled_module_has_a_stub():
    assert [p.stem for p in STUBS] == [p.stem for p in SOURCES]


def _stub_names(path):
    tree = ast.parse(path.read_text())
    functions = {node.name: [a.arg for a in node.args.args]
                 for node in tree.body if isinstance(node, ast.FunctionDef)}
    constants = {node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)}
    return functions, constants


@pytest.mark.parametrize("stub", STUBS, ids=lambda p: p.stem)
def test_stub_names_what_the_module_exports(stub):
    module = importlib.import_module(f"kl_fast._cython.{stub.stem}")
    functions, constants = _stub_names(stub)
    # its own names: not modules or functions it imported from elsewhere
    public = {n for n in dir(module) if not n.startswith("_")
              and not inspect.ismodule(getattr(module, n))
              and getattr(getattr(module, n), "__module__", module.__name__) in (
                  module.__name__, None, "numpy")}
    assert set(functions) | constants == public, (
        f"{stub.name} is stale: run python tools/make_stubs.py")
    for name, args in functions.items():
        assert list(inspect.signature(getattr(module, name)).parameters) == args, name


def test_report_width_is_one_number():
    # the report layout is declared once per language: src/kl_common.pxd (N_REPORT, which
    # both Cython row modules cimport) and kl_fast/_engine/scale.py (REPORT_WIDTH)
    from kl_fast._cython import rows as _kernels_cython
    from kl_fast._engine import report as _report
    from kl_fast._engine import scale as _scale

    assert _kernels_cython.REPORT_WIDTH == _scale.REPORT_WIDTH
    assert _report.new_total().shape == (_scale.REPORT_WIDTH,)
    assert _report.new_report(3).shape == (3, _scale.REPORT_WIDTH)


def test_registry_covers_every_public_function():
    # every public function of kl_fast is benchmarked by at least one registry row,
    # and every row calls a public function (kl_fast/_registry.py)
    import kl_fast
    from kl_fast._registry import REGISTRY

    functions = {n for n in kl_fast.__all__ if n not in (
        "available_backends", "set_num_threads", "get_num_threads", "threads", "show_config",
        "__version__")}
    assert {q.function for q in REGISTRY} == functions
    assert len({q.name for q in REGISTRY}) == len(REGISTRY)


def _own_functions(module):
    return {n: getattr(module, n) for n in dir(module) if not n.startswith("_")
            and callable(getattr(module, n)) and not inspect.isclass(getattr(module, n))
            and getattr(getattr(module, n), "__module__", None) in (module.__name__, None)}


@pytest.mark.parametrize("family", FAMILY_MODULES)
def test_backends_mirror_each_other(family):
    # kl_fast._{cython,numba,numpy}.<family>: every Cython kernel exists in the Numba and
    # numpy backends under the same name with the same positional arguments
    cython = importlib.import_module(f"kl_fast._cython.{family}")
    numba = importlib.import_module(f"kl_fast._numba.{family}")
    numpy = importlib.import_module(f"kl_fast._numpy.{family}")
    kernels = set(_own_functions(cython)) - COMPILED_ONLY.get(family, set())
    assert kernels, family
    for name in sorted(kernels):
        want = list(inspect.signature(getattr(cython, name)).parameters)
        for other in (numba, numpy):
            assert hasattr(other, name), f"{other.__name__} lacks {name}"
            got = list(inspect.signature(getattr(other, name)).parameters)
            assert got == want, (other.__name__, name)


def _module_imports():
    """{module: (module-level relative imports as module names, names imported)}."""
    package = ROOT / "kl_fast"
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    found = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets, imported = set(), []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                pkg = base[:len(base) - node.level + 1] + ([node.module] if node.module else [])
                for alias in node.names:
                    full = ".".join([*pkg, alias.name])
                    targets.add(full if full in modules else ".".join(pkg))
                    if full not in modules:
                        imported.append((".".join(pkg), alias.name))
        found[name] = (targets, imported)
    return found


def test_no_import_cycles_and_no_private_imports():
    imports = _module_imports()
    graph = {m: {t for t in targets if t in imports and t != m}
             for m, (targets, _) in imports.items()}
    # depth-first search for a back edge
    state = {}

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, t]))
            if t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    private = [(m, src, n) for m, (_, names) in imports.items() for src, n in names
               if n.startswith("_") and not n.startswith("__")]
    assert private == [], "private names imported across modules: " + repr(private)


def test_row_reductions_registry_is_complete():
    # every ROW_REDUCTIONS row names an exported function, a row kernel of every backend,
    # a kl-fast score metric, the compiled one-vector shortcut, and a parameter check
    import kl_fast
    from kl_fast import _fdivergences
    from kl_fast._cli.score import METRICS, PARAMETERS
    from kl_fast._cython import rows as compiled_rows
    from kl_fast._registry import REGISTRY, ROW_REDUCTIONS

    for row in ROW_REDUCTIONS:
        assert row.function in kl_fast.__all__
        assert (_fdivergences.FAMILY.get(row.function) is row) == row.is_fdivergence
        assert getattr(importlib.import_module(f"kl_fast.{row.module}"), row.function) \
            is getattr(kl_fast, row.function)
        for backend in ("cython", "numba", "numpy"):
            rows = importlib.import_module(f"kl_fast._{backend}.rows")
            assert callable(getattr(rows, row.kernel)), (backend, row.kernel)
        assert METRICS[row.metric].fn is getattr(kl_fast, row.function)
        assert METRICS[row.metric].logarithmic == row.logarithmic
        # the one-vector shortcut takes every row of src/kl_blocks.h's table
        assert (row.kernel in compiled_rows.QUANTITY_CODES) == (row.kernel != "renyi_rows")
        if row.parameter:
            assert row.parameter in inspect.signature(getattr(kl_fast, row.function)).parameters
            assert PARAMETERS[row.parameter] is getattr(_fdivergences, f"check_{row.parameter}")
        assert any(q.function == row.function for q in REGISTRY)
        assert METRICS[row.metric].n_inputs == row.n_inputs
        for keyword in row.space_keywords:
            assert keyword in inspect.signature(getattr(kl_fast, row.function)).parameters
        assert row.elementwise_twin is None or row.elementwise_twin in kl_fast.__all__
