"""Training: an exact-resume trainer and the losses of the SS4D networks."""

from ss4d.training.config import ConfigError, validate_config
from ss4d.training.core import TrainConfig, Trainer
from ss4d.training.losses import cfm_loss, dice_loss, kl_loss, structure_vae_loss

__all__ = [
    "ConfigError",
    "TrainConfig",
    "Trainer",
    "cfm_loss",
    "dice_loss",
    "kl_loss",
    "structure_vae_loss",
    "validate_config",
]
