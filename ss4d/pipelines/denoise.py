"""The one denoising loop of the pipeline, shared by the structure and the SLat stage (and by tests that drive
a scheduler with a closed-form velocity)."""

from collections.abc import Callable, Iterable, Iterator

from torch import Tensor

from ss4d.schedulers import ClassifierFreeGuidance, FlowMatchScheduler

__all__ = ["StepCallback", "VelocityFn", "denoise"]

VelocityFn = Callable[[Tensor, float, object], Tensor]
"""``model(x_t, t, cond) -> v``: ``t`` a float in [0, 1]; ``cond`` whatever the model takes."""

StepCallback = Callable[[int, float, dict], dict | None]
"""``callback(step_index, t, {"latents": x, "pred_original_sample": x0}) -> None | {"latents": new_x}``."""


def denoise(
    model: VelocityFn,
    latents: Tensor,
    cond: object,
    *,
    scheduler: FlowMatchScheduler,
    num_inference_steps: int,
    guidance: ClassifierFreeGuidance | None = None,
    neg_cond: object = None,
    callback: StepCallback | None = None,
    progress: Callable[[Iterable], Iterator] | None = None,
) -> Tensor:
    """Integrate ``latents`` (pure noise at ``t = 1``) to data (``t = 0``) with ``scheduler``.

    Every entry ``t`` of ``scheduler.timesteps`` evaluates the (guided) velocity and calls ``scheduler.step``;
    ``callback`` sees the new latents and the ``x_0`` estimate after each step and may replace the latents.

    Raises:
        ValueError: guidance without ``neg_cond``, or a bad ``num_inference_steps``.
    """
    guidance = guidance or ClassifierFreeGuidance()
    if guidance.scale != 0 and neg_cond is None:
        raise ValueError("classifier-free guidance (a scale != 0) needs `neg_cond`")
    scheduler.set_timesteps(num_inference_steps)
    x = latents
    steps: Iterable = scheduler.timesteps.tolist()
    if progress is not None:
        steps = progress(steps)
    for i, t in enumerate(steps):
        v = guidance(model, x, t, cond, neg_cond)
        out = scheduler.step(v, t, x)
        x = out.prev_sample
        if callback is not None:
            changed = callback(i, t, {"latents": x, "pred_original_sample": out.pred_original_sample})
            if changed and "latents" in changed:
                x = changed["latents"]
    return x
