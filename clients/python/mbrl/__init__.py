"""mbrl: the Python client of mbrld (model-based RL as a service).

    import mbrl
    c = mbrl.Client("http://127.0.0.1:8080")       # token: $MBRLD_TOKEN or token_file=
    c.create_model(name="arm", obs_dim=3, act_dim=1, act_low=[-2], act_high=[2])
    c.post_transitions("arm", rows)                # idempotent: client + seq
    c.train("arm", max_epochs=50)                  # waits for the job
    c.act("arm", obs, session="arm-1")["action"]

Standard library only; Python 3.9+. Errors are mbrl.Error (status, code,
message, field). mbrl.Agent runs a Gymnasium-style loop.
"""

from .errors import Error
from .client import Client
from .agent import Agent

__all__ = ["Client", "Error", "Agent"]
__version__ = "1.0.0"
