"""Train pix2pix on windows of frames (context -> the frame `stride` later) of one or more videos.

Read top to bottom (the command line, `trainer/cli.py`, builds the one config): the run directory is locked
and opened (or resumed); the videos are planned, each frame the windows need is stored once (the frame store)
and served through tf.data as windows; the models and
their optimizers are built inside the distribution strategy's scope; then a custom loop runs
`strategy.run(train_step)` in a `tf.function` (`model.fit` can't run under MultiWorkerMirroredStrategy on
Keras 3.15), training on the model's own outputs and with conditioning noise when the config asks,
checkpointing, scoring and drawing as it goes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from infer.config import SPLIT_NAMES, Config
from infer.errors import UserError, write_text_atomic
from infer.progress import Steps
from trainer import cluster, data, faults, flows, model, rundir, store, validation
from trainer.plan import VideoPlan, plan, shard

PREVIEW_FPS = 8
# Steps between reads of the losses: a read makes the host wait for the device, so between reads a GPU
# runs ahead with the next steps. A NaN shows up at the next read at the latest, and checkpoints check
# the weights themselves.
READ_EVERY = 10
WARP_SMOOTHNESS = 0.01  # the warp loss's weight on the flow's mean |gradient| (pixels per pixel) against its L1
SAMPLES = 4  # windows drawn at every eval


# ---------------------------------------------------------------- strategy and precision
def pick_strategy(name: str) -> tf.distribute.Strategy:
    """auto: multi-worker when TF_CONFIG names a cluster, mirrored over several GPUs, else one device."""
    if name == "multiworker" or (name == "auto" and os.environ.get("TF_CONFIG")):
        # Before anything else touches TensorFlow: it configures the runtime, which listing devices starts.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def own_dir(run_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process writes: the run directory itself on the chief, a folder of its own inside it on
    any other worker. Every worker saves checkpoints (saving is a collective step), so workers sharing one
    folder on a shared disk would overwrite each other's files."""
    if strategy.extended.should_checkpoint:
        return run_dir
    worker = strategy.cluster_resolver
    return run_dir / "workers" / f"{worker.task_type}-{worker.task_id}"


def pick_precision(name: str) -> str:
    """auto: mixed_float16 on GPU (tensor cores), float32 on CPU (where float16 is slower)."""
    if name == "auto":
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"
    return name


class HalfLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """pix2pix's schedule: constant for the first half, then linearly to 0."""

    def __init__(self, rate: float, steps: int, decay: bool):
        self.rate, self.steps, self.decay = rate, steps, decay

    def __call__(self, step):
        if not self.decay:
            return keras.ops.convert_to_tensor(self.rate, "float32")
        left = 2.0 * (1.0 - keras.ops.cast(step, "float32") / self.steps)
        return self.rate * keras.ops.clip(left, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"rate": self.rate, "steps": self.steps, "decay": self.decay}


def optimizer(config: Config, precision: str) -> keras.optimizers.Optimizer:
    t = config.train
    adam = keras.optimizers.Adam(HalfLinearDecay(t.learning_rate, t.steps, t.lr_decay), beta_1=t.beta1)
    # float16 gradients underflow without loss scaling; nothing applies it for us in a custom GAN loop.
    return keras.optimizers.LossScaleOptimizer(adam) if precision == "mixed_float16" else adam


# ---------------------------------------------------------------- the training run
class Trainer:
    """Models, optimizers, checkpoints and the distributed step of one run."""

    def __init__(self, config: Config, run_dir: Path, strategy: tf.distribute.Strategy, precision: str):
        self.config, self.run_dir, self.strategy = config, run_dir, strategy
        keras.config.set_dtype_policy(precision)
        with strategy.scope():
            self.generator = model.generator(config)
            self.discriminator = model.discriminator(config)
            self.gen_opt = optimizer(config, precision)
            self.disc_opt = optimizer(config, precision)
            # Built now, inside the scope, so their slots are mirrored and restorable (keras#23085).
            self.gen_opt.build(self.generator.trainable_variables)
            self.disc_opt.build(self.discriminator.trainable_variables)
            parts = {}
            if config.train.sequence_disc:
                self.sequence_disc = model.discriminator(config, config.train.sequence_disc)
                self.sequence_opt = optimizer(config, precision)
                self.sequence_opt.build(self.sequence_disc.trainable_variables)
                parts = {"sequence_disc": self.sequence_disc, "sequence_opt": self.sequence_opt}
            if config.train.flow_weight or config.train.warp_weight:  # the generator, its flow read out too
                self.with_flow = keras.Model(self.generator.inputs, [self.generator.outputs[0],
                                                                     self.generator.get_layer("next_frame").input[1]])
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        keras.config.set_dtype_policy("float32")
        checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                         gen_opt=self.gen_opt, disc_opt=self.disc_opt, step=self.step, **parts)
        self.latest = tf.train.CheckpointManager(checkpoint, run_dir / "checkpoints",
                                                 max_to_keep=config.train.keep_checkpoints)
        self.best = tf.train.CheckpointManager(checkpoint, run_dir / "best", max_to_keep=1)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)
        self.mae = keras.losses.MeanAbsoluteError(reduction=None)
        self.global_batch = config.train.batch_size
        self.step_fn = tf.function(self._distributed_step)
        self.replica_step = tf.function(self._train_step, jit_compile=True) if config.train.xla \
            else self._train_step

    def restore(self) -> int:
        if self.latest.latest_checkpoint:
            self.latest.checkpoint.restore(self.latest.latest_checkpoint).assert_existing_objects_matched()
        return int(self.step.numpy())

    def _per_window(self, values: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)

    def _average(self, per_window: tf.Tensor) -> tf.Tensor:
        """Mean over the global batch: summed over replicas, it is the mean of the whole batch."""
        return tf.nn.compute_average_loss(per_window, global_batch_size=self.global_batch)

    def unroll_depth(self, step: tf.Tensor) -> tf.Tensor:
        """How many of its own steps build this step's input: drawn from 0..r, with r growing from 0 to
        `unroll` over the first `unroll_ramp` of training (each depth gets an equal share of the ramp). A
        function of the step alone, so a resumed run continues the same schedule."""
        t = self.config.train
        ramp = max(1.0, t.unroll_ramp * t.steps)
        reach = tf.minimum(t.unroll, tf.cast(tf.cast(step, tf.float32) * (t.unroll + 1) / ramp, tf.int32))
        seed = tf.stack([tf.constant(t.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.stateless_uniform([], seed, minval=0, maxval=reach + 1, dtype=tf.int32)

    def _unroll(self, context: list[tf.Tensor], depth: tf.Tensor) -> list[tf.Tensor]:
        """`depth` generator steps from the real context, each output fed back as at rollout (inference mode)."""
        for i in range(self.config.train.unroll):
            context = tf.cond(i < depth, lambda c=context: [*c[1:], self.generator(c, training=False)],
                              lambda c=context: list(c))
        return context if self.config.train.unroll_grad else [tf.stop_gradient(c) for c in context]

    def _noisy(self, context: list[tf.Tensor], step: tf.Tensor) -> list[tf.Tensor]:
        """Conditioning noise: a std drawn per sample from [0, noise], so the model learns to correct small
        errors in its input instead of amplifying them. Never on the target."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.cast(step, tf.int64), tf.cast(replica, tf.int64) + 1000 * self.config.train.seed])
        batch = tf.shape(context[0])[0]
        sigma = tf.random.stateless_uniform([batch, 1, 1, 1], seed, maxval=self.config.train.noise)
        return [tf.clip_by_value(frame + sigma * tf.random.stateless_normal(tf.shape(frame), seed + 1 + j), -1.0, 1.0)
                for j, frame in enumerate(context)]

    def _chain(self, context: list[tf.Tensor]) -> list[tf.Tensor]:
        """The sequence discriminator's frames: `sequence_disc` generator steps from the real context, each output
        fed back as at rollout (inference mode). The gradient flows through every step: how a frame moves, fades
        or flickers depends on all the steps before it."""
        frames = []
        for _ in range(self.config.train.sequence_disc):
            frames.append(self.generator(context, training=False))
            context = [*context[1:], frames[-1]]
        return frames

    def _sequence_losses(self, real_context: list[tf.Tensor], window: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(generator's, discriminator's) losses of the sequence discriminator: the chain against the real frames
        that followed the same context."""
        k, n = self.config.model.context, self.config.train.sequence_disc
        real = self.sequence_disc([*real_context, *(window[:, k + j] for j in range(n))], training=True)
        fake = self.sequence_disc([*real_context, *self._chain(real_context)], training=True)
        fooled = self._average(self._per_window(self.bce(tf.ones_like(fake), fake)))
        told = self._average(self._per_window(self.bce(tf.ones_like(real), real))
                             + self._per_window(self.bce(tf.zeros_like(fake), fake)))
        return fooled, told

    def _train_step(self, window: tf.Tensor, depth: tf.Tensor, step: tf.Tensor,
                    flow_targets: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """window: [batch, config.window, h, w, 3]; the context is its first frames. flow_targets (with a flow weight):
        [batch, config.window - 1, h, w, 2], the flow target into each frame after the first."""
        t, k = self.config.train, self.config.model.context
        context = real_context = [window[:, j] for j in range(k)]
        target = window[:, k]
        if t.unroll and not t.unroll_grad:
            context, target = self._unroll(context, depth), tf.gather(window, k + depth, axis=1)
        sequence_tape = tf.GradientTape() if t.sequence_disc else contextlib.nullcontext()
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape, sequence_tape:
            if t.unroll and t.unroll_grad:
                context, target = self._unroll(context, depth), tf.gather(window, k + depth, axis=1)
            if t.noise:
                context = self._noisy(context, step)
            if t.flow_weight or t.warp_weight:
                fake, flow = self.with_flow(context, training=True)
            else:
                fake = self.generator(context, training=True)
            real_logits = self.discriminator([*context, target], training=True)
            fake_logits = self.discriminator([*context, fake], training=True)
            gan = self._average(self._per_window(self.bce(tf.ones_like(fake_logits), fake_logits)))
            l1 = self._average(self._per_window(self.mae(target, fake)))
            gen_loss = gan + t.l1_weight * l1
            if t.gradient_weight:
                gen_loss += t.gradient_weight * self._average(gradient_difference(fake, target))
            disc_loss = self._average(self._per_window(self.bce(tf.ones_like(real_logits), real_logits))
                                      + self._per_window(self.bce(tf.zeros_like(fake_logits), fake_logits)))
            losses = {"gan": gan, "l1": l1, "disc": disc_loss}
            if t.flow_weight:
                wanted = tf.cast(tf.gather(flow_targets, k - 1 + depth, axis=1), tf.float32)  # into the target
                losses["flow"] = self._average(flow_error(flow, wanted, t.flow_floor))
                gen_loss += t.flow_weight * losses["flow"]
            if t.warp_weight:
                losses["warp"] = self._average(warp_error(context[-1], flow, target))
                gen_loss += t.warp_weight * losses["warp"]
            if t.sequence_disc:
                losses["seq_gan"], losses["seq_disc"] = self._sequence_losses(real_context, window)
                gen_loss += t.sequence_weight * losses["seq_gan"]
                sequence_scaled = self.sequence_opt.scale_loss(losses["seq_disc"])
            gen_scaled = self.gen_opt.scale_loss(gen_loss)
            disc_scaled = self.disc_opt.scale_loss(disc_loss)
        gen_vars, disc_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.gen_opt.apply(gen_tape.gradient(gen_scaled, gen_vars), gen_vars)
        self.disc_opt.apply(disc_tape.gradient(disc_scaled, disc_vars), disc_vars)
        if t.sequence_disc:
            sequence_vars = self.sequence_disc.trainable_variables
            self.sequence_opt.apply(sequence_tape.gradient(sequence_scaled, sequence_vars), sequence_vars)
        return {"gen": gen_loss, **losses}

    def _distributed_step(self, batch: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        """One step on a batch from `data.train_batches`: (positions, uint8 windows[, flow targets]), augmented on
        the device."""
        depth = self.unroll_depth(self.step) if self.config.train.unroll else tf.constant(0)

        def replica(positions: tf.Tensor, windows: tf.Tensor, *targets: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.replica_step(data.augment_batch(self.config, positions, windows), depth, self.step, *targets)

        losses = self.strategy.run(replica, args=batch)
        self.step.assign_add(1)
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in losses.items()}

    def weights_finite(self) -> bool:
        variables = self.generator.weights + self.discriminator.weights + (
            self.sequence_disc.weights if self.config.train.sequence_disc else [])
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))) for v in variables]))

    def save(self, best: bool = False) -> None:
        """Checkpoint, but never weights that went NaN: the last good checkpoint stays the latest."""
        if not self.weights_finite():
            raise UserError(f"training diverged before step {int(self.step.numpy())} (weights are NaN/Inf); the "
                            f"last good checkpoint is {self.latest.latest_checkpoint}; lower the learning rate")
        try:
            (self.best if best else self.latest).save(checkpoint_number=self.step)
        except (OSError, tf.errors.OpError) as error:
            raise UserError(f"can't write a checkpoint in {self.run_dir} ({error}); free space or fix "
                            f"permissions, then run the same command: the previous checkpoint is intact") from None

    def loss_scale(self) -> float | None:
        return float(self.gen_opt.dynamic_scale.numpy()) if hasattr(self.gen_opt, "dynamic_scale") else None


def warp_error(newest: tf.Tensor, flow: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """The warp loss, per window: L1 of `newest` warped by `flow` against `target` at full, half and quarter size
    (the flow halved with the picture, so a move of 3-4 pixels is within the one pixel a bilinear warp's gradient
    sees at a quarter size), plus a little smoothness. `bench.moves --fit-flow` fits flows to it."""
    def half(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.avg_pool2d(x, 2, 2, "VALID")

    smoothness = (tf.reduce_mean(tf.abs(flow[:, 1:] - flow[:, :-1]), axis=[1, 2, 3])
                  + tf.reduce_mean(tf.abs(flow[:, :, 1:] - flow[:, :, :-1]), axis=[1, 2, 3]))
    error = 0.0
    for level in range(3):
        if level:
            newest, target, flow = half(newest), half(target), half(flow) / 2
        error += tf.reduce_mean(tf.abs(model.warp(newest, flow) - target), axis=[1, 2, 3]) / 3
    return error + WARP_SMOOTHNESS * smoothness


def flow_error(flow: tf.Tensor, wanted: tf.Tensor, floor: float) -> tf.Tensor:
    """Per-window mean |flow - wanted| (pixels), over the pixels where `wanted` moves at least `floor` pixels
    across or down (0: all). Over all pixels, a target that is 0 on the still street asks for 0 wherever the model
    is unsure where things are; above a floor, it asks only where they go (each window over its own movers, so one
    with a few weighs as much as a busy one, and one with none adds 0)."""
    error = tf.abs(flow - wanted)
    if not floor:
        return tf.reduce_mean(error, axis=[1, 2, 3])
    counted = tf.cast(tf.reduce_max(tf.abs(wanted), axis=-1, keepdims=True) >= floor, tf.float32)
    return tf.reduce_sum(error * counted, axis=[1, 2, 3]) / tf.maximum(2 * tf.reduce_sum(counted, axis=[1, 2, 3]), 1)


def gradient_difference(fake: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Per-window mean |edges of the prediction - edges of the target| (Mathieu et al., 2016): L1 alone is
    happy with a blurred average, this term asks for the target's edges."""
    def edges(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.abs(x[:, 1:] - x[:, :-1]), tf.abs(x[:, :, 1:] - x[:, :, :-1])

    (fy, fx), (ty, tx) = edges(fake), edges(target)
    return tf.reduce_mean(tf.abs(fy - ty), axis=[1, 2, 3]) + tf.reduce_mean(tf.abs(fx - tx), axis=[1, 2, 3])


def read_losses(trainer: Trainer, on_device: dict[str, tf.Tensor], step: int, writer) -> dict[str, float]:
    """The step's losses on the host (this waits for the device), checked and logged to TensorBoard."""
    losses = {k: float(v) for k, v in on_device.items()}
    if not all(math.isfinite(v) for v in losses.values()):
        raise UserError(f"loss became NaN/Inf by step {step} ({losses}); the last good checkpoint is "
                        f"{trainer.latest.latest_checkpoint}; lower the learning rate or use float32")
    with writer.as_default(step=step):
        for name, value in losses.items():
            tf.summary.scalar(f"loss/{name}", value)
        tf.summary.scalar("learning_rate", float(trainer.gen_opt.learning_rate))
        if (scale := trainer.loss_scale()) is not None:
            tf.summary.scalar("loss_scale", scale)
    return losses


def print_config(config: Config, precision: str, strategy: tf.distribute.Strategy) -> None:
    print("epilogue-train, effective config:")
    for section, values in config.to_dict().items():
        print(f"  {section:6} " + "  ".join(f"{k}={v}" for k, v in values.items()))
    print(f"  {'run':6} precision={precision}  strategy={type(strategy).__name__} "
          f"({strategy.num_replicas_in_sync} replica(s))", flush=True)


def fixed_samples(windows: tf.data.Dataset, count: int, total: int) -> np.ndarray:
    """`count` validation windows spread evenly over the split, in [-1, 1]: the same ones at every eval."""
    every = max(1, total // count)
    return data.to_model_range(np.stack([w.numpy() for w in windows.shard(every, 0).take(count)])).numpy()


def last_context(windows: tf.data.Dataset, context: int) -> np.ndarray:
    """The split's last `context` frames (the last window's end), in [-1, 1]: where previews start."""
    *_, window = windows
    return data.to_model_range(window[-context:]).numpy()


class Evals:
    """What every eval does: score one step and a short continuation on the validation split, keep the best
    checkpoint, draw samples and a preview, log it all. A --final run holds no frame out, so it only draws: from
    training windows, its preview starting at the film's end."""

    def __init__(self, config: Config, trainer: Trainer, plans: list[VideoPlan], val: tf.data.Dataset | None,
                 val_count: int, worker_dir: Path):
        t = config.train
        self.config, self.trainer, self.worker_dir = config, trainer, worker_dir
        self.writer = tf.summary.create_file_writer(str(worker_dir / "logs"))
        self.best_path = worker_dir / "best" / "best.json"
        self.chosen_by = "l1" if t.best_by == "l1" else "continuation_score"
        if val is None:
            self.samples, self.preview_start = validation.film_pictures(config, plans[0], SAMPLES)
            return
        self.val_batches = data.eval_batches(val.shard(max(1, math.ceil(val_count / t.eval_windows)), 0), 8)
        self.preview_start = last_context(val, config.model.context)  # a pass over the validation windows
        self.samples = fixed_samples(val, SAMPLES, val_count)
        self.continuation_frames = validation.continuation_frames(config, plans)
        best = json.loads(self.best_path.read_text()) if self.best_path.exists() else {"step": 0}
        # A run that kept the untrained step 0 (older runs could) chooses again at its next eval.
        self.best_score = best.get(self.chosen_by, math.inf) if best["step"] > 0 else math.inf

    def __call__(self, step: int) -> None:
        generator = self.trainer.generator
        scores = self._score(step) if self.config.held_out else {}
        pictures = validation.draw(generator, self.samples, self.preview_start, self.config.train.preview_steps,
                                   self.worker_dir, step, PREVIEW_FPS)
        with self.writer.as_default(step=step):
            for name, value in scores.items():
                tf.summary.scalar(f"val/{name}", value)
            for name, picture in pictures.items():
                tf.summary.image(name, picture[None])
        with open(self.worker_dir / "evals.jsonl", "a") as log:
            log.write(json.dumps({"step": step, **scores}) + "\n")
        if not scores:
            print(f"eval at step {step}: {self.worker_dir / 'samples'} and a preview from the film's end in "
                  f"{self.worker_dir / 'previews'} (a --final run holds no frame out to score)", flush=True)
            return
        print(f"eval at step {step}: val L1 {scores['l1']:.4f}  PSNR {scores['psnr']:.2f}  SSIM {scores['ssim']:.3f}"
              f"; continuation over {scores['rollout_steps']} steps: L1 {scores['rollout_l1']:.4f}, film-like "
              f"{100 * scores['film_like']:.0f}%, score {scores['continuation_score']:.4f} (best {self.chosen_by} "
              f"{self.best_score:.4f})", flush=True)

    def _score(self, step: int) -> dict[str, float]:
        """One step and the continuation on the validation split; a better trained step becomes best/."""
        generator = self.trainer.generator
        scores = {**validation.score(generator, self.val_batches),
                  **validation.continuation(generator, self.continuation_frames)}
        # The untrained model is a baseline, never the one to ship.
        if step > 0 and math.isfinite(scores[self.chosen_by]) and scores[self.chosen_by] < self.best_score:
            self.best_score = scores[self.chosen_by]
            self.trainer.save(best=True)
            write_text_atomic(self.best_path, json.dumps({"step": step, **scores}))
        return scores


def train(config: Config, run_dir: Path, strategy: tf.distribute.Strategy | None = None,
          plans: list[VideoPlan] | None = None) -> Path:
    """Train (or resume, or report finished) the run in `run_dir`; returns this worker's directory (the run
    directory itself on the chief)."""
    plans = plans or plan(config)
    strategy = strategy or pick_strategy(config.train.strategy)
    config.per_replica_batch(strategy.num_replicas_in_sync)  # every worker checks: every worker says the same line
    worker_dir = own_dir(run_dir, strategy)
    with rundir.locked(worker_dir):
        return _train(config, worker_dir, strategy, plans, run_dir)


def _train(config: Config, worker_dir: Path, strategy: tf.distribute.Strategy, plans: list[VideoPlan],
           run_dir: Path) -> Path:
    """Train in `worker_dir`, this worker's folder inside `run_dir` (the run directory itself on the chief)."""
    t = config.train
    record = rundir.open_run(worker_dir, config, plans)
    if (worker_dir / "metrics.json").exists():
        _say_finished(worker_dir, run_dir)
        return worker_dir

    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    precision = pick_precision(t.precision)
    print_config(config, precision, strategy)

    counts = {s: sum(len(p.splits[s].starts) for p in plans) for s in SPLIT_NAMES}
    frames = worker_dir / "frames"
    store.remove_window_cache(worker_dir)
    held_out = {s: store.open_store(config, plans, s, frames).windows() for s in ("val", "test") if counts[s]}
    trainer = Trainer(config, worker_dir, strategy, precision)
    start = trainer.restore()
    share: list[str] = []

    def input_pipeline(pipeline: tf.distribute.InputContext) -> tf.data.Dataset:
        """This worker's share of the training windows, stored and batched by this worker alone."""
        pipelines, me = pipeline.num_input_pipelines, pipeline.input_pipeline_id
        if counts["train"] < pipelines:
            raise UserError(f"{counts['train']} training windows can't be shared by {pipelines} workers; give more "
                            "video, a lower --stride or --hop, or fewer workers")
        mine = shard(plans, "train", me, pipelines)
        count = sum(len(p.splits["train"].starts) for p in mine)
        if pipelines > 1:
            least = counts["train"] // pipelines
            uneven = f"; blocks hold {least} or {least + 1}" if counts["train"] % pipelines else ""
            share.append(f"; this worker reads {count} of them (block {me + 1} of {pipelines} in time{uneven})")
        name = "train" if pipelines == 1 else f"train-{me}-of-{pipelines}"
        stored = store.open_store(config, mine, "train", frames, name)
        targets = flows.open_flows(stored, config.data.stride) if t.flow_weight else None
        return data.train_batches(config, stored, start, pipeline, targets)

    batches = strategy.distribute_datasets_from_function(input_pipeline)
    print(f"resuming at step {start} of {t.steps}" if start else f"starting: {counts['train']} training windows "
          f"of {config.window} frames{'' if config.held_out else ' (--final: every frame up to the end)'}"
          + "".join(share))
    run_eval = Evals(config, trainer, plans, held_out.get("val"), counts["val"], worker_dir)
    rundir.forget_evals_after(worker_dir, start)  # a resume from an older checkpoint redoes those evals
    stop = faults.StopRequest()
    preempted = faults.preemption_handler(trainer.latest, strategy, stop)
    progress = Steps("train", t.steps, start)
    step, iterator, losses = start, iter(batches), {}
    try:
        if start == 0:
            run_eval(0)  # the untrained baseline every later eval is compared with
        # Alone, a stop request ends the loop here; in a cluster every worker must stop at the same step, so
        # the preemption handler agrees on one, checkpoints there and raises Preempted.
        while step < t.steps and (preempted or stop.signal is None):
            on_device = trainer.step_fn(next(iterator))
            step += 1
            if preempted:
                preempted.save_checkpoint_if_preempted(checkpoint_number=step)
            if step % READ_EVERY == 0 or step == t.steps:
                losses = read_losses(trainer, on_device, step, run_eval.writer)
            progress.update(step, **losses)
            if step % t.checkpoint_every == 0:
                trainer.save()
            if step % t.eval_every == 0 and step < t.steps:
                run_eval(step)
    except faults.Preempted:
        progress.close()
        faults.barrier(strategy)
        print(f"stopped at step {step} with the whole cluster; checkpoint saved in {worker_dir / 'checkpoints'}.\n"
              f"resume: run the same command on every worker again", flush=True)
        raise cluster.ClusterStopped from None
    except tf.errors.OpError as error:
        if not preempted:
            raise
        raise cluster.PeerLost(faults.lost_peer(error, strategy), step + 1, trainer.latest.latest_checkpoint) from None
    finally:
        progress.close()
        stop.restore()
    if step < t.steps:
        trainer.save()
        print(f"stopped at step {step} of {t.steps}; checkpoint saved in {worker_dir / 'checkpoints'}.\n"
              f"resume: run the same command again")
        raise SystemExit(128 + stop.signal)
    if step % t.checkpoint_every:
        trainer.save()

    run_eval(step)
    _write_metrics(trainer, held_out, counts, step, record, worker_dir)
    print(f"run: {run_dir}\nnext: epilogue-export {run_dir}")
    return worker_dir


def _write_metrics(trainer: Trainer, held_out: dict[str, tf.data.Dataset], counts: dict[str, int], step: int,
                   record: dict, worker_dir: Path) -> None:
    """metrics.json, which marks the run finished: every validation and test window scored, not a sample (a
    --final run has none: it says so)."""
    scores = {s: validation.score(trainer.generator, data.eval_batches(held_out[s], 8)) if s in held_out else {}
              for s in ("val", "test")}
    best_path = worker_dir / "best" / "best.json"
    best = json.loads(best_path.read_text()) if best_path.exists() else None  # None: no trained eval was finite
    metrics = {"step": step, **scores, "best": best, "windows": counts, "held_out": trainer.config.held_out,
               "config_fingerprint": record["fingerprint"]}
    write_text_atomic(worker_dir / "metrics.json", json.dumps(metrics, indent=2))
    print(f"done: {step} steps; {_test_line(metrics)}")


def _test_line(metrics: dict) -> str:
    test = metrics["test"]
    if not metrics.get("held_out", True):
        return "a --final model: every frame up to the film's end was trained on, none held out to test"
    return f"test L1 {test.get('l1', float('nan')):.4f}, PSNR {test.get('psnr', 0):.2f}, SSIM {test.get('ssim', 0):.3f}"


def _say_finished(worker_dir: Path, run_dir: Path) -> None:
    done = json.loads((worker_dir / "metrics.json").read_text())
    print(f"run {worker_dir} already finished at step {done['step']} ({_test_line(done)}); nothing to do.\n"
          f"run: {run_dir}\nnext: epilogue-export {run_dir}")
