"""Training engine: state, losses, the lax.scan loop, vmapped and sharded sweeps, hooks."""

from dl_course.errors import ConfigError
from dl_course.train import losses
from dl_course.train.config import default_config
from dl_course.train.driver import ChunkInfo, Preempted
from dl_course.train.grid import make_grid
from dl_course.train.hooks import Hook, HookContext
from dl_course.train.program import randomize_labels_in_graph
from dl_course.train.state import TrainState, stream
from dl_course.train.sweep import SweepResult, sweep, train
from dl_course.train.task import Task, predict, supervised_task, train_mode_accuracy
from dl_course.train.trajectory import record_steps, trajectory_hook

__all__ = [  # the public names, re-exported from the modules above
    "ChunkInfo", "ConfigError", "Hook", "HookContext", "Preempted", "SweepResult", "Task", "TrainState",
    "default_config", "losses", "make_grid", "predict", "randomize_labels_in_graph", "record_steps", "stream",
    "supervised_task", "sweep", "train", "train_mode_accuracy", "trajectory_hook",
]
