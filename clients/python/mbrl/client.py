"""mbrl.Client: one method per endpoint of mbrld's API v1 (docs/openapi.json).

Standard library only (http.client, json). One keep-alive connection per
Client, guarded by a lock (calls from several threads take turns; give each
thread its own Client to run them in parallel).

Retries: connection errors, 429 and 503 are retried with exponential backoff
(at least the Retry-After the daemon sends). A refused request (429, 503)
changed nothing, so every call retries those. Connection errors are retried
for calls that are safe to repeat: reads, act, predict, snapshot, and
transitions, which always carry a client + seq (a repeated seq is stored
once). Create, delete, train, cancel and import are retried only when the
connection failed before anything was sent.

Adding an endpoint is one small method: build the body, call self._call.
Not for: validating requests (the daemon does, and answers mbrl.Error).
"""

import http.client
import json
import os
import random
import select
import socket
import ssl
import threading
import time
import urllib.parse

from .errors import Error

_SAFE, _UNSAFE = True, False


def _default(x):
    """json.dumps hook: NumPy arrays and scalars (anything with tolist or
    __float__) become lists and numbers, so observations from Gymnasium go
    in as they are."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "__float__"):
        return float(x)
    raise TypeError("%s is not JSON serialisable" % type(x).__name__)


def _dumps(obj):
    # allow_nan=False: the daemon refuses NaN/Infinity; say so before sending
    try:
        return json.dumps(obj, default=_default, allow_nan=False,
                          separators=(",", ":")).encode()
    except ValueError as exc:
        raise Error(0, "invalid_argument", "not sent: %s (the daemon refuses "
                    "NaN and Infinity)" % exc) from None


def _quote(name):
    return urllib.parse.quote(str(name), safe="")


def _read_token_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            tok = f.readline().strip()
    except OSError as exc:
        raise Error(0, "io_error", "token file %s: %s" % (path, exc.strerror)) from None
    if not tok:
        raise Error(0, "invalid_argument", "token file %s: no token on its first line" % path)
    return tok


class Client:
    """A client of one mbrld daemon.

    url: http://host:port (or https://); default $MBRLD_URL, else
    http://127.0.0.1:8080. The bearer token: token, else the first line of
    token_file, else $MBRLD_TOKEN (else none). client_id names this client
    for idempotent transition posts (default: unique per Client object);
    its seq starts at 1, or at the current time in ms when client_id is
    given, so a restarted process with the same id never reuses a seq.
    """

    def __init__(self, url=None, token=None, *, token_file=None, timeout=60.0,
                 connect_timeout=5.0, retries=6, backoff=0.1, backoff_max=5.0,
                 max_retry_after=60.0, client_id=None, batch_rows=512,
                 idle_reconnect=30.0, ssl_context=None):
        url = url or os.environ.get("MBRLD_URL") or "http://127.0.0.1:8080"
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise Error(0, "invalid_argument", "url %r: want http://host:port or https://host:port" % url)
        self.url = url.rstrip("/")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._https else 80)
        self._prefix = u.path.rstrip("/")
        self._ssl = ssl_context
        if token is None and token_file:
            token = _read_token_file(token_file)
        if token is None:
            token = os.environ.get("MBRLD_TOKEN") or None
        self._auth = ("Bearer " + token) if token else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.batch_rows = batch_rows
        self.idle_reconnect = idle_reconnect
        if client_id is None:
            self.client_id = "py-%s-%d-%08x" % (socket.gethostname()[:40], os.getpid(),
                                                random.getrandbits(32))
            self._seq = 0
        else:
            self.client_id = str(client_id)
            self._seq = int(time.time() * 1000)
        self._conn = None
        self._last_used = 0.0
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------

    def close(self):
        """Closes the keep-alive connection (the next call opens another)."""
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def next_seq(self):
        """The next seq of this client (every transition post takes one)."""
        with self._lock:
            self._seq += 1
            return self._seq

    def _connect(self):
        if self._https:
            ctx = self._ssl or ssl.create_default_context()
            c = http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout,
                                            context=ctx)
        else:
            c = http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c

    def _once(self, method, path, body, ctype, timeout, extra_headers=None):
        """One exchange. Returns (status, headers, data); raises
        (phase, exception) as _Transport when nothing came back."""
        if self._conn is not None and _dropped(self._conn):
            self._drop()  # the daemon closed the idle connection: reconnect first
        fresh = self._conn is None
        if fresh:
            try:
                self._conn = self._connect()
            except (OSError, http.client.HTTPException) as exc:
                self._conn = None
                raise _Transport("connect", exc) from None
        conn = self._conn
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = ctype
        if self._auth:
            headers["Authorization"] = self._auth
        if extra_headers:
            headers.update(extra_headers)
        phase = "send"
        try:
            conn.sock.settimeout(timeout)
            conn.request(method, self._prefix + path, body=body, headers=headers)
            phase = "answer"
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            # a reused keep-alive connection the daemon had closed fails
            # while sending: nothing reached it, like a failed connect
            if phase == "send" and not fresh:
                phase = "connect"
            raise _Transport(phase, exc) from None
        self._last_used = time.monotonic()
        if resp.will_close:
            self._drop()
        return resp.status, resp, data

    def _call(self, method, path, body=None, *, safe=_SAFE, ctype="application/json",
              timeout=None, expect_json=True, ok_statuses=None, headers=None, raw=False):
        """Sends with retries; returns the decoded answer (dict, or bytes
        when expect_json is False; (status, response, bytes) when raw).
        body: an object (sent as JSON) or bytes (sent as they are)."""
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = _dumps(body)
        timeout = self.timeout if timeout is None else timeout
        delay = self.backoff
        attempt = 0
        while True:
            retry_after = None
            with self._lock:
                if (self._conn is not None and not safe
                        and time.monotonic() - self._last_used > self.idle_reconnect):
                    self._drop()  # do not send a non-repeatable call on a stale connection
                try:
                    status, resp, data = self._once(method, path, body, ctype, timeout, headers)
                except _Transport as t:
                    err = Error(0, "transport", "%s %s%s: %s (%s)" % (
                        method, self.url, path, t.exc.__class__.__name__, t.exc or t.phase))
                    repeatable = safe or t.phase == "connect"
                    if not repeatable:
                        err.message += "; the request was sent, it may have been applied"
                        err.args = (str(err),)
                else:
                    if 200 <= status < 300 or (ok_statuses and status in ok_statuses):
                        if raw:
                            return status, resp, data
                        if not expect_json:
                            return data
                        try:
                            return json.loads(data) if data else {}
                        except ValueError:
                            raise Error(status, "invalid_json", "the answer is not JSON: %r"
                                        % data[:200]) from None
                    err = _http_error(status, resp, data)
                    retry_after = err.retry_after
                    repeatable = status in (429, 503) or (safe and status in (502, 504))
            if not repeatable or attempt >= self.retries:
                raise err
            if retry_after is not None and retry_after > self.max_retry_after:
                raise err
            wait = min(delay, self.backoff_max) * (0.75 + 0.5 * random.random())
            if retry_after is not None:
                wait = max(wait, float(retry_after))
            time.sleep(wait)
            delay *= 2
            attempt += 1

    # -- probes and documents --------------------------------------------

    def health(self):
        """GET /healthz: {"status": "ok"}."""
        return self._call("GET", "/healthz")

    def ready(self):
        """GET /readyz: True when ready, False while it answers 503."""
        r = self._call("GET", "/readyz", ok_statuses=(503,))
        return r.get("ready") is True

    def metrics(self):
        """GET /metrics: the Prometheus text."""
        return self._call("GET", "/metrics", expect_json=False).decode()

    def openapi(self):
        """GET /v1/openapi.json: the API description."""
        return self._call("GET", "/v1/openapi.json")

    # -- models ----------------------------------------------------------

    def create_model(self, spec=None, **fields):
        """POST /v1/models: spec as a dict and/or keyword fields (name,
        obs_dim, act_dim, act_low, act_high, ensemble, planner, reward, ...).
        Returns the model's status."""
        body = dict(spec or {})
        body.update(fields)
        return self._call("POST", "/v1/models", body, safe=_UNSAFE)

    def get_model(self, name):
        """GET /v1/models/{name}: buffer, version, trained, job, spec, ..."""
        return self._call("GET", "/v1/models/" + _quote(name))

    def list_models(self):
        """GET /v1/models: a list of {name, obs_dim, act_dim, buffer_size,
        version, training}."""
        return self._call("GET", "/v1/models")["models"]

    def delete_model(self, name):
        """DELETE /v1/models/{name}: {"deleted": name}."""
        return self._call("DELETE", "/v1/models/" + _quote(name), safe=_UNSAFE)

    # -- data and training -----------------------------------------------

    def post_transitions(self, name, rows, client=None, seq=None):
        """POST /v1/models/{name}/transitions. rows: dicts with obs, action,
        reward, next_obs, terminated, truncated (or 6-tuples in that order).
        Every post carries a client + seq, so a retry stores the rows once:
        with seq given, the rows go in one post under it (client defaults to
        this Client's id); without, in posts of batch_rows rows, each with
        the next seq of this Client. Returns {"accepted", "buffer_size"}
        (accepted summed over the posts)."""
        rows = [_row(r) for r in rows]
        if not rows:
            raise Error(0, "invalid_argument", "no rows to post", "transitions")
        path = "/v1/models/%s/transitions" % _quote(name)
        client = self.client_id if client is None else str(client)
        if seq is not None:
            return self._call("POST", path, {"transitions": rows, "client": client, "seq": int(seq)})
        out = {"accepted": 0, "buffer_size": None}
        for i in range(0, len(rows), self.batch_rows):
            body = {"transitions": rows[i:i + self.batch_rows], "client": client,
                    "seq": self.next_seq()}
            r = self._call("POST", path, body)
            out["accepted"] += r.get("accepted", 0)
            out["buffer_size"] = r.get("buffer_size")
        return out

    def train(self, name, wait=True, *, timeout=None, **opts):
        """POST /v1/models/{name}/train with options max_epochs, patience,
        min_improvement, batch_size, lr, max_holdout, n_elites, bootstrap,
        seed. wait=True: the daemon answers when the job has finished (the
        job, as get_job); timeout (s) bounds that wait, None = no bound.
        wait=False: {"job": id} at once."""
        body = dict(opts)
        body["wait"] = bool(wait)
        t = timeout if wait else self.timeout
        return self._call("POST", "/v1/models/%s/train" % _quote(name), body, safe=_UNSAFE,
                          timeout=t)

    def train_policy(self, name, wait=True, *, timeout=None, **opts):
        """POST /v1/models/{name}/policy/train (models whose spec has a
        "policy"): options algorithm ("mbpo", "distill", "bptt"), steps,
        time_budget and the algorithm's settings; none: defaults sized to the
        data. wait as for train. Afterwards act(name, obs,
        planner={"method": "policy"}) answers from the policy (explore=True
        for a sample)."""
        body = dict(opts)
        body["wait"] = bool(wait)
        t = timeout if wait else self.timeout
        return self._call("POST", "/v1/models/%s/policy/train" % _quote(name), body, safe=_UNSAFE,
                          timeout=t)

    def get_job(self, name, job):
        """GET /v1/models/{name}/jobs/{job}: state, epoch, progress, epochs[]
        (per-member train and holdout losses), result, version."""
        return self._call("GET", "/v1/models/%s/jobs/%s" % (_quote(name), _quote(job)))

    def cancel_job(self, name, job):
        """DELETE /v1/models/{name}/jobs/{job}: asks a running job to stop."""
        return self._call("DELETE", "/v1/models/%s/jobs/%s" % (_quote(name), _quote(job)),
                          safe=_UNSAFE)

    def wait_job(self, name, job, poll=0.5, timeout=None):
        """Polls get_job until the job is no longer running; returns it."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            j = self.get_job(name, job)
            if j.get("state") != "running":
                return j
            if end is not None and time.monotonic() >= end:
                raise Error(0, "timeout", "job %s of %s still running after %g s" % (job, name, timeout))
            time.sleep(poll)

    # -- planning --------------------------------------------------------

    def act(self, name, obs, session=None, planner=None, goal=None, version=None, **extra):
        """POST /v1/models/{name}/act: the answer (action, source,
        predicted_return, return_std, version, plan_ms). session keeps a
        warm-started plan; planner overrides settings for this call; goal:
        [{"term": i, "target": [...]}] or {i: target} (reward term targets);
        version pins a kept version (daemons with versions).
        extra: fields of later API versions, sent as they are."""
        body = {"obs": obs}
        if version is not None:
            body["version"] = int(version)
        if session is not None:
            body["session"] = session
        if planner is not None:
            body["planner"] = planner
        if goal is not None:
            if isinstance(goal, dict):
                goal = [{"term": int(k), "target": v} for k, v in goal.items()]
            body["goal"] = goal
        body.update(extra)
        return self._call("POST", "/v1/models/%s/act" % _quote(name), body)

    def predict(self, name, obs, actions):
        """POST /v1/models/{name}/predict: the ensemble's rollout of the
        action sequence from obs: per step mean, std, reward_mean, reward_std."""
        return self._call("POST", "/v1/models/%s/predict" % _quote(name),
                          {"obs": obs, "actions": actions})

    # -- versions (daemons with kept versions) ---------------------------

    def versions(self, name):
        """GET /v1/models/{name}/versions: the kept versions with the losses
        of the job that published each, and the current one."""
        return self._call("GET", "/v1/models/%s/versions" % _quote(name))

    def promote(self, name, version):
        """POST /v1/models/{name}/versions/{version}/promote: makes a kept
        version current again (a rollback); the listing after it. Safe to
        repeat: promoting the current version changes nothing."""
        return self._call("POST", "/v1/models/%s/versions/%d/promote" % (_quote(name), int(version)), {})

    def latest(self, name, etag=None):
        """GET /v1/models/{name}/versions/latest: (file bytes, etag) of the
        current version; (None, etag) when etag still names it (304)."""
        h = {"If-None-Match": etag} if etag else None
        status, resp, data = self._call("GET", "/v1/models/%s/versions/latest" % _quote(name),
                                        headers=h, raw=True, ok_statuses=(304,))
        return (None if status == 304 else data), resp.getheader("ETag")

    # -- persistence -----------------------------------------------------

    def snapshot(self, name):
        """POST /v1/models/{name}/snapshot: writes a snapshot now."""
        return self._call("POST", "/v1/models/%s/snapshot" % _quote(name), {})

    def export(self, name, path=None):
        """GET /v1/models/{name}/export: the model as one file (bytes), or
        written to path (returns the number of bytes)."""
        data = self._call("GET", "/v1/models/%s/export" % _quote(name), expect_json=False)
        if path is None:
            return data
        with open(path, "wb") as f:
            f.write(data)
        return len(data)

    def import_(self, name, data):
        """POST /v1/models/{name}/import: creates name from an export (bytes,
        a path, or a binary file object). Returns {name, version,
        buffer_size, bytes}."""
        if hasattr(data, "read"):
            data = data.read()
        elif not isinstance(data, (bytes, bytearray)):
            with open(data, "rb") as f:
                data = f.read()
        return self._call("POST", "/v1/models/%s/import" % _quote(name), bytes(data),
                          safe=_UNSAFE, ctype="application/octet-stream")

    # -- anything else ---------------------------------------------------

    def request(self, method, path, body=None, safe=False):
        """Any route, e.g. one newer than this client: the decoded answer."""
        return self._call(method.upper(), path, body, safe=safe)


def _dropped(conn):
    """An idle keep-alive connection with something to read has been closed
    by the peer (or holds stray bytes): either way it is not reusable."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        r, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


class _Transport(Exception):
    def __init__(self, phase, exc):
        super().__init__(phase)
        self.phase = phase
        self.exc = exc


def _http_error(status, resp, data):
    ra = resp.getheader("Retry-After")
    try:
        retry_after = float(ra) if ra is not None else None
    except ValueError:
        retry_after = None
    try:
        e = json.loads(data)["error"]
        return Error(status, e.get("code") or "unknown", e.get("message") or "",
                     e.get("field"), retry_after)
    except (ValueError, KeyError, TypeError):
        text = data[:200].decode("utf-8", "replace") if data else resp.reason
        return Error(status, "http_%d" % status, text, None, retry_after)


_ROW_KEYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


def _row(r):
    if isinstance(r, dict):
        return r
    if isinstance(r, (tuple, list)) and len(r) == 6:
        return dict(zip(_ROW_KEYS, r))
    raise Error(0, "invalid_argument", "a transition is a dict or a 6-tuple (%s), not %r"
                % (", ".join(_ROW_KEYS), type(r).__name__), "transitions")
