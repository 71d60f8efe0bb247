"""One interface for every flow method (see :mod:`.base` for the contract)."""

from .base import FlowMethod, check_batch, check_pair
from .registry import (
    DEFAULT_LEARNED_METHOD,
    DEFAULT_METHOD,
    available_methods,
    check_options,
    get_factory,
    get_method,
    learned_demo_methods,
    learned_method_reason,
    method_accepts,
    register,
    unavailable_methods,
)

__all__ = ["DEFAULT_LEARNED_METHOD", "DEFAULT_METHOD", "FlowMethod", "available_methods", "check_batch", "check_options", "check_pair",
           "get_factory", "get_method", "learned_demo_methods", "learned_method_reason", "method_accepts", "register",
           "unavailable_methods"]
