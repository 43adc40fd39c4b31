#!/usr/bin/env python3
"""test_python.py: the Python client clients/python/mbrl against a real mbrld
(every method, errors, tokens, the Agent loop, the README's Python example,
the Pendulum example) and against a scripted fake server (retries with the
same client + seq, Retry-After, what is not repeated, keep-alive, dropped
connections). Prints "N passed, N failed" last (tests/run.sh reads it).
Run by tests/clients/test_python.sh. Not for: the daemon's validation rules
(tests/server/)."""

import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import mbrl  # noqa: E402

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  %s %s" % (name, detail))


def raises(name, fn, status=None, code=None, field=None):
    """fn() raises mbrl.Error with these status, code and field."""
    try:
        fn()
    except mbrl.Error as e:
        ok = ((status is None or e.status == status) and (code is None or e.code == code)
              and (field is None or e.field == field))
        check(name, ok, "got %r" % e)
        return e
    except Exception as e:  # noqa: BLE001 - any other exception fails the check
        check(name, False, "raised %r, not mbrl.Error" % e)
        return None
    check(name, False, "no error raised")
    return None


# -- a scripted fake server ------------------------------------------------

class Fake:
    """Answers each request with the next scripted reply: (status, headers,
    body) or "drop" (read the request, close without answering). Records
    (connection number, method, path, body)."""

    def __init__(self):
        self.script = []
        self.seen = []
        self.auth = []
        self.inm = []
        self.conns = 0
        self.close_after = False  # close every connection after its answer
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                fake.conns += 1
                self.conn_no = fake.conns

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.seen.append((self.conn_no, self.command, self.path, body))
                fake.auth.append(self.headers.get("Authorization"))
                fake.inm.append(self.headers.get("If-None-Match"))
                reply = fake.script.pop(0) if fake.script else (200, {}, b"{}")
                if reply == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, data = reply
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if fake.close_after:
                    self.close_connection = True  # no Connection: close header: a silent close

            do_GET = do_POST = do_DELETE = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self, script, close_after=False):
        self.script = list(script)
        self.seen = []
        self.auth = []
        self.inm = []
        self.close_after = close_after

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def err(status, code, retry_after=None):
    h = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return (status, h, json.dumps({"error": {"code": code, "message": code, "field": None}}).encode())


OK201 = (201, {}, b'{"accepted": 1, "buffer_size": 1}')
ROW = {"obs": [0.0], "action": [0.0], "reward": 0.0, "next_obs": [0.0], "terminated": False,
       "truncated": False}


def fake_tests():
    f = Fake()
    try:
        c = mbrl.Client(f.url, retries=4, backoff=0.01, backoff_max=0.05)

        f.reset([err(503, "unavailable", 0.3), err(429, "resource_exhausted", 0.2), OK201])
        t0 = time.monotonic()
        r = c.post_transitions("m", [ROW])
        dt = time.monotonic() - t0
        check("503, 429, 201: the post succeeds", r.get("accepted") == 1, repr(r))
        check("retried twice", len(f.seen) == 3, "%d requests" % len(f.seen))
        bodies = {s[3] for s in f.seen}
        body = json.loads(f.seen[0][3])
        check("every retry sends the same client + seq", len(bodies) == 1 and
              body.get("client") == c.client_id and isinstance(body.get("seq"), int), repr(bodies))
        check("Retry-After honoured (>= 0.5 s in all)", dt >= 0.5, "%.3f s" % dt)

        f.reset(["drop", OK201])
        r = c.post_transitions("m", [ROW], seq=77)
        check("a dropped transitions post is retried", len(f.seen) == 2 and r.get("accepted") == 1)
        check("with the same seq", all(json.loads(s[3])["seq"] == 77 for s in f.seen))

        f.reset([OK201, OK201])
        c.post_transitions("m", [ROW])
        c.post_transitions("m", [ROW])
        s1, s2 = (json.loads(s[3])["seq"] for s in f.seen)
        check("each post takes the next seq", s2 == s1 + 1, "%d %d" % (s1, s2))

        f.reset(["drop"])
        e = raises("a create that was sent is not repeated", lambda: c.create_model(name="x"),
                   status=0, code="transport")
        check("...one request only", len(f.seen) == 1, "%d requests" % len(f.seen))
        check("...the error says it may have been applied", e is not None and "may have been applied" in e.message)

        f.reset([err(503, "unavailable", 0), (201, {}, b'{"name": "x"}')])
        r = c.create_model(name="x")
        check("a create refused with 503 is retried (nothing was changed)", r == {"name": "x"} and len(f.seen) == 2)

        f.reset([err(429, "too_many_failures", 3600)])
        e = raises("Retry-After beyond max_retry_after: raised at once", lambda: c.list_models(), status=429)
        check("...with retry_after", e is not None and e.retry_after == 3600.0 and len(f.seen) == 1)

        c2 = mbrl.Client(f.url, retries=2, backoff=0.01)
        f.reset([err(503, "unavailable")] * 3)
        raises("retries exhausted: the last 503 raised", lambda: c2.get_model("m"), status=503,
               code="unavailable")
        check("...after 1 + 2 attempts", len(f.seen) == 3, "%d" % len(f.seen))

        f.reset([err(500, "internal")])
        raises("500 is not retried", lambda: c.get_model("m"), status=500, code="internal")
        check("...one request", len(f.seen) == 1)

        f.reset([(404, {}, b"<html>not json</html>")])
        raises("a non-JSON error answer still raises mbrl.Error", lambda: c.get_model("m"), status=404,
               code="http_404")

        c3 = mbrl.Client(f.url)
        f.reset([(200, {}, b'{"models": []}')] * 5)
        for _ in range(5):
            c3.list_models()
        check("keep-alive: 5 calls, 1 connection", len({s[0] for s in f.seen}) == 1,
              repr([s[0] for s in f.seen]))

        f.reset([(200, {}, b'{"name": "m"}'), (201, {}, b'{"name": "y"}')], close_after=True)
        c3.get_model("m")
        time.sleep(0.2)
        r = c3.create_model(name="y")
        check("a connection the server closed is not reused for a create",
              r == {"name": "y"} and len(f.seen) == 2 and f.seen[0][0] != f.seen[1][0],
              repr([(s[0], s[1]) for s in f.seen]))

        f.reset([(200, {}, b'{"ok": true}')])
        c4 = mbrl.Client(f.url, token="s3cret")
        c4.request("GET", "/v1/anything", safe=True)
        check("request() reaches any route", f.seen and f.seen[0][2] == "/v1/anything")
        check("the token goes as a Bearer header", f.auth == ["Bearer s3cret"], repr(f.auth))

        f.reset([(304, {"ETag": '"3-abc"'}, b""), (200, {"ETag": '"4-def"'}, b"MBS-bytes")])
        data, etag = c4.latest("m", etag='"3-abc"')
        check("latest with a matching ETag: (None, etag) on 304", data is None and etag == '"3-abc"')
        data, etag = c4.latest("m")
        check("latest: (bytes, etag)", data == b"MBS-bytes" and etag == '"4-def"')
        check("latest sends If-None-Match only when given an etag", f.inm == ['"3-abc"', None], repr(f.inm))
    finally:
        f.stop()

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = mbrl.Client("http://127.0.0.1:%d" % port, retries=2, backoff=0.01)
    t0 = time.monotonic()
    raises("connection refused: transport error (status 0)", lambda: c.list_models(), status=0,
           code="transport")
    check("...after the retries' backoff", time.monotonic() - t0 >= 0.01)
    raises("a bad url is refused", lambda: mbrl.Client("ftp://x"), code="invalid_argument")
    raises("NaN is refused before sending", lambda: c.act("m", [float("nan")]),
           code="invalid_argument")


# -- against a real daemon -------------------------------------------------

def start_daemon(tmp, tokens_file, tls=None, name="mbrld"):
    """A daemon on a free loopback port; tls: (cert, key) serves HTTPS."""
    binary = os.environ.get("MBRLD_BIN", os.path.join(ROOT, "build", "mbrld"))
    if not os.access(binary, os.X_OK):
        check("daemon binary %s exists (make all)" % binary, False)
        return None, None
    port_file = os.path.join(tmp, name + ".port")
    log = open(os.path.join(tmp, name + ".log"), "w")
    args = [binary, "--listen", "127.0.0.1:0", "--port-file", port_file, "--data-dir",
            os.path.join(tmp, name + ".data"), "--tokens", tokens_file, "--log-level", "warn"]
    if tls:
        args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    p = subprocess.Popen(args, stderr=log)
    for _ in range(300):
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            break
        time.sleep(0.1)
    scheme = "https" if tls else "http"
    url = "%s://127.0.0.1:%s" % (scheme, open(port_file).read().strip())
    ctx = ssl.create_default_context(cafile=tls[0]) if tls else None
    c = mbrl.Client(url, retries=50, backoff=0.05, backoff_max=0.1, ssl_context=ctx)
    c.health()
    return p, url


def tls_tests(tmp, tokens, admin):
    """HTTPS with a self-signed certificate: trusted through ssl_context,
    refused (a transport error) without it."""
    if not shutil.which("openssl"):
        print("skip  HTTPS: no openssl here to make a certificate")
        return
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        print("skip  HTTPS: openssl could not make a certificate")
        return
    p, url = start_daemon(tmp, tokens, tls=(cert, key), name="tls")
    if not p:
        return
    try:
        c = mbrl.Client(url, token=admin, ssl_context=ssl.create_default_context(cafile=cert))
        check("HTTPS: a call through ssl_context trusting the certificate", c.list_models() == [])
        check("HTTPS: keep-alive over TLS", c.health() == {"status": "ok"} and c._conn is not None)
        raises("HTTPS: an untrusted certificate is a transport error",
               lambda: mbrl.Client(url, token=admin, retries=1, backoff=0.01).list_models(), status=0,
               code="transport")
    finally:
        p.terminate()
        p.wait(timeout=30)


SPEC = {"obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1],
        "ensemble": {"members": 2, "hidden": [16]},
        "reward": {"terms": [{"type": "quadratic", "indices": [0], "target": [0], "weight": 1}]},
        "planner": {"method": "cem", "horizon": 5, "population": 16, "elites": 4, "iterations": 2,
                    "particles": 2}}


class Vec:
    """A NumPy-like vector: has tolist()."""

    def __init__(self, xs):
        self.xs = xs

    def tolist(self):
        return list(self.xs)


def rows(n, x0=0.0):
    out = []
    for i in range(n):
        x = x0 + i / n
        u = ((i % 5) / 2.0) - 1.0
        out.append({"obs": [x, 0.0], "action": [u], "reward": -x * x, "next_obs": [x + 0.1 * u, u],
                    "terminated": False, "truncated": False})
    return out


def daemon_tests(url, admin, reader, tmp):
    c = mbrl.Client(url, token=admin)
    check("health", c.health() == {"status": "ok"})
    check("ready", c.ready() is True)
    check("metrics are Prometheus text", "# TYPE" in c.metrics())
    check("openapi", "paths" in c.openapi())

    e = raises("no token: 401", lambda: mbrl.Client(url).list_models(), status=401,
               code="unauthenticated")
    os.environ["MBRLD_TOKEN"] = reader
    try:
        r = mbrl.Client(url)
        check("the token from $MBRLD_TOKEN", r.list_models() == [])
        raises("a read token cannot create: 403", lambda: r.create_model(dict(SPEC, name="no")),
               status=403, code="insufficient_scope")
    finally:
        del os.environ["MBRLD_TOKEN"]
    tf = os.path.join(tmp, "token")
    with open(tf, "w") as f:
        f.write(admin + "\n")
    check("the token from token_file", mbrl.Client(url, token_file=tf).list_models() == [])
    raises("a missing token file", lambda: mbrl.Client(url, token_file=tf + ".no"), code="io_error")

    st = c.create_model(dict(SPEC, name="py1"))
    check("create_model", st.get("name") == "py1" and st.get("buffer_size") == 0, repr(st)[:200])
    check("create_model with keyword fields",
          c.create_model(name="py2", **SPEC).get("name") == "py2")
    raises("create twice: 409 already_exists", lambda: c.create_model(dict(SPEC, name="py1")),
           status=409, code="already_exists", field="name")
    raises("a bad field: 400 with the field", lambda: c.create_model(dict(SPEC, name="py3", obs_dim=-1)),
           field="obs_dim")
    check("get_model", c.get_model("py1").get("name") == "py1")
    raises("get_model of a missing model: 404", lambda: c.get_model("nope"), status=404,
           code="not_found")
    names = sorted(m["name"] for m in c.list_models())
    check("list_models", names == ["py1", "py2"], repr(names))

    a = c.act("py1", [0.5, 0.0])
    check("act before training: random", a.get("source") == "random" and len(a["action"]) == 1)
    raises("act with a wrong obs length: 400 obs", lambda: c.act("py1", [0.5]), status=400, field="obs")

    r = c.post_transitions("py1", rows(40), client="pytest", seq=1)
    check("post_transitions (dicts)", r == {"accepted": 40, "buffer_size": 40}, repr(r))
    r = c.post_transitions("py1", rows(40), client="pytest", seq=1)
    check("the same client + seq again: stored once", c.get_model("py1")["buffer_size"] == 40)
    tup = [(Vec([0.1, 0.2]), Vec([0.5]), -0.1, Vec([0.15, 0.5]), False, False)] * 3
    r = c.post_transitions("py1", tup)
    check("6-tuples and NumPy-like vectors", r.get("accepted") == 3 and r.get("buffer_size") == 43,
          repr(r))
    small = mbrl.Client(url, token=admin, batch_rows=7)
    r = small.post_transitions("py1", rows(20, 0.5))
    check("posted in batches of batch_rows, each under its own seq",
          r == {"accepted": 20, "buffer_size": 63} and small._seq == 3, repr(r))
    raises("a bad row: 400 with its field",
           lambda: c.post_transitions("py1", [dict(ROW, obs=[1.0])]), status=400)
    raises("a row that is neither dict nor 6-tuple", lambda: c.post_transitions("py1", [1]),
           code="invalid_argument")

    j = c.train("py1", max_epochs=5, patience=2)
    check("train waits for the job", j.get("state") == "done" and j.get("version") == 1, repr(j)[:200])
    check("...with per-epoch losses", len(j.get("epochs", [])) >= 1 and
          len(j["epochs"][0]["holdout_loss"]) == 2)
    s = c.train("py1", wait=False, max_epochs=3)
    check("train(wait=False) answers the job id", isinstance(s.get("job"), str), repr(s))
    done = c.wait_job("py1", s["job"], poll=0.02)
    check("wait_job", done.get("state") == "done" and done.get("version") == 2)
    check("get_job", c.get_job("py1", s["job"]).get("id") == s["job"])
    check("cancel_job of a finished job answers", c.cancel_job("py1", s["job"]).get("state") == "done")
    raises("get_job of a missing job: 404", lambda: c.get_job("py1", "j999"), status=404)
    raises("train with an unknown option: 400", lambda: c.train("py1", epochs=3), status=400,
           field="epochs")

    a = c.act("py1", [0.5, 0.0], session="py-s1")
    check("act after training: planner", a.get("source") == "planner" and a.get("version") == 2,
          repr(a))
    a = c.act("py1", [0.5, 0.0], session="py-s1", planner={"horizon": 3, "population": 8})
    check("act with planner overrides", a.get("source") == "planner")
    a = c.act("py1", [0.5, 0.0], goal={0: [0.3]})
    check("act with a goal ({term: target})", a.get("source") == "planner")
    raises("a goal for a term that does not exist: 422 names it",
           lambda: c.act("py1", [0.5, 0.0], goal=[{"term": 3, "target": [0.3]}]), status=422,
           field="goal[0].term")
    p = c.predict("py1", [0.5, 0.0], [[1.0], [0.0], [-1.0]])
    check("predict", len(p.get("mean", [])) == 3 and len(p["mean"][0]) == 2, repr(p)[:200])
    raises("act with an unknown extra field: 400 names it", lambda: c.act("py1", [0.5, 0.0], frob=1),
           status=400, field="frob")

    if "/v1/models/{m}/versions" in c.openapi()["paths"]:
        vs = c.versions("py1")
        check("versions lists the kept ones", isinstance(vs, dict) and len(json.dumps(vs)) > 10, repr(vs)[:200])
        a = c.act("py1", [0.5, 0.0], version=1)
        check("act pinned to version 1", a.get("version") == 1, repr(a))
        data, etag = c.latest("py1")
        check("latest: the file and its ETag", isinstance(data, bytes) and len(data) > 100 and etag)
        again, etag2 = c.latest("py1", etag=etag)
        check("latest with its ETag: unchanged (304)", again is None and etag2 == etag)
        c.promote("py1", 1)
        check("promote 1: version 1 current", c.get_model("py1").get("version") == 1)
        c.promote("py1", 2)
        check("promote 2 back", c.get_model("py1").get("version") == 2)
    else:
        print("skip  versions, promote, latest, act(version=): this daemon has no versions yet (branch i15-replicas)")
    check("snapshot", c.snapshot("py1").get("version") == 2)
    data = c.export("py1")
    check("export (bytes)", isinstance(data, bytes) and len(data) > 100)
    path = os.path.join(tmp, "py1.mbs")
    check("export to a file", c.export("py1", path) == len(data) and os.path.getsize(path) == len(data))
    r = c.import_("py1b", data)
    check("import_ from bytes", r.get("name") == "py1b" and r.get("buffer_size") == 63, repr(r))
    r = c.import_("py1c", path)
    check("import_ from a path", r.get("version") == 2)
    with open(path, "rb") as f:
        check("import_ from a file object", c.import_("py1d", f).get("name") == "py1d")
    raises("import_ of garbage: 422", lambda: c.import_("py1e", b"not a model"), status=422)
    # a learned policy (issue 13): 409 before one exists, then "source": "policy"
    c.create_model(dict(SPEC, name="pypol", policy={"hidden": [16, 16], "rollouts": 20,
                                                   "retain_steps": 5, "batch_size": 16}))
    c.post_transitions("pypol", rows(40))
    raises("act with method policy before a policy: 409",
           lambda: c.act("pypol", [0.5, 0.0], planner={"method": "policy"}), status=409)
    c.train("pypol", max_epochs=2, patience=0)
    j = c.train_policy("pypol", steps=2)
    check("train_policy waits for the job", j.get("state") == "done", repr(j)[:200])
    a = c.act("pypol", [0.5, 0.0], planner={"method": "policy"})
    check("act with method policy", a.get("source") == "policy" and -1 <= a["action"][0] <= 1, repr(a))
    raises("train_policy with an unknown algorithm: 400",
           lambda: c.train_policy("pypol", algorithm="ppo"), status=400)
    c.delete_model("pypol")
    for n in ("py1b", "py1c", "py1d", "py2"):
        c.delete_model(n)
    check("delete_model", c.delete_model("py1") == {"deleted": "py1"} and c.list_models() == [])
    raises("delete a missing model: 404", lambda: c.delete_model("py1"), status=404)
    c.close()
    check("a call after close() reconnects", c.health() == {"status": "ok"})

    # The Agent on a toy system: 2 episodes of 30 steps, retrain every 30
    ag = mbrl.Agent(c, "agent1", spec=SPEC, train_every=30, post_every=8,
                    train_opts={"max_epochs": 5})
    x = [0.5, 0.0]
    sources = []
    for t in range(60):
        u = ag.act(x)
        sources.append(ag.last["source"])
        nx = [x[0] + 0.1 * u[0], u[0]]
        ag.observe(x, u, -x[0] ** 2, nx, False, t % 30 == 29)
        x = [0.5, 0.0] if t % 30 == 29 else nx
    ag.close()
    st = c.get_model("agent1")
    check("Agent created the model and posted every step", st["buffer_size"] == 60, repr(st.get("buffer_size")))
    check("Agent trained every 30 steps", len(ag.jobs) == 2 and ag.jobs[-1].get("state") == "done")
    check("Agent acted randomly, then planned", sources[0] == "random" and sources[-1] == "planner",
          "%s ... %s" % (sources[0], sources[-1]))
    check("Agent counted episodes", ag.episodes == 2 and ag.steps == 60)
    ag2 = mbrl.Agent(c, "agent1", spec=SPEC)  # the model exists: used as it is
    check("a second Agent on an existing model", ag2.act([0.1, 0.0]) is not None)
    c.delete_model("agent1")


def readme_example(url, admin, tmp):
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- python-example:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    check("README has the Python example", m is not None)
    if not m:
        return
    script = os.path.join(tmp, "readme_example.py")
    with open(script, "w") as f:
        f.write(m.group(1))
    env = dict(os.environ, MBRLD_URL=url, MBRLD_TOKEN=admin,
               PYTHONPATH=os.path.join(ROOT, "clients", "python"))
    p = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=300)
    check("the README's Python example runs", p.returncode == 0, p.stderr[-800:])
    if p.returncode == 0:
        print("      " + p.stdout.strip().replace("\n", "\n      "))


def pendulum_example(url, admin):
    env = dict(os.environ, MBRLD_TOKEN=admin)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "clients/python/examples/pendulum.py"),
                        "--url", url, "--small", "--episodes", "2", "--steps", "25"],
                       env=env, capture_output=True, text=True, timeout=300)
    lines = p.stdout.strip().splitlines()
    check("examples/pendulum.py --small runs 2 episodes", p.returncode == 0 and len(lines) == 3,
          p.stdout[-400:] + p.stderr[-800:])
    check("...the second one planned", len(lines) == 3 and " planner " in lines[2], repr(lines))


def pip_install(tmp):
    """pip install clients/python into a scratch folder, offline."""
    # Debian's setuptools asserts on its distutils shim unless told to use the stdlib's
    env = dict(os.environ, SETUPTOOLS_USE_DISTUTILS="stdlib")
    for py in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run([py, "-c", "import pip, setuptools, wheel"], capture_output=True, env=env)
        if probe.returncode == 0:
            break
    else:
        print("skip  pip install: no Python here has pip, setuptools and wheel")
        return
    target = os.path.join(tmp, "site")
    p = subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        "--no-build-isolation", "--target", target,
                        os.path.join(ROOT, "clients", "python")],
                       capture_output=True, text=True, timeout=300, cwd=tmp, env=env)
    check("pip install clients/python", p.returncode == 0, p.stderr[-800:])
    q = subprocess.run([py, "-c", "import mbrl, sys; print(mbrl.__file__); sys.exit(not hasattr(mbrl, 'Agent'))"],
                       env=dict(os.environ, PYTHONPATH=target), capture_output=True, text=True, cwd=tmp)
    check("...the installed package imports", q.returncode == 0 and q.stdout.startswith(target),
          q.stdout + q.stderr[-400:])
    for d in ("build", "mbrl.egg-info"):  # setuptools leaves these in the source tree
        shutil.rmtree(os.path.join(ROOT, "clients", "python", d), ignore_errors=True)


def main():
    print("python %s" % sys.version.split()[0])
    tmp = tempfile.mkdtemp(prefix="mbrl-py-test.")
    proc = None
    try:
        fake_tests()
        admin, reader = "py-admin-" + os.urandom(16).hex(), "py-read-" + os.urandom(16).hex()
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("%s read,act,write,admin py-admin\n" % hashlib.sha256(admin.encode()).hexdigest())
            f.write("%s read py-reader\n" % hashlib.sha256(reader.encode()).hexdigest())
        proc, url = start_daemon(tmp, tokens)
        if proc:
            daemon_tests(url, admin, reader, tmp)
            readme_example(url, admin, tmp)
            pendulum_example(url, admin)
            tls_tests(tmp, tokens, admin)
        pip_install(tmp)
    except Exception as e:  # noqa: BLE001 - a crash of the suite is one failure, with its trace
        import traceback
        traceback.print_exc()
        check("the suite ran to its end", False, repr(e))
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
