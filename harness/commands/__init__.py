"""The `harness` command line: the argument parser (cli) and one small module per command."""
