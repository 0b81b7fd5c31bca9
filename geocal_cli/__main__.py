from geocal_cli.main import run

run()
