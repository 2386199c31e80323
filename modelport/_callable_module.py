"""Let ``modelport.convert(...)`` work although ``modelport.convert`` is also a subpackage.

Importing a subpackage sets it as an attribute of its parent, which would shadow a function of the
same name in ``modelport/__init__.py``. Giving the subpackage's module object a ``__call__`` keeps
both spellings working: ``modelport.convert(src, dst)`` and ``from modelport.convert import plan``.
The module also takes the function's signature (``inspect.signature``, IDEs) and puts the
function's docstring first in its own, so that ``help(modelport.convert)`` explains the call.
"""
from __future__ import annotations

import inspect
import sys
import types


def make_callable(module_name: str, function_name: str) -> None:
    module = sys.modules[module_name]
    function = getattr(module, function_name)

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    CallableModule.__call__.__doc__ = function.__doc__
    module.__class__ = CallableModule
    module.__signature__ = inspect.signature(function)
    module.__wrapped__ = function
    package_doc = (module.__doc__ or "").strip()
    module.__doc__ = (f"{module_name.rsplit('.', 1)[-1]}{module.__signature__}\n\n"
                      f"{inspect.getdoc(function) or ''}\n\n{package_doc}").strip()
