"""A training loop's faults, in the process that trains: a stop asked for, a cluster preempted, a peer lost.

Alone, a Ctrl-C or SIGTERM stops the loop after its step with a checkpoint. In a cluster every worker must
stop at the same step, so TensorFlow's preemption handler agrees on one, every worker checkpoints there and
`Preempted` ends the loop; a peer that dies instead fails the next collective, and the loop says which in one
line. This module needs TensorFlow; `trainer/cluster.py` (the local launcher, and the exceptions the command
line catches) does not, so the command line answers its mistakes before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading

import tensorflow as tf

# What a collective meets when a peer is already gone. Seen on TF 2.21: a worker that exited leaves the others'
# collective an UnavailableError ("Collective ops is aborted by: ... stopped sending heartbeats"). TensorFlow's
# own health check also takes FailedPrecondition (a peer restarted) and DeadlineExceeded (no answer in time) for a
# peer down, and its preemption handler expects Aborted too from a worker that has already exited.
PEER_GONE = (tf.errors.UnavailableError, tf.errors.FailedPreconditionError, tf.errors.DeadlineExceededError,
             tf.errors.AbortedError)


class StopRequest:
    """SIGINT/SIGTERM ask the loop to stop after the current step, checkpoint, and exit cleanly (130 or 143)."""

    def __init__(self):
        self.signal: int | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, sig: int, _frame) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = sig

    def restore(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)


class Preempted(Exception):
    """The cluster agreed on a step, every worker checkpointed there: time to exit for a restart."""


def _raise_preempted() -> None:
    raise Preempted


def preemption_handler(checkpoints: tf.train.CheckpointManager, strategy: tf.distribute.Strategy,
                       stop: StopRequest) -> tf.distribute.experimental.PreemptionCheckpointHandler | None:
    """In a cluster, TensorFlow's handler for a SIGTERM (or Ctrl-C) on any worker: through the coordination
    service the workers agree on the next step, all save their checkpoint at it, then `Preempted` is raised.
    Our own StopRequest catches the signals; the handler polls it (once a second, its own watcher thread)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    threading.excepthook = _quiet_watcher(threading.excepthook)
    config = tf.distribute.experimental.TerminationConfig(termination_watcher_fn=lambda: stop.signal is not None,
                                                          exit_fn=_raise_preempted, grace_period=0)
    return tf.distribute.experimental.PreemptionCheckpointHandler(strategy.cluster_resolver, checkpoints,
                                                                  termination_config=config)


def _quiet_watcher(hook):
    """The handler's watcher thread dies with a traceback when a peer is lost; the main loop says it in one line."""
    def excepthook(args: threading.ExceptHookArgs) -> None:
        if not (args.thread and args.thread.name.startswith("PeerTerminationWatcher")
                and isinstance(args.exc_value, tf.errors.OpError)):
            hook(args)

    return excepthook


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Wait until every worker gets here, each with its checkpoint written. A worker already gone is no loss
    (its checkpoint was written before it left); any other error is a real one and raised."""
    def one() -> tf.Tensor:
        return tf.ones([])

    @tf.function(autograph=False)
    def everyone() -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(one), axis=None)

    with contextlib.suppress(*PEER_GONE):
        everyone()


def lost_peer(error: tf.errors.OpError, strategy: tf.distribute.Strategy) -> str:
    """Which worker the collective lost, as its error names it ("/job:worker/replica:0/task:1")."""
    me = strategy.cluster_resolver
    workers = sum(me.cluster_spec().num_tasks(job) for job in ("chief", "worker") if job in me.cluster_spec().jobs)
    for job, task in re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", error.message):
        if (job, int(task)) != (me.task_type, me.task_id):
            return "the chief" if job == "chief" else f"{job} {task} of {workers}"
    return "another worker"
