"""bwdoctor.records behaves as the standard dataclasses for every feature the package uses, and is what the package
uses: the same class built by both decorators gives the same repr, equality, hashing, defaults, errors, replace,
fields and asdict."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Dict, List, Optional

import pytest

from bwdoctor import records


def _pair(frozen: bool):
    made = []
    for deco, fld in ((dataclasses.dataclass, dataclasses.field), (records.dataclass, records.field)):

        @deco(frozen=frozen)
        class Point:
            """A point."""

            x: int
            label: str = "p"
            tags: List[str] = fld(default_factory=list)
            extra: Dict[str, int] = fld(default_factory=dict)
            parent: Optional[object] = None

            def norm(self) -> int:
                return abs(self.x)

        made.append(Point)
    return made


@pytest.mark.parametrize("frozen", [False, True])
def test_same_behaviour_as_dataclasses(frozen):
    std, rec = _pair(frozen)
    for cls in (std, rec):
        a, b = cls(1), cls(1, "q", ["t"], {"k": 2}, None)
        assert repr(a).endswith("Point(x=1, label='p', tags=[], extra={}, parent=None)")
        assert a == cls(1) and a != b and a != (1, "p", [], {}, None)
        assert cls(1).tags is not cls(1).tags  # a fresh default each time
        assert cls(x=-3, label="z").norm() == 3
        assert cls.label == "p" and "tags" not in cls.__dict__
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, nope=2)
    for std_obj, rec_obj in ((std(1), rec(1)), (std(5, "a", ["b"]), rec(5, "a", ["b"]))):
        assert repr(std_obj) == repr(rec_obj)
    s2 = dataclasses.replace(std(1, tags=["a"]), label="new")
    r2 = records.replace(rec(1, tags=["a"]), label="new")
    assert repr(s2) == repr(r2)
    assert [f.name for f in dataclasses.fields(std)] == [f.name for f in records.fields(rec)]
    nested_std = dataclasses.asdict(std(1, tags=["a"], parent=std(2)))
    nested_rec = records.asdict(rec(1, tags=["a"], parent=rec(2)))
    assert (
        nested_std
        == nested_rec
        == {
            "x": 1,
            "label": "p",
            "tags": ["a"],
            "extra": {},
            "parent": {"x": 2, "label": "p", "tags": [], "extra": {}, "parent": None},
        }
    )
    if frozen:
        for deco in (dataclasses.dataclass, records.dataclass):

            @deco(frozen=True)
            class Key:
                name: str
                n: int = 0

            assert hash(Key("a")) == hash(Key("a", 0)) and len({Key("a"), Key("a"), Key("b"), Key("a", 1)}) == 3
        for cls in (std, rec):
            obj = cls(1)
            with pytest.raises(TypeError):
                hash(obj)  # a list field: unhashable under both
            with pytest.raises(AttributeError):
                obj.x = 2  # type: ignore[misc]
            with pytest.raises(AttributeError):
                del obj.x  # type: ignore[misc]
    else:
        for cls in (std, rec):
            with pytest.raises(TypeError):
                hash(cls(1))
            obj = cls(1)
            obj.x = 9
            assert obj.x == 9


def test_post_init_and_bad_declarations():
    @records.dataclass
    class Doubled:
        n: int
        twice: int = 0

        def __post_init__(self) -> None:
            self.twice = 2 * self.n

    assert Doubled(4).twice == 8
    with pytest.raises(TypeError):

        @records.dataclass
        class Bad:
            a: int = 1
            b: int  # a field without a default after one with a default

    with pytest.raises(ValueError):
        records.field(default=1, default_factory=list)
    with pytest.raises(TypeError):
        records.fields(object())


def test_the_package_runs_without_the_dataclasses_module():
    """A check's start-up path imports neither dataclasses nor inspect (they cost more than the classes)."""
    code = (
        "import sys; from bwdoctor import cli, model, engine, context, registry; "
        "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_fact_names_from_code_objects_agree_with_inspect():
    """Checks' and probes' fact names are read from the code object; inspect.signature gives the same names for
    every built-in one and for every kind of parameter."""
    import functools
    import inspect

    from bwdoctor import registry

    def by_inspect(func, skip_first):
        params = list(inspect.signature(func).parameters.values())
        params = params[1:] if skip_first else params
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def f1(ctx, a, b=1, *args, c, d=2, **kw): ...
    def f2(p, /, q, *, r): ...
    def f3(): ...

    @functools.wraps(f1)
    def wrapped(*a, **k): ...

    cases = [f1, f2, f3, wrapped, functools.partial(f1, 1), lambda x, y: None]
    reg = registry.load(no_plugins=True)
    cases += [spec.func.resolve() for spec in reg.checks.values()]
    cases += [spec.func.resolve() for spec in reg.probes.values()]
    for func in cases:
        for skip in (False, True):
            if skip and not by_inspect(func, False) and not inspect.signature(func).parameters:
                continue
            assert registry._fact_params(func, skip) == by_inspect(func, skip), func
