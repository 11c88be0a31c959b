"""The solver every bench run trains with, shared by bench/overhead and bench/profile_worker.py."""
from pathlib import Path

NETS = Path(__file__).resolve().parent / "nets"


def solver_text(net: str, iterations: int, debug: bool, gpu: bool = False) -> str:
    """SGD on bench/nets/NET.prototxt; `debug`: Caffe's debug_info with display 1, else display 100."""
    display = "display: 1\ndebug_info: true" if debug else "display: 100"
    return (f'net: "{NETS / (net + ".prototxt")}"\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n'
            f'lr_policy: "fixed"\n{display}\nmax_iter: {iterations}\nrandom_seed: 1\n'
            f'solver_mode: {"GPU" if gpu else "CPU"}\nsnapshot_after_train: false\n')
