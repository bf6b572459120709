"""One module per command group; each exposes click commands referenced from cli.main."""
