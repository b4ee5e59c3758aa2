"""Console scripts: one module per command. Each parses its arguments, loads the settings, sets up
logging, calls one library function and maps `AzaionError` to an exit code (see `_common`)."""
