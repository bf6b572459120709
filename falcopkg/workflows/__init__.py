"""Use cases (SPEC §6 to §11), with no click and no terminal: each module takes a
:class:`~falcopkg.workflows.project.Project` session and options, reports progress through a
:class:`~falcopkg.workflows.reporter.Reporter`, and returns a result that the CLI renders.

``noop`` (the fast path of a no-op sync) and ``project`` import only the standard library at
the top, so `falcopkg sync` with nothing to do stays near interpreter start.
"""
