"""Objects named by dotted paths in configuration (``package.module`` or
``package.module.name``): handlers, authenticators, authorizers."""

from __future__ import annotations

import importlib
from typing import Any


def resolve_dotted(dotted: str) -> Any:
    """The module or the object a dotted path names (``package.module`` or
    ``package.module.name``). Raises ``ImportError`` or ``AttributeError``."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        module_name, _, attribute = dotted.rpartition(".")
        # Only "the module itself does not exist" may mean "it is an attribute".
        if not module_name or error.name != dotted:
            raise
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attribute!r}") from None


__all__ = ["resolve_dotted"]
