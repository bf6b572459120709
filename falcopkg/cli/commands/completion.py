"""`falcopkg completion bash|zsh|fish`: the shell script that completes falcopkg's commands,
options and arguments (click's shell completion; the script calls `falcopkg` back with
``_FALCOPKG_COMPLETE`` set, which `falcopkg.cli.main` hands to click)."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_FALCOPKG_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash: eval "$(falcopkg completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(falcopkg completion zsh)"    (in ~/.zshrc)
    fish: falcopkg completion fish > ~/.config/fish/completions/falcopkg.fish
    """
    from click.shell_completion import get_completion_class

    from falcopkg.cli.main import cli

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # SHELLS are click's built-in shells
    click.echo(completion_class(cli, {}, "falcopkg", COMPLETE_VAR).source())
