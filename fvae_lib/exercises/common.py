"""What every checker shares: running the learner's function and reporting, and diagnosing a wrong answer."""
from __future__ import annotations

from typing import Callable

import torch


def run_check(name: str, check: Callable[[], str | None]) -> bool:
    """Run one checker's ``check`` (None: right, else what is wrong), print ✓ or ✗ with the reason, and say
    whether it passed; a learner's exception is reported, not raised."""
    try:
        problem = check()
    except NotImplementedError:
        print(f"… {name}: not done yet (the function still raises NotImplementedError)")
        return False
    except Exception as err:  # noqa: BLE001 -- a learner's bug: report it, don't crash the notebook
        print(f"✗ {name}: your function raised {type(err).__name__}: {err}")
        return False
    if problem:
        print(f"✗ {name}: {problem}")
        return False
    print(f"✓ {name}: correct")
    return True


def close(a, b, tol=1e-4) -> bool:
    """Equal to ``tol``, absolute and relative, compared in float64."""
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), atol=tol, rtol=tol)


def diagnose(fn: Callable, cases: list, right: Callable, wrong: list) -> str | None:
    """Run ``fn`` on every case; None if it answers as ``right`` does, else the message of the classic wrong
    answer (a function in ``wrong``) whose answers it reproduces, else the first case it gets wrong."""
    got = [bool(fn(*case)) for case in cases]
    want = [bool(right(*case)) for case in cases]
    if got == want:
        return None
    for mistake, message in wrong:
        if got == [bool(mistake(*case)) for case in cases]:
            return message
    k = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
    return f"on {cases[k]} the answer is {want[k]}, yours {got[k]}"
