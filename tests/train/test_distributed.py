"""Two gloo processes on CPU give the same GCL loss and parameter gradients as one process on the joint batch.

Each rank embeds its own b pairs with a shared linear encoder wrapped in real DDP, gathers embeddings with
gradients, and computes the loss on its own rows; DDP averages gradients. The one-process reference lays the
concatenated batch out per rank, [A_r0, B_r0, A_r1, B_r1], which is the same set of 2B_global rows.

Run: PYTHONPATH=. python -m pytest tests/train/test_distributed.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from notellm.train.losses import gcl_loss

WORLD = 2
B_LOCAL = 3
D_IN, D_OUT = 6, 4


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.lin = torch.nn.Linear(D_IN, D_OUT, bias=False)
        self.tau = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.lin(x), dim=-1)


def _inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.randn(WORLD, 2 * B_LOCAL, D_IN, generator=g)  # per rank: [A_1..A_b, B_1..B_b]


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        model = torch.nn.parallel.DistributedDataParallel(Encoder())
        x = _inputs()[rank]
        loss = gcl_loss(model(x), model.module.tau.exp())
        loss.backward()
        losses = [torch.zeros(()) for _ in range(WORLD)]
        dist.all_gather(losses, loss.detach())
        if rank == 0:
            torch.save(
                {
                    "loss": torch.stack(losses).mean(),
                    "lin": model.module.lin.weight.grad,
                    "tau": model.module.tau.grad,
                },
                os.path.join(out_dir, "ddp.pt"),
            )
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_reference() -> dict[str, torch.Tensor]:
    model = Encoder()
    x = _inputs()  # (W, 2b, D)
    a = torch.cat([x[r, :B_LOCAL] for r in range(WORLD)])  # all side-A rows
    b = torch.cat([x[r, B_LOCAL:] for r in range(WORLD)])  # their partners in the same order
    loss = gcl_loss(model(torch.cat([a, b])), model.tau.exp())
    loss.backward()
    return {"loss": loss.detach(), "lin": model.lin.weight.grad, "tau": model.tau.grad}


def test_two_gloo_processes_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    ref = _single_process_reference()
    torch.testing.assert_close(ddp["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ddp["lin"], ref["lin"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ddp["tau"], ref["tau"], rtol=1e-4, atol=1e-6)
    assert ref["lin"].abs().sum() > 0
