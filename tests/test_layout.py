"""Layout contracts of the package (issue 14): the .pyi stubs of the compiled modules
(tools/make_stubs.py) match what the built modules export -- the same public names,
the same argument names in the same order; the report width is one number; the
registry of benchmarked quantities (kl_fast/_registry.py) covers every public
function."""

import ast
import importlib
import inspect
import pathlib

import pytest

STUBS = sorted((pathlib.Path(__file__).resolve().parents[1] / "kl_fast").glob("_*.pyi"))
SOURCES = sorted((pathlib.Path(__file__).resolve().parents[1] / "src").glob("_*.pyx"))


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
    module = importlib.import_module(f"kl_fast.{stub.stem}")
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
    # both Cython row modules cimport) and kl_fast/_scale.py (REPORT_WIDTH)
    from kl_fast import _kernels_cython, _report, _scale

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
