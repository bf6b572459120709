"""Loading YAML that comes from outside (rules files, indexes): one safe loader, one error.

PyYAML's safe loader still lets some documents through as Python exceptions of other kinds:
a 5,000-digit integer (``int()``'s digit limit: ValueError), a date like ``2001-13-45``
(ValueError), nesting deeper than the pure-Python composer can recurse (RecursionError).
Aliases can make a small file expand into a huge structure (``a: &a [1, 1, …]``,
``b: [*a, *a, …]``, …) or one that contains itself. :func:`load_yaml` turns all of these
into :class:`YamlProblem` with the line and column where it is known; callers wrap it in
their own ConfigError. PyYAML is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falcopkg.numbers import shortened_repr

if TYPE_CHECKING:
    import yaml

#: Aliases may add this many nodes to a document beyond the ones written in it.
MAX_ALIAS_EXPANSION = 1_000_000


@dataclass
class YamlProblem(Exception):
    """Why a YAML text could not be loaded; ``line`` and ``column`` are 1-based."""

    problem: str
    line: int | None = None
    column: int | None = None
    # A second location, e.g. where the flow sequence that is not closed started.
    context: str | None = None
    context_line: int | None = None

    def __str__(self) -> str:
        """The problem, and where its context started: ``… (flow sequence started at line 6)``."""
        if self.context and self.context_line:
            return f"{self.problem} ({self.context} started at line {self.context_line})"
        return self.problem


def load_yaml(text: str) -> Any:
    """Plain data (lists, dicts, str, int …) from ``text``, or :class:`YamlProblem`."""
    import yaml

    loader = _safe_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # an alias is written `*name`: without one nothing can expand
            _check_expansion(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _marked_problem(exc) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(str(exc)) from None
    except RecursionError:
        raise YamlProblem("nested too deeply") from None
    finally:
        loader.dispose()


def shown_value(value: Any) -> str:
    """A value read from YAML for a message: short scalars as written, collections by kind.

    (``repr`` of a hostile value may be huge, or nested too deeply to print.)
    """
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (str, bytes)):
        return shortened_repr(value)
    if isinstance(value, (bool, int, float)) or value is None:
        text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a number"
        return text
    return type(value).__name__


@functools.cache  # one class per process, not one per document (a lock reads hundreds)
def _safe_loader() -> type[Any]:
    """The C safe loader when PyYAML has it, the pure-Python one otherwise, constructing
    values so that their errors carry the node's position."""
    import yaml

    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError) as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unreadable value: {_reason(exc)}", node.start_mark
                ) from None

    return Loader


def _reason(exc: Exception) -> str:
    message = str(exc)
    if "integer string conversion" in message:
        return "an integer with more digits than allowed (4,300)"
    return message.split(";")[0][:200]


def _marked_problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    context_mark = exc.context_mark if exc.context and exc.problem else None
    return YamlProblem(
        problem=" ".join(p for p in (exc.problem, None if context_mark else exc.context) if p)
        or "syntax error",
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
        context=exc.context if context_mark else None,
        context_line=context_mark.line + 1 if context_mark is not None else None,
    )


def _check_expansion(root: yaml.Node) -> None:
    """Refuse aliases that make a node contain itself or add more than
    :data:`MAX_ALIAS_EXPANSION` nodes. Iterative: documents may nest deeply."""

    expanded: dict[int, int] = {}  # id(node) -> node count once aliases are expanded
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in _children(node))
            continue
        if key in expanded:
            continue
        if key in in_progress:
            raise YamlProblem(
                "an alias refers to a node that contains it",
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                raise YamlProblem(
                    "an alias refers to a node that contains it",
                    line=child.start_mark.line + 1,
                    column=child.start_mark.column + 1,
                )
            if id(child) not in expanded:
                stack.append((child, False))
    if expanded[id(root)] - len(expanded) > MAX_ALIAS_EXPANSION:
        raise YamlProblem(
            f"aliases expand the document by more than {MAX_ALIAS_EXPANSION:,} nodes",
            line=1,
            column=1,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
