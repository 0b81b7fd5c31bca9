"""One module per subcommand: run(config) reads inputs, calls the core, writes outputs."""
