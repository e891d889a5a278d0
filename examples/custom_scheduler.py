"""Swap the samplers of the shipped ss4d-tiny without touching library code: the library's Heun for the
structure stage and a scheduler written here (explicit midpoint, registered with ``register_scheduler``) for
the SLat stage; save the pipeline folder with them, reload it, generate.

    python examples/custom_scheduler.py --out out/custom_scheduler            # 12 steps, 8 frames
    python examples/custom_scheduler.py --out /tmp/cs --steps 2 --frames 2    # the CI run (tests/test_examples.py)
"""

import argparse
import json
from pathlib import Path

from torch import Tensor

from ss4d import SS4DPipeline
from ss4d.pipelines import shipped_tiny_path
from ss4d.schedulers import FlowMatchHeunScheduler, FlowMatchScheduler, register_scheduler

CLIP = Path(__file__).parent / "clips" / "synth_100012.gif"


@register_scheduler  # now a saved folder may name it, and from_pretrained loads it (an allowlist, not an import)
class MidpointScheduler(FlowMatchScheduler):
    """Explicit midpoint (RK2): evaluate at ``t_k``, step half way, evaluate there, take the whole step with it.

    ``timesteps`` is ``[t_0, m_0, t_1, m_1, ...]`` with ``m_k = (t_k + t_{k+1}) / 2``: two evaluations per step.
    """

    order = 2

    def _timesteps_for(self, grid: list[float]) -> list[float]:
        return [t for a, b in zip(grid[:-1], grid[1:], strict=True) for t in (a, (a + b) / 2)]

    def _reset_state(self) -> None:
        self._start: Tensor | None = None  # x_{t_k} while the midpoint is being evaluated

    def step(self, model_output: Tensor, timestep, sample: Tensor, *, return_dict: bool = True):
        i = self._begin_step(timestep)
        k = i // 2
        t, t_next = float(self.sigmas[k]), float(self.sigmas[k + 1])
        if self._start is None:  # at t_k: go to the midpoint
            self._start = sample
            prev = sample + (t_next - t) / 2 * model_output
            x0 = self.pred_original_sample(sample, t, model_output)
        else:  # at the midpoint: the whole step from x_{t_k} with the midpoint velocity
            prev, self._start = self._start + (t_next - t) * model_output, None
            x0 = self.pred_original_sample(sample, (t + t_next) / 2, model_output)
        return self._out(prev, x0, return_dict)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for the pipeline (pipeline/) and the result (result/)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args()
    out = Path(args.out)

    pipe = SS4DPipeline.from_pretrained(shipped_tiny_path())
    # keep each stage's settings (sigma_min, shift), change the solver
    pipe.structure_scheduler = FlowMatchHeunScheduler.from_config(pipe.structure_scheduler.config)
    pipe.slat_scheduler = MidpointScheduler.from_config(pipe.slat_scheduler.config)
    folder = pipe.save_pretrained(out / "pipeline")
    print("model_index.json components:", json.loads((folder / "model_index.json").read_text())["components"])

    reloaded = SS4DPipeline.from_pretrained(folder)
    print("reloaded:", reloaded.structure_scheduler, "/", reloaded.slat_scheduler)
    result = reloaded(CLIP, num_inference_steps=args.steps, max_frames=args.frames, seed=0, progress=False)
    written = result.save(out / "result", preview_size=64)
    print(f"{result.num_frames} frames, {sum(len(g) for g in result.gaussians)} Gaussians -> {out / 'result'} "
          f"({len(written['ply'])} PLYs)")  # fmt: skip


if __name__ == "__main__":
    main()
