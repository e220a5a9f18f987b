"""aiogram's Telegram types, validated by schemas built on first use instead of at import.

aiogram declares its types with pydantic's `defer_build`, then undoes it: the end of
`aiogram/types/__init__.py` calls `model_rebuild()` on every one of its ~900 types to resolve
their forward references, and each rebuild compiles a validator and a serializer with the
schemas of every type it refers to inlined (aiogram issue #1513). That is ~100 MB of the
bot's memory for types it never sees. Here those rebuilds are skipped while aiogram's types
import, and the names they would have resolved are given to the types' modules instead, so
pydantic resolves them itself on a type's first validation: only the types the bot meets get
built.
"""

import inspect
import re
import sys
from types import ModuleType
from typing import Any

import pydantic

_AIOGRAM_TYPES = "aiogram.types"


def defer_aiogram_types() -> bool:
    """Import aiogram's types without their import-time rebuilds; False if already imported."""
    if _AIOGRAM_TYPES in sys.modules:
        return False
    original = pydantic.BaseModel.__dict__["model_rebuild"]
    namespaces: list[dict[str, Any]] = []

    def model_rebuild(
        cls: type[pydantic.BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: dict[str, Any] | None = None,
    ) -> bool | None:
        in_aiogram_types = cls.__module__.startswith(_AIOGRAM_TYPES + ".")
        if _types_namespace is not None and not force and in_aiogram_types:
            if not namespaces or namespaces[-1] is not _types_namespace:
                namespaces.append(_types_namespace)
            return None
        rebuilt: bool | None = original.__func__(
            cls,
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth + 1,
            _types_namespace=_types_namespace,
        )
        return rebuilt

    pydantic.BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign, assignment]
    try:
        import aiogram.types  # noqa: F401
    finally:
        pydantic.BaseModel.model_rebuild = original  # type: ignore[method-assign]
    for name, module in list(sys.modules.items()):
        if name.startswith(_AIOGRAM_TYPES + ".") and module is not None:
            # Only the names its fields mention: all ~1,000 in each of ~440 modules were 5 MB.
            wanted = _names_in_annotations(module)
            for namespace in namespaces:
                for key in wanted & namespace.keys():
                    module.__dict__.setdefault(key, namespace[key])
    return True


_NAME = re.compile(r"[A-Za-z_]\w*")


def _names_in_annotations(module: ModuleType) -> set[str]:
    """Every identifier in the field annotations of the models a module defines, inherited
    ones included (pydantic resolves those in the subclass's module too)."""
    names: set[str] = set()
    for value in list(module.__dict__.values()):
        if (
            isinstance(value, type)
            and issubclass(value, pydantic.BaseModel)
            and value.__module__ == module.__name__
        ):
            for cls in value.__mro__:
                for annotation in inspect.get_annotations(cls).values():
                    names.update(_NAME.findall(str(annotation)))
    return names
