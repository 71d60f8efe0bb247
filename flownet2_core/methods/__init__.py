"""One interface for every flow method (see :mod:`.base` for the contract)."""

from .base import FlowMethod, check_batch, check_pair
from .registry import available_methods, get_factory, get_method, register, unavailable_methods

__all__ = ["FlowMethod", "available_methods", "check_batch", "check_pair", "get_factory", "get_method", "register",
           "unavailable_methods"]
