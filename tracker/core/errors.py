"""Errors a user can meet, each naming the file, row or field and what to do."""


class TrackerError(Exception):
    """Base of every error we expect users to meet; the CLI prints it without a traceback."""


class FrameworkError(TrackerError):
    """A framework file with problems; `problems` holds one located message per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


class ImportProblems(TrackerError):
    """A data file with bad rows; nothing was written."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        head = f"{source}: {len(problems)} problem(s); nothing was imported"
        super().__init__(head + "\n" + "\n".join(problems))


class EnvironmentStop(TrackerError):
    """Not the input but the machine stops the command: the database is busy or damaged, a file cannot be
    written. The command line exits 2 for these, 1 for bad input."""


class WriteUncertain(EnvironmentStop):
    """The shared database stopped answering while a save was being committed, and whether it landed cannot be
    learned yet: the person is told so, and to look before saving again."""


class WriteTimedOut(EnvironmentStop):
    """A save waited longer than TRACKER_PG_LOCK_SECONDS for the one write lock: nothing was saved."""


class DatabaseBusy(EnvironmentStop):
    """Another process holds the database file for writing."""


class DatabaseDamaged(EnvironmentStop):
    """The database file cannot be read: damaged, cut short, or not a Milestone database."""


class DiskFull(EnvironmentStop):
    """A write did not fit on its disk (or in the account's quota): nothing of it was saved, and the database is
    intact. The message says which disk, and to free space and try again; never to restore a backup."""


class RestoreInterrupted(EnvironmentStop):
    """A restore was stopped before it finished: the database is not opened until it is run again (or undone)."""


class DatabaseMissing(EnvironmentStop):
    """The database file is gone but what is left of it (its log, the copy a restore kept) is beside its name: a
    new, empty database is not started in its place."""


class PermissionDenied(TrackerError):
    """The viewer asked for something outside what they may see or do."""


class SignInError(TrackerError):
    """Wrong credentials, a locked or a disabled account."""


class StaleIdentity(SignInError):
    """Single sign-on: the identity provider's sign-in kept in the browser is too old to start a session; the
    person signs in with the provider again."""
