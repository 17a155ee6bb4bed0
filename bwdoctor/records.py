"""Record classes: the part of the standard dataclasses this package uses, at a fraction of its start-up cost.

`import dataclasses` pulls in inspect (with ast, dis and tokenize), and each decorated class compiles its
methods one by one: on a two-core machine the two cost about 28 ms of a 0.15 s check, for 35 classes. Here a
class's __init__ is compiled when its first instance is made; __repr__, __eq__ (and, when frozen, __hash__,
__setattr__ and __delattr__) are shared functions over the class's field names; nothing else is imported.

Supported, as dataclasses does it: fields from annotations in class order, plain defaults and
`field(default_factory=...)`, `__post_init__`, `frozen=True` (hashable, assignment refused), equality between
instances of the same class, `replace`, `fields` and `asdict`. Not supported (none is used here): inheritance of
fields, ClassVar / InitVar, order, slots, keyword-only fields. A class that needs one of them keeps the standard
decorator. Type checkers see the standard module, so they check these classes exactly as dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, replace
else:

    class _Missing:
        __slots__ = ()

        def __repr__(self) -> str:
            return "MISSING"

    MISSING = _Missing()

    class FrozenInstanceError(AttributeError):
        """Assignment to a field of a frozen record."""

    class Field:
        """One field: its name, its default or default factory."""

        __slots__ = ("name", "default", "default_factory")

        def __init__(self, default=MISSING, default_factory=MISSING):
            if default is not MISSING and default_factory is not MISSING:
                raise ValueError("cannot specify both default and default_factory")
            self.name = ""
            self.default = default
            self.default_factory = default_factory

        def __repr__(self) -> str:
            return f"Field(name={self.name!r})"

    def field(*, default=MISSING, default_factory=MISSING):
        return Field(default, default_factory)

    _FIELDS = "__record_fields__"  # the Field of each field; their names, in order, are __match_args__

    def _values(self) -> tuple:
        return tuple([getattr(self, n) for n in self.__match_args__])

    def __repr__(self) -> str:
        shown = ", ".join([f"{n}={getattr(self, n)!r}" for n in self.__match_args__])
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return _values(self) == _values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values(self))

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _compile_init(cls, frozen: bool):
        """The class's own __init__, compiled on its first instance (a class never made costs nothing)."""
        env = {"MISSING": MISSING, "object": object}
        params, body = [], []
        for f in getattr(cls, _FIELDS):
            name = f.name
            if f.default_factory is not MISSING:
                env[f"_factory_{name}"] = f.default_factory
                params.append(f"{name}=MISSING")
                value_src = f"_factory_{name}() if {name} is MISSING else {name}"
            elif f.default is not MISSING:
                env[f"_default_{name}"] = f.default
                params.append(f"{name}=_default_{name}")
                value_src = name
            else:
                params.append(name)
                value_src = name
            if frozen:
                body.append(f"  object.__setattr__(self, {name!r}, {value_src})")
            else:
                body.append(f"  self.{name} = {value_src}")
        if hasattr(cls, "__post_init__"):
            body.append("  self.__post_init__()")
        src = "\n".join([f"def __init__(self, {', '.join(params)}):", *(body or ["  pass"])])
        made: dict = {}
        exec(src, env, made)  # noqa: S102 - the source is built above from the class's field names only
        init = made["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        return init

    def _build(cls, frozen: bool):
        names = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("__")]
        flist, seen_default = [], False
        for name in names:
            value = cls.__dict__.get(name, MISSING)
            f = value if isinstance(value, Field) else Field(default=value)
            f.name = name
            flist.append(f)
            if isinstance(value, Field):
                if f.default is MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, f.default)
            if f.default is not MISSING or f.default_factory is not MISSING:
                seen_default = True
            elif seen_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        setattr(cls, _FIELDS, tuple(flist))
        cls.__match_args__ = tuple(names)

        def __init__(self, *args, **kwargs):
            init = _compile_init(cls, frozen)
            cls.__init__ = init
            init(self, *args, **kwargs)

        own = cls.__dict__
        if "__init__" not in own:
            cls.__init__ = __init__
        if "__repr__" not in own:
            cls.__repr__ = __repr__
        if "__eq__" not in own:
            cls.__eq__ = __eq__
        if frozen:
            cls.__hash__ = __hash__
            cls.__setattr__ = __setattr__
            cls.__delattr__ = __delattr__
        elif "__hash__" not in own or own["__hash__"] is None:
            cls.__hash__ = None  # mutable and comparable: unhashable, as with dataclasses
        return cls

    def dataclass(cls=None, *, frozen: bool = False):
        if cls is None:
            return lambda c: _build(c, frozen)
        return _build(cls, frozen)

    def fields(obj):
        try:
            return getattr(obj, _FIELDS)
        except AttributeError:
            raise TypeError("must be called with a record type or instance") from None

    def replace(obj, **changes):
        for f in fields(obj):
            if f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return obj.__class__(**changes)

    def _plain(value):
        if hasattr(type(value), _FIELDS):
            return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, (list, tuple)):
            return type(value)(_plain(v) for v in value)
        if isinstance(value, dict):
            return type(value)((_plain(k), _plain(v)) for k, v in value.items())
        return value

    def asdict(obj):
        fields(obj)
        return _plain(obj)


__all__ = ["FrozenInstanceError", "asdict", "dataclass", "field", "fields", "replace"]
