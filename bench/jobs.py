"""A job that does nothing: what an RQ worker class costs per job, without the job's own work."""


def noop() -> None:
    return None
