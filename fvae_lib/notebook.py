"""What a notebook asks for: a trained model (reused, resumed or trained into its mode's run folder), the model a
figure should show, and notebook 07's sweep over the same run folders.

The modes are :mod:`fvae_lib.modes`, the setup cell's report :mod:`fvae_lib.environment`, and the plan printed
before training :mod:`fvae_lib.plan`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .config import TrainConfig
from .modes import Mode, run_folder, runs_dir
from .plan import training_plan, was_announced
from .runs import RunFolder
from .train import Trainer


def is_finished(run: Path) -> bool:
    done, asked = RunFolder(run).trained_steps()
    return asked > 0 and done >= asked


def load_or_train(name: str, mode: Mode, model: str = "factorvae", progress: bool = True, data=None,
                  step: Callable | None = None, **overrides):
    """Reuse the finished run ``runs/<mode>/<name>``, or train (or finish) it.

    Returns (vae in eval mode, TrainConfig, history rows). The config is the mode's preset with
    ``overrides`` (gamma, beta, seed, ...); a folder holding a different config is an error rather
    than silently reused. ``step``: a step function of one's own for the trainer (``Trainer(step=...)``);
    give its runs a name of their own, since a finished run is reused whatever step trained it.

    In a mode that reads the reference (``book``), a run whose model ``reference/models`` ships is read from
    there, with its logged history, and nothing is trained (:func:`reference_run`).
    """
    if mode.from_reference and step is None:
        shipped = reference_run(name, model, overrides)
        if shipped is not None:
            return shipped
    run = run_folder(name, mode)
    config = TrainConfig.from_preset(mode.preset, model=model, **overrides)
    if is_finished(run):
        saved = RunFolder(run).read_config()
        differs = config.defining_differences(saved)
        if differs:
            raise ValueError(f"{run} holds a run with other settings ({sorted(differs)}); delete it or use another name")
        vae, config = RunFolder(run).load_model()
        return vae, config, RunFolder(run).read_history()
    if not was_announced(run):  # say what is about to happen, and how long it should take
        print(training_plan([(name, model, overrides)], mode, data=data))
    trainer = Trainer(config, run, resume=RunFolder(run).exists(), data=data, progress=progress, step=step)
    trainer.run()
    return trainer.vae.eval(), config, trainer.folder.read_history()


def reference_run(name: str, model: str, overrides: dict):
    """The shipped reference run ``name`` as (vae, config, history), or None where none is shipped.

    A shipped run whose settings disagree with what was asked (another beta, gamma, model or seed) is an
    error, not a silent substitute. Prints which run it is, since it was trained for 5,000 iterations, not
    the mode's preset.
    """
    from .reference import load_reference_model, model_names, reference_history

    try:
        if name not in model_names():
            return None
    except FileNotFoundError:
        return None
    vae, config = load_reference_model(name)
    asked = dict(overrides, model=model)
    differs = sorted(k for k, v in asked.items() if getattr(config, k, v) != v)
    if differs:
        raise ValueError(f"the reference model {name!r} was trained with other settings ({', '.join(differs)}: "
                         f"{ {k: getattr(config, k) for k in differs} }); give this run another name")
    print(f"{name}: the reference model ({config.iterations:,} iterations on a CPU, reference/models), not trained here")
    return vae.eval(), config, reference_history(name)


# --------------------------------------------------------------------------------------------------
# Notebook 07's sweep: the same run folders as the other notebooks
# --------------------------------------------------------------------------------------------------

def model_to_show(name: str, mode: Mode, trained):
    """The model a figure or a score should show: ``trained`` (the mode's own) where the mode trains enough;
    in smoke mode, the reference sweep's model of that name (``reference/models``), since a few dozen smoke
    steps draw grey squares. Says which it is."""
    if mode.trained_enough:
        return trained
    from .reference import load_reference_model, model_names

    try:
        shipped = model_names()
    except FileNotFoundError:
        shipped = []
    if name not in shipped:
        print(f"{mode.name} mode: {name} is the untrained {mode.preset} run (no reference model of that name to show instead)")
        return trained
    vae, config = load_reference_model(name)
    print(f"{mode.name} mode: showing the reference model {name} ({config.iterations:,} iterations on a CPU, reference/), "
          f"not the {mode.preset} run trained here, which is untrained")
    return vae


def sweep_spec(mode: Mode):
    """The sweep of ``mode`` (notebook 07): its grid and seeds, trained into ``runs/<mode>``, where notebooks
    01-06 keep their runs, so a run they trained (``betavae_b4``, ``factorvae_g35``) is reused, not retrained."""
    from .sweep import SweepSpec

    return SweepSpec.from_dict(dict(
        grid={"betavae": list(mode.sweep_betas), "factorvae": list(mode.sweep_gammas)}, seeds=list(mode.sweep_seeds),
        preset=mode.preset, settings="smoke" if mode.name == "smoke" else "full", out=str(runs_dir() / mode.name)))


def sweep_command(mode: Mode) -> str:
    """The command line that runs :func:`sweep_spec` outside the notebook (it prints progress; resumable)."""
    spec = sweep_spec(mode)
    grid = " ".join(f"--{m} {','.join(f'{v:g}' for v in vs)}" for m, vs in spec.grid.items())
    return (f"python -m fvae_lib sweep {grid} --seeds {','.join(map(str, spec.seeds))} --preset {spec.preset} "
            f"--settings {spec.settings} --out {spec.out}")
