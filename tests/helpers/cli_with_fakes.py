"""`lorag` in its own process with the fake backends of tests/helpers/worker_fakes.py (what a keep-warm worker it
starts builds too): python -m tests.helpers.cli_with_fakes ARGS..."""

from tests.helpers.worker_fakes import components
from ui import cli

if __name__ == "__main__":
    cli.state.factory = components
    cli.main()
