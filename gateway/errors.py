"""Every error the gateway raises on purpose, in one module."""


class ConfigError(Exception):
    """Configuration or reference data that cannot be used; one line per problem."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DataKeyError(ValueError):
    """DATA_KEY is missing or malformed, or a stored value does not decrypt with it."""


class EffectFailed(Exception):
    """A USSD screen's effect could not be made durable; the flow shows its `on_error` screen."""


class ReportNotSaved(EffectFailed):
    """The database refused a report: the caller must not show a reference code."""


class LimitReached(EffectFailed):
    """An abuse limit refused the effect: nothing was saved, and the caller is told so politely."""


class TransientSendError(Exception):
    """The provider may accept this SMS later (network error, timeout, 5xx): RQ retries the job."""
