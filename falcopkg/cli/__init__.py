"""The command-line layer: parses arguments, calls the core and services, prints results.

Commands live in ``falcopkg.cli.commands`` and are imported lazily by name so that
``falcopkg --help`` and ``--version`` stay fast.
"""
