"""mbrl.Error: every failure of a call, one shape.

The daemon answers errors as {"error": {"code", "message", "field"}}; the
client raises them as Error with the HTTP status. When nothing answered
(connection refused, reset, timed out) status is 0 and code "transport".
"""


class Error(Exception):
    """A failed call: status (HTTP, 0 when nothing answered), code, message,
    field (the JSON path at fault, or None), retry_after (seconds, or None)."""

    def __init__(self, status, code, message, field=None, retry_after=None):
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self):
        where = "HTTP %d" % self.status if self.status else "no answer"
        s = "%s %s: %s" % (where, self.code, self.message)
        if self.field:
            s += " (field: %s)" % self.field
        return s

    def __repr__(self):
        return "mbrl.Error(status=%r, code=%r, message=%r, field=%r)" % (
            self.status, self.code, self.message, self.field)
