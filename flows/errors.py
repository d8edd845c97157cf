"""All errors the flow package raises, in one place."""


class FlowError(Exception):
    """A flow or message catalogue that cannot be used; the text names the file, screen and field."""

    def __init__(self, problems):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        super().__init__("\n".join(self.problems))
