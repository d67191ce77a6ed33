"""Experiment arguments: command-line parsing and the argument managers.

``parse_arguments(["n=100", 'scan={"ty": "NoScan", "value": 1.0}'])`` reads ``artiq_run``
style ``KEY=VALUE`` items (VALUE is PYON). :class:`ProcessArgumentManager` gives an
experiment its arguments from such a dict; :class:`TraceArgumentManager` records what an
experiment asks for (to list experiments as the dashboard does).

The managers are called by ``HasEnvironment.get_argument`` as
``get(key, processor, group, tooltip)``, both with ionlink's stand-in and with real ARTIQ.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from artiq.language.environment import DefaultMissing

from ionlink.runner import pyon

__all__ = ["ArgumentError", "MissingArgumentError", "parse_arguments",
           "ProcessArgumentManager", "TraceArgumentManager"]


class ArgumentError(ValueError):
    """An argument that is malformed, of a wrong value, or unknown to the experiment."""


class MissingArgumentError(DefaultMissing):
    """An argument the experiment needs that was neither supplied nor has a default.

    A subclass of ARTIQ's ``DefaultMissing``, so code catching that still works.
    """


def parse_arguments(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["KEY=VALUE", ...]`` into ``{KEY: decoded VALUE}`` (VALUE is PYON).

    As ``artiq_run``, a later item with the same key replaces an earlier one. Raises
    ArgumentError naming the item when it has no ``=``, an empty key, or a VALUE that is
    not PYON.
    """
    arguments = {}
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ArgumentError(f"argument {item!r} is not of the form KEY=VALUE")
        try:
            arguments[key] = pyon.decode(text)
        except pyon.PYONDecodeError as e:
            raise ArgumentError(f"argument {item!r}: VALUE is not valid PYON ({e}); "
                                "strings need quotes, e.g. name='\"text\"'") from None
    return arguments


def _require_processor(key: str, processor: Any) -> None:
    if processor is None:
        raise TypeError(f"argument '{key}': no processor given "
                        "(e.g. NumberValue(...), BooleanValue(...))")


class ProcessArgumentManager:
    """Supplies an experiment's arguments from a dict of submitted (unprocessed) values.

    :param unprocessed: key -> submitted value (e.g. from :func:`parse_arguments`). A key
        the experiment asks for gets ``processor.process(value)``; a key not supplied gets
        ``processor.default()``.
    """

    def __init__(self, unprocessed: dict[str, Any]) -> None:
        if not isinstance(unprocessed, dict):
            raise TypeError(f"unprocessed arguments must be a dict, "
                            f"not {type(unprocessed).__name__}")
        self.unprocessed_arguments = unprocessed
        self._processed_arguments: set[str] = set()

    def get(self, key: str, processor: Any, group: str | None, tooltip: str | None) -> Any:
        """Return the value of argument ``key``; raise ArgumentError for a value the
        processor rejects and MissingArgumentError when there is no value and no default."""
        _require_processor(key, processor)
        if key in self.unprocessed_arguments:
            value = self.unprocessed_arguments[key]
            try:
                result = processor.process(value)
            except (ValueError, TypeError, KeyError) as e:
                raise ArgumentError(f"argument '{key}' = {value!r}: {e}") from e
            self._processed_arguments.add(key)
            return result
        try:
            return processor.default()
        except DefaultMissing:
            raise MissingArgumentError(
                f"argument '{key}' was not supplied and has no default "
                f"(give it as {key}=VALUE)") from None

    def check_unprocessed_arguments(self) -> None:
        """Raise ArgumentError naming every supplied key the experiment never asked for."""
        unknown = sorted(set(self.unprocessed_arguments) - self._processed_arguments)
        if unknown:
            raise ArgumentError("Supplied argument(s) not queried in experiment: "
                                + ", ".join(unknown))

    def get_interactive(self, interactive_arglist: list, title: str) -> dict:
        """Interactive arguments need a user at a dashboard; a simulated run has none."""
        names = ", ".join(str(entry[0]) for entry in interactive_arglist)
        raise NotImplementedError(
            f"interactive arguments ({names}) requested by '{title}' are not supported "
            "in an ionlink run: there is no dashboard to ask")


class TraceArgumentManager:
    """Records the arguments an experiment requests and answers every one with None.

    ARTIQ's master examines a repository this way (``artiq.language.environment.
    TraceArgumentManager.get`` returns None), so ``build()`` must not compute with argument
    values: an experiment that does is skipped by the real dashboard, and ``ionlink scan``
    names it. ``requested_args`` maps key -> (processor, group, tooltip) in request order;
    :meth:`argument_descriptions` gives key -> (processor.describe(), group, tooltip), the
    form the dashboard lists.
    """

    def __init__(self) -> None:
        self.requested_args: OrderedDict[str, tuple[Any, str | None, str | None]] = \
            OrderedDict()

    def get(self, key: str, processor: Any, group: str | None, tooltip: str | None) -> Any:
        """Record the request; return None, as ARTIQ's master does while examining."""
        _require_processor(key, processor)
        self.requested_args[key] = (processor, group, tooltip)
        return None

    def argument_descriptions(self) -> OrderedDict[str, tuple[dict, str | None, str | None]]:
        """Return key -> (description dict, group, tooltip) for every requested argument."""
        return OrderedDict((key, (processor.describe(), group, tooltip))
                           for key, (processor, group, tooltip) in self.requested_args.items())

    def get_interactive(self, interactive_arglist: list, title: str) -> dict:
        """Interactive arguments cannot be traced: they are requested while running."""
        raise NotImplementedError("interactive arguments are only requested while an "
                                  "experiment runs, not while it is examined")
