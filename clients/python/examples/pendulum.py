#!/usr/bin/env python3
"""Pendulum-v1 learned through mbrld with mbrl.Agent (no Gymnasium needed).

    build/mbrld --listen 127.0.0.1:8080 &
    PYTHONPATH=clients/python python3 clients/python/examples/pendulum.py

The environment is Gymnasium's Pendulum-v1 written out in pure Python (same
dynamics, reward, reset and 200-step limit). The loop is the "MBRL 1.5" one
of build/mbrl-sim: the first episode acts randomly (the daemon answers
random actions until a model is trained), then the agent retrains after
every episode and plans each step with CEM through the learned ensemble
(reward learned too). One run on a 2-core VM, seed 1, episodes 1-8:
-1323 (random), -1613, -1366, -515, -506, -553, -375, -7.5 (from a hanging
start the best is about -300; episode 8 began near upright), 23-30 ms per
plan.
--small shrinks everything for a quick check (the test suite runs it).
"""

import argparse
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mbrl  # noqa: E402


class Pendulum:
    """Gymnasium Pendulum-v1: obs [cos th, sin th, thdot], torque in [-2, 2]."""

    max_speed, max_torque, dt, g, m, l = 8.0, 2.0, 0.05, 10.0, 1.0, 1.0

    def __init__(self, max_steps=200, seed=None):
        self.max_steps = max_steps
        self.rng = random.Random(seed)
        self.th = self.thdot = 0.0
        self.t = 0

    def _obs(self):
        return [math.cos(self.th), math.sin(self.th), self.thdot]

    def reset(self):
        self.th = self.rng.uniform(-math.pi, math.pi)
        self.thdot = self.rng.uniform(-1.0, 1.0)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        u = min(max(float(action[0]), -self.max_torque), self.max_torque)
        th, thdot = self.th, self.thdot
        angle = ((th + math.pi) % (2 * math.pi)) - math.pi
        cost = angle ** 2 + 0.1 * thdot ** 2 + 0.001 * u ** 2
        thdot = thdot + (3 * self.g / (2 * self.l) * math.sin(th) + 3.0 / (self.m * self.l ** 2) * u) * self.dt
        thdot = min(max(thdot, -self.max_speed), self.max_speed)
        self.th = th + thdot * self.dt
        self.thdot = thdot
        self.t += 1
        return self._obs(), -cost, False, self.t >= self.max_steps, {}


def spec(small):
    # build/mbrl-sim's pendulum defaults: 5 x 2 x 64 nets, CEM H 30 N 200, P 10
    if small:
        return {"obs_dim": 3, "act_dim": 1, "act_low": [-2], "act_high": [2],
                "ensemble": {"members": 2, "hidden": [16]},
                "planner": {"method": "cem", "horizon": 5, "population": 16, "elites": 4,
                            "iterations": 2, "particles": 2}}
    return {"obs_dim": 3, "act_dim": 1, "act_low": [-2], "act_high": [2],
            "ensemble": {"members": 5, "hidden": [64, 64]},
            "planner": {"method": "cem", "horizon": 30, "population": 200, "elites": 20,
                        "iterations": 3, "particles": 10}}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=None, help="daemon (default $MBRLD_URL or http://127.0.0.1:8080)")
    p.add_argument("--token-file", default=None, help="bearer token file (default $MBRLD_TOKEN)")
    p.add_argument("--model", default="pendulum-py")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--steps", type=int, default=200, help="steps per episode (Pendulum-v1: 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--small", action="store_true", help="tiny nets and planner (a quick check)")
    p.add_argument("--keep", action="store_true", help="keep the model (default: delete it at the end)")
    a = p.parse_args()

    client = mbrl.Client(a.url, token_file=a.token_file)
    env = Pendulum(a.steps, a.seed)
    train = {"max_epochs": 20 if a.small else 300, "patience": 20, "batch_size": 32}
    try:
        client.delete_model(a.model)  # a fresh start
    except mbrl.Error as e:
        if e.status != 404:
            raise
    agent = mbrl.Agent(client, a.model, spec=spec(a.small), train_every=a.steps, train_opts=train)
    print("episode  policy    return  holdout_loss  plan_ms  train_s")
    try:
        for ep in range(a.episodes):
            obs, _ = env.reset()
            total, plan_ms, source = 0.0, 0.0, "?"
            done = False
            while not done:
                action = agent.act(obs)
                source = agent.last["source"]
                plan_ms += agent.last["plan_ms"]
                next_obs, reward, terminated, truncated, _ = env.step(action)
                t0 = time.monotonic()
                agent.observe(obs, action, reward, next_obs, terminated, truncated)
                train_s = time.monotonic() - t0  # observe trains at the episode's end
                total += reward
                obs, done = next_obs, terminated or truncated
            job = agent.jobs[-1] if agent.jobs else {}
            loss = (job.get("result") or {}).get("holdout_loss") or [float("nan")]
            print("%7d  %-7s %8.1f  %12.4f  %7.1f  %7.1f" % (
                ep + 1, source, total, sum(loss) / len(loss), plan_ms / env.t, train_s), flush=True)
    finally:
        agent.close()
        if not a.keep:
            client.delete_model(a.model)


if __name__ == "__main__":
    main()
