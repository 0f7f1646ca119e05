"""The ``synchub`` command line."""

from hub.cli._signals import hold_sighup

# Before anything heavy is imported: a SIGHUP sent to a hub that is still starting
# waits for its handler instead of ending the process (`synchub start` releases it).
hold_sighup()

from hub.cli.main import main  # noqa: E402

__all__ = ["main"]
