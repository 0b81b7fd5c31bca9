"""One module per subcommand: the typer signature and a call into the pipeline, nothing else."""
