"""mbrl.Agent: a Gymnasium-style loop against one model of an mbrld daemon.

    agent = mbrl.Agent(client, "pendulum", spec=SPEC, train_every=200)
    obs, _ = env.reset()
    for _ in range(2000):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated, truncated)
        obs = env.reset()[0] if terminated or truncated else next_obs
    agent.close()

act plans from the daemon (random actions until the first training), one
warm-started session per episode; observe batches the transitions and posts
them every post_every rows and at each episode's end (idempotent posts:
client + seq); every train_every observed steps the agent posts what it
holds and trains (waiting for the job unless train_wait is False; a job
still running when the next is due is left to finish).
Not for: environments (examples/pendulum.py has one) or policies.
"""

from .errors import Error


class Agent:
    def __init__(self, client, model, spec=None, *, train_every=None, train_opts=None,
                 train_wait=True, post_every=64, session_prefix=None, planner=None, goal=None,
                 act_opts=None):
        """client: an mbrl.Client. model: the model's name; with spec (a
        create_model body without the name) it is created when missing.
        train_every: observed steps between trainings (None: never, e.g.
        when the model has auto_train); train_opts: train's options
        (max_epochs, patience, ...). planner, goal, act_opts: sent with
        every act."""
        self.client = client
        self.model = model
        self.train_every = train_every
        self.train_opts = dict(train_opts or {})
        self.train_wait = train_wait
        self.post_every = max(1, int(post_every))
        self.session_prefix = session_prefix or "agent-%s" % client.client_id[-8:]
        self.planner = planner
        self.goal = goal
        self.act_opts = dict(act_opts or {})
        self.steps = 0
        self.episodes = 0
        self.jobs = []  # every training job's answer (or {"job": id} when not waited for)
        self.last = None  # the last act answer
        self._pending = []
        self._outbox = []  # (rows, seq) not yet acknowledged
        self._since_train = 0
        if spec is not None:
            try:
                client.get_model(model)
            except Error as e:
                if e.status != 404:
                    raise
                body = dict(spec)
                body["name"] = model
                try:
                    client.create_model(body)
                except Error as e2:
                    if e2.code != "already_exists":  # another agent was quicker
                        raise

    @property
    def session(self):
        """This episode's planning session (a new one each episode: the
        last episode's plan is no warm start for a reset)."""
        return "%s-%d" % (self.session_prefix, self.episodes)

    def act(self, obs):
        """The action to take in obs (a list of floats)."""
        self.last = self.client.act(self.model, obs, session=self.session,
                                    planner=self.planner, goal=self.goal, **self.act_opts)
        return self.last["action"]

    def observe(self, obs, action, reward, next_obs, terminated, truncated):
        """Records one step; posts and trains when due."""
        self._pending.append({"obs": obs, "action": action, "reward": reward,
                              "next_obs": next_obs, "terminated": bool(terminated),
                              "truncated": bool(truncated)})
        self.steps += 1
        self._since_train += 1
        if terminated or truncated:
            self.episodes += 1
        if len(self._pending) >= self.post_every or terminated or truncated:
            self.flush()
        if self.train_every and self._since_train >= self.train_every:
            self.train()

    def flush(self):
        """Posts the transitions held, in order, each batch under its own
        seq. A batch whose post failed (after the client's retries) keeps
        its seq and goes first at the next flush, so it is stored once even
        if the failed post did arrive."""
        step = self.client.batch_rows
        for i in range(0, len(self._pending), step):
            self._outbox.append((self._pending[i:i + step], self.client.next_seq()))
        self._pending = []
        while self._outbox:
            rows, seq = self._outbox[0]
            self.client.post_transitions(self.model, rows, seq=seq)
            self._outbox.pop(0)

    def train(self):
        """Posts what is held, then trains; returns the job (or None when
        the last job is still running)."""
        self.flush()
        self._since_train = 0
        try:
            job = self.client.train(self.model, wait=self.train_wait, **self.train_opts)
        except Error as e:
            if e.code == "busy":
                return None
            raise
        self.jobs.append(job)
        return job

    def close(self):
        """Posts what is held."""
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
