"""Let ``modelport.convert(...)`` work although ``modelport.convert`` is also a subpackage.

Importing a subpackage sets it as an attribute of its parent, which would shadow a function of the
same name in ``modelport/__init__.py``. Giving the subpackage's module object a ``__call__`` keeps
both spellings working: ``modelport.convert(src, dst)`` and ``from modelport.convert import plan``.
"""
from __future__ import annotations

import sys
import types


def make_callable(module_name: str, function_name: str) -> None:
    module = sys.modules[module_name]

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    CallableModule.__call__.__doc__ = getattr(module, function_name).__doc__
    module.__class__ = CallableModule
